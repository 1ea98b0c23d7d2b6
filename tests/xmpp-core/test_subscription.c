/* test_subscription.c - every transition of RFC 6121 Appendix A: the nine states by eight
 * events, the new state and whether the stanza goes on, written out here from the RFC's tables;
 * then pre-approval, auto-replies, presence side effects and roster pushes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "xmpp-core/src/subscription.h"

/* The nine states of Appendix A, by index. */
static const struct xc_sub_state states[9] = {
    {XC_SUB_NONE, false, false, false, true}, /* 0 None */
    {XC_SUB_NONE, true, false, false, true},  /* 1 None + Pending Out */
    {XC_SUB_NONE, false, true, false, true},  /* 2 None + Pending In */
    {XC_SUB_NONE, true, true, false, true},   /* 3 None + Pending Out/In */
    {XC_SUB_TO, false, false, false, true},   /* 4 To */
    {XC_SUB_TO, false, true, false, true},    /* 5 To + Pending In */
    {XC_SUB_FROM, false, false, false, true}, /* 6 From */
    {XC_SUB_FROM, true, false, false, true},  /* 7 From + Pending Out */
    {XC_SUB_BOTH, false, false, false, true}, /* 8 Both */
};

static int index_of(const struct xc_sub_state *s)
{
	for (int i = 0; i < 9; i++)
		if (states[i].sub == s->sub && states[i].out == s->out && states[i].in == s->in)
			return i;
	return -1;
}

/* For each event: the new state from each of the nine, and whether the stanza is routed (OUT)
 * or delivered (IN). */
static const struct {
	enum xc_sub_event e;
	int next[9];
	int forward[9];
} table[] = {
    /* A.2.1 outbound subscribe */
    {XC_SUB_OUT_SUBSCRIBE, {1, 1, 3, 3, 4, 5, 7, 7, 8}, {1, 1, 1, 1, 1, 1, 1, 1, 1}},
    /* A.2.2 outbound unsubscribe */
    {XC_SUB_OUT_UNSUBSCRIBE, {0, 0, 2, 2, 0, 2, 6, 6, 6}, {1, 1, 1, 1, 1, 1, 1, 1, 1}},
    /* A.2.3 outbound subscribed (no pre-approval here) */
    {XC_SUB_OUT_SUBSCRIBED, {0, 1, 6, 7, 4, 8, 6, 7, 8}, {0, 0, 1, 1, 0, 1, 0, 0, 0}},
    /* A.2.4 outbound unsubscribed */
    {XC_SUB_OUT_UNSUBSCRIBED, {0, 1, 0, 1, 4, 4, 0, 1, 4}, {0, 0, 1, 1, 0, 1, 1, 1, 1}},
    /* A.3.1 inbound subscribe */
    {XC_SUB_IN_SUBSCRIBE, {2, 3, 2, 3, 5, 5, 6, 7, 8}, {1, 1, 0, 0, 1, 0, 0, 0, 0}},
    /* A.3.2 inbound unsubscribe */
    {XC_SUB_IN_UNSUBSCRIBE, {0, 1, 0, 1, 4, 4, 0, 1, 4}, {0, 0, 1, 1, 0, 1, 1, 1, 1}},
    /* A.3.3 inbound subscribed */
    {XC_SUB_IN_SUBSCRIBED, {0, 4, 2, 5, 4, 5, 6, 8, 8}, {0, 1, 0, 1, 0, 0, 0, 1, 0}},
    /* A.3.4 inbound unsubscribed */
    {XC_SUB_IN_UNSUBSCRIBED, {0, 0, 2, 2, 0, 2, 6, 6, 6}, {0, 1, 0, 1, 1, 1, 0, 1, 1}},
};

static void test_appendix_a(void **state)
{
	(void)state;
	for (size_t t = 0; t < sizeof(table) / sizeof(table[0]); t++) {
		for (int i = 0; i < 9; i++) {
			struct xc_sub_state s = states[i];
			unsigned act = xc_sub_step(&s, table[t].e, false);
			int got = index_of(&s);

			if (got != table[t].next[i] ||
			    !!(act & XC_SUB_FORWARD) != table[t].forward[i])
				fail_msg("event %d from state %d: state %d (want %d), forward %d "
				         "(want %d)",
				         (int)table[t].e, i, got, table[t].next[i],
				         !!(act & XC_SUB_FORWARD), table[t].forward[i]);
			assert_int_equal(!!(act & XC_SUB_CHANGED), got != i);
			assert_false(s.approved);
		}
	}
}

