/* prosody_int.h - what prosody.c and prosody_vcard.c share. */
#ifndef XC_PROSODY_INT_H
#define XC_PROSODY_INT_H

#include <jansson.h>

/* vcard-temp from mod_vcard's stored stanza: children is the JSON array Prosody keeps under the
 * key "" of the vcard store (each element {"name", "attr", "__array": [children]}, text as
 * strings). *out: the <vCard xmlns='vcard-temp'/> as XML text (owned). 0, -EINVAL (not a
 * stanza Prosody wrote: a name, text or depth XML or this reader cannot take), -ENOMEM. */
int xc_prosody__vcard_from_table(const json_t *children, char **out);

/* vcard-temp from mod_vcard_legacy's PEP: vcard4 (the newest urn:xmpp:vcard4 item's payload, or
 * NULL) and the avatar (base64 and its type, from urn:xmpp:avatar:data and :metadata, or NULL)
 * as PHOTO. Properties vcard-temp has no place for are left out. Same returns. */
int xc_prosody__vcard_from_vcard4(const char *vcard4, const char *photo_b64, const char *photo_type,
                                  char **out);

#endif
