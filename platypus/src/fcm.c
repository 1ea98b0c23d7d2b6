/* fcm.c - the FCM HTTP v1 client: libcurl multi on the loop (cm_curl: a uv_poll per socket, a
 * uv_timer for curl's timeouts), HTTP/2 multiplexing, the OAuth2 token fetched before the
 * sends that need it, one new token and one resend after a 401, fail-fast while the credentials
 * are refused (creds.c). The only file of platypus that includes libcurl. */
#include "fcm_int.h"
#include "creds.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "cm/buf.h"
#include "cm/curl.h"
#include "cm/err.h"
#include "cm/list.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "cm/metrics.h"
#include "retry.h"

#define RESP_MAX        65536
#define EXPIRE_SCAN_MAX 256
#define TICK_MS         250

enum kind { REQ_SEND, REQ_TOKEN };

struct req {
	struct cm_list link; /* in the queue or the in-flight list */
	struct pp_fcm *f;
	enum kind kind;
	CURL *easy;               /* owned while in flight */
	struct curl_slist *hdrs;  /* owned */
	struct cm_buf body, resp; /* owned */
	long long retry_after;
	bool oom; /* out of memory on its way (its answer, its socket): it cannot go on */
	pp_attempt_cb cb;
	void *arg;
	uint64_t deadline;
	uint64_t token_gen; /* the grant (account->grants) of the access token it went with */
	bool auth_retried;  /* sent again after a 401 already: never twice */
	bool check;         /* the notification that checks refused credentials */
	unsigned sent;      /* requests made for it */
};

struct fcm_metrics {
	struct cm_counter *grants, *grant_fail;
};

struct pp_fcm {
	struct cm_loop *loop;      /* borrowed */
	struct cm_loop_timer tick; /* expiry of queued sends */
	struct cm_curl *curl;      /* owned: libcurl multi on the loop */
	struct pp_fcm_config cfg;
	char *send_url;          /* owned */
	char *ca_file;           /* owned, may be NULL */
	struct cm_list queue;    /* sends waiting for a token or room */
	struct cm_list inflight; /* sends on the wire */
	unsigned ninflight;
	struct req *token_req; /* the token request on the wire, or NULL */
	unsigned token_failures;
	uint64_t token_retry_at;
	bool grant_for_401;    /* the grant under way replaces a token FCM refused */
	bool token_after_401;  /* the current access token replaced one FCM refused */
	struct pp_creds creds; /* refused credentials: fail fast, check with backoff */
	struct req *check_req; /* the check, waiting for its access token */
	bool closing, torn_down;
	void (*done)(void *arg);
	void *done_arg;
	struct fcm_metrics m;
};

static void pump(struct pp_fcm *f);
static void transfer_done(CURL *e, CURLcode cc, void *arg);

static uint64_t now_ms(const struct pp_fcm *f)
{
	return uv_now(f->loop->uv);
}

static struct req *req_first(const struct cm_list *l)
{
	struct cm_list *n = cm_list_first(l);

	return n ? cm_list_entry(n, struct req, link) : NULL;
}

/* r goes on the wire (after start() or send_start()): counted against max_in_flight. */
static void inflight_add(struct pp_fcm *f, struct req *r)
{
	cm_list_insert_tail(&f->inflight, &r->link);
	f->ninflight++;
}

static void inflight_remove(struct pp_fcm *f, struct req *r)
{
	cm_list_remove(&r->link);
	f->ninflight--;
}

static void req_free(struct req *r)
{
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	cm_buf_free(&r->body);
	cm_buf_free(&r->resp);
	free(r);
}

/* End a send: the callback may send again or close f. */
static void send_finish(struct req *r, const struct pp_result *res)
{
	pp_attempt_cb cb = r->cb;
	void *arg = r->arg;
	long long ra = r->retry_after;
	struct pp_result out = *res;

	out.attempts = r->sent;
	req_free(r);
	cb(arg, &out, ra);
}

/* End r as the credentials being refused say. */
static void send_refused(struct pp_fcm *f, struct req *r)
{
	struct pp_result res;

	pp_creds_fail_result(&f->creds, &res);
	send_finish(r, &res);
}

