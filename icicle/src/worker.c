/* worker.c - worker threads: each has its own libuv loop, its own client sockets (SO_REUSEPORT),
 * its allocations and a one-second tick for lifetimes. Sockets are opened on the main thread
 * before the threads start, so that a port already in use fails start-up with a clear message;
 * from then on only the worker touches its loop. Stop: an async wake-up closes every handle and
 * the loop runs dry; the main thread joins. */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cm/log.h"
#include "cm/crypto.h"
#include "cm/err.h"
#include "cm/tls.h"

uint64_t icicle_wall_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec;
}

static void tick_cb(uv_timer_t *t)
{
	struct icicle_worker *w = t->data;

	icicle_alloc_tick(w);
	if (w->idx == 0 && w->ic->rsv_ready)
		(void)icicle_rsv_expire(&w->ic->rsv, uv_now(&w->loop));
	/* every second: the connection deadlines are counted in seconds */
	icicle_conn_sweep(w);
}

static void handle_closed(uv_handle_t *h)
{
	struct icicle_worker *w = h->data;

	w->handles--;
}

static void destroy_all_allocs(struct icicle_worker *w)
{
	size_t i;

	for (i = 0; i < ICICLE_WHEEL_SLOTS; i++)
		while (w->wheel[i])
			icicle_alloc_destroy(w->wheel[i]);
}

static void stop_cb(uv_async_t *as)
{
	struct icicle_worker *w = as->data;
	size_t i;

	if (w->stopping)
		return;
	w->stopping = true;
	icicle_batch_close(w); /* sends what is queued */
	icicle_conn_close_all(w);
	destroy_all_allocs(w);
	for (i = 0; i < w->nudp; i++)
		icicle_udp_close(w->udp[i]);
	for (i = 0; i < w->ntcp; i++)
		icicle_tcp_close(w->tcp[i]);
	uv_close((uv_handle_t *)&w->tick, handle_closed);
	uv_close((uv_handle_t *)&w->stop_async, handle_closed);
}

static void worker_main(void *arg)
{
	struct icicle_worker *w = arg;

	uv_run(&w->loop, UV_RUN_DEFAULT);
}

static int open_list(struct icicle_worker *w, const struct cm_cfg_strlist *l, int kind)
{
	size_t i;
	int rc;

	for (i = 0; i < l->n; i++) {
		struct cm_cfg_addr a;
		char why[CM_ERR_MAX];
		struct sockaddr_storage ss;
		socklen_t len;

		if (cm_cfg_parse_addr(l->v[i], &a, why, sizeof(why)) != 0) {
			CM_LOGE("listen", "%s: %s", l->v[i], why);
			return -EINVAL;
		}
		ss = a.sa;
		len = a.salen;
		if (kind == 0) {
			rc = icicle_udp_open(w, (struct sockaddr *)&ss, len, &w->udp[w->nudp]);
			if (w->udp[w->nudp])
				w->nudp++;
		} else {
			rc = icicle_tcp_open(w, (struct sockaddr *)&ss, len, kind == 2,
			                     &w->tcp[w->ntcp]);
			if (w->tcp[w->ntcp])
				w->ntcp++;
		}
		if (rc != 0) {
			CM_LOGE("listen", "%s %s: %s",
			        kind == 0   ? "udp"
			        : kind == 1 ? "tcp"
			                    : "tls",
			        l->v[i], uv_strerror(rc));
			return rc;
		}
	}
	return 0;
}

