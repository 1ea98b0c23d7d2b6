/* upload.c - the upload services upload.HOST: discovery and slots (upload.h). Runs on the
 * shard that routes the request (the sender's); the quota is the store's. */
#include "upload.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "router.h"
#include "server.h"
#include "stanza.h"
#include "store.h"
#include "upload_int.h"
#include "xc.h"

#define NS_DISCO_INFO  "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define PREFIX         "upload."
#define PREFIX_LEN     (sizeof(PREFIX) - 1)

bool xc_upload_domain(const struct xc_server *srv, const char *domain, size_t len)
{
	return srv->cfg->upload.enabled && len > PREFIX_LEN &&
	       memcmp(domain, PREFIX, PREFIX_LEN) == 0 &&
	       xc_local_host(srv, domain + PREFIX_LEN, len - PREFIX_LEN) != NULL;
}

bool xc_upload_service(const struct xc_server *srv, const char *host, char *out, size_t size)
{
	int n;

	if (!srv->cfg->upload.enabled)
		return false;
	n = snprintf(out, size, PREFIX "%s", host);
	return n > 0 && (size_t)n < size;
}

/* Count in one of the service's counters (none while upload is off). */
#define COUNT(srv, field)                                                                          \
	do {                                                                                       \
		struct upload_metrics *m_ = xc_upload__metrics(srv);                               \
                                                                                                   \
		if (m_)                                                                            \
			cm_metrics_inc(m_->field);                                                 \
	} while (0)

/* An error to iq, with an upload-specific element (app, may be NULL; taken) in <error/>. */
static void refuse(struct xc_shard *sh, const struct cm_xml_node *iq, const char *etype,
                   const char *cond, const char *text, struct cm_xml_node *app)
{
	struct cm_xml_node *e = xc_stanza_error(iq, etype, cond, text, NULL);
	struct cm_xml_node *err = e ? cm_xml_child(e, "error", NULL) : NULL;

	if (err && app && cm_xml_node_add_child(err, app) == 0)
		app = NULL; /* the error's now (without it, the error still goes) */
	cm_xml_node_free(app);
	if (e)
		xc_route(sh, e);
}

/* disco#info of the service (XEP-0363 3): the identity, the feature, and the largest file in
 * the form XEP-0128 extends it with. */
static struct cm_xml_node *info(const struct xc_server *srv)
{
	struct cm_xml_node *q = NULL, *n, *x;
	char max[24];
	int r = cm_xml_node_new(&q, "query", NS_DISCO_INFO);

	snprintf(max, sizeof(max), "%" PRIu64, srv->cfg->upload.max_file_size);
	r = r ? r : cm_xml_node_new_child(&n, q, "identity", NULL);
	r = r ? r : cm_xml_node_set_attr(n, "category", "store");
	r = r ? r : cm_xml_node_set_attr(n, "type", "file");
	r = r ? r : cm_xml_node_set_attr(n, "name", "HTTP File Upload");
	r = r ? r : cm_xml_node_new_child(&n, q, "feature", NULL);
	r = r ? r : cm_xml_node_set_attr(n, "var", NS_DISCO_INFO);
	r = r ? r : cm_xml_node_new_child(&n, q, "feature", NULL);
	r = r ? r : cm_xml_node_set_attr(n, "var", XC_NS_UPLOAD);
	r = r ? r : cm_xml_node_new_child(&x, q, "x", CM_XML_NS_DATA);
	r = r ? r : cm_xml_node_set_attr(x, "type", "result");
	r = r ? r : cm_xml_form_add_field(x, "FORM_TYPE", "hidden", XC_NS_UPLOAD);
	r = r ? r : cm_xml_form_add_field(x, "max-file-size", NULL, max);
	if (r) {
		cm_xml_node_free(q);
		return NULL;
	}
	return q;
}

/* A slot request on its way through the store (the quota). */
struct slot_ctx {
	struct cm_xml_node *iq; /* owned */
	char *name, *type;      /* owned; type may be NULL */
	uint64_t size;
};

static void slot_free(struct slot_ctx *s)
{
	cm_xml_node_free(s->iq);
	free(s->name);
	free(s->type);
	free(s);
}

/* <retry stamp='...'/> (XEP-0363 5: when the oldest slot stops counting against the quota),
 * or NULL (none: ms is 0). */
static struct cm_xml_node *retry_at(int64_t ms)
{
	struct cm_xml_node *n = NULL;
	time_t t = (time_t)(ms / 1000);
	struct tm tm;
	char stamp[32];