static void send_fail(struct req *r, enum pp_outcome o, enum pp_cause c, const char *why)
{
	struct pp_result res;

	memset(&res, 0, sizeof(res));
	pp_result_set(&res, o, c, 0, why);
	send_finish(r, &res);
}

/* --- transfers (on cm_curl) --------------------------------------------------------------- */

/* The client's handles are closed (after teardown()): the rest goes, then the owner hears. */
static void curl_drained(void *arg)
{
	struct pp_fcm *f = arg;
	void (*done)(void *) = f->done;
	void *darg = f->done_arg;

	cm_curl_free(f->curl);
	free(f->send_url);
	free(f->ca_file);
	free(f);
	curl_global_cleanup();
	if (done)
		done(darg);
}

static size_t write_cb(char *p, size_t size, size_t n, void *userp)
{
	struct req *r = userp;
	size_t len = n * size;

	/* Past the limit the rest is dropped: error bodies are small, the status says enough. An
	 * answer that cannot be kept ends the transfer (CURLE_WRITE_ERROR): a 200 without its
	 * body would lose the message name, an error without it its meaning. */
	if (r->resp.len + len <= RESP_MAX && cm_buf_append(&r->resp, p, len)) {
		r->oom = true;
		return 0;
	}
	return len;
}

static size_t header_cb(char *p, size_t size, size_t n, void *userp)
{
	struct req *r = userp;
	size_t len = n * size;

	if (len > 12 && !strncasecmp(p, "retry-after:", 12)) {
		size_t end = len;

		/* the line ends in CRLF; the parser skips the blanks around the value */
		while (end > 12 && (p[end - 1] == '\r' || p[end - 1] == '\n'))
			end--;
		r->retry_after = pp_retry_after_parse(p + 12, end - 12, time(NULL));
	}
	return len;
}

static int start(struct pp_fcm *f, struct req *r, const char *url)
{
	CURL *e = curl_easy_init();

	if (!e)
		return -ENOMEM;
	r->easy = e;
	r->retry_after = -1;
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body.data);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body.len);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)f->cfg.request_timeout_ms);
	curl_easy_setopt(e, CURLOPT_USERAGENT, "platypus/" SUITE_VERSION);
	if (f->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, f->ca_file);
	if (cm_curl_add(f->curl, e, transfer_done, r)) {
		curl_easy_cleanup(e);
		r->easy = NULL;
		return -ENOMEM;
	}
	return 0;
}

/* --- token -------------------------------------------------------------------------------- */

static void fail_queue(struct pp_fcm *f, enum pp_outcome o, enum pp_cause c, const char *why)
{
	struct req *r;

	while ((r = req_first(&f->queue))) {
		cm_list_remove(&r->link);
		send_fail(r, o, c, why);
		if (f->torn_down)
			return;
	}
}

static void token_failed(struct pp_fcm *f, int rc, const char *err);

static void token_start(struct pp_fcm *f)
{
	struct req *r;
	int rc;

	if (f->token_req || f->closing || now_ms(f) < f->token_retry_at)
		return;
	r = calloc(1, sizeof(*r));
	if (!r) {
		token_failed(f, -EAGAIN, "cannot request an access token: out of memory");
		return;
	}
	r->f = f;
	r->kind = REQ_TOKEN;
	cm_buf_init(&r->body, 0);
	cm_buf_init(&r->resp, 0);
	rc = pp_fcm__assertion_form(f->cfg.account, time(NULL), &r->body);
	if (!rc) {
		r->hdrs =
		    curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded");
		rc = r->hdrs ? start(f, r, f->cfg.account->token_uri) : -ENOMEM;
	}
	if (rc) {
		char err[CM_ERR_MAX];

		req_free(r);
		/* Our side failed (memory, signing): transient, tried again after the backoff. */
		token_failed(f,
		             cm_errf(err, sizeof(err), -EAGAIN,
		                     "cannot request an access token: %s", strerror(-rc)),
		             err);
		return;
	}
	f->token_req = r;
}

