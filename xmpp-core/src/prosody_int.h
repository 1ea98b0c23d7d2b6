/* prosody_int.h - what prosody.c and prosody_vcard.c share. */
#ifndef XC_PROSODY_INT_H
#define XC_PROSODY_INT_H

#include <jansson.h>

#include "import.h"

struct cm_xml_node;

/* vcard-temp from mod_vcard's stored stanza: children is the JSON array Prosody keeps under the
 * key "" of the vcard store (each element {"name", "attr", "__array": [children]}, text as
 * strings). *out: the <vCard xmlns='vcard-temp'/> as XML text (owned). 0, -EINVAL (not a
 * stanza Prosody wrote: a name, text or depth XML or this reader cannot take), -ENOMEM. */
int xc_prosody__vcard_from_table(const json_t *children, char **out);

/* Any element Prosody keeps in that shape, as mod_private does (one row per element: el is
 * {"name", "attr": {"xmlns", ...}, "__array"}), as a tree: *out owned. 0, -EINVAL (not such an
 * element, or nested deeper than the stream parser takes), -ENOMEM. */
int xc_prosody__element_from_table(const json_t *el, struct cm_xml_node **out);

/* vcard-temp from mod_vcard_legacy's PEP: vcard4 (the newest urn:xmpp:vcard4 item's payload, or
 * NULL) and the avatar (base64 and its type, from urn:xmpp:avatar:data and :metadata, or NULL)
 * as PHOTO. Properties vcard-temp has no place for are left out. Same returns. */
int xc_prosody__vcard_from_vcard4(const char *vcard4, const char *photo_b64, const char *photo_type,
                                  char **out);

/* The same from the payloads of the newest items of the PEP nodes urn:xmpp:vcard4,
 * urn:xmpp:avatar:data and urn:xmpp:avatar:metadata (each NULL when there is none); *out stays
 * NULL when there is neither a vCard4 nor an avatar. Same returns. */
int xc_prosody__vcard_from_pep(const char *vcard4, const char *avatar_data, const char *avatar_meta,
                               char **out);

/* The pieces of a document that xep227_doc.c builds alike, from what XEP-0227 writes in
 * Prosody's shapes: */

/* One contact (bare JID contact) as an item of roster, from an object of Prosody's roster item
 * ({"subscription", "ask", "name", "groups", "approved"}); what cannot be carried is noted under
 * jid. 0 or -ENOMEM. */
int xc_prosody__roster_item(json_t *roster, const char *contact, json_t *v, const char *jid,
                            struct xc_import_notes *notes);

/* The requests not answered (the keys of the object pend): on the roster's item of the contact,
 * else into requests. 0 or -ENOMEM. */
int xc_prosody__pending(json_t *roster, json_t *requests, json_t *pend, const char *jid,
                        struct xc_import_notes *notes);

/* A PEP node's entry (with an empty "items"), configured as cfg says in Prosody's names
 * (access_model, persist_items, max_items, roster_groups_allowed; NULL: defaults). NULL when
 * the node cannot be carried (noted; *rc set on failure to note). */
json_t *xc_prosody__pep_node(const char *node, json_t *cfg, const char *jid,
                             struct xc_import_notes *notes, int *rc);

/* Each node of pep keeps the newest of its items, as many as it keeps (noted). 0 or -ENOMEM. */
int xc_prosody__pep_trim(json_t *pep, const char *jid, struct xc_import_notes *notes);

/* Private XML storage (XEP-0049) on its way into a document: one element per namespace, the
 * first found of each; what cannot come is counted by why, for one note each. Starts zeroed. */
struct xc_prosody__private {
	json_t *byns;    /* namespace -> the element as XML text (owned; NULL until the first) */
	size_t reserved; /* in no namespace, or in one no element may be kept in */
	size_t twice;    /* in a namespace taken by an element before it */
	size_t unfit;    /* not one element our writer and the import's parser take */
};

/* Take el (borrowed; written as XML with its namespace declared, which must parse again as one
 * element within the stream parser's limits, as the import parses it) into p, or count it as
 * left behind. 0 or -ENOMEM. */
int xc_prosody__private_add(struct xc_prosody__private *p, const struct cm_xml_node *el);

/* The document's "private" from p (sorted by namespace, as the export writes it; none when p
 * holds nothing) and a note for each reason something was left behind. 0 or -ENOMEM. */
int xc_prosody__private_put(const struct xc_prosody__private *p, json_t *doc, const char *jid,
                            struct xc_import_notes *notes);

/* Release what p holds. */
void xc_prosody__private_close(struct xc_prosody__private *p);

#endif
