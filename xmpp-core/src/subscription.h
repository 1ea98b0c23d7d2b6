/* subscription.h - the presence subscription state machine of RFC 6121 (its Appendix A), as a
 * pure function: a roster item's state and one subscription stanza in, the new state and what
 * the server must do out. Storage, routing and presence are the caller's; this file only knows
 * the rules, so that every transition can be tested on its own.
 *
 * A state is the subscription (none, to, from, both) with two pending flags: "out" (the user
 * asked for the contact's presence and awaits an answer; the roster's ask='subscribe') and "in"
 * (the contact asked for the user's presence and the user has not answered; kept across
 * logouts, shown to the user again at each login). "approved" is a pre-approval (RFC 6121
 * 3.4): the user accepted before the contact asked. What the user does about a contact makes it
 * an item of the roster (subscribing, approving, pre-approving); what the contact does alone
 * never does.
 *
 * Directions: OUT events are stanzas the user sends about the contact; IN events are stanzas
 * that arrive from the contact.
 */
#ifndef XC_SUBSCRIPTION_H
#define XC_SUBSCRIPTION_H

#include <stdbool.h>

enum xc_sub {
	XC_SUB_NONE,
	XC_SUB_TO,   /* the user sees the contact's presence */
	XC_SUB_FROM, /* the contact sees the user's presence */
	XC_SUB_BOTH,
};

struct xc_sub_state {
	enum xc_sub sub;
	bool out;      /* pending out: ask='subscribe' (never with TO or BOTH) */
	bool in;       /* pending in (never with FROM or BOTH) */
	bool approved; /* pre-approved (never with FROM or BOTH) */
	bool listed;   /* the contact is an item of the user's roster (one that only asked for
	                * the user's presence, none + in, is a pending request, not an item) */
};

enum xc_sub_event {
	XC_SUB_OUT_SUBSCRIBE,
	XC_SUB_OUT_UNSUBSCRIBE,
	XC_SUB_OUT_SUBSCRIBED,
	XC_SUB_OUT_UNSUBSCRIBED,
	XC_SUB_IN_SUBSCRIBE,
	XC_SUB_IN_UNSUBSCRIBE,
	XC_SUB_IN_SUBSCRIBED,
	XC_SUB_IN_UNSUBSCRIBED,
};

/* What the server does after a step (flags). */
enum {
	XC_SUB_FORWARD = 1 << 0,          /* OUT: route the stanza to the contact; IN: deliver it to
	                                   * the user's available resources */
	XC_SUB_CHANGED = 1 << 1,          /* the state changed: store it */
	XC_SUB_PUSH = 1 << 2,             /* roster push to the user's interested resources */
	XC_SUB_REPLY_SUBSCRIBED = 1 << 3, /* IN subscribe: answer 'subscribed' for the user */
	XC_SUB_SEND_PRESENCE = 1 << 4,    /* the contact may now see the user: send it the user's
	                                   * current presence from each available resource */
	XC_SUB_SEND_UNAVAILABLE = 1 << 5, /* the contact may no longer see the user: send it
	                                   * 'unavailable' from each available resource */
};

/* Apply one event to s (changed in place); returns the actions. preapproval: the server offers
 * pre-approval (an OUT subscribed without a pending request records it instead of being
 * dropped). */
unsigned xc_sub_step(struct xc_sub_state *s, enum xc_sub_event e, bool preapproval);

/* The roster's subscription attribute ("none", "to", "from", "both"). */
const char *xc_sub_name(enum xc_sub sub);

#endif
