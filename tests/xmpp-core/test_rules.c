/* test_rules.c - RFC 6121 8.5's delivery rules (rules.h), case by case. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "xmpp-core/src/rules.h"

#define S(avail, prio)                                                                             \
	{                                                                                          \
		.available = (avail), .priority = (prio)                                           \
	}

static void picks(const char *type, const struct xc_rule_session *s, size_t n, enum xc_rule want,
                  const bool *want_chosen)
{
	bool chosen[8];

	assert_int_equal(xc_rule_message_bare(type, s, n, chosen), want);
	if (want == XC_RULE_DELIVER)
		for (size_t i = 0; i < n; i++)
			assert_int_equal(chosen[i], want_chosen[i]);
}

/* 8.5.2.1: chat and normal go to the highest non-negative priority, every one of a tie. */
static void test_bare_chat_and_normal(void **state)
{
	static const struct xc_rule_session two[] = {S(true, 1), S(true, 5)};
	static const struct xc_rule_session tie[] = {S(true, 5), S(false, 9), S(true, 5)};
	static const struct xc_rule_session negative[] = {S(true, -1), S(true, -5)};
	static const struct xc_rule_session away[] = {S(false, 10)};
	static const struct xc_rule_session zero[] = {S(true, 0), S(true, -1)};
	static const bool only_second[] = {false, true};
	static const bool ends[] = {true, false, true};
	static const bool first[] = {true, false};

	(void)state;
	for (int t = 0; t < 2; t++) {
		const char *type = t ? "normal" : "chat";

		picks(type, two, 2, XC_RULE_DELIVER, only_second);
		picks(type, tie, 3, XC_RULE_DELIVER, ends);
		picks(type, zero, 2, XC_RULE_DELIVER, first);
		/* nobody who may take it: stored */
		picks(type, negative, 2, XC_RULE_OFFLINE, NULL);
		picks(type, away, 1, XC_RULE_OFFLINE, NULL);
		picks(type, NULL, 0, XC_RULE_OFFLINE, NULL);
	}
}

/* 8.5.2.1.2: headline to every available non-negative session, or dropped; groupchat refused;
 * error like chat but never stored. */
static void test_bare_headline_groupchat_error(void **state)
{
	static const struct xc_rule_session mix[] = {S(true, 1), S(true, 5), S(true, -1),
	                                             S(false, 7)};
	static const struct xc_rule_session negative[] = {S(true, -2)};
	static const bool all_ok[] = {true, true, false, false};
	static const bool best[] = {false, true, false, false};

	(void)state;
	picks("headline", mix, 4, XC_RULE_DELIVER, all_ok);
	picks("headline", negative, 1, XC_RULE_DROP, NULL);
	picks("headline", NULL, 0, XC_RULE_DROP, NULL);
	picks("groupchat", mix, 4, XC_RULE_BOUNCE, NULL);
	picks("groupchat", NULL, 0, XC_RULE_BOUNCE, NULL);
	picks("error", mix, 4, XC_RULE_DELIVER, best);
	picks("error", negative, 1, XC_RULE_DROP, NULL);
}

/* 8.5.3: a full JID. */
static void test_full(void **state)
{
	static const char *const mtypes[] = {"normal", "chat", "headline", "groupchat", "error"};
	static const char *const itypes[] = {"get", "set", "result", "error"};
	static const char *const ptypes[] = {"available", "unavailable", "subscribe", "probe"};

	(void)state;
	for (size_t i = 0; i < 5; i++)
		assert_int_equal(xc_rule_full(XC_MESSAGE, mtypes[i], true), XC_RULE_DELIVER);
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(xc_rule_full(XC_IQ, itypes[i], true), XC_RULE_DELIVER);
		assert_int_equal(xc_rule_full(XC_PRESENCE, ptypes[i], true), XC_RULE_DELIVER);
	}
	/* no such session */
	assert_int_equal(xc_rule_full(XC_MESSAGE, "normal", false), XC_RULE_AS_BARE);
	assert_int_equal(xc_rule_full(XC_MESSAGE, "chat", false), XC_RULE_AS_BARE);
	assert_int_equal(xc_rule_full(XC_MESSAGE, "headline", false), XC_RULE_AS_BARE);
	assert_int_equal(xc_rule_full(XC_MESSAGE, "groupchat", false), XC_RULE_BOUNCE);
	assert_int_equal(xc_rule_full(XC_MESSAGE, "error", false), XC_RULE_DROP);
	assert_int_equal(xc_rule_full(XC_IQ, "get", false), XC_RULE_BOUNCE);
	assert_int_equal(xc_rule_full(XC_IQ, "set", false), XC_RULE_BOUNCE);
	assert_int_equal(xc_rule_full(XC_IQ, "result", false), XC_RULE_DROP);
	assert_int_equal(xc_rule_full(XC_IQ, "error", false), XC_RULE_DROP);
	assert_int_equal(xc_rule_full(XC_IQ, NULL, false), XC_RULE_DROP);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(xc_rule_full(XC_PRESENCE, ptypes[i], false), XC_RULE_DROP);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_bare_chat_and_normal),
	    cmocka_unit_test(test_bare_headline_groupchat_error),
	    cmocka_unit_test(test_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
