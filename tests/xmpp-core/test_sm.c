/* test_sm.c - XEP-0198's counters and unacknowledged queue (sm_queue.c): counting modulo 2^32,
 * trimming by h, an h beyond what was sent, the h attribute's syntax. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/alloc.h"
#include "xmpp-core/src/sm.h"

static struct cm_xml_node *msg(unsigned i)
{
	struct cm_xml_node *n;
	char id[16];

	assert_int_equal(cm_xml_node_new(&n, "message", CM_XML_NS_CLIENT), 0);
	snprintf(id, sizeof(id), "m%u", i);
	assert_int_equal(cm_xml_node_set_attr(n, "id", id), 0);
	return n;
}

static const char *first_id(const struct xc_sm_queue *q)
{
	const struct cm_list *l = cm_list_first(&q->items);

	return l ? cm_xml_attr(cm_list_entry(l, struct xc_sm_item, link)->st, "id") : NULL;
}

static void push_n(struct xc_sm_queue *q, unsigned from, unsigned n)
{
	for (unsigned i = from; i < from + n; i++)
		assert_int_equal(xc_sm_queue_push(q, msg(i)), 0);
}

/* Acknowledgements drop what they cover, oldest first, and nothing more. */
static void test_ack_trims(void **state)
{
	struct xc_sm_queue q;

	(void)state;
	xc_sm_queue_init(&q);
	push_n(&q, 0, 5);
	assert_int_equal(xc_sm_queue_unacked(&q), 5);
	assert_int_equal(xc_sm_queue_ack(&q, 0), 0);
	assert_int_equal(q.n, 5);
	assert_int_equal(xc_sm_queue_ack(&q, 2), 0);
	assert_int_equal(q.n, 3);
	assert_string_equal(first_id(&q), "m2");
	/* the same h again changes nothing */
	assert_int_equal(xc_sm_queue_ack(&q, 2), 0);
	assert_int_equal(q.n, 3);
	assert_int_equal(xc_sm_queue_ack(&q, 5), 0);
	assert_int_equal(q.n, 0);
	assert_null(first_id(&q));
	xc_sm_queue_close(&q);
}

/* An h beyond what was sent, or behind the last one, is refused and changes nothing. */
static void test_ack_too_high(void **state)
{
	struct xc_sm_queue q;

	(void)state;
	xc_sm_queue_init(&q);
	push_n(&q, 0, 3);
	assert_int_equal(xc_sm_queue_ack(&q, 4), -ERANGE);
	assert_int_equal(q.n, 3);
	assert_int_equal(xc_sm_queue_ack(&q, UINT32_MAX), -ERANGE);
	assert_int_equal(xc_sm_queue_ack(&q, 2), 0);
	assert_int_equal(xc_sm_queue_ack(&q, 1), -ERANGE); /* backwards */
	assert_int_equal(q.n, 1);
	assert_int_equal(q.acked, 2);
	xc_sm_queue_close(&q);
}

/* Counters run modulo 2^32: a session that has sent 2^32 - 2 stanzas goes on across zero. */
static void test_wrap_around(void **state)
{
	struct xc_sm_queue q;

	(void)state;
	xc_sm_queue_init(&q);
	q.sent = q.acked = UINT32_MAX - 1;
	push_n(&q, 0, 4); /* numbered 2^32 - 1, 0, 1, 2 */
	assert_int_equal(q.sent, 2);
	assert_int_equal(xc_sm_queue_unacked(&q), 4);
	assert_int_equal(xc_sm_queue_ack(&q, 3), -ERANGE);
	assert_int_equal(xc_sm_queue_ack(&q, UINT32_MAX), 0);
	assert_string_equal(first_id(&q), "m1");
	assert_int_equal(xc_sm_queue_ack(&q, 1), 0);
	assert_string_equal(first_id(&q), "m3");
	assert_int_equal(xc_sm_queue_ack(&q, UINT32_MAX), -ERANGE); /* behind, across zero */
	assert_int_equal(xc_sm_queue_ack(&q, 2), 0);
	assert_int_equal(q.n, 0);
	/* and the handled count */
	q.handled = UINT32_MAX;
	xc_sm_queue_handled(&q);
	assert_int_equal(q.handled, 0);
	xc_sm_queue_close(&q);
}

