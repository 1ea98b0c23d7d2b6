/* rest.h - the REST front end, compatible with MongoosePush v3 (the API MongooseIM's push module
 * calls): POST /v3/notification/{device_id} with a JSON notification, answered once the
 * provider has (200, or an error status with {"reason": ...}); GET /healthcheck.
 *
 * Single-threaded: all calls from the loop's thread.
 */
#ifndef PP_REST_H
#define PP_REST_H

#include <stddef.h>

struct cm_http_server;
struct pp_dispatch;
struct pp_notif;
struct pp_rest;
struct cm_buf;

/* Health of what is behind the API, for /healthcheck: append JSON members (no braces) to out and
 * return nonzero when unhealthy. */
typedef int (*pp_rest_health_fn)(void *arg, struct cm_buf *out);

/* Add the routes to srv (borrowed, like d; both must outlive the front end). health may be NULL.
 * 0, -ENOMEM. */
int pp_rest_alloc(struct pp_rest **out, struct cm_http_server *srv, struct pp_dispatch *d,
                  pp_rest_health_fn health, void *health_arg);

/* The OpenAPI 3 document of this API, NUL-terminated: docs/platypus-openapi.json, made into C by
 * the build (scripts/embed.sh). */
extern const char pp_rest_openapi[];

/* Free, once srv no longer routes to it (after cm_http_server_close()); requests in flight are
 * answered from the dispatcher's outcome without it. Accepts NULL. */
void pp_rest_free(struct pp_rest *r);

#endif
