/* fuzz_avatar.c - libFuzzer target: what xmpp-core reads of an avatar in client XML
 * (xmpp-core/src/avatar.c): a vCard's PHOTO, avatar metadata, and the presence the hash is put
 * into.
 *
 * Whatever the element: a PHOTO read gives a 40-digit lower-case hash of a non-empty image or
 * none; writing that image back into the vCard changes nothing, taking it out leaves none and
 * putting it in again gives the same image; metadata names a 40-digit id or nothing; putting a
 * hash into presence twice is the same as once, and leaves the hash there unless the client's
 * own empty photo says otherwise. Any breach abort()s. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "xmpp-core/src/avatar.h"
#include "xmpp-core/src/stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define HASH "a9993e364706816aba3e25717850c26c9cd0d89d"

static void check(bool ok)
{
	if (!ok)
		abort();
}

static bool hex40(const char *s)
{
	if (strlen(s) != XC_AVATAR_HASH_LEN)
		return false;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return false;
	return true;
}

/* n as text; NULL without memory */
static char *text_of(const struct cm_xml_node *n)
{
	struct cm_buf b;

	cm_buf_init(&b, 0);
	if (cm_xml_write(&b, n, NULL) != 0 || !b.data) {
		cm_buf_free(&b);
		return NULL;
	}
	return (char *)b.data; /* NUL-terminated by the writer's buffer */
}

static void vcard(struct cm_xml_node *v)
{
	struct xc_avatar a, b, none = {0};
	bool changed;
	int rc = xc_avatar_from_vcard(v, &a);

	check(rc == 0 || rc == -EINVAL || rc == -ENOMEM);
	if (rc)
		return;
	check(a.b64 ? hex40(a.hash) && a.bytes > 0 : a.hash[0] == '\0');
	if (!a.b64)
		return;
	check(xc_avatar_set_photo(v, &a, &changed) == 0 && !changed);
	check(xc_avatar_set_photo(v, &none, &changed) == 0 && changed);
	check(xc_avatar_from_vcard(v, &b) == 0 && !b.b64);
	check(xc_avatar_set_photo(v, &a, &changed) == 0 && changed);
	check(xc_avatar_from_vcard(v, &b) == 0 && strcmp(a.hash, b.hash) == 0 &&
	      strcmp(a.b64, b.b64) == 0 && (a.type == NULL) == (b.type == NULL) &&
	      (!a.type || strcmp(a.type, b.type) == 0));
	xc_avatar_clear(&b);
	xc_avatar_clear(&a);
}

static void presence(struct cm_xml_node *p)
{
	struct cm_xml_node *x, *ph;
	char *once, *twice;

	if (xc_avatar_stamp(p, HASH, NULL) != 0)
		return;
	once = text_of(p);
	check(xc_avatar_stamp(p, HASH, NULL) == 0);
	twice = text_of(p);
	check(!once || !twice || strcmp(once, twice) == 0);
	free(once);
	free(twice);
	x = cm_xml_child(p, "x", XC_NS_VCARD_UPDATE);
	ph = x ? cm_xml_child(x, "photo", XC_NS_VCARD_UPDATE) : NULL;
	check(ph != NULL);
	check(!cm_xml_text(ph) || !*cm_xml_text(ph) || strcmp(cm_xml_text(ph), HASH) == 0);
	/* taken away: the server's hash goes, nothing else is added */
	check(xc_avatar_stamp(p, "", HASH) == 0);
	check(!cm_xml_text(ph) || strcmp(cm_xml_text(ph), HASH) != 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_xml_node *n = NULL;
	const char *id = NULL, *type = NULL;
	int rc;

	if (size > 1 << 16 || xc_stanza_parse((const char *)data, size, &n) != 0)
		return 0;
	rc = xc_avatar_meta_info(n, &id, &type);
	check(rc == 0 || rc == -ENOENT || rc == -EINVAL);
	check(rc != 0 || (id && strlen(id) == XC_AVATAR_HASH_LEN));
	vcard(n);
	presence(n);
	cm_xml_node_free(n);
	return 0;
}
