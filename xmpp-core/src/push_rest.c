/* push_rest.c - the REST hand-off's HTTP client (push.h): POSTs to a MongoosePush v3 API with
 * libcurl's multi interface on one shard's loop (cm_curl). Only the status of an answer
 * matters; its body is read and dropped. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "cm/curl.h"
#include "cm/list.h"
#include "cm/loop.h"
#include "push.h"
#include "xc.h"

struct xc_push_post {
	struct cm_list link; /* in h->posts */
	struct xc_push_http *h;
	CURL *e;
	struct curl_slist *headers;
	xc_push_post_done done;
	void *arg;
	char err[CURL_ERROR_SIZE];
};

struct xc_push_http {
	struct cm_loop *loop; /* borrowed */
	struct cm_curl *curl; /* owned */
	struct cm_list posts;
	bool stopping;
};

static void post_free(struct xc_push_http *h, struct xc_push_post *p)
{
	cm_list_remove(&p->link);
	cm_curl_cancel(h->curl, p->e); /* nothing when it has ended */
	curl_easy_cleanup(p->e);
	curl_slist_free_all(p->headers);
	free(p);
}

/* A transfer ended: hand it to its owner. */
static void on_done(CURL *e, CURLcode cc, void *arg)
{
	struct xc_push_post *p = arg;
	xc_push_post_done done = p->done;
	void *darg = p->arg;
	long status = 0;
	char err[CURL_ERROR_SIZE];

	if (cc == CURLE_OK)
		curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	snprintf(err, sizeof(err), "%s",
	         cc == CURLE_OK ? ""
	         : p->err[0]    ? p->err
	                        : curl_easy_strerror(cc));
	post_free(p->h, p);
	done(darg, status, err[0] ? err : NULL); /* may post again */
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
	int r;

	*out = NULL;
	if (!h)
		return -ENOMEM;
	r = cm_curl_alloc(&h->curl, loop);
	if (r) {
		free(h);
		return r;
	}
	h->loop = loop;
	cm_list_init(&h->posts);
	*out = h;
	return 0;
}

void xc_push_http_stop(struct xc_push_http *h)
{
	struct cm_list *l;

	if (!h || h->stopping)
		return;
	h->stopping = true;
	while ((l = cm_list_first(&h->posts)) != NULL)
		post_free(h, cm_list_entry(l, struct xc_push_post, link));
	/* the polls of the sockets curl keeps go while those are still open; curl closes them
	 * next; the handles' memory goes with their close callbacks */
	cm_curl_stop(h->curl, NULL, NULL);
}

void xc_push_http_free(struct xc_push_http *h)
{
	if (!h)
		return;
	xc_push_http_stop(h);
	cm_curl_free(h->curl);
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
	p->h = h;
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
	    curl_easy_setopt(p->e, CURLOPT_SSL_VERIFYPEER, rc->verify ? 1L : 0L) != CURLE_OK ||
	    curl_easy_setopt(p->e, CURLOPT_SSL_VERIFYHOST, rc->verify ? 2L : 0L) != CURLE_OK ||
	    (rc->ca_file && curl_easy_setopt(p->e, CURLOPT_CAINFO, rc->ca_file) != CURLE_OK))
		goto fail;
	r = cm_curl_add(h->curl, p->e, on_done, p);
	if (r)
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
