/* subscription.c - RFC 6121 Appendix A, one event at a time (subscription.h). */
#include "subscription.h"

static bool has_to(enum xc_sub s)
{
	return s == XC_SUB_TO || s == XC_SUB_BOTH;
}

static bool has_from(enum xc_sub s)
{
	return s == XC_SUB_FROM || s == XC_SUB_BOTH;
}

static enum xc_sub make(bool to, bool from)
{
	return to ? (from ? XC_SUB_BOTH : XC_SUB_TO) : (from ? XC_SUB_FROM : XC_SUB_NONE);
}

const char *xc_sub_name(enum xc_sub sub)
{
	static const char *const names[] = {"none", "to", "from", "both"};

	return names[sub];
}

unsigned xc_sub_step(struct xc_sub_state *s, enum xc_sub_event e, bool preapproval)
{
	struct xc_sub_state old = *s;
	bool to = has_to(s->sub), from = has_from(s->sub);
	unsigned act = 0;

	switch (e) {
	case XC_SUB_OUT_SUBSCRIBE:
		/* A.2.1: always routed (the contact's server answers for a subscription it knows);
		 * asking again while subscribed changes nothing. */
		act |= XC_SUB_FORWARD;
		if (!to)
			s->out = true;
		s->listed = true;
		break;
	case XC_SUB_OUT_UNSUBSCRIBE:
		/* A.2.2: the user gives up the contact's presence, or a request for it */
		act |= XC_SUB_FORWARD;
		to = false;
		s->out = false;
		break;
	case XC_SUB_OUT_SUBSCRIBED:
		/* A.2.3: approving a pending request; without one, a pre-approval */
		if (from)
			break;
		if (s->in) {
			act |= XC_SUB_FORWARD | XC_SUB_SEND_PRESENCE;
			from = true;
			s->in = false;
			s->approved = false;
			s->listed = true;
		} else if (preapproval && !s->approved) {
			s->approved = true;
			s->listed = true;
		}
		break;
	case XC_SUB_OUT_UNSUBSCRIBED:
		/* A.2.4: refusing a request, or cancelling the contact's subscription */
		if (from || s->in) {
			act |= XC_SUB_FORWARD;
			if (from)
				act |= XC_SUB_SEND_UNAVAILABLE;
		}
		from = false;
		s->in = false;
		s->approved = false;
		break;
	case XC_SUB_IN_SUBSCRIBE:
		/* A.3.1: already allowed, or pre-approved: answered for the user */
		if (from) {
			act |= XC_SUB_REPLY_SUBSCRIBED;
		} else if (s->approved) {
			act |= XC_SUB_REPLY_SUBSCRIBED | XC_SUB_SEND_PRESENCE;
			from = true;
			s->approved = false;
		} else if (!s->in) {
			act |= XC_SUB_FORWARD;
			s->in = true;
		}
		break;
	case XC_SUB_IN_UNSUBSCRIBE:
		/* A.3.2: the contact no longer wants the user's presence, or withdraws its request
		 */
		if (from || s->in)
			act |= XC_SUB_FORWARD;
		from = false;
		s->in = false;
		break;
	case XC_SUB_IN_SUBSCRIBED:
		/* A.3.3: only an answer to our own request counts */
		if (s->out) {
			act |= XC_SUB_FORWARD;
			to = true;
			s->out = false;
		}
		break;
	case XC_SUB_IN_UNSUBSCRIBED:
		/* A.3.4: the contact refuses our request, or ends our subscription */
		if (to || s->out)
			act |= XC_SUB_FORWARD;
		to = false;
		s->out = false;
		break;
	}
	s->sub = make(to, from);
	if (old.sub != s->sub || old.out != s->out || old.in != s->in ||
	    old.approved != s->approved || old.listed != s->listed) {
		act |= XC_SUB_CHANGED;
		/* a push says what the roster shows: subscription, ask, approved */
		if (s->listed && (old.sub != s->sub || old.out != s->out ||
		                  old.approved != s->approved || old.listed != s->listed))
			act |= XC_SUB_PUSH;
	}
	return act;
}
