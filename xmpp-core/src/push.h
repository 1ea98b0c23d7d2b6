/* push.h - push notifications (XEP-0357, urn:xmpp:push:0), the XMPP server's side: a sleeping
 * phone is woken through an app server (platypus) when something for its user waits.
 *
 * Registrations. A client enables push on its account with <enable jid node> (and optionally
 * a publish-options form, kept as given: it carries the device token and the keys platypus
 * reads) and removes it with <disable jid [node]>. They are kept in the store, per account
 * (push.max_registrations at most; enabling one more removes the oldest, since the device
 * being set up now is the one that should work), and in memory on the user's home shard once
 * needed (push.c).
 *
 * When. A message worth waking for (a body, an encrypted payload, a Jingle Message Initiation
 * <propose/>; never presence, headlines, errors, outgoing carbons or bodiless chat states)
 * that is stored offline, queued for a hibernated stream management session, or archived while
 * the account has no available session; a <propose/> always, as urgent (VoIP). Each message is
 * counted once however many of these see it (by its archive id, else its sender and id).
 *
 * Bursts (push_policy.c). The first message of a burst is pushed at once; messages that follow
 * within push.coalesce of the previous one only update the count and the summary, which the next
 * push carries. When no client of the account came back push.rewake after a push, one more push
 * goes out (once per absence). An urgent message never waits for the window.
 *
 * How. An IQ set from the user's bare JID to the app server's JID (routed as any stanza: to a
 * component such as platypus, or an error back), answered within push.timeout. A result is
 * success; a wait error, no answer in time, or a routing failure is transient (push.max_failures
 * in a row remove the registration); any other error removes the registration at once. For a
 * host listed in push.rest the push is a POST to a MongoosePush v3 API instead (platypus's REST
 * front end): 2xx is success; 429, 5xx, no answer are transient; 410 (the token is gone) and
 * any other status remove the registration.
 *
 * Sessions. While an account has a registration, its hibernated sessions stay resumable for
 * push.resume_timeout, so that the woken app finds its session.
 */
#ifndef XC_PUSH_H
#define XC_PUSH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/buf.h"
#include "cm/xml.h"

#define XC_NS_PUSH         "urn:xmpp:push:0"
#define XC_NS_PUSH_SUMMARY "urn:xmpp:push:summary"

struct cm_metrics;
struct xc_c2s;
struct xc_push_config;
struct xc_server;
struct xc_shard;

/* --- what to push and when (push_policy.c): plain data, tested on their own ---------------- */

enum xc_push_want {
	XC_PUSH_NO,     /* nothing to wake a phone for */
	XC_PUSH_YES,    /* a message */
	XC_PUSH_URGENT, /* a call (Jingle Message Initiation <propose/>) */
};

/* Whether message st is worth a push: a body, an encrypted payload (OMEMO, OpenPGP), a JMI
 * <propose/> (urgent); a received carbon is judged by the message it carries. Never presence,
 * IQs, errors, headlines, groupchat, outgoing carbons, archive results, chat states alone. */
enum xc_push_want xc_push_classify(const struct cm_xml_node *st);

/* The text of st's body (or of the message a received carbon carries), NULL without one. */
const char *xc_push_body(const struct cm_xml_node *st);

/* A burst of messages for one registration. All zero: nothing pushed, nobody away yet. */
struct xc_push_burst {
	uint64_t quiet_until; /* ms (monotonic): an event before this joins the current burst */
	unsigned count;       /* messages since a client of the account was last back */
	unsigned unsent;      /* of those, not yet told in a push */
	bool urgent;          /* an unsent urgent message */
	bool in_flight;       /* a push waits for its answer */
	bool rewoken;         /* the one extra push of this absence went out */
};

enum xc_push_step {
	XC_PUSH_HOLD, /* nothing to send now */
	XC_PUSH_SEND, /* push now (then xc_push_burst_sent()) */
};

/* n messages (urgent or not) arrived at now (ms); window is push.coalesce. */
enum xc_push_step xc_push_burst_event(struct xc_push_burst *b, uint64_t now, uint64_t window,
                                      unsigned n, bool urgent);
/* A push carrying everything counted so far went out. */
void xc_push_burst_sent(struct xc_push_burst *b);
/* Its answer came (or did not in time): an urgent message that arrived meanwhile goes now.
 * woken: the app server took the push. When it did not, nobody was woken, so the burst ends:
 * the next message is pushed at once instead of joining the failed push's window (what arrived
 * meanwhile waits for that push, so a failing app server is not sent one push per answer). */
enum xc_push_step xc_push_burst_answered(struct xc_push_burst *b, bool woken);
/* push.rewake passed after a push and no client came back: push once more per absence. */
enum xc_push_step xc_push_burst_rewake(struct xc_push_burst *b);
/* A client of the account is back: the count starts again. */
void xc_push_burst_back(struct xc_push_burst *b);

