/* admin_api.c - accounts and sessions over the admin port, for xmppctl (admin_api.h).
 *
 * An operation (struct op) lives from the request to its answer. Those that need the store
 * submit a request whose answer comes back on the main loop; those that need the sessions go
 * round the shards by message (struct tour): each shard adds its part and passes the message on,
 * the last one posts it back to the main loop. Nothing is shared between threads but the message
 * itself, which one thread holds at a time.
 */
#include "admin_api.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "archive_import.h"
#include "backup.h"
#include "c2s.h"
#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/daemon.h"
#include "cm/err.h"
#include "cm/http.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "cm/stream.h"
#include "import.h"
#include "mam.h"
#include "router.h"
#include "scram.h"
#include "server.h"
#include "session.h"
#include "stanza.h"
#include "store.h"
#include "upload.h"

#define API_PREFIX   "/api/v1/"
#define PASSWORD_MAX 1023 /* bytes; SASLprep'd passwords longer than this are refused */

/* docs/xmpp-core-api.json, embedded by the build (scripts/embed.sh) */
extern const char xc_admin_api_openapi[];

struct xc_admin_api {
	struct xc_server *srv; /* borrowed */
	unsigned char *token;  /* owned, NULL: the API is off */
	size_t token_len;
	unsigned inflight;         /* operations not yet answered */
	void (*closed)(void *arg); /* xc_admin_api_close()'s */
	void *closed_arg;
};

/* --- answers ------------------------------------------------------------------------------------
 */

static void respond_json(struct cm_http_req *req, int status, json_t *body)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;

	if (body && !text)
		cm_http_respond(req, 500, NULL, NULL, 0);
	else
		cm_http_respond(req, status, text ? "application/json" : NULL, text,
		                text ? strlen(text) : 0);
	free(text);
	json_decref(body);
}

