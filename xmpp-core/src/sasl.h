/* sasl.h - SASL on a client stream (RFC 6120 6): the mechanisms offered, and the exchange from
 * <auth/> to <success/> or <failure/>.
 *
 * Offered, best first: SCRAM-SHA-256-PLUS and SCRAM-SHA-1-PLUS (with the channel binding the
 * TLS session gives: tls-exporter on TLS 1.3, tls-server-end-point otherwise, advertised with
 * XEP-0440), SCRAM-SHA-256, SCRAM-SHA-1, and PLAIN over TLS (or in clear when the listener
 * allows it). Credentials come from the store; an unknown user is answered like a known one.
 * Failed logins are counted per source address and per account (xc_throttle); past the limit a
 * login fails at once with temporary-auth-failure, without looking at the password.
 */
#ifndef XC_SASL_H
#define XC_SASL_H

#include <stdbool.h>
#include <stddef.h>

struct cm_xml_node;
struct xc_c2s;
struct xc_sasl;

enum xc_sasl_mech {
	XC_SASL_PLAIN,
	XC_SASL_SCRAM_SHA1,
	XC_SASL_SCRAM_SHA256,
	XC_SASL_HT, /* XEP-0484's HT-SHA-256-* (fast.c), counted with the others */
	XC_SASL_NMECH,
};

extern const char *const xc_sasl_mech_names[XC_SASL_NMECH]; /* for metric labels */

/* The mechanisms offered to c, best first, into names (borrowed constants); their number. */
#define XC_SASL_LIST_MAX 6
size_t xc_sasl_mechanisms(const struct xc_c2s *c, const char *names[XC_SASL_LIST_MAX]);

/* Add the <mechanisms/> (and XEP-0440 <sasl-channel-binding/>) elements for c to features. 0,
 * -ENOMEM. */
int xc_sasl_features(struct xc_c2s *c, struct cm_xml_node *features);

/* The client's <auth/>, <response/> and <abort/>. */
void xc_sasl_auth(struct xc_c2s *c, const struct cm_xml_node *auth);

/* The exchange begins with mech and initial (the base64 initial response; NULL or "": none, the
 * client is asked for it): what <auth/> does, for SASL2's <authenticate/> too (sasl2.c). The
 * client is answered through xc_c2s__sasl_challenge/success/failure, which frame the answer
 * for the protocol in use. */
void xc_sasl_begin(struct xc_c2s *c, const char *mech, const char *initial);

/* For other mechanisms (FAST's, fast.c), the same limits: the client's address as the throttle
 * counts it (into out, "" when unknown); whether src or user (a local part, may be NULL) is
 * throttled now; and one more failure for both. */
void xc_sasl_source(const struct xc_c2s *c, char *out, size_t len);
bool xc_sasl_blocked(struct xc_c2s *c, const char *src, const char *user);
void xc_sasl_count_failure(struct xc_c2s *c, const char *src, const char *user);
void xc_sasl_response(struct xc_c2s *c, const struct cm_xml_node *resp);
void xc_sasl_abort(struct xc_c2s *c);

/* The connection goes away: drop the exchange (a store answer still on its way is ignored). */
void xc_sasl_free(struct xc_sasl *s);

#endif
