/* fuzz_ws.c - libFuzzer target: a WebSocket server connection (cm/ws.h) on an in-memory
 * transport: the handshake parser, then the framing as cm_ws feeds it to wslay.
 *
 * The first byte of the input says what the rest is: even, all a client sends on a connection,
 * the request head first; odd, frames only, after a valid handshake made here (so that the
 * fuzzer reaches the framing without having to find a Sec-WebSocket-Key). The rest is fed twice,
 * once whole and once in pseudo-random pieces (as reads would cut it); both runs must give the
 * same output, byte for byte. Messages handed over must keep the limits (text is UTF-8, none
 * over max_message), and the output must be one HTTP answer, then for a 101 only well-formed
 * server frames: final, unmasked, shortest lengths, control frames of 125 bytes at most, a close
 * frame with a code one may send, nothing after it. The server echoes messages, answers "ping"
 * with a ping and "close" with a close of its own, and refuses origins starting with 'x'. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/utf8.h"
#include "cm/ws.h"
/* relative to this file, so that both the replay build (-I.) and the fuzz build find it */
#include "common/src/ws_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MESSAGE 4096

static const char handshake[] = "GET /ws HTTP/1.1\r\n"
                                "Host: fuzz\r\n"
                                "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n"
                                "Sec-WebSocket-Protocol: xmpp\r\n"
                                "\r\n";

static const char *const protocols[] = {"xmpp", "chat", NULL};
static const struct cm_ws_config cfg = {
    .path = "/ws", .protocols = protocols, .max_head = 1024, .max_message = MAX_MESSAGE};

static int on_open(struct cm_ws_conn *c, const char *target, const char *protocol,
                   const char *origin)
{
	(void)c;
	(void)protocol;
	if (!target || target[0] != '/')
		abort(); /* only an origin-form target gets here */
	return origin && origin[0] == 'x' ? 403 : 0;
}

static void on_message(struct cm_ws_conn *c, const char *data, size_t len, bool text)
{
	if (len > MAX_MESSAGE || (text && !cm_utf8_valid(data, len)))
		abort();
	if (text && len == 4 && memcmp(data, "ping", 4) == 0)
		(void)cm_ws_ping(c, "p", 1);
	else if (text && len == 5 && memcmp(data, "close", 5) == 0)
		(void)cm_ws_close(c, 4000, "bye");
	else if (text)
		(void)cm_ws_send_text(c, data, len);
	else
		(void)cm_ws_send_binary(c, data, len);
}

static void on_closed(struct cm_ws_conn *c, int code)
{
	(void)c;
	(void)code;
}

static const struct cm_ws_events events = {
    .open = on_open, .message = on_message, .closed = on_closed};

/* xorshift: piece sizes that depend on the input but not on libFuzzer's state */
static uint32_t next_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void run(const uint8_t *data, size_t size, int frames_only, uint32_t seed, int split,
                struct cm_buf *out)
{
	struct cm_ws_conn *c;

	if (cm_ws__mem_alloc(&c, &cfg, &events, NULL) != 0)
		abort();
	if (frames_only)
		cm_ws__mem_input(c, handshake, sizeof(handshake) - 1);
	for (size_t off = 0; off < size;) {
		size_t k = size - off;

		if (split) {
			size_t piece = 1 + next_rand(&seed) % 37;

			k = k < piece ? k : piece;
		}
		cm_ws__mem_input(c, (const char *)data + off, k);
		off += k;
	}
	if (cm_buf_append(out, c->mem_out.data, c->mem_out.len) != 0)
		abort();
	cm_ws__mem_free(c);
}

static int sendable(unsigned code)
{
	return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
	       (code >= 3000 && code <= 4999);
}

/* The server's frames from p: well formed, nothing after a close frame. */
static void check_frames(const unsigned char *p, size_t n)
{
	int closed = 0;

	while (n > 0) {
		unsigned op, len7;
		uint64_t len;
		size_t h = 2;

		if (closed || n < 2)
			abort();
		op = p[0] & 0x0f;
		len7 = p[1] & 0x7f;
		if ((p[0] & 0xf0) != 0x80 || (p[1] & 0x80))
			abort(); /* final, no reserved bits, not masked */
		if (op != 1 && op != 2 && op != 8 && op != 9 && op != 10)
			abort();
		if (len7 == 126) {
			if (n < 4)
				abort();
			len = (uint64_t)p[2] << 8 | p[3];
			h = 4;
			if (len < 126)
				abort();
		} else if (len7 == 127) {
			if (n < 10)
				abort();
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | p[2 + i];
			h = 10;
			if (len < 65536)
				abort();
		} else {
			len = len7;
		}
		if (len > n - h || (op >= 8 && len > 125))
			abort();
		if (op == 1 && !cm_utf8_valid((const char *)p + h, (size_t)len))
			abort();
		if (op == 8) {
			if (len == 1 || (len >= 2 && !sendable((unsigned)p[h] << 8 | p[h + 1])))
				abort();
			closed = 1;
		}
		p += h + len;
		n -= h + (size_t)len;
	}
}

/* One HTTP answer; frames after a 101 only. */
static void check_output(const struct cm_buf *out)
{
	const char *end, *cl;
	size_t head;
	int status;

	if (out->len == 0)
		return; /* the head never completed */
	if (out->len < 13 || memcmp(out->data, "HTTP/1.1 ", 9) != 0)
		abort();
	end = memmem(out->data, out->len, "\r\n\r\n", 4);
	if (!end)
		abort();
	head = (size_t)(end - out->data) + 4;
	status = atoi(out->data + 9);
	if (status == 101) {
		if (!memmem(out->data, head, "\r\nSec-WebSocket-Accept: ", 24))
			abort();
		check_frames((const unsigned char *)out->data + head, out->len - head);
		return;
	}
	if (status < 400 || status > 599)
		abort();
	cl = memmem(out->data, head, "\r\nContent-Length: ", 18);
	if (!cl || head + strtoul(cl + 18, NULL, 10) != out->len)
		abort(); /* the body, then nothing: the connection closes */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_buf whole, pieces;
	uint32_t seed = 2166136261u;
	int frames_only;

	if (size == 0)
		return 0;
	frames_only = data[0] & 1;
	data++;
	size--;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	seed |= 1;
	cm_buf_init(&whole, 0);
	cm_buf_init(&pieces, 0);
	run(data, size, frames_only, seed, 0, &whole);
	run(data, size, frames_only, seed, 1, &pieces);
	if (whole.len != pieces.len || memcmp(whole.data, pieces.data, whole.len) != 0) {
		fprintf(stderr, "fuzz_ws: the output differs with the input in pieces (%zu/%zu)\n",
		        whole.len, pieces.len);
		abort();
	}
	check_output(&whole);
	cm_buf_free(&whole);
	cm_buf_free(&pieces);
	return 0;
}
