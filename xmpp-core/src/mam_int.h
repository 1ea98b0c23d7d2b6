/* mam_int.h - what the archive's files share (mam.c, mam_query.c): reading queries and
 * preferences from client XML, which is hostile input, and writing forms, preferences and
 * times. Everything here is pure: no shard, no store. */
#ifndef XC_MAM_INT_H
#define XC_MAM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cm/xml.h"
#include "store.h"

#define XC_NS_RSM     "http://jabber.org/protocol/rsm"
#define XC_NS_FORWARD "urn:xmpp:forward:0"
#define XC_NS_DELAY   "urn:xmpp:delay"

#define XC_MAM_QUERYID_MAX 256  /* bytes of a queryid echoed in every result */
#define XC_MAM_ID_MAX      128  /* bytes of an archive id a client may name */
#define XC_MAM_PREFS_MAX   1000 /* JIDs in the always and never lists together */

/* A query as the client asked it. */
struct xc_mam__query {
	char *queryid; /* owned; NULL when the client gave none */
	struct xc_archive_query aq;
};

/* Read <query xmlns='urn:xmpp:mam:2'/> (its form and RSM set) into out, the page size capped at
 * max_page (also the size when none is asked). 0; -EINVAL for a malformed query (bad-request),
 * -ENOTSUP for what the server does not do (feature-not-implemented), -ENOMEM; err says what,
 * in words a client may be shown. out is left empty on failure. */
int xc_mam__query_parse(const struct cm_xml_node *q, unsigned max_page, struct xc_mam__query *out,
                        char *err, size_t errlen);
void xc_mam__query_clear(struct xc_mam__query *q);

/* An XEP-0082 date and time ("2024-05-01T12:00:00Z", "...:00.123+02:00") as Unix ms. 0 or
 * -EINVAL. */
int xc_mam__parse_time(const char *s, int64_t *ms);

/* Unix ms as an XEP-0082 date and time in UTC with milliseconds into out (at least 32 bytes). */
void xc_mam__format_time(int64_t ms, char *out, size_t len);

/* The query form (an IQ get's answer): <query xmlns=mam:2><x type='form'>...</x></query>.
 * NULL without memory. */
struct cm_xml_node *xc_mam__form(void);

/* Read <prefs/> of an IQ set into out (bare JIDs, normalised). 0, -EINVAL (err says why),
 * -ENOMEM. */
int xc_mam__prefs_parse(const struct cm_xml_node *prefs, struct xc_archive_prefs *out, char *err,
                        size_t errlen);

/* <prefs xmlns=mam:2/> saying p (NULL: nothing of the user's own, def the default). */
struct cm_xml_node *xc_mam__prefs_build(const struct xc_archive_prefs *p, int def);

/* Whether a message with peer (a bare JID) goes into the archive under preferences p (NULL:
 * the user has none, def applies): never-listed peers never, always-listed ones always, others
 * by the default (roster: in_roster). */
bool xc_mam__wanted(const struct xc_archive_prefs *p, int def, const char *peer, bool in_roster);

#endif
