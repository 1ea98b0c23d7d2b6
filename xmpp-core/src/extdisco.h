/* extdisco.h - external service discovery (XEP-0215, urn:xmpp:extdisco:2): the STUN and TURN
 * servers a client should use for calls, with short-lived TURN credentials.
 *
 * The credentials are the "TURN REST API" kind that icicle (and coturn, eturnal) check: the
 * username is EXPIRY:USER, EXPIRY the Unix time in seconds the credential ends and USER the
 * requester's bare JID (icicle counts its per-user quotas on what follows the colon, so one
 * account's clients share one quota); the password is base64(HMAC-SHA1(secret, username)), the
 * secret being the first line of the file shared with icicle (extdisco.secret_file).
 *
 * Only an authenticated local user asking the server's domain from its own session is
 * answered; the configuration is read-only, so every function may run on any
 * shard. Ownership: xc_extdisco_iq() takes the IQ. */
#ifndef XC_EXTDISCO_H
#define XC_EXTDISCO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/xml.h"

#define XC_NS_EXTDISCO "urn:xmpp:extdisco:2"

struct cm_metrics;
struct xc_extdisco;
struct xc_extdisco_config;
struct xc_c2s;
struct xc_shard;

/* The service for cfg (borrowed, read-only for the service's life): the secret's first line
 * picked, metrics registered in metrics (borrowed; NULL: none, for tests). *out is owned by
 * the caller (xc_extdisco_free). 0, -ENOMEM, -ENODATA (servers listed but the secret file has
 * no usable line; err says so) or the registration's error (in err). */
int xc_extdisco_alloc(struct xc_extdisco **out, const struct xc_extdisco_config *cfg,
                      struct cm_metrics *metrics, char *err, size_t errlen);
void xc_extdisco_free(struct xc_extdisco *x); /* accepts NULL */

/* Whether XEP-0215 is offered (servers are configured). */
bool xc_extdisco_enabled(const struct xc_extdisco *x);

/* TURN REST credentials for user (len bytes) valid until expiry (Unix seconds): the username
 * "EXPIRY:USER" and the password base64(HMAC-SHA1(secret, username)) appended to the buffers.
 * 0 or a negative errno. */
int xc_extdisco_credentials(const void *secret, size_t secretlen, const char *user, size_t len,
                            int64_t expiry, struct cm_buf *username, struct cm_buf *password);

/* The answer to q (<services/> or <credentials/> in XEP-0215's namespace, asked with an IQ get)
 * for user (a bare JID, len bytes) at now (Unix seconds): *out (owned by the caller) or, on
 * refusal, 0 with *out NULL and *cond the stanza error condition ("bad-request",
 * "item-not-found"). A negative errno on failure. */
int xc_extdisco_answer(const struct xc_extdisco *x, const struct cm_xml_node *q, const char *user,
                       size_t len, int64_t now, struct cm_xml_node **out, const char **cond);

/* An IQ in XEP-0215's namespace to the server; own is the local session that sent it ('from'
 * stamped), NULL when no local session did (then forbidden). Answered or refused. Takes iq. */
void xc_extdisco_iq(struct xc_shard *sh, const struct xc_c2s *own, struct cm_xml_node *iq);

#endif