static void token_done(struct pp_fcm *f, struct req *r, CURLcode cc, long status)
{
	char err[CM_ERR_MAX] = "";
	int rc;

	f->token_req = NULL;
	if (cc != CURLE_OK)
		rc = cm_errf(err, sizeof(err), -EAGAIN, "token endpoint: %s",
		             curl_easy_strerror(cc));
	else
		rc = pp_fcm__account_grant(f->cfg.account, (int)status, r->resp.data, r->resp.len,
		                           time(NULL), err, sizeof(err));
	req_free(r);
	if (!rc) {
		f->token_failures = 0;
		f->token_after_401 = f->grant_for_401;
		f->grant_for_401 = false;
		cm_metrics_inc(f->m.grants);
		CM_LOGD("fcm", "%s: access token granted", f->cfg.name);
		return;
	}
	f->grant_for_401 = false;
	token_failed(f, rc, err);
}

/* A token request failed (rc from pp_fcm__account_grant(), -EAGAIN for our own failures): count
 * it and back off. When Google refused our credentials they are refused: what waits for a token
 * fails (the check at once, the queue on the next pump). */
static void token_failed(struct pp_fcm *f, int rc, const char *err)
{
	struct req *r = f->check_req;

	cm_metrics_inc(f->m.grant_fail);
	f->token_failures++;
	{
		uint64_t d = 1000;

		for (unsigned i = 1; i < f->token_failures && d < 60000; i++)
			d *= 2;
		f->token_retry_at = now_ms(f) + (d > 60000 ? 60000 : d);
	}
	if (rc != -EACCES && rc != -EBADMSG) {
		CM_LOGW("fcm", "%s: %s", f->cfg.name, err);
		return;
	}
	pp_creds_refused(&f->creds, err, f->creds.checking);
	if (r) {
		f->check_req = NULL;
		send_refused(f, r);
	}
}

/* --- sends -------------------------------------------------------------------------------- */

/* FCM refused the access token r went with (401 UNAUTHENTICATED). The first refusal of the
 * current token drops it, so that one new grant serves every send waiting for it, and r goes
 * once more with the new token; a refusal of a token granted right after such a refusal (or of
 * the check) means the credentials themselves are refused. true: r is queued again. */
static bool unauthenticated(struct pp_fcm *f, struct req *r)
{
	struct pp_fcm_account *a = f->cfg.account;
	bool current = r->token_gen == a->grants;

	if (r->check || (current && f->token_after_401)) {
		pp_creds_refused(&f->creds, "401 UNAUTHENTICATED for a newly granted access token",
		                 r->check);
		return false;
	}
	if (r->auth_retried || f->creds.refused)
		return false;
	if (current && a->access_token) {
		pp_fcm__account_forget(a);
		f->grant_for_401 = true;
	}
	r->auth_retried = true;
	curl_easy_cleanup(r->easy);
	r->easy = NULL;
	cm_buf_reset(&r->resp);
	cm_list_insert_head(&f->queue, &r->link);
	return true;
}

static void send_done(struct pp_fcm *f, struct req *r, CURLcode cc, long status)
{
	struct pp_result res;

	memset(&res, 0, sizeof(res));
	inflight_remove(f, r);
	if (cc != CURLE_OK && r->oom) {
		pp_result_set(&res, PP_OUT_FAILED, PP_CAUSE_INTERNAL, 0, "out of memory");
	} else if (cc != CURLE_OK) {
		enum pp_cause c = PP_CAUSE_CONN_LOST;

		if (cc == CURLE_COULDNT_CONNECT || cc == CURLE_COULDNT_RESOLVE_HOST ||
		    cc == CURLE_SSL_CONNECT_ERROR || cc == CURLE_PEER_FAILED_VERIFICATION)
			c = PP_CAUSE_CONNECT;
		else if (cc == CURLE_OPERATION_TIMEDOUT)
			c = PP_CAUSE_TIMEOUT;
		pp_result_set(&res, PP_OUT_FAILED, c, 0, curl_easy_strerror(cc));
	} else {
		pp_fcm__result(&res, (int)status, r->resp.data, r->resp.len);
		if (res.cause == PP_CAUSE_AUTH && !strcmp(res.reason, "UNAUTHENTICATED")) {
			if (unauthenticated(f, r))
				return;
		} else if (status != 401 && status < 500 &&
		           r->token_gen == f->cfg.account->grants) {
			/* FCM took the access token, whatever it thought of the message. */
			f->token_after_401 = false;
			pp_creds_accepted(&f->creds);
		}
	}
	if (r->check)
		pp_creds_check_ended(&f->creds); /* no word on the credentials */
	send_finish(r, &res);
}