static int worker_init(struct icicle *ic, struct icicle_worker *w, unsigned idx)
{
	const struct icicle_config *cfg = ic->cfg;
	bool tls = ic->tls != NULL;
	int rc;

	w->ic = ic;
	w->idx = idx;
	rc = uv_loop_init(&w->loop);
	if (rc != 0)
		return rc;
	w->loop_ready = true;
	w->wheel_sec = uv_now(&w->loop) / 1000;
	if (cm_crypto_random(&w->rng, sizeof(w->rng)) != 0 || w->rng == 0)
		w->rng = 0x9e3779b9u ^ idx;
	w->udp = calloc(cfg->listen.udp.n + 1, sizeof(*w->udp));
	w->tcp = calloc(cfg->listen.tcp.n + cfg->listen.tls.n + 1, sizeof(*w->tcp));
	if (!w->udp || !w->tcp)
		return -ENOMEM;
	rc = icicle_table_init(w);
	if (rc != 0)
		return rc;
	rc = icicle_ratelimit_init(&w->rl, (uint64_t)cfg->quotas.unauthenticated_rate,
	                           (uint64_t)cfg->quotas.unauthenticated_burst);
	if (rc != 0)
		return rc;
	rc = icicle_ratelimit_init(&w->rl_stream, (uint64_t)cfg->quotas.unauthenticated_rate,
	                           (uint64_t)cfg->quotas.unauthenticated_burst);
	if (rc != 0)
		return rc;
	uv_timer_init(&w->loop, &w->tick);
	w->tick.data = w;
	w->handles++;
	uv_timer_start(&w->tick, tick_cb, 1000, 1000);
	rc = uv_async_init(&w->loop, &w->stop_async, stop_cb);
	if (rc != 0)
		return rc;
	w->stop_async.data = w;
	w->handles++;
	rc = icicle_batch_init(w);
	if (rc != 0)
		return rc;
	if ((rc = open_list(w, &cfg->listen.udp, 0)) != 0)
		return rc;
	if ((rc = open_list(w, &cfg->listen.tcp, 1)) != 0)
		return rc;
	if (tls && (rc = open_list(w, &cfg->listen.tls, 2)) != 0)
		return rc;
	return 0;
}

int icicle_workers_start(struct icicle *ic)
{
	long long n = ic->cfg->threads;
	size_t i;
	int rc;

	if (n <= 0) {
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);

		n = cpus > 0 ? cpus : 1;
	}
	ic->workers = calloc((size_t)n, sizeof(*ic->workers));
	if (!ic->workers)
		return -ENOMEM;
	ic->nworkers = (size_t)n;
	for (i = 0; i < ic->nworkers; i++) {
		ic->workers[i] = calloc(1, sizeof(*ic->workers[i]));
		if (!ic->workers[i])
			return -ENOMEM;
		rc = worker_init(ic, ic->workers[i], (unsigned)i);
		if (rc != 0)
			return rc;
	}
	if (!ic->tls && ic->cfg->listen.tls.n > 0)
		CM_LOGI("listen", "no tls.certificate: TURN over TLS is off");
	for (i = 0; i < ic->nworkers; i++) {
		rc = uv_thread_create(&ic->workers[i]->thread, worker_main, ic->workers[i]);
		if (rc != 0) {
			CM_LOGE("icicle", "cannot start worker thread: %s", uv_strerror(rc));
			return rc;
		}
		ic->nrunning++;
	}
	CM_LOGI("icicle", "%zu worker thread(s) serving", ic->nworkers);
	return 0;
}

void icicle_workers_stop(struct icicle *ic)
{
	size_t i;

	for (i = 0; i < ic->nrunning; i++)
		uv_async_send(&ic->workers[i]->stop_async);
	for (i = 0; i < ic->nrunning; i++)
		uv_thread_join(&ic->workers[i]->thread);
	ic->nrunning = 0;
}

void icicle_workers_free(struct icicle *ic)
{
	size_t i;

	icicle_workers_stop(ic);
	for (i = 0; ic->workers && i < ic->nworkers; i++) {
		struct icicle_worker *w = ic->workers[i];

		if (!w)
			continue;
		if (w->loop_ready) {
			/* Workers that never ran (start failed): close here, on this thread. */
			if (!w->stopping && w->stop_async.data)
				stop_cb(&w->stop_async);
			else if (!w->stopping && w->tick.data) {
				w->stopping = true;
				uv_close((uv_handle_t *)&w->tick, handle_closed);
			}
			uv_run(&w->loop, UV_RUN_DEFAULT);
			if (uv_loop_close(&w->loop) != 0)
				CM_LOGW("icicle", "worker %u: handles left open", w->idx);
		}
		icicle_ratelimit_close(&w->rl);
		icicle_ratelimit_close(&w->rl_stream);
		icicle_table_close(w);
		free(w->udp);
		free(w->tcp);
		icicle_batch_free(w);
		free(w);
	}
	free(ic->workers);
	ic->workers = NULL;
	ic->nworkers = 0;
}