static void respond_error(struct cm_http_req *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void respond_error(struct cm_http_req *req, int status, const char *fmt, ...)
{
	char msg[CM_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	respond_json(req, status, json_pack("{ss}", "error", msg));
}

/* --- operations in flight -----------------------------------------------------------------------
 */

enum op_kind {
	OP_REGISTER,
	OP_PASSWORD,
	OP_UNREGISTER,
	OP_LIST,
	OP_SESSIONS,
	OP_KICK,
	OP_STATS,
	OP_FAST_REVOKE,
	OP_IMPORT,
	OP_BACKUP,
	OP_EXPORT,
	OP_ANNOUNCE,
	OP_ARCHIVE,
	OP_ARCHIVE_READ,
	OP_UPLOAD_DELETE,
};

struct op {
	struct xc_admin_api *api; /* borrowed: outlives every op (xc_admin_api_close waits) */
	struct cm_http_req *req;  /* owned until answered */
	enum op_kind kind;
	char *jid;        /* owned: the account or session concerned */
	const char *host; /* borrowed from the configuration (OP_LIST, OP_STATS) */
	size_t host_idx;  /* OP_STATS: the host being counted */
	json_t *result;   /* owned: what is being gathered */
	/* OP_ARCHIVE: the messages (owned), and how many are on their way, written, failed */
	struct xc_archive_batch batch;
	size_t pending, archived, failed;
};

static struct op *op_new(struct xc_admin_api *a, struct cm_http_req *req, enum op_kind kind)
{
	struct op *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->api = a;
	o->req = req;
	o->kind = kind;
	a->inflight++;
	return o;
}

/* The op has answered: release it, and finish a close that waited for it. */
static void op_done(struct op *o)
{
	struct xc_admin_api *a = o->api;

	json_decref(o->result);
	xc_archive_batch_clear(&o->batch);
	free(o->jid);
	free(o);
	if (--a->inflight == 0 && a->closed) {
		void (*fn)(void *) = a->closed;

		a->closed = NULL;
		fn(a->closed_arg);
	}
}

static void op_fail(struct op *o, int status, const char *msg)
{
	respond_error(o->req, status, "%s", msg);
	op_done(o);
}

/* --- the tour of the shards ---------------------------------------------------------------------
 */

/* One message goes from shard to shard, then home to the main loop. */
struct tour {
	struct cm_msg m;
	struct op *o;
	unsigned next;     /* the shard to visit next; nshards: back home */
	struct xc_jid who; /* OP_KICK: the JID to kick (bare: every session) */
	json_t *sessions;  /* OP_SESSIONS: the list being built */
	unsigned kicked;   /* OP_KICK */
	unsigned total;    /* OP_STATS: sessions counted */
	const char *cond;  /* OP_KICK: the stream error condition (a constant) */
	char *text;        /* owned: its text (or, for see-other-host, where to go); OP_ANNOUNCE:
	                    * the body */
	char *subject;     /* owned, OP_ANNOUNCE: NULL or the subject */
	const char *host;  /* OP_ANNOUNCE: NULL (every host) or the one whose sessions hear it */
	unsigned sent;     /* OP_ANNOUNCE: sessions sent the announcement */
};

static void tour_step(struct cm_loop *l, struct cm_msg *m);
static void tour_home(struct cm_loop *l, struct cm_msg *m);

static void tour_post(struct tour *t)
{
	struct xc_server *srv = t->o->api->srv;

	for (;;) {
		if (t->next >= srv->nshards) {
			t->m.fn = tour_home;
			if (cm_loop_post(cm_daemon_main_loop(srv->daemon), &t->m) != 0)
				CM_LOGE("api", "the main loop is gone: an answer is lost");
			return;
		}
		t->m.fn = tour_step;
		if (cm_loop_post(srv->shards[t->next++]->loop, &t->m) == 0)
			return;
		/* that shard is closing: it has nothing to say */
	}
}

static void session_json(struct tour *t, struct xc_c2s *c)
{
	json_t *s = json_pack("{ss ss sb sI}", "jid", c->jid.s, "address", xc_c2s_peer(c), "tls",
	                      xc_c2s_secured(c), "since", (json_int_t)c->since);

	if (s)
		json_array_append_new(t->sessions, s);
}

/* <message type='headline' from=host to=full><subject/><body/></message>: NULL on failure. */
static struct cm_xml_node *announcement(const struct tour *t, const char *host, const char *full,
                                        unsigned long long n)
{
	struct cm_xml_node *m = NULL, *c;
	char id[32];
	int r = cm_xml_node_new(&m, "message", "jabber:client");

	snprintf(id, sizeof(id), "announce-%llu", n);
	r = r ? r : cm_xml_node_set_attr(m, "type", "headline");
	r = r ? r : cm_xml_node_set_attr(m, "id", id);
	r = r ? r : xc_stanza_set_addrs(m, full, host);
	if (!r && t->subject) {
		r = cm_xml_node_new_child(&c, m, "subject", NULL);
		r = r ? r : cm_xml_node_add_text(c, t->subject, strlen(t->subject));
	}
	r = r ? r : cm_xml_node_new_child(&c, m, "body", NULL);
	r = r ? r : cm_xml_node_add_text(c, t->text, strlen(t->text));
	if (r) {
		cm_xml_node_free(m);
		return NULL;
	}
	return m;
}

/* Each bound session of the shard (of t->host, or of every host) is sent the announcement,
 * from its own host's address. */
static void announce_shard(struct xc_shard *sh, struct tour *t)
{
	struct cm_list *n;

	cm_list_foreach(n, &sh->conns)
	{
		struct xc_c2s *c = cm_list_entry(n, struct xc_c2s, link);
		char host[XC_JID_PART_MAX + 1];
		struct cm_xml_node *m;

		if (c->st != XC_C2S_BOUND || c->jid.dlen >= sizeof(host))
			continue;
		memcpy(host, xc_jid_domain(&c->jid), c->jid.dlen);
		host[c->jid.dlen] = '\0';
		if (t->host && strcmp(t->host, host) != 0)
			continue;
		m = announcement(t, host, c->jid.s, (unsigned long long)t->sent + 1);
		if (!m)
			continue;
		xc_route(sh, m);
		t->sent++;
	}
}

static void tour_step(struct cm_loop *l, struct cm_msg *m)
{
	struct tour *t = cm_list_entry(m, struct tour, m);
	struct xc_shard *sh = l->data;
	struct cm_list *n;

	if (sh && !cm_loop_stopping(l)) {
		switch (t->o->kind) {
		case OP_SESSIONS:
		case OP_STATS:
			cm_list_foreach(n, &sh->conns)
			{
				struct xc_c2s *c = cm_list_entry(n, struct xc_c2s, link);

				if (c->st != XC_C2S_BOUND)
					continue;
				t->total++;
				if (t->sessions)
					session_json(t, c);
			}
			break;
		case OP_KICK:
		case OP_UNREGISTER:
			t->kicked += xc_session_kick(sh, &t->who, t->cond, t->text);
			break;
		case OP_ANNOUNCE:
			announce_shard(sh, t);
			break;
		default:
			break;
		}
	}
	tour_post(t);
}

static void tour_free(struct tour *t)
{
	free(t->text);
	free(t->subject);
	xc_jid_free(&t->who);
	json_decref(t->sessions);
	free(t);
}

static void stats_next_host(struct op *o);

static void tour_home(struct cm_loop *l, struct cm_msg *m)
{
	struct tour *t = cm_list_entry(m, struct tour, m);
	struct op *o = t->o;

	(void)l;
	switch (o->kind) {
	case OP_SESSIONS:
		respond_json(o->req, 200, json_pack("{sO}", "sessions", t->sessions));
		op_done(o);
		break;
	case OP_KICK:
		respond_json(o->req, 200, json_pack("{ss si}", "jid", o->jid, "kicked", t->kicked));
		op_done(o);
		break;
	case OP_UNREGISTER:
		/* the account is gone; so are its sessions now */
		cm_http_respond(o->req, 204, NULL, NULL, 0);
		op_done(o);
		break;
	case OP_STATS:
		json_object_set_new(o->result, "sessions", json_integer(t->total));
		stats_next_host(o);
		break;
	case OP_ANNOUNCE:
		CM_LOGI("api", "an announcement went to %u session(s) of %s", t->sent,
		        t->host ? t->host : "every host");
		respond_json(o->req, 200, json_pack("{si}", "sent", t->sent));
		op_done(o);
		break;
	default:
		break;
	}
	tour_free(t);
}

/* Start a tour for o. For a kick, jid says whom. 0 or a negative errno (o untouched). */
static int tour_start(struct op *o, const char *jid, const char *cond, const char *text)
{
	struct tour *t = calloc(1, sizeof(*t));

	if (!t)
		return -ENOMEM;
	t->o = o;
	t->cond = cond;
	if (text && !(t->text = strdup(text))) {
		free(t);
		return -ENOMEM;
	}
	if (jid && xc_jid_parse(&t->who, jid, strlen(jid), NULL, 0) != 0) {
		free(t);
		return -EINVAL;
	}
	if (o->kind == OP_SESSIONS && !(t->sessions = json_array())) {
		tour_free(t);
		return -ENOMEM;
	}
	tour_post(t);
	return 0;
}

/* --- the store ----------------------------------------------------------------------------------
 */

static void on_stored(struct xc_store_req *r);

/* Queue r; on failure it stays the caller's. */
static int submit(struct op *o, struct xc_store_req *r)
{
	return xc_store_submit(o->api->srv->store, r);
}

static struct xc_store_req *store_req(struct op *o, enum xc_store_op op, const char *user)
{
	struct xc_store_req *r =
	    xc_store_req_new(op, cm_daemon_main_loop(o->api->srv->daemon), on_stored, o);

	if (r && user && xc_store_req_set(&r->user, user) != 0) {
		xc_store_req_free(r);
		return NULL;
	}
	return r;
}

static void stats_next_host(struct op *o)
{
	const struct cm_cfg_strlist *hosts = &o->api->srv->cfg->hosts;
	struct xc_store_req *r;

	if (o->host_idx >= hosts->n) {
		respond_json(o->req, 200, json_incref(o->result));
		op_done(o);
		return;
	}
	o->host = hosts->v[o->host_idx++];
	r = store_req(o, XC_STORE_ACCOUNT_LIST, NULL);
	if (!r || xc_store_req_set(&r->key, o->host) != 0 || submit(o, r) != 0) {
		xc_store_req_free(r);
		op_fail(o, 503, "the store is not available");
	}
}

/* One of an OP_ARCHIVE's holds goes (a message answered, or the submission over); the last
 * answers the request. */
static void archive_settle(struct op *o)
{
	if (--o->pending)
		return;
	CM_LOGI("api", "%zu message(s) archived for %s%s", o->archived, o->jid,
	        o->failed ? ", some could not be" : "");
	if (o->failed)
		respond_error(o->req, 500,
		              "%zu of %zu message(s) could not be written (the store failed); the "
		              "others were archived",
		              o->failed, o->batch.n);
	else
		respond_json(
		    o->req, 201,
		    json_pack("{ss sI}", "jid", o->jid, "archived", (json_int_t)o->archived));
	op_done(o);
}

/* The archive's answer about one message of an OP_ARCHIVE. */
static void on_archived(struct xc_store_req *r)
{
	struct op *o = r->arg;

	if (r->err)
		o->failed++;
	else
		o->archived++;
	xc_store_req_free(r);
	archive_settle(o);
}

/* The account exists: each message goes to its archive, in order, with an archive id of
 * this server's. */
static void archive_rows(struct op *o)
{
	struct xc_server *srv = o->api->srv;

	o->pending = 1; /* held until every message is submitted */
	for (size_t i = 0; i < o->batch.n; i++) {
		const struct xc_archive_row *row = &o->batch.rows[i];
		struct xc_store_req *r;
		char id[17];

		xc_store_archive_id(srv->store, id);
		r = xc_store_req_archive(cm_daemon_main_loop(srv->daemon), on_archived, o->jid, id,
		                         row->with, row->stanza, row->len);
		if (r) {
			r->arg = o;
			r->stamp_ms = row->stamp_ms;
		}
		if (!r || xc_store_submit(srv->store, r) != 0) {
			xc_store_req_free(r);
			o->failed++;
			continue;
		}
		o->pending++;
	}
	archive_settle(o);
}

static void on_stored(struct xc_store_req *r)
{
	struct op *o = r->arg;
	json_t *list;

	switch (o->kind) {
	case OP_REGISTER:
		if (r->err == -EEXIST)
			op_fail(o, 409, "the account exists already");
		else if (r->err)
			op_fail(o, 500, "the store failed");
		else {
			CM_LOGI("api", "account %s registered", o->jid);
			respond_json(o->req, 201, json_pack("{ss}", "jid", o->jid));
			op_done(o);
		}
		break;
	case OP_IMPORT:
		if (r->err == -EEXIST)
			op_fail(o, 409, "the account exists already: it was left as it is");
		else if (r->err)
			op_fail(o, 500, "the store failed");
		else {
			CM_LOGI(
			    "api",
			    "account %s imported: %lld contact(s), %lld request(s), %lld blocked, "
			    "%lld offline message(s), %lld PEP item(s)",
			    o->jid,
			    (long long)json_integer_value(json_object_get(o->result, "roster")),
			    (long long)json_integer_value(json_object_get(o->result, "requests")),
			    (long long)json_integer_value(json_object_get(o->result, "blocklist")),
			    (long long)json_integer_value(json_object_get(o->result, "offline")),
			    (long long)json_integer_value(json_object_get(o->result, "pep_items")));
			respond_json(o->req, 201, json_incref(o->result));
			op_done(o);
		}
		break;
	case OP_EXPORT: {
		char *doc = NULL;
		size_t dropped = 0;

		if (r->err == -ENOENT)
			op_fail(o, 404, "no such account");
		else if (r->err)
			op_fail(o, 500, "the store failed");
		else if (xc_import_doc(r, &doc, &dropped) != 0)
			op_fail(o, 500, "out of memory");
		else {
			CM_LOGI("api", "account %s exported%s", o->jid,
			        dropped ? " (pre-approvals without a roster item left out)" : "");
			cm_http_respond(o->req, 200, "application/json", doc, strlen(doc));
			cm_crypto_wipe(doc, strlen(doc));
			free(doc);
			op_done(o);
		}
		break;
	}
	case OP_FAST_REVOKE:
		if (r->err) {
			op_fail(o, 500, "the store failed");
			break;
		}
		cm_metrics_add(o->api->srv->m.fast_revoked, r->count);
		CM_LOGI("api", "%" PRIu64 " FAST tokens of %s%s%s revoked", r->count, o->jid,
		        r->key ? ", client " : "", r->key ? r->key : "");
		respond_json(o->req, 200,
		             json_pack("{ss sI}", "jid", o->jid, "revoked", (json_int_t)r->count));
		op_done(o);
		break;
	case OP_PASSWORD:
		if (r->err == -ENOENT)
			op_fail(o, 404, "no such account");
		else if (r->err)
			op_fail(o, 500, "the store failed");
		else {
			if (r->count)
				cm_metrics_add(o->api->srv->m.fast_revoked, r->count);
			CM_LOGI("api", "password of %s changed", o->jid);
			cm_http_respond(o->req, 204, NULL, NULL, 0);
			op_done(o);
		}
		break;
	case OP_UNREGISTER:
		if (r->err == -ENOENT)
			op_fail(o, 404, "no such account");
		else if (r->err)
			op_fail(o, 500, "the store failed");
		else {
			CM_LOGI("api", "account %s deleted", o->jid);
			if (tour_start(o, o->jid, "not-authorized", "the account was deleted") !=
			    0) {
				cm_http_respond(o->req, 204, NULL, NULL, 0);
				op_done(o);
			}
		}
		break;
	case OP_LIST:
		if (r->err) {
			op_fail(o, 500, "the store failed");
			break;
		}
		list = json_array();
		for (size_t i = 0; list && i < r->njids; i++)
			json_array_append_new(list, json_string(r->jids[i]));
		respond_json(o->req, 200, json_pack("{ss so}", "host", o->host, "accounts", list));
		op_done(o);
		break;
	case OP_ARCHIVE_READ: {
		json_t *msgs = json_array(), *page = NULL;

		for (size_t i = 0; msgs && i < r->narch; i++)
			if (json_array_append_new(msgs, json_pack("{ss sI ss}", "id", r->arch[i].id,
			                                          "stamp_ms",
			                                          (json_int_t)r->arch[i].stamp_ms,
			                                          "stanza", r->arch[i].stanza)))
				msgs = (json_decref(msgs), NULL);
		if (r->err == -ENOENT)
			op_fail(o, 404, "no message of that id in the archive (after=)");
		else if (r->err)
			op_fail(o, 500, "the store failed");
		else if (!msgs || !(page = json_pack("{ss so sb}", "jid", o->jid, "messages", msgs,
		                                     "complete", r->complete)))
			op_fail(o, 500, "out of memory");
		else {
			msgs = NULL; /* the page's */
			respond_json(o->req, 200, page);
			op_done(o);
		}
		json_decref(msgs);
		break;
	}
	case OP_ARCHIVE:
		if (r->err)
			op_fail(o, 500, "the store failed");
		else if (!r->found)
			op_fail(o, 404, "no such account");
		else
			archive_rows(o);
		break;
	case OP_STATS:
		if (r->err) {
			op_fail(o, 500, "the store failed");
			break;
		}
		json_object_set_new(json_object_get(o->result, "accounts"), o->host,
		                    json_integer((json_int_t)r->njids));
		json_object_set_new(json_object_get(o->result, "accounts_missing_keys"), o->host,
		                    json_integer((json_int_t)r->count));
		stats_next_host(o);
		break;
	default:
		break;
	}
	xc_store_req_free(r);
}

/* --- input --------------------------------------------------------------------------------------
 */

static bool authorized(struct xc_admin_api *a, struct cm_http_req *req)
{
	const char *h = cm_http_req_header(req, "authorization");
	size_t n;

	if (!a->token) {
		respond_error(req, 403,
		              "the API is off: api_token is not set in the configuration");
		return false;
	}
	if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
		respond_error(req, 401, "Authorization: Bearer <api_token> is required");
		return false;
	}
	h += 7;
	n = strlen(h);
	if (n != a->token_len || !cm_crypto_equal(h, a->token, n)) {
		CM_LOGW("api", "a request with a wrong token was refused");
		respond_error(req, 401, "wrong token");
		return false;
	}
	return true;
}

/* The local account a JID names, normalised into *out ("user@host"). Answers the request and
 * returns false when it names none. */
static bool account_jid(struct xc_admin_api *a, struct cm_http_req *req, const char *in, size_t len,
                        char **out)
{
	char err[CM_ERR_MAX];
	struct xc_jid j;

	if (xc_jid_parse(&j, in, len, err, sizeof(err)) != 0) {
		respond_error(req, 400, "not a JID: %s", err);
		return false;
	}
	if (!j.llen || j.rlen) {
		xc_jid_free(&j);
		respond_error(req, 400, "an account is user@host, without a resource");
		return false;
	}
	if (!xc_local_host(a->srv, xc_jid_domain(&j), j.dlen)) {
		respond_error(req, 400, "%s is not one of the hosts served", xc_jid_domain(&j));
		xc_jid_free(&j);
		return false;
	}
	*out = strdup(j.s);
	xc_jid_free(&j);
	if (!*out) {
		respond_error(req, 500, "out of memory");
		return false;
	}
	return true;
}

/* The account a route names in the rest of its path (percent-encoded), for a route (named for
 * the answers) that takes method only: true with *jid (owned, normalised, on a host served),
 * or false once the request is answered. */
static bool path_account(struct xc_admin_api *a, struct cm_http_req *req, const char *rest,
                         const char *method, const char *route, char **jid)
{
	char *raw;
	long l;
	bool ok;

	if (strcmp(cm_http_req_method(req), method) != 0) {
		respond_error(req, 405, "%s/JID takes %s", route, method);
		return false;
	}
	if (!(raw = strdup(rest))) {
		respond_error(req, 500, "out of memory");
		return false;
	}
	if ((l = cm_http_unescape(raw, raw, NULL)) < 0) {
		free(raw);
		respond_error(req, 400, "the JID in the path is not correctly percent-encoded");
		return false;
	}
	ok = account_jid(a, req, raw, (size_t)l, jid);
	free(raw);
	return ok;
}

/* The password member of a JSON body into *out (freed by the caller), SASLprep'd and turned into
 * keys later. Answers the request and returns false when there is none that is usable. */
static bool body_password(struct cm_http_req *req, json_t *body, char **out)
{
	json_t *p = json_object_get(body, "password");
	const char *s = json_string_value(p);

	if (!s) {
		respond_error(req, 400, "\"password\" (a string) is required");
		return false;
	}
	if (!*s || json_string_length(p) > PASSWORD_MAX || strlen(s) != json_string_length(p)) {
		respond_error(req, 400, "the password must be 1 to %d bytes, without NUL",
		              PASSWORD_MAX);
		return false;
	}
	*out = strdup(s);
	if (!*out) {
		respond_error(req, 500, "out of memory");
		return false;
	}
	return true;
}

static json_t *body_json(struct cm_http_req *req)
{
	size_t len;
	const char *text = cm_http_req_body(req, &len);
	json_error_t e;
	json_t *j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &e);

	if (!j || !json_is_object(j)) {
		respond_error(req, 400, "the body must be a JSON object%s%s", j ? "" : ": ",
		              j ? "" : e.text);
		json_decref(j);
		return NULL;
	}
	return j;
}