static void teardown(struct pp_fcm *f)
{
	struct req *r;

	if (f->torn_down)
		return;
	while ((r = req_first(&f->inflight))) {
		inflight_remove(f, r);
		cm_curl_cancel(f->curl, r->easy);
		send_fail(r, PP_OUT_FAILED, PP_CAUSE_SHUTDOWN, "shutting down");
	}
	if (f->token_req) {
		cm_curl_cancel(f->curl, f->token_req->easy);
		req_free(f->token_req);
		f->token_req = NULL;
	}
	f->torn_down = true;
	cm_loop_timer_stop(f->loop, &f->tick);
	/* The sockets' polls and curl's timer close; f goes once they have (curl_drained()). */
	cm_curl_stop(f->curl, curl_drained, f);
}

/* A transfer ended (on the loop, outside curl's callbacks). A socket that could not be watched
 * (CURLE_OUT_OF_MEMORY) ends a send as out of memory; a token request counts as failed and is
 * tried again after the backoff. Then the next sends go, or the close ends. */
static void transfer_done(CURL *e, CURLcode cc, void *arg)
{
	struct req *r = arg;
	struct pp_fcm *f = r->f;
	long status = 0;

	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (cc == CURLE_OUT_OF_MEMORY)
		r->oom = true;
	if (r->kind == REQ_TOKEN)
		token_done(f, r, cc, status);
	else
		send_done(f, r, cc, status);
	if (f->torn_down)
		return;
	if (f->closing && !f->ninflight && cm_list_empty(&f->queue) && !f->check_req)
		teardown(f);
	else
		pump(f);
}

static int send_start(struct pp_fcm *f, struct req *r, const char *token)
{
	char auth[2200];

	if (strlen(token) > 2048)
		return -EINVAL;
	r->token_gen = f->cfg.account->grants;
	r->sent++;
	snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	curl_slist_free_all(r->hdrs);
	r->hdrs = curl_slist_append(NULL, auth);
	if (r->hdrs)
		r->hdrs =
		    curl_slist_append(r->hdrs, "Content-Type: application/json; charset=UTF-8");
	if (!r->hdrs)
		return -ENOMEM;
	return start(f, r, f->send_url);
}

/* While our credentials are refused: what waits fails at once, except one notification let
 * through after the backoff as the check, with a new access token. */
static void refused_pump(struct pp_fcm *f)
{
	const char *token;
	struct req *r;

	if (!f->check_req && !cm_list_empty(&f->queue) && pp_creds_check_due(&f->creds)) {
		r = req_first(&f->queue);
		cm_list_remove(&r->link);
		r->check = true;
		f->check_req = r;
		pp_fcm__account_forget(f->cfg.account);
		f->token_retry_at = 0;
	}
	while ((r = req_first(&f->queue))) {
		cm_list_remove(&r->link);
		send_refused(f, r);
		if (f->torn_down)
			return;
	}
	r = f->check_req;
	if (!r)
		return;
	token = pp_fcm__access_token(f->cfg.account, time(NULL));
	if (!token) {
		token_start(f);
		return;
	}
	f->check_req = NULL;
	if (send_start(f, r, token)) {
		pp_creds_check_ended(&f->creds);
		send_fail(r, PP_OUT_FAILED, PP_CAUSE_INTERNAL, "internal error");
		return;
	}
	inflight_add(f, r);
}

