/* admin_api.h - the account and session API on the admin port, which xmppctl uses
 * (docs/xmpp-core-api.json is its OpenAPI document).
 *
 * Every route under /api/v1/ asks for "Authorization: Bearer TOKEN", TOKEN being the content of
 * the api_token file; without that file the routes answer 403 and say so. The API runs on the
 * main loop: account changes go through the store like everything else, and what concerns
 * sessions is asked of the shards by message. Errors are {"error": "..."} with the HTTP status
 * that fits (400 bad input, 401 no or wrong token, 404 no such account, 409 taken).
 */
#ifndef XC_ADMIN_API_H
#define XC_ADMIN_API_H

#include <stddef.h>

/* The largest body of POST /api/v1/import: an import document (import.h) with its roster,
 * offline messages and PEP items. Every other admin route reads 64 KiB at most. */
#define XC_ADMIN_MAX_BODY (8u << 20)

struct cm_http_server;
struct xc_server;
struct xc_admin_api;

/* Add the routes to http (the admin server, borrowed) for srv (borrowed; both outlive the API).
 * token (may be NULL: the API is off) is copied. 0 or a negative errno. */
int xc_admin_api_alloc(struct xc_admin_api **out, struct cm_http_server *http,
                       struct xc_server *srv, const unsigned char *token, size_t len);

/* SIGHUP: the token file was read again. token NULL turns the API off. 0 or -ENOMEM. */
int xc_admin_api_set_token(struct xc_admin_api *a, const unsigned char *token, size_t len);

/* The daemon closes: done(arg) runs once the operations in flight have answered (at once when
 * there are none); they still need the store and the shards. Accepts NULL (done at once). */
void xc_admin_api_close(struct xc_admin_api *a, void (*done)(void *arg), void *arg);

/* After xc_admin_api_close() is done. Accepts NULL. */
void xc_admin_api_free(struct xc_admin_api *a);

#endif