/* --- routes -------------------------------------------------------------------------------------
 */

/* POST accounts {"jid","password"}; GET accounts?host= */
static void accounts_root(struct xc_admin_api *a, struct cm_http_req *req)
{
	const char *method = cm_http_req_method(req);
	struct xc_store_req *r;
	struct op *o;
	json_t *body;
	char *jid = NULL, *pw = NULL;
	const char *s;
	int rc = 0;

	if (strcmp(method, "GET") == 0) {
		const char *q = cm_http_req_query(req);
		const char *host = NULL;
		char name[256];
		size_t n = strcspn(q + (strncmp(q, "host=", 5) == 0 ? 5 : 0), "&");
		long l;

		if (strncmp(q, "host=", 5) == 0 && n < sizeof(name)) {
			memcpy(name, q + 5, n);
			name[n] = '\0';
			l = cm_http_unescape(name, name, NULL);
			host = l > 0 ? xc_local_host(a->srv, name, (size_t)l) : NULL;
		} else if (!*q && a->srv->cfg->hosts.n == 1)
			host = a->srv->cfg->hosts.v[0];
		if (!host) {
			respond_error(req, 400, "?host= must name one of the hosts served");
			return;
		}
		o = op_new(a, req, OP_LIST);
		r = o ? store_req(o, XC_STORE_ACCOUNT_LIST, NULL) : NULL;
		if (o)
			o->host = host;
		if (!r || xc_store_req_set(&r->key, host) != 0 || submit(o, r) != 0) {
			xc_store_req_free(r);
			if (o)
				op_fail(o, 503, "the store is not available");
			else
				respond_error(req, 500, "out of memory");
		}
		return;
	}
	body = body_json(req);
	if (!body)
		return;
	s = json_string_value(json_object_get(body, "jid"));
	if (!s) {
		json_decref(body);
		respond_error(req, 400, "\"jid\" (a string) is required");
		return;
	}
	if (!account_jid(a, req, s, strlen(s), &jid) || !body_password(req, body, &pw)) {
		json_decref(body);
		free(jid);
		return;
	}
	json_decref(body);
	o = op_new(a, req, OP_REGISTER);
	r = o ? store_req(o, XC_STORE_ACCOUNT_CREATE, jid) : NULL;
	if (!r ||
	    (rc = xc_scram_creds_make_all(
	         pw, strlen(pw), (uint32_t)a->srv->cfg->auth.scram_iterations, r->creds)) != 0 ||
	    submit(o, r) != 0) {
		xc_store_req_free(r);
		if (o) {
			o->jid = jid;
			op_fail(o, rc == -EINVAL ? 400 : 503,
			        rc == -EINVAL ? "the password has characters SASLprep prohibits"
			                      : "the store is not available");
		} else {
			free(jid);
			respond_error(req, 500, "out of memory");
		}
		cm_crypto_wipe(pw, strlen(pw));
		free(pw);
		return;
	}
	cm_crypto_wipe(pw, strlen(pw));
	free(pw);
	o->jid = jid;
}

