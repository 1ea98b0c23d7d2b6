/* store.c - the store's thread, its queue and group commits (store.h). */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/log.h"
#include "archive_id.h"
#include "cm/metrics.h"
#include "ticket.h"

#define DEF_BATCH   256
#define FAIL_LOG_MS 10000 /* a failed unanswered write is logged once per this at most */

struct xc_store {
	const struct xc_store_backend *be;
	void *db;    /* the backend's; touched by the thread only once started */
	char *where; /* owned: the database, for the backend's backup */
	unsigned batch_max;
	uv_thread_t thread;
	uv_mutex_t lock;
	uv_cond_t wake;
	struct cm_list queue; /* under lock */
	size_t depth;         /* under lock */
	bool stopping;        /* under lock */
	size_t answered;      /* under lock: queued requests with a done */
	atomic_size_t owed;   /* requests with a done submitted and not yet answered */
	int wait;             /* under lock: what the thread waits for (enum wait) */
	uint64_t linger_ns;   /* how long unanswered writes may wait for company */
	bool started;
	struct cm_log_limit fail_log; /* failed requests without done: one line per interval */
	struct cm_histogram *latency; /* borrowed */
	/* archive ids (archive_id.h): the next row number, and the database's key */
	_Atomic uint64_t arch_next;
	uint64_t arch_key[2];
};

/* What the thread waits for: whom a submit must wake. */
enum wait {
	W_BUSY,   /* nothing: it takes the queue when its batch is done */
	W_IDLE,   /* any request */
	W_LINGER, /* a request with a done, or a full batch (or its linger ends) */
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- requests --------------------------------------------------------------------------------- */

/* A cleared request for op (r's own fields only). */
static void req_init(struct xc_store_req *r, enum xc_store_op op, struct cm_loop *loop,
                     void (*done)(struct xc_store_req *r), void *arg)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->loop = loop;
	r->done = done;
	r->arg = arg;
	cm_list_init(&r->link);
}

struct xc_store_req *xc_store_req_new(enum xc_store_op op, struct cm_loop *loop,
                                      void (*done)(struct xc_store_req *r), void *arg)
{
	struct xc_store_req *r = malloc(sizeof(*r));

	if (r)
		req_init(r, op, loop, done, arg);
	return r;
}

/* Copy n bytes of s behind *at as a string; returns the copy. */
static char *pack(char **at, const char *s, size_t n)
{
	char *d = *at;

	memcpy(d, s, n);
	d[n] = '\0';
	*at = d + n + 1;
	return d;
}

struct xc_store_req *xc_store_req_archive(struct cm_loop *loop,
                                          void (*done)(struct xc_store_req *r), const char *owner,
                                          const char *id, const char *with, const char *stanza,
                                          size_t len)
{
	size_t lo = strlen(owner), li = strlen(id), lw = strlen(with);
	size_t size = sizeof(struct xc_store_req) + lo + li + lw + len + 4;
	struct xc_store_req *r = malloc(size);
	char *at;

	if (!r)
		return NULL;
	/* only the request is cleared: the strings are written over at once */
	req_init(r, XC_STORE_ARCHIVE_PUT, loop, done, NULL);
	r->packed = true;
	at = (char *)(r + 1);
	r->user = pack(&at, owner, lo);
	r->key = pack(&at, id, li);
	r->with = pack(&at, with, lw);
	r->stanza = pack(&at, stanza, len);
	r->stanza_len = len;
	return r;
}

