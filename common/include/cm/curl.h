/* cm/curl.h - libcurl's multi interface driven by a cm_loop.
 *
 * One struct cm_curl is a curl multi handle whose sockets and timeout are watched by a loop: a
 * uv_poll per socket curl opens (CURLMOPT_SOCKETFUNCTION), one uv_timer for curl's timeout
 * (CURLMOPT_TIMERFUNCTION; a uv_timer rather than the loop's wheel because curl asks for zero
 * and few-millisecond timeouts that must fire on the next pass), curl_multi_socket_action() on
 * their events, and each finished transfer handed back to its owner through its callback. Every
 * call into curl that can finish a transfer is made from a libuv callback, never from inside
 * curl, so owners' callbacks never run within one of their own calls (cm_curl_add() included).
 *
 * The owner makes and configures its easy handles (URL, headers, body, write callback,
 * timeouts, TLS) and keeps them: this module adds them to the multi handle and removes them
 * before it calls back, on cancel and on stop, and never cleans one up. It uses each easy
 * handle's CURLOPT_PRIVATE for itself: owners find their state through the callback's argument
 * (or CURLOPT_WRITEDATA and the like) instead.
 *
 * curl_global_init() is the caller's business, before the first cm_curl_alloc(), as libcurl
 * requires (it is not thread-safe, so the daemons do it once at start-up).
 *
 * Life cycle: cm_curl_alloc(); transfers come and go; cm_curl_stop() drops every transfer still
 * in flight (no callback) and closes the handles, and tells when the last one has closed;
 * cm_curl_free() releases the memory, at once or, while handles are still closing, from the
 * last close callback (so a shard that stops and frees in one go needs not wait). Everything
 * runs on the loop's thread.
 */
#ifndef CM_CURL_H
#define CM_CURL_H

#include <curl/curl.h>

struct cm_loop;
struct cm_curl;

/* A transfer ended: cc is curl's result (CURLE_OK when an answer came, whatever its status),
 * CURLE_OUT_OF_MEMORY when its socket could not be watched. easy is out of the multi handle and
 * the owner's again (it may clean it up, or configure it and add it once more); c may be
 * stopped or freed from here. Runs once per cm_curl_add(), never after cm_curl_cancel() or
 * cm_curl_stop(). */
typedef void (*cm_curl_done_fn)(CURL *easy, CURLcode cc, void *arg);

/* A multi handle on loop l (borrowed; it must outlive the cm_curl's handles). *out is the
 * caller's, to be given to cm_curl_free(). 0, -ENOMEM, or a libuv error. */
int cm_curl_alloc(struct cm_curl **out, struct cm_loop *l);

/* The multi handle, for the owner's own multi options (pipelining, connections per host). Not
 * for the socket and timer options, which are this module's. Borrowed; NULL once stopped. */
CURLM *cm_curl_multi(struct cm_curl *c);

/* Start easy (borrowed until done runs or it is cancelled): done(easy, cc, arg) runs once on
 * the loop when it ends. 0; -ESHUTDOWN once stopped; -ENOMEM; -EINVAL when curl refuses the
 * handle (already in a multi handle). On failure nothing was added and done will not run. */
int cm_curl_add(struct cm_curl *c, CURL *easy, cm_curl_done_fn done, void *arg);

/* Take easy out before it ends: its callback will not run. A handle that is not in flight here
 * (never added, ended, cancelled) is left alone. */
void cm_curl_cancel(struct cm_curl *c, CURL *easy);

/* Transfers in flight. */
unsigned cm_curl_count(const struct cm_curl *c);

/* Drop every transfer in flight (their callbacks will not run; their easy handles are out of
 * the multi handle and the owners' to clean up), close the sockets' polls and the timer, and
 * release the multi handle. drained(arg) (may be NULL) runs once the last of those handles has
 * closed, always from a later loop callback: the loop must run for it. A second call does
 * nothing. Safe from within a done callback. */
void cm_curl_stop(struct cm_curl *c, void (*drained)(void *arg), void *arg);

/* Stop (without a drained callback unless cm_curl_stop() gave one) and free; the memory goes at
 * once when no handle is still closing, else once the last one has. Accepts NULL. Safe from
 * within the done and drained callbacks. */
void cm_curl_free(struct cm_curl *c);

#endif