/* accounts/JID (DELETE) and accounts/JID/password (PUT) */
static void account_one(struct xc_admin_api *a, struct cm_http_req *req, const char *rest)
{
	const char *method = cm_http_req_method(req);
	size_t n = strlen(rest);
	long l;
	bool pw_route = n > 9 && strcmp(rest + n - 9, "/password") == 0;
	char *raw = strndup(rest, pw_route ? n - 9 : n), *jid = NULL, *pw = NULL;
	struct xc_store_req *r = NULL;
	struct op *o;
	json_t *body = NULL;
	int rc = 0;

	if (!raw) {
		respond_error(req, 500, "out of memory");
		return;
	}
	if ((l = cm_http_unescape(raw, raw, NULL)) < 0) {
		free(raw);
		respond_error(req, 400, "the JID in the path is not correctly percent-encoded");
		return;
	}
	if ((pw_route && strcmp(method, "PUT") != 0) ||
	    (!pw_route && strcmp(method, "DELETE") != 0)) {
		free(raw);
		respond_error(req, 405, "%s/password takes PUT; an account takes DELETE",
		              "accounts/JID");
		return;
	}
	if (!account_jid(a, req, raw, (size_t)l, &jid)) {
		free(raw);
		return;
	}
	free(raw);
	if (pw_route && (!(body = body_json(req)) || !body_password(req, body, &pw))) {
		json_decref(body);
		free(jid);
		return;
	}
	json_decref(body);
	o = op_new(a, req, pw_route ? OP_PASSWORD : OP_UNREGISTER);
	if (o)
		o->jid = jid;
	r = o ? store_req(o, pw_route ? XC_STORE_ACCOUNT_SET_CREDS : XC_STORE_ACCOUNT_DELETE, jid)
	      : NULL;
	if (!r ||
	    (pw &&
	     (rc = xc_scram_creds_make_all(
	          pw, strlen(pw), (uint32_t)a->srv->cfg->auth.scram_iterations, r->creds)) != 0) ||
	    submit(o, r) != 0) {
		xc_store_req_free(r);
		if (o)
			op_fail(o, rc == -EINVAL ? 400 : 503,
			        rc == -EINVAL ? "the password has characters SASLprep prohibits"
			                      : "the store is not available");
		else {
			free(jid);
			respond_error(req, 500, "out of memory");
		}
	}
	if (pw) {
		cm_crypto_wipe(pw, strlen(pw));
		free(pw);
	}
}