static void item_free(struct xc_roster_item *it)
{
	free(it->contact);
	free(it->name);
	for (size_t i = 0; i < it->ngroups; i++)
		free(it->groups[i]);
	free(it->groups);
	memset(it, 0, sizeof(*it));
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void xc_archive_query_clear(struct xc_archive_query *q)
{
	if (!q)
		return;
	free(q->with);
	free(q->after_id);
	free(q->before_id);
	free(q->rsm_after);
	free(q->rsm_before);
	strv_free(q->ids, q->nids);
	memset(q, 0, sizeof(*q));
}

void xc_archive_prefs_clear(struct xc_archive_prefs *p)
{
	if (!p)
		return;
	strv_free(p->always, p->nalways);
	strv_free(p->never, p->nnever);
	memset(p, 0, sizeof(*p));
}

void xc_store_req_free(struct xc_store_req *r)
{
	if (!r)
		return;
	xc_ticket_put(NULL, r->ticket);
	if (!r->packed) {
		free(r->with);
		free(r->user);
		free(r->key);
		free(r->stanza);
	}
	xc_archive_query_clear(r->query);
	free(r->query);
	xc_archive_prefs_clear(&r->prefs);
	for (size_t i = 0; i < r->narch; i++) {
		free(r->arch[i].id);
		free(r->arch[i].stanza);
	}
	free(r->arch);
	item_free(&r->item);
	for (size_t i = 0; i < r->njids; i++)
		free(r->jids[i]);
	free(r->jids);
	for (size_t i = 0; i < r->nitems; i++)
		item_free(&r->items[i]);
	free(r->items);
	for (size_t i = 0; i < r->nmsgs; i++)
		free(r->msgs[i].stanza);
	free(r->msgs);
	xc_pep_req_free(r->pep);
	free(r->avatar);
	for (size_t i = 0; i < r->npush; i++) {
		free(r->push[i].jid);
		free(r->push[i].node);
		free(r->push[i].form);
	}
	free(r->push);
	for (size_t i = 0; i < r->npriv; i++) {
		free(r->priv[i].ns);
		free(r->priv[i].xml);
	}
	free(r->priv);
	if (r->fast) {
		cm_crypto_wipe(r->fast, sizeof(*r->fast));
		free(r->fast);
	}
	free(r);
}

int xc_store_req_set(char **field, const char *s)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		return -ENOMEM;
	free(*field);
	*field = d;
	return 0;
}

int xc_store_req_add_private(struct xc_store_req *r, const char *ns, const char *xml)
{
	struct xc_private_item *v = realloc(r->priv, (r->npriv + 1) * sizeof(*v));
	char *n, *x = NULL;

	if (!v)
		return -ENOMEM;
	r->priv = v;
	n = strdup(ns);
	if (!n || (xml && !(x = strdup(xml)))) {
		free(n);
		return -ENOMEM;
	}
	v[r->npriv].ns = n;
	v[r->npriv].xml = x;
	r->npriv++;
	return 0;
}

/* --- the thread ------------------------------------------------------------------------------ */

static void deliver(struct cm_loop *l, struct cm_msg *m)
{
	struct xc_store_req *r = cm_list_entry(m, struct xc_store_req, msg);

	struct xc_store *st = r->store;

	(void)l;
	if (r->latency)
		cm_metrics_observe(r->latency, (double)(now_ns() - r->queued_ns) / 1e9);
	r->done(r); /* which owns r from here */
	atomic_fetch_sub(&st->owed, 1);
}

/* A request nobody waits for ends here, on the store's thread. */
static void finish_unanswered(struct xc_store *st, struct xc_store_req *r)
{
	uint64_t held = 0;

	if (!r->err) {
		cm_metrics_inc(r->ok_total);
	} else {
		cm_metrics_inc(r->failed_total);
		if (cm_log_limit_pass(&st->fail_log, now_ns() / 1000000u, FAIL_LOG_MS, &held))
			CM_LOGW(
			    "store",
			    "a write (operation %d) for %s was not kept: %s (%llu more held back)",
			    (int)r->op, r->user ? r->user : "-", strerror(-r->err),
			    (unsigned long long)held);
	}
	if (r->latency)
		cm_metrics_observe(r->latency, (double)(now_ns() - r->queued_ns) / 1e9);
	xc_store_req_free(r);
}

static void hand_back(struct xc_store *st, struct xc_store_req *r)
{
	/* committed (or failed for good): the acknowledgement that waited may go */
	xc_ticket_put(NULL, r->ticket);
	r->ticket = NULL;
	if (!r->done) {
		finish_unanswered(st, r);
		return;
	}
	r->msg.fn = deliver;
	if (cm_loop_post(r->loop, &r->msg) != 0) {
		xc_store_req_free(r); /* its loop is gone: nobody to tell */
		atomic_fetch_sub(&st->owed, 1);
	}
}