	if (ms <= 0 || !gmtime_r(&t, &tm) ||
	    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0 ||
	    cm_xml_node_new(&n, "retry", XC_NS_UPLOAD) != 0)
		return NULL;
	if (cm_xml_node_set_attr(n, "stamp", stamp) != 0) {
		cm_xml_node_free(n);
		return NULL;
	}
	return n;
}

/* The answer: <slot><put url=.../><get url=.../></slot>. NULL without memory. */
static struct cm_xml_node *slot_of(const struct xc_server *srv, const struct slot_ctx *s,
                                   const char *slot)
{
	int64_t expiry = xc_wall_ms() / 1000 + (int64_t)(srv->cfg->upload.slot_ttl / 1000);
	struct cm_xml_node *res = NULL, *n;
	char sig[XC_UPLOAD_SIG_LEN + 1];
	struct cm_buf put, get;
	int r;

	cm_buf_init(&put, 0);
	cm_buf_init(&get, 0);
	r = xc_upload_sign(srv->upload_key, slot, s->name, s->size, s->type, expiry, sig);
	r = r ? r : xc_upload_url(&put, srv->upload_base, slot, s->name, expiry, sig);
	r = r ? r : xc_upload_url(&get, srv->upload_base, slot, s->name, 0, NULL);
	r = r ? r : cm_xml_node_new(&res, "slot", XC_NS_UPLOAD);
	r = r ? r : cm_xml_node_new_child(&n, res, "put", NULL);
	r = r ? r : cm_xml_node_set_attr(n, "url", put.data);
	r = r ? r : cm_xml_node_new_child(&n, res, "get", NULL);
	r = r ? r : cm_xml_node_set_attr(n, "url", get.data);
	cm_buf_free(&put);
	cm_buf_free(&get);
	if (r) {
		cm_xml_node_free(res);
		return NULL;
	}
	return res;
}

static void on_reserved(struct xc_store_req *r)
{
	struct slot_ctx *s = r->arg;
	struct xc_shard *sh = r->loop->data;
	const struct xc_server *srv = sh->srv;
	struct cm_xml_node *res;

	if (r->err == -EDQUOT) {
		COUNT(srv, slot_quota);
		CM_LOGI("upload", "%s: daily quota used (%" PRIu64 " bytes of slots in 24 h)",
		        r->user, r->count);
		refuse(sh, s->iq, "wait", "resource-constraint",
		       "the daily upload quota of this account is used up (upload.daily_quota)",
		       retry_at(r->stamp_ms));
	} else if (r->err) {
		COUNT(srv, slot_refused);
		CM_LOGW("upload", "%s: cannot keep a slot: %s", r->user, strerror(-r->err));
		refuse(sh, s->iq, "wait", "internal-server-error", NULL, NULL);
	} else if (!(res = slot_of(srv, s, r->key))) {
		COUNT(srv, slot_refused);
		refuse(sh, s->iq, "wait", "resource-constraint", NULL, NULL);
	} else {
		COUNT(srv, slot_ok);
		CM_LOGD("upload", "%s: slot %s for %" PRIu64 " bytes", r->user, r->key, s->size);
		xc_reply(sh, s->iq, res);
	}
	slot_free(s);
	xc_store_req_free(r);
}

/* Whether the files' file system keeps upload.min_free_space free with size more bytes in it
 * (a statvfs(), which asks the kernel only). A directory that cannot be asked is taken to have
 * room: the PUT will tell. */
static bool room_for(const struct xc_server *srv, uint64_t size)
{
	const char *dir = xc_upload__dir(srv);
	struct statvfs v;

	if (!dir || statvfs(dir, &v) != 0)
		return true;
	return (uint64_t)v.f_bavail * v.f_frsize >= size + srv->cfg->upload.min_free_space;
}

