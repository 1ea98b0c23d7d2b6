/* push_rest.c - the REST hand-off's HTTP client (push.h): POSTs to a MongoosePush v3 API with
 * libcurl's multi interface, driven by one shard's loop (a uv_poll per socket curl uses, curl's
 * timeout on a uv timer of its own). Only the status of an answer matters; its body is read
 * and dropped.
 *
 * curl's timeout is not on the loop's timer wheel: curl starts each new transfer from a 0 ms
 * timeout, and the wheel's 50 ms ticks (CM_LOOP_TICK_MS) would hold every push that long. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <uv.h>

#include "cm/list.h"
#include "cm/log.h"
#include "cm/loop.h"
#include "push.h"
#include "xc.h"

struct sockctx {
	uv_poll_t poll; /* first: the close callback frees the struct through it */
	curl_socket_t fd;
	struct xc_push_http *h;
	struct cm_list link; /* in h->socks */
};

struct xc_push_post {
	struct cm_list link; /* in h->posts */
	CURL *e;
	struct curl_slist *headers;
	xc_push_post_done done;
	void *arg;
	char err[CURL_ERROR_SIZE];
};

struct xc_push_http {
	struct cm_loop *loop; /* borrowed */
	CURLM *multi;
	uv_timer_t *timer; /* owned: curl's timeout; freed by its close callback */
	struct cm_list socks;
	struct cm_list posts;
	bool stopping;
};

static void post_free(struct xc_push_http *h, struct xc_push_post *p)
{
	cm_list_remove(&p->link);
	curl_multi_remove_handle(h->multi, p->e);
	curl_easy_cleanup(p->e);
	curl_slist_free_all(p->headers);
	free(p);
}

/* Hand every finished transfer to its owner. */
static void check_done(struct xc_push_http *h)
{
	CURLMsg *m;
	int left;

	while (!h->stopping && (m = curl_multi_info_read(h->multi, &left)) != NULL) {
		struct xc_push_post *p = NULL;
		xc_push_post_done done;
		void *arg;
		long status = 0;
		char err[CURL_ERROR_SIZE];

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&p);
		if (!p)
			continue;
		if (m->data.result == CURLE_OK)
			curl_easy_getinfo(p->e, CURLINFO_RESPONSE_CODE, &status);
		snprintf(err, sizeof(err), "%s",
		         m->data.result == CURLE_OK ? ""
		         : p->err[0]                ? p->err
		                                    : curl_easy_strerror(m->data.result));
		done = p->done;
		arg = p->arg;
		post_free(h, p);
		done(arg, status, err[0] ? err : NULL); /* may post again */
	}
}

static void handle_closed(uv_handle_t *hd)
{
	free(hd); /* a struct sockctx (it starts with its uv_poll_t) or the curl timer */
}

static void poll_cb(uv_poll_t *hd, int status, int events)
{
	struct sockctx *sc = (struct sockctx *)hd;
	struct xc_push_http *h = sc->h;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, sc->fd, flags, &running);
	check_done(h);
}