/* Run one batch in one transaction. A failure of the database fails the whole batch. */
static void run_batch(struct xc_store *st, struct cm_list *batch)
{
	const struct xc_store_backend *be = st->be;
	struct cm_list *n;
	bool waited = false;
	int rc;

	cm_list_foreach(n, batch)
	{
		struct xc_store_req *r = cm_list_entry(n, struct xc_store_req, link);

		waited = waited || r->done || r->ticket;
	}
	rc = be->begin(st->db, waited);
	cm_list_foreach(n, batch)
	{
		struct xc_store_req *r = cm_list_entry(n, struct xc_store_req, link);

		if (rc)
			break;
		r->err = 0;
		rc = be->run(st->db, r);
	}
	if (!rc)
		rc = be->commit(st->db);
	if (rc) {
		be->rollback(st->db);
		CM_LOGE("store", "a transaction of %s failed (%s): its requests fail", be->name,
		        strerror(-rc));
		cm_list_foreach(n, batch)
		{
			cm_list_entry(n, struct xc_store_req, link)->err = -EIO;
		}
	}
	while ((n = cm_list_pop(batch)) != NULL)
		hand_back(st, cm_list_entry(n, struct xc_store_req, link));
}

/* The backend's own work; when it wants to be called again (0: after the next batch). */
static uint64_t maintain(struct xc_store *st)
{
	unsigned ms = st->be->maintain ? st->be->maintain(st->db) : 0;

	return ms ? now_ns() + (uint64_t)ms * 1000000u : 0;
}

/* Under lock, with requests queued: when none of them is waited for, give others time to join
 * them (at most linger_ns from now), so that one commit and its fsync serve many writes nobody
 * waits for. A request that is waited for, a full batch or the store's close ends it at once. */
static void linger(struct xc_store *st)
{
	uint64_t until = now_ns() + st->linger_ns, now;

	st->wait = W_LINGER;
	while (st->linger_ns && !st->stopping && st->answered == 0 && st->depth < st->batch_max &&
	       (now = now_ns()) < until) {
		if (uv_cond_timedwait(&st->wake, &st->lock, until - now) == UV_ETIMEDOUT)
			break;
	}
}

static void thread_main(void *arg)
{
	struct xc_store *st = arg;
	struct cm_list batch;
	uint64_t due = 0; /* when the backend's maintenance wants to run (0: after a batch) */

	/* what top -H, ps -L and perf show */
	(void)pthread_setname_np(pthread_self(), "store");
	cm_list_init(&batch);
	for (;;) {
		unsigned n = 0;
		struct cm_list *node;
		uint64_t now;

		uv_mutex_lock(&st->lock);
		while (cm_list_empty(&st->queue) && !st->stopping) {
			st->wait = W_IDLE;
			if (!due) {
				uv_cond_wait(&st->wake, &st->lock);
			} else if ((now = now_ns()) >= due ||
			           uv_cond_timedwait(&st->wake, &st->lock, due - now) ==
			               UV_ETIMEDOUT) {
				break;
			}
		}
		if (cm_list_empty(&st->queue) && !st->stopping) {
			/* idle, and the backend's time came */
			st->wait = W_BUSY;
			uv_mutex_unlock(&st->lock);
			due = maintain(st);
			continue;
		}
		linger(st);
		st->wait = W_BUSY;
		if (cm_list_empty(&st->queue)) {
			uv_mutex_unlock(&st->lock);
			break; /* stopping, and everything ran */
		}
		while (n < st->batch_max && (node = cm_list_pop(&st->queue)) != NULL) {
			if (cm_list_entry(node, struct xc_store_req, link)->done)
				st->answered--;
			cm_list_insert_tail(&batch, node);
			n++;
		}
		st->depth -= n;
		uv_mutex_unlock(&st->lock);
		run_batch(st, &batch);
		due = maintain(st);
	}
}

