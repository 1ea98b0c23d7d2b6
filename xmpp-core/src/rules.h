/* rules.h - RFC 6121 section 8.5's delivery rules for a local user, as pure decisions: given a
 * stanza's kind and type and what the user's sessions are (available, priority), what the
 * router is to do. The router (router.c) applies them; keeping them apart lets every case be
 * tested on its own (tests/xmpp-core/test_rules.c). */
#ifndef XC_RULES_H
#define XC_RULES_H

#include <stdbool.h>
#include <stddef.h>

#include "stanza.h"

enum xc_rule {
	XC_RULE_DELIVER, /* to the sessions marked chosen (bare) or to the session (full) */
	XC_RULE_OFFLINE, /* keep it for later (XEP-0160) */
	XC_RULE_BOUNCE,  /* answer service-unavailable */
	XC_RULE_DROP,    /* say nothing */
	XC_RULE_AS_BARE, /* a full JID without its session: as if to the bare JID */
};

/* What the router knows of one session of the user. */
struct xc_rule_session {
	bool available; /* sent available presence, not unavailable since */
	int priority;   /* of its last available presence (-128..127) */
};

/* A message of type (normal, chat, headline, groupchat, error) to the user's bare JID, whose
 * sessions are s[0..n) (RFC 6121 8.5.2): chat and normal go to the available sessions of the
 * highest non-negative priority (every one of a tie), or offline when there is none; headline
 * to every available session of non-negative priority, dropped when none; groupchat is
 * refused; an error goes where a chat would, or nowhere. chosen (n flags) says which sessions,
 * for XC_RULE_DELIVER. */
enum xc_rule xc_rule_message_bare(const char *type, const struct xc_rule_session *s, size_t n,
                                  bool *chosen);

/* A stanza of kind and type to a full JID whose session exists or not (RFC 6121 8.5.3):
 * delivered to it when it exists; otherwise normal, chat and headline messages as to the bare
 * JID, other messages dropped (errors) or refused (groupchat), IQ requests refused, IQ answers
 * and presence dropped. (Presence to a bare JID has the presence module's rules.) */
enum xc_rule xc_rule_full(enum xc_kind kind, const char *type, bool session_exists);

#endif
