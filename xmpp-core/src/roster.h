/* roster.h - the roster IQ (RFC 6121 2, with XEP-0237 versioning) and roster pushes. */
#ifndef XC_ROSTER_H
#define XC_ROSTER_H

#include "cm/xml.h"

#define XC_ROSTER_MAX_ITEMS  1000 /* contacts in one roster */
#define XC_ROSTER_MAX_GROUPS 32   /* groups of one contact */
#define XC_ROSTER_MAX_NAME   1024 /* bytes of a contact's name or of a group's */

struct xc_shard;
struct xc_user;
struct xc_c2s;
struct xc_contact;

/* A jabber:iq:roster IQ from session c about its own account. Takes iq. */
void xc_roster_iq(struct xc_shard *sh, struct xc_c2s *c, struct cm_xml_node *iq);

/* Tell the sessions of u that asked for the roster that ct changed (ct NULL: contact was
 * removed), at the roster's current version. */
void xc_roster_push(struct xc_shard *sh, struct xc_user *u, const struct xc_contact *ct,
                    const char *contact);

#endif