static void sock_close(struct sockctx *sc)
{
	cm_list_remove(&sc->link);
	uv_poll_stop(&sc->poll);
	uv_close((uv_handle_t *)&sc->poll, handle_closed);
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct xc_push_http *h = userp;
	struct sockctx *sc = socketp;
	int ev = 0;

	(void)e;
	if (h->stopping)
		return 0; /* its sockets are closed already */
	if (what == CURL_POLL_REMOVE) {
		if (sc) {
			sock_close(sc);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	if (!sc) {
		sc = calloc(1, sizeof(*sc));
		if (!sc || uv_poll_init_socket(h->loop->uv, &sc->poll, s) != 0) {
			free(sc);
			return -1; /* curl fails the transfer */
		}
		sc->fd = s;
		sc->h = h;
		cm_list_insert_tail(&h->socks, &sc->link);
		curl_multi_assign(h->multi, s, sc);
	}
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	uv_poll_start(&sc->poll, ev, poll_cb);
	return 0;
}

static void on_timer(uv_timer_t *t)
{
	struct xc_push_http *h = t->data;
	int running;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(h);
}

static int timer_cb(CURLM *m, long ms, void *userp)
{
	struct xc_push_http *h = userp;

	(void)m;
	if (h->stopping)
		return 0;
	if (ms < 0)
		uv_timer_stop(h->timer);
	else /* never from inside curl: 0 runs on the loop's next turn */
		uv_timer_start(h->timer, on_timer, (uint64_t)ms, 0);
	return 0;
}

static size_t drop_body(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

int xc_push_http_open(struct xc_push_http **out, struct cm_loop *loop)
{
	struct xc_push_http *h = calloc(1, sizeof(*h));
	int r = 0;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	h->timer = malloc(sizeof(*h->timer));
	if (!h->timer || (r = uv_timer_init(loop->uv, h->timer)) != 0 ||
	    !(h->multi = curl_multi_init())) {
		if (h->timer && r == 0) /* its close callback frees it */
			uv_close((uv_handle_t *)h->timer, handle_closed);
		else
			free(h->timer);
		free(h);
		return r ? r : -ENOMEM;
	}
	h->timer->data = h;
	h->loop = loop;
	cm_list_init(&h->socks);
	cm_list_init(&h->posts);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	*out = h;
	return 0;
}

void xc_push_http_stop(struct xc_push_http *h)
{
	struct cm_list *l;

	if (!h || h->stopping)
		return;
	h->stopping = true;
	uv_close((uv_handle_t *)h->timer, handle_closed); /* stops it */
	h->timer = NULL;
	/* the polls go while their sockets are still open; curl closes them next */
	while ((l = cm_list_first(&h->socks)) != NULL)
		sock_close(cm_list_entry(l, struct sockctx, link));
	while ((l = cm_list_first(&h->posts)) != NULL)
		post_free(h, cm_list_entry(l, struct xc_push_post, link));
	curl_multi_cleanup(h->multi);
	h->multi = NULL;
}

void xc_push_http_free(struct xc_push_http *h)
{
	if (!h)
		return;
	xc_push_http_stop(h);
	free(h);
}

void xc_push_post_cancel(struct xc_push_http *h, struct xc_push_post *p)
{
	if (h && p && !h->stopping)
		post_free(h, p);
}

int xc_push_http_post(struct xc_push_http *h, const struct xc_push_rest_config *rc,
                      const char *device_id, const char *json, uint64_t timeout_ms,
                      xc_push_post_done done, void *arg, struct xc_push_post **out)
{
	struct xc_push_post *p;
	char *esc = NULL, *url = NULL;
	size_t ul;
	int r = -ENOMEM;

	*out = NULL;
	if (h->stopping)
		return -ESHUTDOWN;
	p = calloc(1, sizeof(*p));
	if (!p || !(p->e = curl_easy_init()))
		goto fail;
	esc = curl_easy_escape(p->e, device_id, 0);
	ul = strlen(rc->url);
	while (ul && rc->url[ul - 1] == '/')
		ul--;
	url = esc ? malloc(ul + strlen("/v3/notification/") + strlen(esc) + 1) : NULL;
	if (!url)
		goto fail;
	memcpy(url, rc->url, ul);
	strcpy(url + ul, "/v3/notification/");
	strcat(url, esc);
	p->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (!p->headers)
		goto fail;
	p->done = done;
	p->arg = arg;
	r = -EINVAL;
	if (curl_easy_setopt(p->e, CURLOPT_URL, url) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_HTTPHEADER, p->headers) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_COPYPOSTFIELDS, json) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_TIMEOUT_MS, (long)timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_WRITEFUNCTION, drop_body) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_ERRORBUFFER, p->err) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_PRIVATE, p) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_SSL_VERIFYPEER, rc->verify ? 1L : 0L) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_SSL_VERIFYHOST, rc->verify ? 2L : 0L) != CURLE_OK ||
	    (rc->ca_file && curl_easy_setopt(p->e, CURLOPT_CAINFO, rc->ca_file) != CURLE_OK))
		goto fail;
	if (curl_multi_add_handle(h->multi, p->e) != CURLM_OK)
		goto fail;
	cm_list_insert_tail(&h->posts, &p->link);
	curl_free(esc);
	free(url);
	*out = p;
	return 0;
fail:
	curl_free(esc);
	free(url);
	if (p) {
		if (p->e)
			curl_easy_cleanup(p->e);
		curl_slist_free_all(p->headers);
		free(p);
	}
	return r;
}
