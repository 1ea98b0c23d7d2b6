/* curl.c - libcurl's multi interface on a cm_loop (cm/curl.h): a uv_poll per socket, a
 * uv_timer for curl's timeout, finished transfers handed to their owners. */
#include "cm/curl.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <uv.h>

#include "cm/list.h"
#include "cm/log.h"
#include "cm/loop.h"

/* One transfer in flight: the easy handle's CURLOPT_PRIVATE. */
struct xfer {
	struct cm_list link; /* in c->xfers */
	CURL *easy;          /* borrowed */
	cm_curl_done_fn done;
	void *arg;
	CURLcode abort; /* not CURLE_OK: a socket of it could not be watched; it ends so */
};

struct sockctx {
	uv_poll_t poll; /* first: the close callback frees the struct through it */
	curl_socket_t fd;
	struct cm_curl *c;
	struct cm_list link; /* in c->socks while curl uses the socket */
};

struct cm_curl {
	struct cm_loop *loop; /* borrowed */
	CURLM *multi;         /* owned; NULL once stopped */
	uv_timer_t timer;     /* curl's timeout */
	struct cm_list socks; /* struct sockctx */
	struct cm_list xfers; /* struct xfer */
	unsigned nxfers;
	bool abort_pending; /* a transfer is marked to end (xfer.abort) */
	bool stopping;
	bool free_pending; /* cm_curl_free() came while handles were closing */
	unsigned refs;     /* handles whose close callback is still to come */
	void (*drained)(void *arg);
	void *drained_arg;
};

static void handle_closed(uv_handle_t *h)
{
	struct cm_curl *c = h->data;
	void (*drained)(void *) = c->drained;
	void *arg = c->drained_arg;

	if (h->type == UV_POLL)
		free(h); /* struct sockctx starts with its uv_poll_t */
	if (--c->refs > 0)
		return;
	c->drained = NULL;
	if (c->free_pending) {
		free(c);
		if (drained)
			drained(arg);
		return;
	}
	if (drained)
		drained(arg); /* may free c: not touched after */
}

/* Take x out of the multi handle and forget it; its owner's callback and argument are left to
 * the caller. */
static void xfer_remove(struct cm_curl *c, struct xfer *x)
{
	cm_list_remove(&x->link);
	c->nxfers--;
	curl_multi_remove_handle(c->multi, x->easy);
	curl_easy_setopt(x->easy, CURLOPT_PRIVATE, NULL);
	free(x);
}

static void xfer_finish(struct cm_curl *c, struct xfer *x, CURLcode cc)
{
	cm_curl_done_fn done = x->done;
	void *arg = x->arg;
	CURL *e = x->easy;

	xfer_remove(c, x);
	done(e, cc, arg); /* may add, cancel, stop or free */
}

static struct xfer *xfer_of(CURL *e)
{
	struct xfer *x = NULL;

	if (e && curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&x) != CURLE_OK)
		return NULL;
	return x;
}

/* End the transfers marked to end, outside curl's callbacks. */
static void abort_marked(struct cm_curl *c)
{
	struct cm_list *n;

	c->abort_pending = false;
	for (n = c->xfers.next; n != &c->xfers && !c->stopping;) {
		struct xfer *x = cm_list_entry(n, struct xfer, link);

		if (x->abort == CURLE_OK) {
			n = n->next;
			continue;
		}
		xfer_finish(c, x, x->abort);
		n = c->xfers.next; /* the callback may have changed the list */
	}
}

/* Hand every finished transfer to its owner (after curl has returned). */
static void check_done(struct cm_curl *c)
{
	CURLMsg *m;
	int left;

	while (!c->stopping && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
		struct xfer *x;
		CURLcode cc;

		if (m->msg != CURLMSG_DONE)
			continue;
		x = xfer_of(m->easy_handle);
		if (!x)
			continue;
		cc = m->data.result;
		if (cc != CURLE_OK && x->abort != CURLE_OK)
			cc = x->abort; /* what made it fail */
		xfer_finish(c, x, cc);
	}
	if (!c->stopping && c->abort_pending)
		abort_marked(c);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	struct sockctx *sc = (struct sockctx *)h;
	struct cm_curl *c = sc->c;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(c->multi, sc->fd, flags, &running);
	check_done(c);
}

static void sock_close(struct sockctx *sc)
{
	cm_list_remove(&sc->link);
	uv_poll_stop(&sc->poll);
	uv_close((uv_handle_t *)&sc->poll, handle_closed);
}

/* s cannot be watched: its transfer ends with cc once curl has returned. Not -1 to curl, which
 * would leave the whole multi handle unusable. */
static void sock_failed(struct cm_curl *c, CURL *e, CURLcode cc, int uverr)
{
	struct xfer *x = xfer_of(e);

	CM_LOGW("curl", "cannot watch a socket: %s", uv_strerror(uverr));
	if (x && x->abort == CURLE_OK) {
		x->abort = cc;
		c->abort_pending = true;
	}
}