/* POST import: an account brought over from another server, with its roster, requests, block
 * list, offline messages and PEP nodes (import.h), written all or nothing. */
static void import(struct xc_admin_api *a, struct cm_http_req *req)
{
	const struct xc_import_limits lim = {
	    .iter = (uint32_t)a->srv->cfg->auth.scram_iterations,
	    .max_offline = (size_t)a->srv->cfg->offline.max_per_user,
	    .max_stanza = (size_t)a->srv->cfg->c2s.max_stanza,
	    .max_nodes = (size_t)a->srv->cfg->pep.max_nodes,
	    .max_items = (size_t)a->srv->cfg->pep.max_items,
	    .max_payload = (size_t)a->srv->cfg->pep.max_payload,
	    .max_private = (size_t)a->srv->cfg->private_xml.max_namespaces,
	    .max_private_bytes = (size_t)a->srv->cfg->private_xml.max_bytes,
	};
	struct xc_import_summary sum;
	struct xc_store_req *r;
	char err[CM_ERR_MAX];
	const char *text, *at;
	struct op *o;
	json_t *hashes;
	size_t len;
	int rc;

	if (strcmp(cm_http_req_method(req), "POST") != 0) {
		respond_error(req, 405, "import takes POST");
		return;
	}
	o = op_new(a, req, OP_IMPORT);
	r = o ? store_req(o, XC_STORE_ACCOUNT_IMPORT, NULL) : NULL;
	if (!r) {
		if (o)
			op_fail(o, 500, "out of memory");
		else
			respond_error(req, 500, "out of memory");
		return;
	}
	text = cm_http_req_body(req, &len);
	rc = xc_import_parse(text, len, &lim, r, &sum, err, sizeof(err));
	at = r->user ? strchr(r->user, '@') : NULL;
	if (!rc && (!at || !xc_local_host(a->srv, at + 1, strlen(at + 1)))) {
		snprintf(err, sizeof(err), "%s is not one of the hosts served", at ? at + 1 : "?");
		rc = -EINVAL;
	}
	if (!rc && !(o->jid = strdup(r->user)))
		rc = -ENOMEM;
	hashes = rc ? NULL : json_array();
	for (int h = 0; hashes && h < XC_SCRAM_NHASH; h++)
		if (sum.hashes & (1u << h))
			json_array_append_new(
			    hashes, json_string(xc_scram_mech_name((enum xc_scram_hash)h)));
	if (!rc &&
	    !(o->result = json_pack(
	          "{ss so sI sI sI sI sI sI sb sI}", "jid", r->user, "scram", hashes, "roster",
	          (json_int_t)sum.roster, "requests", (json_int_t)sum.requests, "blocklist",
	          (json_int_t)sum.blocked, "offline", (json_int_t)sum.offline, "pep_nodes",
	          (json_int_t)sum.pep_nodes, "pep_items", (json_int_t)sum.pep_items, "vcard",
	          sum.vcard, "private", (json_int_t)sum.private_ns)))
		rc = -ENOMEM;
	if (!rc && submit(o, r) != 0)
		rc = -ESHUTDOWN;
	if (rc) {
		xc_store_req_free(r);
		op_fail(o,
		        rc == -EINVAL   ? 400
		        : rc == -ENOMEM ? 500
		                        : 503,
		        rc == -EINVAL   ? err
		        : rc == -ENOMEM ? "out of memory"
		                        : "the store is not available");
	}
}

/* The query's agent=ID into out ("" when absent, percent-decoded). False when it is there but
 * not a user-agent id (1 to 128 printable ASCII characters without spaces). */