int xc_store_open(struct xc_store **out, const struct xc_store_config *cfg, char *err,
                  size_t errlen)
{
	struct xc_store *st;
	int rc;

	*out = NULL;
	if (!cfg->backend)
		return cm_errf(err, errlen, -EINVAL, "no storage backend");
	st = calloc(1, sizeof(*st));
	if (!st)
		return -ENOMEM;
	st->be = cfg->backend;
	st->batch_max = cfg->batch_max ? cfg->batch_max : DEF_BATCH;
	st->linger_ns = (uint64_t)cfg->linger_ms * 1000000u;
	st->latency = cfg->latency;
	cm_list_init(&st->queue);
	if (!(st->where = strdup(cfg->where ? cfg->where : ""))) {
		free(st);
		return -ENOMEM;
	}
	rc = st->be->open(&st->db, cfg->where, cfg->cache_mb ? cfg->cache_mb : 64, err, errlen);
	if (rc) {
		free(st->where);
		free(st);
		return rc;
	}
	if (st->be->archive_ids) {
		uint64_t next = 0;

		rc = st->be->archive_ids(st->db, &next, st->arch_key);
		if (rc) {
			st->be->close(st->db);
			free(st->where);
			free(st);
			return cm_errf(err, errlen, rc,
			               "%s: cannot read the archive's numbering: %s", cfg->where,
			               strerror(-rc));
		}
		atomic_init(&st->arch_next, next);
	}
	if (uv_mutex_init(&st->lock) != 0) {
		st->be->close(st->db);
		free(st->where);
		free(st);
		return -ENOMEM;
	}
	if (uv_cond_init(&st->wake) != 0) {
		uv_mutex_destroy(&st->lock);
		st->be->close(st->db);
		free(st->where);
		free(st);
		return -ENOMEM;
	}
	rc = uv_thread_create(&st->thread, thread_main, st);
	if (rc) {
		xc_store_close(st);
		return cm_errf(err, errlen, rc, "cannot start the store's thread: %s",
		               uv_strerror(rc));
	}
	st->started = true;
	*out = st;
	return 0;
}

int xc_store_submit(struct xc_store *st, struct xc_store_req *r)
{
	int rc = 0;

	r->queued_ns = now_ns();
	r->latency = st->latency;
	uv_mutex_lock(&st->lock);
	if (st->stopping) {
		rc = -ESHUTDOWN;
	} else {
		cm_list_insert_tail(&st->queue, &r->link);
		st->depth++;
		if (r->done) {
			st->answered++;
			r->store = st;
			atomic_fetch_add(&st->owed, 1);
		}
		/* a busy thread takes the queue when its batch is done: no wake-up to pay */
		if (st->wait == W_IDLE ||
		    (st->wait == W_LINGER && (r->done || st->depth >= st->batch_max))) {
			st->wait = W_BUSY;
			uv_cond_signal(&st->wake);
		}
	}
	uv_mutex_unlock(&st->lock);
	return rc;
}

void xc_store_archive_id(struct xc_store *st, char out[17])
{
	xc_archive_id_encode(st->arch_key, atomic_fetch_add(&st->arch_next, 1), out);
}

size_t xc_store_owed(struct xc_store *st)
{
	return atomic_load(&st->owed);
}

size_t xc_store_depth(struct xc_store *st)
{
	size_t d;

	uv_mutex_lock(&st->lock);
	d = st->depth;
	uv_mutex_unlock(&st->lock);
	return d;
}

void xc_store_close(struct xc_store *st)
{
	if (!st)
		return;
	uv_mutex_lock(&st->lock);
	st->stopping = true;
	uv_cond_signal(&st->wake);
	uv_mutex_unlock(&st->lock);
	if (st->started)
		uv_thread_join(&st->thread);
	st->be->close(st->db);
	uv_cond_destroy(&st->wake);
	uv_mutex_destroy(&st->lock);
	free(st->where);
	free(st);
}

int xc_store_backup(struct xc_store *st, const char *dest, uint64_t *bytes, char *err,
                    size_t errlen)
{
	if (!st->be->backup)
		return cm_errf(err, errlen, -ENOTSUP, "the %s store has no backup", st->be->name);
	return st->be->backup(st->where, dest, bytes, err, errlen);
}

/* --- personal eventing (XEP-0163) ------------------------------------------------------------- */

void xc_pep_req_free(struct xc_pep_req *p)
{
	if (!p)
		return;
	free(p->item_id);
	free(p->payload);
	free(p->cfg.groups);
	free(p->contact_groups);
	free(p->after);
	strv_free(p->ids, p->nids);
	for (size_t i = 0; i < p->nitems; i++) {
		free(p->items[i].groups);
		free(p->items[i].node);
		free(p->items[i].id);
		free(p->items[i].payload);
	}
	free(p->items);
	free(p);
}