static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct cm_curl *c = userp;
	struct sockctx *sc = socketp;
	int ev = 0, r;

	if (c->stopping)
		return 0; /* its polls are closed already */
	if (what == CURL_POLL_REMOVE) {
		if (sc) {
			sock_close(sc);
			curl_multi_assign(c->multi, s, NULL);
		}
		return 0;
	}
	if (!sc) {
		sc = calloc(1, sizeof(*sc));
		if (!sc) {
			sock_failed(c, e, CURLE_OUT_OF_MEMORY, UV_ENOMEM);
			return 0;
		}
		r = uv_poll_init_socket(c->loop->uv, &sc->poll, s);
		if (r) {
			free(sc);
			sock_failed(
			    c, e, r == UV_ENOMEM ? CURLE_OUT_OF_MEMORY : CURLE_COULDNT_CONNECT, r);
			return 0;
		}
		sc->fd = s;
		sc->c = c;
		sc->poll.data = c;
		c->refs++;
		cm_list_insert_tail(&c->socks, &sc->link);
		curl_multi_assign(c->multi, s, sc);
	}
	if (what & CURL_POLL_IN)
		ev |= UV_READABLE;
	if (what & CURL_POLL_OUT)
		ev |= UV_WRITABLE;
	r = uv_poll_start(&sc->poll, ev, poll_cb);
	if (r)
		sock_failed(c, e, CURLE_COULDNT_CONNECT, r);
	return 0;
}

static void on_timer(uv_timer_t *t)
{
	struct cm_curl *c = t->data;
	int running;

	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static int timer_cb(CURLM *m, long ms, void *userp)
{
	struct cm_curl *c = userp;

	(void)m;
	if (c->stopping)
		return 0;
	if (ms < 0)
		uv_timer_stop(&c->timer);
	else /* never act from inside curl: a zero timeout runs on the next loop pass */
		uv_timer_start(&c->timer, on_timer, (uint64_t)ms, 0);
	return 0;
}

int cm_curl_alloc(struct cm_curl **out, struct cm_loop *l)
{
	struct cm_curl *c = calloc(1, sizeof(*c));
	int r;

	*out = NULL;
	if (!c)
		return -ENOMEM;
	c->multi = curl_multi_init();
	if (!c->multi) {
		free(c);
		return -ENOMEM;
	}
	r = uv_timer_init(l->uv, &c->timer);
	if (r) {
		curl_multi_cleanup(c->multi);
		free(c);
		return r;
	}
	c->loop = l;
	c->timer.data = c;
	c->refs = 1; /* the timer */
	cm_list_init(&c->socks);
	cm_list_init(&c->xfers);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	*out = c;
	return 0;
}

CURLM *cm_curl_multi(struct cm_curl *c)
{
	return c->multi;
}

int cm_curl_add(struct cm_curl *c, CURL *easy, cm_curl_done_fn done, void *arg)
{
	struct xfer *x;
	CURLMcode mc;

	if (c->stopping)
		return -ESHUTDOWN;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->easy = easy;
	x->done = done;
	x->arg = arg;
	/* First: curl refuses a handle that is in a multi handle already (this one's too), whose
	 * CURLOPT_PRIVATE must then stay as it is. Adding arms curl's timer (timer_cb): the
	 * transfer starts on a later pass. */
	mc = curl_multi_add_handle(c->multi, easy);
	if (mc != CURLM_OK) {
		free(x);
		return mc == CURLM_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
	}
	if (curl_easy_setopt(easy, CURLOPT_PRIVATE, x) != CURLE_OK) {
		curl_multi_remove_handle(c->multi, easy);
		free(x);
		return -EINVAL;
	}
	cm_list_insert_tail(&c->xfers, &x->link);
	c->nxfers++;
	return 0;
}

void cm_curl_cancel(struct cm_curl *c, CURL *easy)
{
	struct xfer *x = xfer_of(easy);

	if (x && !c->stopping)
		xfer_remove(c, x);
}

unsigned cm_curl_count(const struct cm_curl *c)
{
	return c->nxfers;
}

void cm_curl_stop(struct cm_curl *c, void (*drained)(void *arg), void *arg)
{
	struct cm_list *n;

	if (c->stopping)
		return;
	c->stopping = true;
	c->drained = drained;
	c->drained_arg = arg;
	uv_timer_stop(&c->timer);
	uv_close((uv_handle_t *)&c->timer, handle_closed);
	/* The polls go while their sockets are still open: curl closes them next. */
	while ((n = cm_list_first(&c->socks)) != NULL)
		sock_close(cm_list_entry(n, struct sockctx, link));
	while ((n = cm_list_first(&c->xfers)) != NULL)
		xfer_remove(c, cm_list_entry(n, struct xfer, link));
	curl_multi_cleanup(c->multi);
	c->multi = NULL;
}

void cm_curl_free(struct cm_curl *c)
{
	if (!c)
		return;
	cm_curl_stop(c, NULL, NULL);
	if (c->refs)
		c->free_pending = true;
	else
		free(c);
}