static bool agent_param(const char *q, char *out, size_t cap)
{
	static const char key[] = "agent=";
	const char *v = q ? strstr(q, key) : NULL;
	size_t n;
	long l;

	out[0] = '\0';
	if (!v || (v != q && v[-1] != '&'))
		return true;
	v += sizeof(key) - 1;
	n = strcspn(v, "&");
	if (n == 0 || n >= cap)
		return false;
	memcpy(out, v, n);
	out[n] = '\0';
	l = cm_http_unescape(out, out, NULL);
	if (l <= 0 || l > 128)
		return false;
	for (long i = 0; i < l; i++)
		if ((unsigned char)out[i] < 0x21 || (unsigned char)out[i] > 0x7e)
			return false;
	return true;
}

/* DELETE fast-tokens/JID[?agent=ID]: the FAST tokens (XEP-0484) of an account, or of one of
 * its clients, are revoked: the next login of that client needs the password. */
static void fast_tokens(struct xc_admin_api *a, struct cm_http_req *req, const char *rest)
{
	char agent[3 * 128 + 1], *jid = NULL;
	struct xc_store_req *r = NULL;
	struct op *o;

	if (!path_account(a, req, rest, "DELETE", "fast-tokens", &jid))
		return;
	if (!agent_param(cm_http_req_query(req), agent, sizeof(agent))) {
		free(jid);
		respond_error(req, 400,
		              "agent must be a user-agent id: 1 to 128 printable ASCII "
		              "characters without spaces, percent-encoded");
		return;
	}
	o = op_new(a, req, OP_FAST_REVOKE);
	if (o)
		o->jid = jid;
	r = o ? store_req(o, XC_STORE_FAST_REVOKE, jid) : NULL;
	if (!r || (agent[0] && xc_store_req_set(&r->key, agent) != 0) || submit(o, r) != 0) {
		xc_store_req_free(r);
		if (o)
			op_fail(o, 503, "the store is not available");
		else {
			free(jid);
			respond_error(req, 500, "out of memory");
		}
	}
}

/* The query's see_other_host=HOST[:PORT] into out ("" when absent). False when it is there but
 * not a host name or address with an optional port. */
static bool redirect_target(const char *q, char *out, size_t cap)
{
	static const char key[] = "see_other_host=";
	const char *v = strstr(q, key);
	size_t n;
	long l;

	out[0] = '\0';
	if (!v)
		return true;
	if (v != q && v[-1] != '&')
		return true;
	v += sizeof(key) - 1;
	n = strcspn(v, "&");
	if (n == 0 || n >= cap || n > 255)
		return false;
	memcpy(out, v, n);
	out[n] = '\0';
	l = cm_http_unescape(out, out, NULL);
	if (l <= 0)
		return false;
	for (long i = 0; i < l; i++)
		if (!isalnum((unsigned char)out[i]) && !strchr(".-:[]", out[i]))
			return false;
	return true;
}

/* GET sessions; DELETE sessions/JID (bare: every session of the account) */
static void sessions(struct xc_admin_api *a, struct cm_http_req *req, const char *rest)
{
	const char *method = cm_http_req_method(req);
	char *raw = NULL;
	char err[CM_ERR_MAX];
	struct xc_jid j = {0};
	struct op *o;
	char target[256];
	long len;

	if (!*rest) {
		if (strcmp(method, "GET") != 0) {
			respond_error(req, 405, "sessions takes GET");
			return;
		}
		o = op_new(a, req, OP_SESSIONS);
		if (!o || tour_start(o, NULL, NULL, NULL) != 0) {
			if (o)
				op_fail(o, 500, "out of memory");
			else
				respond_error(req, 500, "out of memory");
		}
		return;
	}
	if (strcmp(method, "DELETE") != 0) {
		respond_error(req, 405, "sessions/JID takes DELETE");
		return;
	}
	raw = strdup(rest + 1);
	if (!raw || (len = cm_http_unescape(raw, raw, NULL)) < 0) {
		free(raw);
		respond_error(req, 400, "the JID in the path is not correctly percent-encoded");
		return;
	}
	if (xc_jid_parse(&j, raw, (size_t)len, err, sizeof(err)) != 0 || !j.llen ||
	    !xc_local_host(a->srv, xc_jid_domain(&j), j.dlen)) {
		free(raw);
		xc_jid_free(&j);
		respond_error(req, 400, "not a JID of an account here");
		return;
	}
	free(raw);
	if (!redirect_target(cm_http_req_query(req), target, sizeof(target))) {
		xc_jid_free(&j);
		respond_error(req, 400,
		              "see_other_host must be host or host:port (letters, digits, "
		              "'.', '-', ':', brackets; at most 255 bytes)");
		return;
	}
	o = op_new(a, req, OP_KICK);
	if (o)
		o->jid = strdup(j.s);
	if (!o || !o->jid ||
	    tour_start(o, j.s, target[0] ? "see-other-host" : "policy-violation",
	               target[0] ? target : "the administrator closed this session") != 0) {
		if (o)
			op_fail(o, 500, "out of memory");
		else
			respond_error(req, 500, "out of memory");
	}
	xc_jid_free(&j);
}

/* GET export/JID: the account as the import route takes it (import.h), read at one moment. */
static void export_one(struct xc_admin_api *a, struct cm_http_req *req, const char *rest)
{
	struct xc_store_req *r = NULL;
	struct op *o;
	char *jid = NULL;

	if (!path_account(a, req, rest, "GET", "export", &jid))
		return;
	o = op_new(a, req, OP_EXPORT);
	if (o)
		o->jid = jid;
	r = o ? store_req(o, XC_STORE_ACCOUNT_EXPORT, jid) : NULL;
	if (!r || submit(o, r) != 0) {
		xc_store_req_free(r);
		if (o)
			op_fail(o, 503, "the store is not available");
		else {
			free(jid);
			respond_error(req, 500, "out of memory");
		}
	}
}

/* POST backup: a copy of the database (backup.h), answered once it is written. */
static void backup_done(void *arg, const struct xc_backup_result *res)
{
	struct op *o = arg;

	if (res->rc == 0)
		respond_json(o->req, 201,
		             json_pack("{ss sI sI}", "path", res->path, "bytes",
		                       (json_int_t)res->bytes, "ms", (json_int_t)res->ms));
	else
		respond_error(o->req, res->rc == -EEXIST ? 409 : 500, "%s", res->err);
	op_done(o);
}