/* Append the summary form (<x xmlns='jabber:x:data' type='submit'>, FORM_TYPE
 * urn:xmpp:push:summary) to out: message-count, and as cfg->privacy allows the sender (a bare
 * JID) and the body (at most XC_PUSH_BODY_MAX bytes, cut on a character boundary); urgent adds
 * jingle-message (a call: platypus sends it as VoIP). sender and body may be NULL. 0, -ENOMEM,
 * -ENOBUFS (out unchanged then). */
#define XC_PUSH_BODY_MAX 256
int xc_push_summary_write(struct cm_buf *out, const struct xc_push_config *cfg, unsigned count,
                          const char *sender, const char *body, bool urgent);

/* How many bytes of s (len bytes, valid UTF-8 or not) fit in max without cutting a character;
 * an invalid sequence ends the text there. */
size_t xc_push_utf8_prefix(const char *s, size_t len, size_t max);

/* The REST hand-off (push_rest_body.c): from a registration's publish-options form (XML text)
 * and the summary, the device token (*device_id, for /v3/notification/{device_id}) and the
 * MongoosePush v3 body (*json): service, mode, priority, topic (its .voip form for a call),
 * alert (title: the sender or "New message"; body as the policy allows; none when the form
 * says silent) and data (the summary's fields), both owned by the caller. 0, or -EINVAL with
 * *why saying what the registration lacks (no form, no device_id), or -ENOMEM. */
int xc_push_rest_body(const char *form, const struct xc_push_config *cfg, unsigned count,
                      const char *sender, const char *body, bool urgent, char **device_id,
                      char **json, const char **why);

/* --- the REST hand-off's HTTP client (push_rest.c): one per shard, on its loop ------------ */

struct xc_push_http;
struct xc_push_post;
struct xc_push_rest_config;
struct cm_loop;

/* status: the HTTP status (0 when there was no answer); err: why there was none, or NULL. */
typedef void (*xc_push_post_done)(void *arg, long status, const char *err);

/* A client whose transfers run on loop (borrowed). *out owned by the caller. 0 or -ENOMEM. */
int xc_push_http_open(struct xc_push_http **out, struct cm_loop *loop);
/* On the loop's thread before it closes: every transfer is dropped (no done), the sockets'
 * handles closed. */
void xc_push_http_stop(struct xc_push_http *h);
void xc_push_http_free(struct xc_push_http *h); /* stops it first; accepts NULL */

/* POST json to rc->url + /v3/notification/ + device_id (escaped), within timeout_ms; done runs
 * once on the loop (not when cancelled). *out is the transfer, the caller's until done runs.
 * 0, -ENOMEM, -EINVAL, -ESHUTDOWN. */
int xc_push_http_post(struct xc_push_http *h, const struct xc_push_rest_config *rc,
                      const char *device_id, const char *json, uint64_t timeout_ms,
                      xc_push_post_done done, void *arg, struct xc_push_post **out);
/* Drop transfer p before its done ran. */
void xc_push_post_cancel(struct xc_push_http *h, struct xc_push_post *p);

/* --- the module (push.c) -------------------------------------------------------------------- */

struct xc_push;

/* Push for srv (borrowed), its metrics registered in metrics (borrowed); it listens to the
 * archive's events (srv->mam must exist). *out owned by the caller (xc_push_free). 0, -ENOMEM,
 * or the registry's error (logged). Before the workers start. */
int xc_push_alloc(struct xc_push **out, struct xc_server *srv, struct cm_metrics *metrics);
void xc_push_free(struct xc_push *p); /* accepts NULL */

/* Whether push is offered (push.enabled). */
bool xc_push_enabled(const struct xc_push *p);

/* Shard 0, once started: count the stored registrations for the gauge. */
void xc_push_start(struct xc_push *p, struct xc_shard *sh);

/* The shard's loop stops: no more pushes, REST transfers dropped (on the shard's thread). */
void xc_push_shard_stop(struct xc_shard *sh);

/* Free the shard's push state (after its loop stopped). */
void xc_push_shard_close(struct xc_shard *sh);

/* An IQ in urn:xmpp:push:0 from own (a session of the account it is addressed to; NULL: from
 * anyone else). Takes iq. */
void xc_push_iq(struct xc_shard *sh, struct xc_c2s *own, struct cm_xml_node *iq);

/* An IQ result or error addressed to a user's bare JID: true (and iq taken) when it answers a
 * push. */
bool xc_push_answer(struct xc_shard *sh, struct cm_xml_node *iq);

/* Events, on the user's home shard; st is borrowed. */
void xc_push_offline_stored(struct xc_shard *sh, const char *user, const struct cm_xml_node *st);
void xc_push_queued_hibernated(struct xc_c2s *c, const struct cm_xml_node *st);
/* Message st is delivered to user: a call is pushed whatever else happens to it. */
void xc_push_inbound(struct xc_shard *sh, const char *user, const struct cm_xml_node *st);
/* Session c hibernated: it stays resumable longer when its account has a registration. */
void xc_push_hibernating(struct xc_c2s *c);
/* A client of user came back (available presence, or a resumed session). */
void xc_push_back(struct xc_shard *sh, const char *user);

#endif