/* A slot request from sender (a local user's full JID). Takes iq. */
static void request(struct xc_shard *sh, const struct xc_jid *sender, struct cm_xml_node *iq,
                    const struct cm_xml_node *req)
{
	const struct xc_upload_config *cfg = &sh->srv->cfg->upload;
	const char *name = NULL, *type = NULL, *why = NULL;
	unsigned char rnd[18];
	struct cm_buf id;
	struct slot_ctx *s = NULL;
	struct xc_store_req *r = NULL;
	struct xc_jid bare = {0};
	uint64_t size = 0;
	int rc = xc_upload_request(req, cfg->max_file_size, &name, &size, &type, &why);

	cm_buf_init(&id, 0);
	if (rc == -EFBIG) {
		struct cm_xml_node *big = NULL, *m;
		char max[24];

		snprintf(max, sizeof(max), "%" PRIu64, cfg->max_file_size);
		COUNT(sh->srv, slot_too_large);
		if (cm_xml_node_new(&big, "file-too-large", XC_NS_UPLOAD) != 0 ||
		    cm_xml_node_new_child(&m, big, "max-file-size", NULL) != 0 ||
		    cm_xml_node_add_text(m, max, strlen(max)) != 0) {
			cm_xml_node_free(big);
			big = NULL;
		}
		refuse(sh, iq, "modify", "not-acceptable",
		       "the file is larger than this server takes", big);
		goto out;
	}
	if (rc) {
		COUNT(sh->srv, slot_bad);
		refuse(sh, iq, "modify", "bad-request", why, NULL);
		goto out;
	}
	if (!room_for(sh->srv, size)) {
		COUNT(sh->srv, slot_disk_full);
		refuse(sh, iq, "wait", "resource-constraint",
		       "the server has no room for more files now", NULL);
		goto out;
	}
	s = calloc(1, sizeof(*s));
	rc = s ? 0 : -ENOMEM;
	rc = rc ? rc : cm_crypto_random(rnd, sizeof(rnd));
	rc = rc ? rc : cm_crypto_b64_encode(&id, rnd, sizeof(rnd), CM_B64_URL);
	rc = rc ? rc : xc_jid_copy(&bare, sender, true);
	if (!rc && (!(s->name = strdup(name)) || (type && !(s->type = strdup(type)))))
		rc = -ENOMEM;
	if (!rc && !(r = xc_store_req_new(XC_STORE_UPLOAD_RESERVE, sh->loop, on_reserved, s)))
		rc = -ENOMEM;
	rc = rc ? rc : xc_store_req_set(&r->user, bare.s);
	rc = rc ? rc : xc_store_req_set(&r->key, id.data);
	if (!rc) {
		s->size = r->count = size;
		r->stamp_ms = xc_wall_ms();
		r->quota = cfg->daily_quota;
		s->iq = iq;
		rc = xc_store_submit(sh->srv->store, r);
		if (rc)
			s->iq = NULL;
	}
	if (rc) {
		if (r)
			r->arg = NULL;
		xc_store_req_free(r);
		COUNT(sh->srv, slot_refused);
		refuse(sh, iq, "wait", "resource-constraint", NULL, NULL);
		goto out;
	}
	iq = NULL; /* the slot's */
	s = NULL;
out:
	if (s)
		slot_free(s);
	xc_jid_free(&bare);
	cm_buf_free(&id);
	cm_xml_node_free(iq);
}

void xc_upload_stanza(struct xc_shard *sh, struct cm_xml_node *st, const struct xc_jid *to)
{
	const char *type = cm_xml_attr(st, "type");
	const struct cm_xml_node *q = cm_xml_child(st, NULL, NULL);
	struct xc_jid from = {0};

	if (xc_stanza_kind(st) != XC_IQ || !type || strcmp(type, "result") == 0 ||
	    strcmp(type, "error") == 0) {
		cm_xml_node_free(st); /* nothing here answers messages or presence */
		return;
	}
	if (to->llen || to->rlen || !q) {
		refuse(sh, st, "cancel", "service-unavailable", NULL, NULL);
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_DISCO_INFO) == 0 &&
	           !cm_xml_attr(q, "node")) {
		struct cm_xml_node *i = info(sh->srv);

		if (i)
			xc_reply(sh, st, i);
		else
			refuse(sh, st, "wait", "resource-constraint", NULL, NULL);
	} else if (strcmp(type, "get") == 0 && strcmp(q->ns, NS_DISCO_ITEMS) == 0) {
		struct cm_xml_node *i = NULL;

		if (cm_xml_node_new(&i, "query", NS_DISCO_ITEMS) == 0)
			xc_reply(sh, st, i);
	} else if (strcmp(q->ns, XC_NS_UPLOAD) == 0 && strcmp(q->name, "request") == 0) {
		/* slots are for this server's users (whose 'from' their session vouches for) */
		if (strcmp(type, "get") != 0) {
			refuse(sh, st, "modify", "bad-request", "a slot is asked with an IQ get",
			       NULL);
		} else if (xc_stanza_jid(st, "from", &from) != 0 || !from.llen ||
		           !xc_local_host(sh->srv, xc_jid_domain(&from), from.dlen)) {
			COUNT(sh->srv, slot_refused);
			refuse(sh, st, "auth", "forbidden", "slots are for this server's users",
			       NULL);
		} else {
			request(sh, &from, st, q); /* takes st */
			st = NULL;
		}
	} else {
		refuse(sh, st, "cancel", "service-unavailable", NULL, NULL);
	}
	xc_jid_free(&from);
	cm_xml_node_free(st);
}