static void backup(struct xc_admin_api *a, struct cm_http_req *req)
{
	const char *name = NULL;
	char err[CM_ERR_MAX];
	json_t *j = NULL;
	struct op *o;
	size_t len;
	int rc;

	if (strcmp(cm_http_req_method(req), "POST") != 0) {
		respond_error(req, 405, "backup takes POST");
		return;
	}
	(void)cm_http_req_body(req, &len);
	if (len) {
		if (!(j = body_json(req)))
			return;
		name = json_string_value(json_object_get(j, "name"));
		if (json_object_size(j) != (name ? 1u : 0u)) {
			respond_error(req, 400, "the body is {} or {\"name\": \"...\"}");
			json_decref(j);
			return;
		}
	}
	if (!(o = op_new(a, req, OP_BACKUP))) {
		respond_error(req, 500, "out of memory");
		json_decref(j);
		return;
	}
	rc = xc_backup_start(a->srv, name, backup_done, o, err, sizeof(err));
	json_decref(j);
	if (rc)
		op_fail(o,
		        rc == -EINVAL  ? 400
		        : rc == -EBUSY ? 409
		                       : 500,
		        rc == -ENOMEM ? "out of memory" : err);
}

static void stats(struct xc_admin_api *a, struct cm_http_req *req)
{
	struct op *o;

	if (strcmp(cm_http_req_method(req), "GET") != 0) {
		respond_error(req, 405, "stats takes GET");
		return;
	}
	o = op_new(a, req, OP_STATS);
	if (o)
		o->result =
		    json_pack("{so so sI}", "accounts", json_object(), "accounts_missing_keys",
		              json_object(), "shards", (json_int_t)a->srv->nshards);
	if (!o || !o->result || tour_start(o, NULL, NULL, NULL) != 0) {
		if (o)
			op_fail(o, 500, "out of memory");
		else
			respond_error(req, 500, "out of memory");
	}
}

/* GET limits: what a document sent to the import and archive routes is held to, answered at
 * once (xmppctl import-* cut archives to it) */
static void limits(struct xc_admin_api *a, struct cm_http_req *req)
{
	if (strcmp(cm_http_req_method(req), "GET") != 0) {
		respond_error(req, 405, "limits takes GET");
		return;
	}
	respond_json(req, 200,
	             json_pack("{sI}", "max_stanza", (json_int_t)a->srv->cfg->c2s.max_stanza));
}

#define ANNOUNCE_MAX 4096 /* bytes of an announcement's body, and of its subject */

/* A string member of the announcement: absent (NULL, when optional), or text XML can carry of
 * 1 to ANNOUNCE_MAX bytes. False when answered. */
static bool announce_text(struct cm_http_req *req, const json_t *body, const char *key,
                          bool required, char **out)
{
	const json_t *v = json_object_get(body, key);
	const char *s = json_string_value(v);
	size_t n = json_string_length(v);

	*out = NULL;
	if (!v && !required)
		return true;
	if (!s || n == 0 || n > ANNOUNCE_MAX || strlen(s) != n || !cm_xml_text_valid(s, n)) {
		respond_error(req, 400, "\"%s\" must be text of 1 to %d bytes that XML can carry",
		              key, ANNOUNCE_MAX);
		return false;
	}
	if (!(*out = strdup(s))) {
		respond_error(req, 500, "out of memory");
		return false;
	}
	return true;
}

/* POST announce {"body", "subject"?, "host"?}: a headline message to every session bound now */
static void announce(struct xc_admin_api *a, struct cm_http_req *req)
{
	static const char *const keys[] = {"body", "subject", "host", NULL};
	const char *host = NULL, *k;
	char *text = NULL, *subject = NULL;
	struct tour *t;
	struct op *o;
	json_t *body, *v;

	if (strcmp(cm_http_req_method(req), "POST") != 0) {
		respond_error(req, 405, "announce takes POST");
		return;
	}
	if (!(body = body_json(req)))
		return;
	json_object_foreach(body, k, v)
	{
		bool known = false;

		for (size_t i = 0; keys[i]; i++)
			known = known || strcmp(k, keys[i]) == 0;
		if (!known) {
			respond_error(req, 400, "unknown member \"%s\" (body, subject, host)", k);
			json_decref(body);
			return;
		}
	}
	if ((v = json_object_get(body, "host")) != NULL) {
		const char *h = json_string_value(v);

		host = h ? xc_local_host(a->srv, h, strlen(h)) : NULL;
		if (!host) {
			respond_error(req, 400, "\"host\" must be one of the hosts served");
			json_decref(body);
			return;
		}
	}
	if (!announce_text(req, body, "body", true, &text) ||
	    !announce_text(req, body, "subject", false, &subject)) {
		free(text);
		json_decref(body);
		return;
	}
	json_decref(body);
	o = op_new(a, req, OP_ANNOUNCE);
	t = o ? calloc(1, sizeof(*t)) : NULL;
	if (!t) {
		free(text);
		free(subject);
		if (o)
			op_fail(o, 500, "out of memory");
		else
			respond_error(req, 500, "out of memory");
		return;
	}
	t->o = o;
	t->text = text;
	t->subject = subject;
	t->host = host;
	tour_post(t);
}

#define ARCHIVE_PAGE 1000 /* messages of one GET archive/JID */

/* GET archive/JID[?after=ID]: a page of the account's archive, oldest first (for
 * xmppctl export-xep227) */
static void archive_read(struct xc_admin_api *a, struct cm_http_req *req, const char *rest)
{
	const char *q = cm_http_req_query(req);
	struct xc_store_req *r;
	char *jid = NULL, after[65] = "";
	struct op *o;
	size_t n;

	if (strncmp(q, "after=", 6) == 0) {
		n = strcspn(q + 6, "&");
		if (n == 0 || n >= sizeof(after) ||
		    strspn(q + 6, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                  "abcdefghijklmnopqrstuvwxyz0123456789-_") < n) {
			respond_error(req, 400, "?after= takes the id of an archived message");
			return;
		}
		memcpy(after, q + 6, n);
	} else if (*q) {
		respond_error(req, 400, "archive/JID takes ?after=ID only");
		return;
	}
	if (!path_account(a, req, rest, "GET", "archive", &jid))
		return;
	o = op_new(a, req, OP_ARCHIVE_READ);
	if (!o) {
		free(jid);
		respond_error(req, 500, "out of memory");
		return;
	}
	o->jid = jid;
	r = store_req(o, XC_STORE_ARCHIVE_QUERY, jid);
	if (r && !(r->query = calloc(1, sizeof(*r->query))))
		r = (xc_store_req_free(r), NULL);
	if (r) {
		r->query->start_ms = INT64_MIN;
		r->query->end_ms = INT64_MAX;
		r->query->max = ARCHIVE_PAGE;
		if (*after && !(r->query->rsm_after = strdup(after)))
			r = (xc_store_req_free(r), NULL);
	}
	if (!r)
		op_fail(o, 500, "out of memory");
	else if (submit(o, r) != 0) {
		xc_store_req_free(r);
		op_fail(o, 503, "the store is not available");
	}
}

