/* component.h - platypus as a XEP-0357 app server reached through the XEP-0114 component
 * protocol: any XMPP server (Prosody, ejabberd, MongooseIM, xmpp-core) that has platypus
 * configured as an external component sends it pubsub publish IQs carrying push
 * notifications; platypus hands each to the dispatcher and answers the IQ with the outcome.
 *
 * Single-threaded: all calls from the loop's thread.
 */
#ifndef PP_COMPONENT_H
#define PP_COMPONENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct cm_loop;
struct cm_metrics;
struct cm_xml_node;
struct pp_dispatch;
struct pp_notif;
struct pp_component;

struct pp_component_config {
	const struct sockaddr *server; /* the XMPP server's component port (IPv4 or IPv6); copied */
	const char *domain;            /* the component's JID, e.g. "push.example.com"; copied */
	const unsigned char *secret;   /* the component secret (handshake); copied */
	size_t secret_len;
	/* Optional: when set, a publish must carry this value in its publish-options "secret"
	 * field, else it is refused with auth/forbidden. Copied. */
	const unsigned char *publish_secret;
	size_t publish_secret_len;
	/* The XMPP server's domains (copied): a publish is taken only from one of them or from
	 * the bare JID of one of their users, the addresses servers publish from. A client's
	 * stanza carries its full JID (its server stamps it), so users cannot publish themselves.
	 * NULL or none: domain without its first label ("example.com" for "push.example.com"). */
	const char *const *xmpp_domains;
	size_t nxmpp_domains;
	uint64_t reconnect_min_ms;  /* 0: 500 ms */
	uint64_t reconnect_max_ms;  /* 0: 30 s */
	struct cm_metrics *metrics; /* borrowed, may be NULL */
};

/* Create the component on loop l (borrowed) and start connecting: a cm_stream to the server
 * (TCP_NODELAY; replies gathered and written once per loop turn), reconnected with backoff
 * and jitter whenever it ends. d is borrowed and must outlive the component. 0, -EINVAL (no
 * server, domain or secret; no xmpp_domains and a domain without a parent), -ENOMEM, or the
 * metrics registry's error (logged). */
int pp_component_alloc(struct pp_component **out, struct cm_loop *l, struct pp_dispatch *d,
                       const struct pp_component_config *cfg);

/* Replace the secrets (SIGHUP); the next handshake uses the new component secret. 0 or -ENOMEM
 * (the old secrets stay). */
int pp_component_set_secrets(struct pp_component *c, const unsigned char *secret, size_t secret_len,
                             const unsigned char *publish_secret, size_t publish_secret_len);

/* Nonzero while the stream is authenticated and serving. */
int pp_component_connected(const struct pp_component *c);

/* Stop: publishes that arrive now are refused with wait/resource-constraint, those in flight
 * are answered, then the stream ends (our closing tag, then the stream's graceful close) and,
 * once it is over, drained(arg) is called (maybe from within). */
void pp_component_stop(struct pp_component *c, void (*drained)(void *arg), void *arg);

/* Close now: no reconnection, every stream aborted; done(arg) once the last one has ended
 * (maybe from within). Outcomes still owed are dropped when they come (counted in
 * platypus_component_replies_dropped_total). May follow pp_component_stop(), whose drained is
 * then replaced by done. */
void pp_component_close(struct pp_component *c, void (*done)(void *arg), void *arg);

/* Free the memory, after drained or done (the component holds no handle then) and once every
 * outcome owed has come. Accepts NULL. */
void pp_component_free(struct pp_component *c);

#endif
