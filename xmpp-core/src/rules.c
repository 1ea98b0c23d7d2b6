/* rules.c - RFC 6121 8.5's delivery decisions (rules.h). */
#include "rules.h"

#include <string.h>

enum xc_rule xc_rule_message_bare(const char *type, const struct xc_rule_session *s, size_t n,
                                  bool *chosen)
{
	bool headline = strcmp(type, "headline") == 0;
	int best = -1;
	size_t picked = 0;

	if (strcmp(type, "groupchat") == 0)
		return XC_RULE_BOUNCE;
	for (size_t i = 0; i < n; i++)
		if (s[i].available && s[i].priority > best)
			best = s[i].priority;
	for (size_t i = 0; i < n; i++) {
		/* negative priority: never a bare JID's message (RFC 6121 4.7.2.3) */
		chosen[i] =
		    s[i].available && s[i].priority >= 0 && (headline || s[i].priority == best);
		picked += chosen[i];
	}
	if (picked)
		return XC_RULE_DELIVER;
	if (headline || strcmp(type, "error") == 0)
		return XC_RULE_DROP;
	return XC_RULE_OFFLINE; /* normal, chat */
}

enum xc_rule xc_rule_full(enum xc_kind kind, const char *type, bool session_exists)
{
	if (session_exists)
		return XC_RULE_DELIVER;
	switch (kind) {
	case XC_MESSAGE:
		if (strcmp(type, "normal") == 0 || strcmp(type, "chat") == 0 ||
		    strcmp(type, "headline") == 0)
			return XC_RULE_AS_BARE;
		return strcmp(type, "groupchat") == 0 ? XC_RULE_BOUNCE : XC_RULE_DROP;
	case XC_IQ:
		return type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0)
		           ? XC_RULE_BOUNCE
		           : XC_RULE_DROP;
	default:
		return XC_RULE_DROP;
	}
}