/* POST archive {"jid", "messages"}: an account's archived messages from another server */
static void archive(struct xc_admin_api *a, struct cm_http_req *req)
{
	struct xc_store_req *r;
	char err[CM_ERR_MAX];
	const char *text;
	struct op *o;
	size_t len;
	int rc;

	if (strcmp(cm_http_req_method(req), "POST") != 0) {
		respond_error(req, 405, "archive takes POST");
		return;
	}
	if (!xc_mam_enabled(a->srv->mam)) {
		respond_error(req, 409, "the archive is off (archive.enabled)");
		return;
	}
	if (!(o = op_new(a, req, OP_ARCHIVE))) {
		respond_error(req, 500, "out of memory");
		return;
	}
	text = cm_http_req_body(req, &len);
	rc = xc_archive_import_parse(text, len, a->srv, (size_t)a->srv->cfg->c2s.max_stanza,
	                             &o->batch, err, sizeof(err));
	if (rc) {
		op_fail(o, rc == -EINVAL ? 400 : 500, rc == -EINVAL ? err : "out of memory");
		return;
	}
	/* the messages go once the account is known to exist */
	r = (o->jid = strdup(o->batch.user)) ? store_req(o, XC_STORE_ACCOUNT_GET, o->jid) : NULL;
	if (!r)
		op_fail(o, 500, "out of memory");
	else if (submit(o, r) != 0) {
		xc_store_req_free(r);
		op_fail(o, 503, "the store is not available");
	}
}

/* --- uploaded files (XEP-0363) -------------------------------------------------------------- */

static void on_upload_removed(void *arg, int err)
{
	struct op *o = arg;

	if (!err) {
		cm_http_respond(o->req, 204, NULL, NULL, 0);
		op_done(o);
	} else {
		op_fail(o, err == -ENOENT ? 404 : 500,
		        err == -ENOENT ? "no such file" : "the file could not be removed");
	}
}

/* DELETE uploads/SLOT: a file taken down (abuse, a user's request), at once. */
static void upload_delete(struct xc_admin_api *a, struct cm_http_req *req, const char *slot)
{
	struct op *o;
	int rc;

	if (strcmp(cm_http_req_method(req), "DELETE") != 0) {
		respond_error(req, 405, "uploads/SLOT takes DELETE");
		return;
	}
	if (!a->srv->upload) {
		respond_error(req, 409, "HTTP File Upload is off (upload.enabled)");
		return;
	}
	if (!xc_upload_slot_ok(slot)) {
		respond_error(req, 400, "\"%.64s\" is not a slot id (24 base64url characters)",
		              slot);
		return;
	}
	if (!(o = op_new(a, req, OP_UPLOAD_DELETE))) {
		respond_error(req, 500, "out of memory");
		return;
	}
	rc = xc_upload_remove(a->srv->upload, slot, on_upload_removed, o);
	if (rc)
		op_fail(o, 500, "out of memory");
}

static int on_request(void *arg, struct cm_http_req *req)
{
	struct xc_admin_api *a = arg;
	const char *rest = cm_http_req_rest(req);

	if (!authorized(a, req))
		return 0;
	if (a->srv->stopping)
		respond_error(req, 503, "the server is stopping");
	else if (strcmp(rest, "accounts") == 0)
		accounts_root(a, req);
	else if (strncmp(rest, "accounts/", 9) == 0 && rest[9])
		account_one(a, req, rest + 9);
	else if (strcmp(rest, "sessions") == 0 || strncmp(rest, "sessions/", 9) == 0)
		sessions(a, req, rest + 8);
	else if (strcmp(rest, "import") == 0)
		import(a, req);
	else if (strcmp(rest, "stats") == 0)
		stats(a, req);
	else if (strcmp(rest, "limits") == 0)
		limits(a, req);
	else if (strcmp(rest, "backup") == 0)
		backup(a, req);
	else if (strcmp(rest, "announce") == 0)
		announce(a, req);
	else if (strcmp(rest, "archive") == 0)
		archive(a, req);
	else if (strncmp(rest, "archive/", 8) == 0 && rest[8])
		archive_read(a, req, rest + 8);
	else if (strncmp(rest, "export/", 7) == 0 && rest[7])
		export_one(a, req, rest + 7);
	else if (strncmp(rest, "uploads/", 8) == 0 && rest[8])
		upload_delete(a, req, rest + 8);
	else if (strncmp(rest, "fast-tokens/", 12) == 0 && rest[12])
		fast_tokens(a, req, rest + 12);
	else if (strcmp(rest, "openapi.json") == 0)
		cm_http_respond(req, 200, "application/json", xc_admin_api_openapi,
		                strlen(xc_admin_api_openapi));
	else
		respond_error(req, 404, "no such route: see xmppctl(8) or docs/xmpp-core-api.json");
	return 0;
}

/* --- life ---------------------------------------------------------------------------------------
 */

int xc_admin_api_set_token(struct xc_admin_api *a, const unsigned char *token, size_t len)
{
	unsigned char *copy = NULL;

	if (token && len) {
		copy = malloc(len);
		if (!copy)
			return -ENOMEM;
		memcpy(copy, token, len);
	}
	if (a->token) {
		cm_crypto_wipe(a->token, a->token_len);
		free(a->token);
	}
	a->token = copy;
	a->token_len = copy ? len : 0;
	return 0;
}

int xc_admin_api_alloc(struct xc_admin_api **out, struct cm_http_server *http,
                       struct xc_server *srv, const unsigned char *token, size_t len)
{
	struct xc_admin_api *a = calloc(1, sizeof(*a));
	int r;

	*out = a;
	if (!a)
		return -ENOMEM;
	a->srv = srv;
	r = xc_admin_api_set_token(a, token, len);
	if (r)
		return r;
	r = cm_http_body_limit(http, API_PREFIX "import", XC_ADMIN_MAX_BODY);
	r = r ? r : cm_http_body_limit(http, API_PREFIX "archive", XC_ADMIN_MAX_BODY);
	return r ? r
	         : cm_http_route(http, API_PREFIX, CM_HTTP_PREFIX, "GET, POST, PUT, DELETE",
	                         on_request, a);
}

void xc_admin_api_close(struct xc_admin_api *a, void (*done)(void *arg), void *arg)
{
	if (!a || a->inflight == 0) {
		done(arg);
		return;
	}
	a->closed = done;
	a->closed_arg = arg;
}

void xc_admin_api_free(struct xc_admin_api *a)
{
	if (!a)
		return;
	xc_admin_api_set_token(a, NULL, 0);
	free(a);
}