/* Only 'from' turns on when an inbound subscribe is answered for the user, and presence then
 * goes to the contact; cancelling it sends 'unavailable'. */
static void test_side_effects(void **state)
{
	struct xc_sub_state s;
	unsigned act;

	(void)state;
	for (int i = 6; i <= 8; i++) {
		s = states[i];
		act = xc_sub_step(&s, XC_SUB_IN_SUBSCRIBE, true);
		assert_true(act & XC_SUB_REPLY_SUBSCRIBED);
		assert_false(act & XC_SUB_FORWARD);
	}
	s = states[2];
	act = xc_sub_step(&s, XC_SUB_OUT_SUBSCRIBED, true);
	assert_true(act & XC_SUB_SEND_PRESENCE);
	assert_true(act & XC_SUB_PUSH);
	s = states[8];
	act = xc_sub_step(&s, XC_SUB_OUT_UNSUBSCRIBED, true);
	assert_true(act & XC_SUB_SEND_UNAVAILABLE);
	assert_true(act & XC_SUB_PUSH);
	/* a pending-in change is not shown in the roster: no push */
	s = states[0];
	act = xc_sub_step(&s, XC_SUB_IN_SUBSCRIBE, true);
	assert_true(act & XC_SUB_CHANGED);
	assert_false(act & XC_SUB_PUSH);
}

static void test_preapproval(void **state)
{
	struct xc_sub_state s = {XC_SUB_NONE, false, false, false, false};
	unsigned act;

	(void)state;
	/* without support: nothing happens */
	act = xc_sub_step(&s, XC_SUB_OUT_SUBSCRIBED, false);
	assert_int_equal(act, 0);
	/* with: recorded, the contact becomes an item, nothing is routed */
	act = xc_sub_step(&s, XC_SUB_OUT_SUBSCRIBED, true);
	assert_true(s.approved);
	assert_true(s.listed);
	assert_true(act & XC_SUB_PUSH);
	assert_false(act & XC_SUB_FORWARD);
	/* the contact's request is then answered for the user, and it sees the user */
	act = xc_sub_step(&s, XC_SUB_IN_SUBSCRIBE, true);
	assert_true(act & XC_SUB_REPLY_SUBSCRIBED);
	assert_true(act & XC_SUB_SEND_PRESENCE);
	assert_false(act & XC_SUB_FORWARD);
	assert_int_equal(s.sub, XC_SUB_FROM);
	assert_false(s.approved);
	/* a pre-approval can be withdrawn with unsubscribed, without telling the contact */
	s = (struct xc_sub_state){XC_SUB_TO, false, false, true, true};
	act = xc_sub_step(&s, XC_SUB_OUT_UNSUBSCRIBED, true);
	assert_false(s.approved);
	assert_false(act & XC_SUB_FORWARD);
	assert_true(act & XC_SUB_PUSH);
}

/* What the contact does alone never puts it in the user's roster; what the user does does. */
static void test_listing(void **state)
{
	struct xc_sub_state s = {XC_SUB_NONE, false, false, false, false};

	(void)state;
	xc_sub_step(&s, XC_SUB_IN_SUBSCRIBE, true);
	assert_false(s.listed);
	assert_true(s.in);
	assert_false(xc_sub_step(&s, XC_SUB_IN_UNSUBSCRIBE, true) & XC_SUB_PUSH);
	xc_sub_step(&s, XC_SUB_IN_SUBSCRIBE, true);
	assert_true(xc_sub_step(&s, XC_SUB_OUT_SUBSCRIBED, true) & XC_SUB_PUSH);
	assert_true(s.listed);
	assert_string_equal(xc_sub_name(s.sub), "from");
	s = (struct xc_sub_state){XC_SUB_NONE, false, false, false, false};
	assert_true(xc_sub_step(&s, XC_SUB_OUT_SUBSCRIBE, true) & XC_SUB_PUSH);
	assert_true(s.listed && s.out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_appendix_a),
	    cmocka_unit_test(test_side_effects),
	    cmocka_unit_test(test_preapproval),
	    cmocka_unit_test(test_listing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