static void pump(struct pp_fcm *f)
{
	const char *token;
	struct req *r;
	int rc;

	if (f->torn_down)
		return;
	if (f->creds.refused) {
		refused_pump(f);
		return;
	}
	if (cm_list_empty(&f->queue))
		return;
	token = pp_fcm__access_token(f->cfg.account, time(NULL));
	if (!token) {
		token_start(f);
		return;
	}
	while (f->ninflight < f->cfg.max_in_flight && (r = req_first(&f->queue))) {
		cm_list_remove(&r->link);
		rc = send_start(f, r, token);
		if (rc) {
			send_fail(r, PP_OUT_FAILED, PP_CAUSE_INTERNAL, "internal error");
			if (f->torn_down)
				return;
			continue;
		}
		inflight_add(f, r);
	}
}

static void on_tick(struct cm_loop_timer *t)
{
	struct pp_fcm *f = cm_list_entry(t, struct pp_fcm, tick);
	uint64_t now = now_ms(f);
	struct cm_list *n = f->queue.next;
	unsigned scanned = 0;
	struct req *r;

	cm_loop_timer_start(f->loop, &f->tick, TICK_MS);
	while (n != &f->queue && scanned++ < EXPIRE_SCAN_MAX && !f->torn_down) {
		r = cm_list_entry(n, struct req, link);
		n = n->next;
		if (r->deadline <= now) {
			cm_list_remove(&r->link);
			send_fail(r, PP_OUT_FAILED,
			          f->token_failures ? PP_CAUSE_CONNECT : PP_CAUSE_TIMEOUT,
			          f->token_failures ? "no access token" : "no room in time");
			n = f->queue.next; /* the callback may have changed the queue */
		}
	}
	r = f->check_req;
	if (r && !f->torn_down && r->deadline <= now) {
		f->check_req = NULL;
		pp_creds_check_ended(&f->creds);
		send_fail(r, PP_OUT_FAILED, PP_CAUSE_CONNECT, "no access token");
	}
	if (!f->torn_down)
		pump(f);
}

/* The client's metrics. 0 or the registry's error, named in err. */
static int fcm_metrics(struct pp_fcm *f, char *err, size_t errlen)
{
	const struct cm_metric_def defs[] = {
	    CM_METRIC_COUNTER_DEF(struct fcm_metrics, grants, "platypus_fcm_token_refreshes_total",
	                          "OAuth2 access tokens obtained", "app", f->cfg.name),
	    CM_METRIC_COUNTER_DEF(struct fcm_metrics, grant_fail,
	                          "platypus_fcm_token_failures_total",
	                          "OAuth2 token requests that failed", "app", f->cfg.name),
	};

	if (!f->cfg.metrics)
		return 0;
	return cm_metrics_register(f->cfg.metrics, &f->m, defs, sizeof(defs) / sizeof(defs[0]), err,
	                           errlen);
}

