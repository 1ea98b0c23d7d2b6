/* avatar.h - one avatar, whichever way a client publishes it (XEP-0398): a vcard-temp PHOTO
 * (XEP-0153, what older clients and group chats use) and the PEP nodes of XEP-0084 (what
 * Conversations, Dino, Monal and Gajim use) are kept the same by the server, and the avatar's
 * hash is put into the account's available presence (vcard-temp:x:update).
 *
 * - PEP to vCard: a client's publish to urn:xmpp:avatar:metadata names the image by the SHA-1 of
 *   its bytes, kept as an item of urn:xmpp:avatar:data. When the hash matches, the image becomes
 *   the vCard's PHOTO; an empty metadata (the avatar taken away) removes the PHOTO. A vCard is
 *   read by anyone, a PEP node by whom its access model lets in: with pep.vcard_avatars "open"
 *   (the default) only an image whose data node is open to all is copied, and a private one
 *   takes the PHOTO out instead; "all" copies every one (as the XEP has it); "off" none.
 * - vCard to PEP: a vCard set with a new PHOTO (TYPE and BINVAL) is published as a data item
 *   (id: its SHA-1; a node made for it is open, as the vCard is) and then a metadata item, which
 *   the contacts are notified of. A vCard set without the PHOTO it had takes the avatar away.
 * - Presence: each available presence an account's session sends gets the hash of the vCard's
 *   PHOTO (the x element added, or its empty photo filled), unless the client says it has none
 *   (an empty <photo/>); when the avatar changes, each available session's presence is sent
 *   again with the new hash.
 *
 * The hash of each account's PHOTO is kept in the store beside its vCard and read with the
 * roster (user.h). A vCard stored before (or imported) gets it at the account's next login.
 * Everything runs on the account's home shard. */
#ifndef XC_AVATAR_H
#define XC_AVATAR_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/xml.h"
#include "jid.h"

#define XC_NS_AVATAR_DATA  "urn:xmpp:avatar:data"
#define XC_NS_AVATAR_META  "urn:xmpp:avatar:metadata"
#define XC_NS_VCARD_UPDATE "vcard-temp:x:update"
#define XC_NS_AVATAR_CONV  "urn:xmpp:pep-vcard-conversion:0"
#define XC_AVATAR_HASH_LEN 40 /* hex digits of a SHA-1 */

/* pep.vcard_avatars, in the configuration's order */
enum xc_avatar_mode {
	XC_AVATAR_OPEN, /* PEP avatars open to all become the vCard's PHOTO */
	XC_AVATAR_ALL,  /* every PEP avatar does */
	XC_AVATAR_OFF,  /* the two stay apart; presence is left as the client sent it */
};

struct xc_c2s;
struct xc_shard;
struct xc_user;

/* An image: its SHA-1 (hex; "" for none), its media type, and its bytes in base64 without
 * whitespace. */
struct xc_avatar {
	char hash[XC_AVATAR_HASH_LEN + 1];
	char *type;   /* owned, may be NULL */
	char *b64;    /* owned, NULL for none */
	size_t bytes; /* decoded */
};

void xc_avatar_clear(struct xc_avatar *a); /* releases what a owns; a is "none" after */

/* --- what the XML says (avatar.c) ------------------------------------------------------------ */

/* The image of a <vCard xmlns='vcard-temp'/>'s first PHOTO with a BINVAL (whitespace in it
 * ignored). *out is "none" when there is no such PHOTO. 0, -EINVAL (a BINVAL that is not base64,
 * or an empty one: *out none), -ENOMEM. */
int xc_avatar_from_vcard(const struct cm_xml_node *vcard, struct xc_avatar *out);

/* The image of base64 text b64 (len bytes, whitespace ignored), of media type type (may be
 * NULL). 0, -EINVAL (not base64, or empty), -ENOMEM. */
int xc_avatar_from_b64(const char *b64, size_t len, const char *type, struct xc_avatar *out);

/* The info a metadata payload (<metadata xmlns='urn:xmpp:avatar:metadata'/>) points at in the
 * data node: the first without a url. 0 with *id and *type (borrowed from meta; *type may be
 * NULL), -ENOENT when meta has no info at all (the avatar is taken away), -EINVAL when none can
 * be read here (only urls, or an info without a 40-digit id). */
int xc_avatar_meta_info(const struct cm_xml_node *meta, const char **id, const char **type);

/* Make vcard's PHOTO the image a (none: no PHOTO). *changed: whether vcard differs now.
 * 0 or -ENOMEM (vcard may be half changed: drop it). */
int xc_avatar_set_photo(struct cm_xml_node *vcard, const struct xc_avatar *a, bool *changed);

/* The data and metadata payloads publishing a (not none), new roots owned by the caller.
 * 0 or -ENOMEM. */
int xc_avatar_payloads(const struct xc_avatar *a, struct cm_xml_node **data,
                       struct cm_xml_node **meta);

/* Put hash (the account's avatar; "" for none, NULL for not known) into an available presence,
 * as XEP-0398 4 says: an x with an empty <photo/> is left alone (the client has no avatar to
 * show); otherwise the photo says hash. With hash "" or NULL nothing is added, and only a photo
 * that says old (the hash the server put there before, may be NULL) is emptied. 0 or -ENOMEM. */
int xc_avatar_stamp(struct cm_xml_node *presence, const char *hash, const char *old);

/* --- keeping both the same (avatar_sync.c) --------------------------------------------------- */

struct cm_metrics;
struct xc_avatars;

/* The conversions' metrics, registered in metrics (borrowed); *out owned by the caller
 * (xc_avatars_free). 0, -ENOMEM, or the registration's error. */
int xc_avatars_alloc(struct xc_avatars **out, struct cm_metrics *metrics);
void xc_avatars_free(struct xc_avatars *a); /* accepts NULL */

/* The server's pep.vcard_avatars. */
enum xc_avatar_mode xc_avatar_mode(const struct xc_shard *sh);

/* The owner's session published meta (borrowed; a metadata payload) to urn:xmpp:avatar:metadata
 * and it was stored: the vCard follows. */
void xc_avatar_pep_published(struct xc_shard *sh, const struct xc_jid *owner,
                             const struct cm_xml_node *meta);

/* The owner's session set vcard (borrowed) and it was stored with the hash of photo: the PEP
 * nodes follow when the image is not the one u has (u->avatar), and the presence of u's
 * sessions carries the new hash. */
void xc_avatar_vcard_set(struct xc_shard *sh, struct xc_user *u, const struct xc_avatar *photo);

/* u's roster was read and its vCard's hash is not known (a vCard stored before the hashes were,
 * or imported): read the vCard and keep its hash. */
void xc_avatar_learn(struct xc_shard *sh, struct xc_user *u);

#endif
