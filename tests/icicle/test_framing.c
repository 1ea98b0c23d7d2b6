/* test_framing.c - the TCP/TLS stream framer (icicle/src/frame.c): STUN messages and padded
 * ChannelData split at every byte boundary, garbage, size limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "icicle/src/attrs.h"
#include "icicle/src/frame.h"

/* A stream: Binding request (20 + 8 bytes), ChannelData of 5 bytes (+3 padding), ChannelData
 * of 4 bytes (no padding), ChannelData of 0 bytes, another STUN message. */
static size_t build(uint8_t *s)
{
	size_t n = 0;
	static const uint8_t stun[28] = {0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42, 1,  2,
	                                 3,    4,    5,    6,    7,    8,    9,    10,   11, 12,
	                                 0x80, 0x22, 0x00, 0x03, 'a',  'b',  'c',  0};
	static const uint8_t cd1[12] = {0x40, 0x00, 0x00, 0x05, 'h', 'e', 'l', 'l', 'o', 0, 0, 0};
	static const uint8_t cd2[8] = {0x7f, 0xff, 0x00, 0x04, 1, 2, 3, 4};
	static const uint8_t cd3[4] = {0x40, 0x01, 0x00, 0x00};

	memcpy(s + n, stun, sizeof(stun));
	n += sizeof(stun);
	memcpy(s + n, cd1, sizeof(cd1));
	n += sizeof(cd1);
	memcpy(s + n, cd2, sizeof(cd2));
	n += sizeof(cd2);
	memcpy(s + n, cd3, sizeof(cd3));
	n += sizeof(cd3);
	memcpy(s + n, stun, sizeof(stun));
	n += sizeof(stun);
	return n;
}

static const size_t want_len[] = {28, 9, 8, 4, 28};

static void drain(struct icicle_framer *f, size_t *k, const uint8_t *stream)
{
	uint8_t *p;
	size_t len;
	int rc;

	(void)stream;
	while ((rc = icicle_framer_next(f, &p, &len)) == 1) {
		assert_true(*k < 5);
		assert_int_equal(len, want_len[*k]);
		if (*k == 1)
			assert_memory_equal(p + 4, "hello", 5);
		if (*k == 0 || *k == 4)
			assert_int_equal(icicle_stun_check_header(p, len), 0);
		(*k)++;
	}
	assert_int_equal(rc, 0);
}

static void test_split_everywhere(void **state)
{
	uint8_t s[128];
	size_t n = build(s), cut, cut2, k;
	struct icicle_framer f;

	(void)state;
	/* one cut at every position */
	for (cut = 0; cut <= n; cut++) {
		icicle_framer_init(&f);
		k = 0;
		assert_int_equal(icicle_framer_feed(&f, s, cut), 0);
		drain(&f, &k, s);
		assert_int_equal(icicle_framer_feed(&f, s + cut, n - cut), 0);
		drain(&f, &k, s);
		assert_int_equal(k, 5);
		icicle_framer_close(&f);
	}
	/* two cuts at every pair of positions */
	for (cut = 0; cut <= n; cut++)
		for (cut2 = cut; cut2 <= n; cut2++) {
			icicle_framer_init(&f);
			k = 0;
			assert_int_equal(icicle_framer_feed(&f, s, cut), 0);
			drain(&f, &k, s);
			assert_int_equal(icicle_framer_feed(&f, s + cut, cut2 - cut), 0);
			drain(&f, &k, s);
			assert_int_equal(icicle_framer_feed(&f, s + cut2, n - cut2), 0);
			drain(&f, &k, s);
			assert_int_equal(k, 5);
			icicle_framer_close(&f);
		}
	/* one byte at a time */
	icicle_framer_init(&f);
	k = 0;
	for (cut = 0; cut < n; cut++) {
		assert_int_equal(icicle_framer_feed(&f, s + cut, 1), 0);
		drain(&f, &k, s);
	}
	assert_int_equal(k, 5);
	icicle_framer_close(&f);
}

static void test_garbage(void **state)
{
	static const uint8_t bad[] = {0x80, 0, 0, 0};
	static const uint8_t bad_len[] = {0x00, 0x01, 0x00, 0x05}; /* STUN length not % 4 */
	struct icicle_framer f;
	uint8_t *p;
	size_t len;

	(void)state;
	icicle_framer_init(&f);
	assert_int_equal(icicle_framer_next(&f, &p, &len), 0);
	assert_int_equal(icicle_framer_feed(&f, bad, 3), 0);
	assert_int_equal(icicle_framer_next(&f, &p, &len), 0);
	assert_int_equal(icicle_framer_feed(&f, bad + 3, 1), 0);
	assert_int_equal(icicle_framer_next(&f, &p, &len), -EBADMSG);
	icicle_framer_close(&f);
	icicle_framer_init(&f);
	assert_int_equal(icicle_framer_feed(&f, bad_len, 4), 0);
	assert_int_equal(icicle_framer_next(&f, &p, &len), -EBADMSG);
	icicle_framer_close(&f);
}

static void test_limits(void **state)
{
	static uint8_t big[ICICLE_FRAMER_MAX + 1];
	struct icicle_framer f;
	uint8_t *p;
	size_t len;

	(void)state;
	/* the largest ChannelData: 0xffff bytes + 1 of padding */
	big[0] = 0x40;
	big[2] = 0xff;
	big[3] = 0xff;
	icicle_framer_init(&f);
	assert_int_equal(icicle_framer_feed(&f, big, 4 + 65535), 0);
	assert_int_equal(icicle_framer_next(&f, &p, &len), 0);
	assert_int_equal(icicle_framer_feed(&f, big, 1), 0);
	assert_int_equal(icicle_framer_next(&f, &p, &len), 1);
	assert_int_equal(len, 4 + 65535);
	icicle_framer_close(&f);
	/* more than a frame's worth at once is refused */
	icicle_framer_init(&f);
	assert_int_equal(icicle_framer_feed(&f, big, sizeof(big)), -ENOBUFS);
	icicle_framer_close(&f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split_everywhere),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