int pp_fcm_alloc(struct pp_fcm **out, struct cm_loop *l, const struct pp_fcm_config *cfg)
{
	struct pp_fcm *f;
	const char *base = cfg->base_url ? cfg->base_url : "https://fcm.googleapis.com";
	struct cm_buf url;
	char err[CM_ERR_MAX];
	int r;

	*out = NULL;
	if (!cfg->name || !cfg->account || !cfg->account->project_id)
		return -EINVAL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return -ENOMEM;
	f = calloc(1, sizeof(*f));
	if (!f) {
		curl_global_cleanup();
		return -ENOMEM;
	}
	f->loop = l;
	f->cfg = *cfg;
	cm_list_init(&f->queue);
	cm_list_init(&f->inflight);
	cm_loop_timer_init(&f->tick, on_tick);
	if (!f->cfg.request_timeout_ms)
		f->cfg.request_timeout_ms = 30000;
	if (!f->cfg.max_in_flight)
		f->cfg.max_in_flight = 1000;
	cm_buf_init(&url, 0);
	r = fcm_metrics(f, err, sizeof(err));
	if (r)
		CM_LOGE("fcm", "%s: %s", cfg->name, err);
	r = r ? r : pp_creds_init(&f->creds, l->uv, "fcm", cfg->name, cfg->metrics);
	r = r ? r
	      : cm_buf_printf(&url, "%s/v1/projects/%s/messages:send", base,
	                      cfg->account->project_id);
	if (r == 0) {
		f->send_url = cm_buf_steal(&url);
		f->ca_file = cfg->ca_file ? strdup(cfg->ca_file) : NULL;
		if (!f->send_url || (cfg->ca_file && !f->ca_file))
			r = -ENOMEM;
	}
	/* Last: once it is open, only its close (asynchronous) undoes it. */
	r = r ? r : cm_curl_alloc(&f->curl, l);
	if (r) {
		/* The series stay with the registry whatever happens: nothing to undo there. */
		cm_buf_free(&url);
		free(f->ca_file);
		free(f->send_url);
		free(f);
		curl_global_cleanup();
		return r;
	}
	curl_multi_setopt(cm_curl_multi(f->curl), CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
	curl_multi_setopt(cm_curl_multi(f->curl), CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
	cm_loop_timer_start(l, &f->tick, TICK_MS);
	*out = f;
	return 0;
}

int pp_fcm_send(void *fcm, const struct pp_notif *n, uint64_t deadline_ms, pp_attempt_cb cb,
                void *arg, struct pp_result *now)
{
	struct pp_fcm *f = fcm;
	struct req *r;

	memset(now, 0, sizeof(*now));
	if (f->closing) {
		pp_result_set(now, PP_OUT_BUSY, PP_CAUSE_SHUTDOWN, 0, "shutting down");
		return -ESHUTDOWN;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		pp_result_set(now, PP_OUT_FAILED, PP_CAUSE_INTERNAL, 0, "out of memory");
		return -ENOMEM;
	}
	r->f = f;
	r->kind = REQ_SEND;
	r->cb = cb;
	r->arg = arg;
	r->deadline = deadline_ms;
	cm_buf_init(&r->body, 0);
	cm_buf_init(&r->resp, 0);
	if (pp_fcm__message(n, &r->body)) {
		req_free(r);
		pp_result_set(now, PP_OUT_FAILED, PP_CAUSE_INTERNAL, 0, "out of memory");
		return -ENOMEM;
	}
	cm_list_insert_tail(&f->queue, &r->link);
	if (f->creds.refused)
		/* It fails at once, but never from within this call: on the next tick, now. */
		cm_loop_timer_start(f->loop, &f->tick, 0);
	else
		pump(f);
	return 0;
}

unsigned pp_fcm_pending(const struct pp_fcm *f)
{
	const struct cm_list *n;
	unsigned queued = 0;

	/* For /health: a walk of at most dispatch.queue_max sends, no count kept on the way. */
	cm_list_foreach(n, &f->queue)
	{
		queued++;
	}
	return queued + f->ninflight + (f->check_req ? 1 : 0);
}

bool pp_fcm_credentials_ok(const struct pp_fcm *f)
{
	return !f->creds.refused;
}

void pp_fcm_credentials_changed(struct pp_fcm *f)
{
	struct req *r = f->check_req;

	pp_creds_reset(&f->creds);
	f->token_after_401 = f->grant_for_401 = false;
	f->token_failures = 0;
	f->token_retry_at = 0;
	if (r) {
		f->check_req = NULL;
		r->check = false;
		cm_list_insert_head(&f->queue, &r->link);
	}
	if (!f->closing)
		cm_loop_timer_start(f->loop, &f->tick, 0);
}

void pp_fcm_close(struct pp_fcm *f, bool graceful, void (*done)(void *arg), void *arg)
{
	if (f->closing) {
		/* Again, not graceful: cancel what is still in flight. */
		if (!graceful && !f->torn_down)
			teardown(f);
		return;
	}
	f->closing = true;
	f->done = done;
	f->done_arg = arg;
	if (f->check_req) {
		struct req *r = f->check_req;

		f->check_req = NULL;
		send_fail(r, PP_OUT_FAILED, PP_CAUSE_SHUTDOWN, "shutting down");
		if (f->torn_down)
			return;
	}
	fail_queue(f, PP_OUT_FAILED, PP_CAUSE_SHUTDOWN, "shutting down");
	if (!graceful || !f->ninflight)
		teardown(f);
}