/* Popping hands the oldest over as if acknowledged: the counts still agree. */
static void test_pop(void **state)
{
	struct xc_sm_queue q;
	struct cm_xml_node *st;

	(void)state;
	xc_sm_queue_init(&q);
	push_n(&q, 0, 2);
	st = xc_sm_queue_pop(&q);
	assert_string_equal(cm_xml_attr(st, "id"), "m0");
	cm_xml_node_free(st);
	assert_int_equal(xc_sm_queue_unacked(&q), 1);
	assert_int_equal(q.n, 1);
	assert_int_equal(xc_sm_queue_ack(&q, 2), 0);
	assert_null(xc_sm_queue_pop(&q));
	xc_sm_queue_close(&q);
}

/* A full queue is the caller's to detect: n counts what waits, up to any bound. */
static void test_bound(void **state)
{
	struct xc_sm_queue q;
	const size_t max = 1000;

	(void)state;
	xc_sm_queue_init(&q);
	push_n(&q, 0, (unsigned)max);
	assert_int_equal(q.n, max);
	assert_int_equal(xc_sm_queue_unacked(&q), max);
	push_n(&q, (unsigned)max, 1);
	assert_true(q.n > max);
	assert_int_equal(xc_sm_queue_ack(&q, 1000), 0);
	assert_int_equal(q.n, 1);
	xc_sm_queue_close(&q); /* frees what is left (the leak checker sees the rest) */
}

static int push_scenario(void *arg)
{
	struct xc_sm_queue *q = arg;
	struct cm_xml_node *n;
	int r = cm_xml_node_new(&n, "iq", CM_XML_NS_CLIENT);

	if (r)
		return r;
	r = xc_sm_queue_push(q, n);
	if (r) {
		cm_xml_node_free(n);
		return r;
	}
	xc_sm_queue_close(q);
	xc_sm_queue_init(q);
	return 0;
}

/* Without memory, a push leaves the stanza with the caller and the counts as they were. */
static void test_push_without_memory(void **state)
{
	struct xc_sm_queue q;
	struct cm_xml_node *n = NULL;

	(void)state;
	xc_sm_queue_init(&q);
	assert_true(test_alloc_sweep(push_scenario, &q, 20) > 0);
	assert_int_equal(cm_xml_node_new(&n, "iq", CM_XML_NS_CLIENT), 0);
	test_alloc_fail_nth(1);
	assert_int_equal(xc_sm_queue_push(&q, n), -ENOMEM);
	test_alloc_reset();
	assert_int_equal(q.sent, 0);
	assert_int_equal(q.n, 0);
	cm_xml_node_free(n);
	xc_sm_queue_close(&q);
}

static void test_parse_h(void **state)
{
	uint32_t h = 7;

	(void)state;
	assert_int_equal(xc_sm_parse_h("0", &h), 0);
	assert_int_equal(h, 0);
	assert_int_equal(xc_sm_parse_h("4294967295", &h), 0);
	assert_int_equal(h, UINT32_MAX);
	assert_int_equal(xc_sm_parse_h("4294967296", &h), -EINVAL);
	assert_int_equal(xc_sm_parse_h("99999999999999999999999", &h), -EINVAL);
	assert_int_equal(xc_sm_parse_h("", &h), -EINVAL);
	assert_int_equal(xc_sm_parse_h(NULL, &h), -EINVAL);
	assert_int_equal(xc_sm_parse_h("-1", &h), -EINVAL);
	assert_int_equal(xc_sm_parse_h("+1", &h), -EINVAL);
	assert_int_equal(xc_sm_parse_h("1 ", &h), -EINVAL);
	assert_int_equal(xc_sm_parse_h("0x10", &h), -EINVAL);
	assert_int_equal(h, UINT32_MAX); /* untouched by the failures */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ack_trims),   cmocka_unit_test(test_ack_too_high),
	    cmocka_unit_test(test_wrap_around), cmocka_unit_test(test_pop),
	    cmocka_unit_test(test_bound),       cmocka_unit_test(test_push_without_memory),
	    cmocka_unit_test(test_parse_h),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
