/* strophe_chat.c - a libstrophe client for the xmpp-core tests: log in, send one message, wait
 * for one message back, print its body, log out.
 *
 *   strophe_chat JID PASSWORD PORT CAFILE TO BODY
 * Exit status 0 once a reply arrived, 1 on any failure (said on stderr), 2 on a timeout. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strophe.h>

struct chat {
	const char *to;
	const char *body;
	int status; /* -1 running */
};

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
	struct chat *c = arg;
	xmpp_stanza_t *b = xmpp_stanza_get_child_by_name(st, "body");
	char *text = b ? xmpp_stanza_get_text(b) : NULL;

	if (!text)
		return 1;
	printf("%s: %s\n", xmpp_stanza_get_from(st), text);
	fflush(stdout);
	xmpp_free(xmpp_conn_get_context(conn), text);
	c->status = 0;
	xmpp_disconnect(conn);
	return 0;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int err, xmpp_stream_error_t *serr,
                    void *arg)
{
	struct chat *c = arg;
	xmpp_ctx_t *ctx = xmpp_conn_get_context(conn);
	xmpp_stanza_t *pres, *msg;

	(void)serr;
	if (ev != XMPP_CONN_CONNECT) {
		if (c->status < 0) {
			fprintf(stderr, "strophe_chat: disconnected (error %d)\n", err);
			c->status = 1;
		}
		xmpp_stop(ctx);
		return;
	}
	fprintf(stderr, "strophe_chat: connected as %s (secured: %d)\n",
	        xmpp_conn_get_bound_jid(conn), xmpp_conn_is_secured(conn));
	xmpp_handler_add(conn, on_message, NULL, "message", NULL, c);
	pres = xmpp_presence_new(ctx);
	xmpp_send(conn, pres);
	xmpp_stanza_release(pres);
	msg = xmpp_message_new(ctx, "chat", c->to, "m1");
	xmpp_message_set_body(msg, c->body);
	xmpp_send(conn, msg);
	xmpp_stanza_release(msg);
}

int main(int argc, char **argv)
{
	struct chat c = {.status = -1};
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;

	if (argc != 7) {
		fprintf(stderr, "usage: strophe_chat JID PASSWORD PORT CAFILE TO BODY\n");
		return 1;
	}
	c.to = argv[5];
	c.body = argv[6];
	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, NULL);
	conn = xmpp_conn_new(ctx);
	xmpp_conn_set_jid(conn, argv[1]);
	xmpp_conn_set_pass(conn, argv[2]);
	xmpp_conn_set_cafile(conn, argv[4]);
	xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_MANDATORY_TLS);
	if (xmpp_connect_client(conn, "127.0.0.1", (unsigned short)atoi(argv[3]), on_conn, &c) !=
	    XMPP_EOK) {
		fprintf(stderr, "strophe_chat: cannot connect\n");
		return 1;
	}
	xmpp_run(ctx);
	xmpp_conn_release(conn);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	return c.status < 0 ? 2 : c.status;
}
