/* avatar.c - what vCards, avatar metadata and presence say of an avatar (avatar.h). */
#include "avatar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/crypto.h"
#include "vcard.h"

void xc_avatar_clear(struct xc_avatar *a)
{
	free(a->type);
	free(a->b64);
	memset(a, 0, sizeof(*a));
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

int xc_avatar_from_b64(const char *b64, size_t len, const char *type, struct xc_avatar *out)
{
	unsigned char md[CM_SHA1_LEN];
	struct cm_buf bin;
	char *txt;
	size_t n = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	txt = malloc(len + 1);
	if (!txt)
		return -ENOMEM;
	for (size_t i = 0; i < len; i++)
		if (!is_space(b64[i]))
			txt[n++] = b64[i];
	txt[n] = '\0';
	if (n == 0) {
		free(txt);
		return -EINVAL;
	}
	cm_buf_init(&bin, 0);
	rc = cm_crypto_b64_decode(&bin, txt, n, CM_B64_STD);
	if (!rc && bin.len == 0)
		rc = -EINVAL;
	rc = rc ? rc : cm_crypto_sha1(bin.data, bin.len, md);
	if (rc) {
		cm_buf_free(&bin);
		free(txt);
		return rc == -EIO ? -ENOMEM : rc;
	}
	for (size_t i = 0; i < CM_SHA1_LEN; i++)
		snprintf(out->hash + 2 * i, 3, "%02x", md[i]);
	out->bytes = bin.len;
	out->b64 = txt;
	cm_buf_free(&bin);
	if (type && *type && !(out->type = strdup(type))) {
		xc_avatar_clear(out);
		return -ENOMEM;
	}
	return 0;
}

/* The text of n's child name (vcard-temp), or NULL. */
static const char *child_text(const struct cm_xml_node *n, const char *name, size_t *len)
{
	const struct cm_xml_node *c = cm_xml_child(n, name, XC_NS_VCARD);
	const struct cm_xml_node *t = c ? c->children : NULL;

	if (!t || t->kind != CM_XML_TEXT || t->next)
		return NULL;
	*len = t->text_len;
	return t->text;
}

int xc_avatar_from_vcard(const struct cm_xml_node *vcard, struct xc_avatar *out)
{
	memset(out, 0, sizeof(*out));
	for (const struct cm_xml_node *ph = cm_xml_child(vcard, "PHOTO", XC_NS_VCARD); ph;
	     ph = cm_xml_child_next(ph, "PHOTO", XC_NS_VCARD)) {
		size_t blen = 0, tlen = 0;
		const char *bin = child_text(ph, "BINVAL", &blen);
		const char *type = child_text(ph, "TYPE", &tlen);
		char *t = NULL;
		int rc;

		if (!bin)
			continue; /* EXTVAL, or nothing usable */
		/* TYPE is a short MIME type: copied bounded, NUL-terminated */
		if (type && tlen > 0 && tlen < 128 && !(t = strndup(type, tlen)))
			return -ENOMEM;
		rc = xc_avatar_from_b64(bin, blen, t, out);
		free(t);
		return rc;
	}
	return 0;
}

static bool hex40(const char *s)
{
	size_t n = 0;

	for (; s && s[n]; n++)
		if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f') ||
		      (s[n] >= 'A' && s[n] <= 'F')))
			return false;
	return n == XC_AVATAR_HASH_LEN;
}

int xc_avatar_meta_info(const struct cm_xml_node *meta, const char **id, const char **type)
{
	const struct cm_xml_node *info = cm_xml_child(meta, "info", XC_NS_AVATAR_META);

	if (!info)
		return -ENOENT;
	for (; info; info = cm_xml_child_next(info, "info", XC_NS_AVATAR_META)) {
		if (cm_xml_attr(info, "url"))
			continue; /* kept elsewhere: not the server's to copy */
		*id = cm_xml_attr(info, "id");
		*type = cm_xml_attr(info, "type");
		return hex40(*id) ? 0 : -EINVAL;
	}
	return -EINVAL;
}

/* A new <NAME>text</NAME> under parent (vcard-temp). */
static int text_child(struct cm_xml_node *parent, const char *name, const char *text)
{
	struct cm_xml_node *n;
	int rc = cm_xml_node_new_child(&n, parent, name, XC_NS_VCARD);

	return rc ? rc : cm_xml_node_add_text(n, text, strlen(text));
}

int xc_avatar_set_photo(struct cm_xml_node *vcard, const struct xc_avatar *a, bool *changed)
{
	struct cm_xml_node *ph, *next;
	struct xc_avatar have;
	int rc;

	*changed = false;
	rc = xc_avatar_from_vcard(vcard, &have);
	if (rc == -ENOMEM)
		return rc;
	if (!rc && strcmp(have.hash, a->hash) == 0 &&
	    strcmp(have.type ? have.type : "", a->type ? a->type : "") == 0) {
		xc_avatar_clear(&have);
		return 0; /* the same image already */
	}
	xc_avatar_clear(&have);
	for (ph = cm_xml_child(vcard, "PHOTO", XC_NS_VCARD); ph; ph = next) {
		next = cm_xml_child_next(ph, "PHOTO", XC_NS_VCARD);
		cm_xml_node_remove(ph);
		cm_xml_node_free(ph);
		*changed = true;
	}
	if (!a->b64)
		return 0;
	*changed = true;
	rc = cm_xml_node_new_child(&ph, vcard, "PHOTO", XC_NS_VCARD);
	if (!rc && a->type)
		rc = text_child(ph, "TYPE", a->type);
	return rc ? rc : text_child(ph, "BINVAL", a->b64);
}

int xc_avatar_payloads(const struct xc_avatar *a, struct cm_xml_node **data,
                       struct cm_xml_node **meta)
{
	struct cm_xml_node *info;
	char bytes[24];
	int rc;

	*data = *meta = NULL;
	snprintf(bytes, sizeof(bytes), "%zu", a->bytes);
	rc = cm_xml_node_new(data, "data", XC_NS_AVATAR_DATA);
	rc = rc ? rc : cm_xml_node_add_text(*data, a->b64, strlen(a->b64));
	rc = rc ? rc : cm_xml_node_new(meta, "metadata", XC_NS_AVATAR_META);
	rc = rc ? rc : cm_xml_node_new_child(&info, *meta, "info", NULL);
	rc = rc ? rc : cm_xml_node_set_attr(info, "bytes", bytes);
	rc = rc ? rc : cm_xml_node_set_attr(info, "id", a->hash);
	/* XEP-0084 requires a type: a vCard that named none is taken for PNG, its usual one */
	rc = rc ? rc : cm_xml_node_set_attr(info, "type", a->type ? a->type : "image/png");
	if (rc) {
		cm_xml_node_free(*data);
		cm_xml_node_free(*meta);
		*data = *meta = NULL;
	}
	return rc;
}

int xc_avatar_stamp(struct cm_xml_node *presence, const char *hash, const char *old)
{
	struct cm_xml_node *x = cm_xml_child(presence, "x", XC_NS_VCARD_UPDATE), *photo, *t;
	bool have = hash && *hash;
	const char *said;
	int rc;

	photo = x ? cm_xml_child(x, "photo", XC_NS_VCARD_UPDATE) : NULL;
	said = photo ? cm_xml_text(photo) : NULL;
	if (photo && (!said || !*said))
		return 0; /* "no avatar to show": the client's to say */
	if (!have) {
		/* nothing to put there; a hash the server put there before goes */
		if (!photo || !old || !*old || strcmp(said, old) != 0)
			return 0;
		while ((t = photo->children) != NULL) {
			cm_xml_node_remove(t);
			cm_xml_node_free(t);
		}
		return 0;
	}
	if (said && strcmp(said, hash) == 0)
		return 0;
	if (!x && (rc = cm_xml_node_new_child(&x, presence, "x", XC_NS_VCARD_UPDATE)) != 0)
		return rc;
	if (photo) {
		while ((t = photo->children) != NULL) {
			cm_xml_node_remove(t);
			cm_xml_node_free(t);
		}
	} else if ((rc = cm_xml_node_new_child(&photo, x, "photo", NULL)) != 0) {
		return rc;
	}
	return cm_xml_node_add_text(photo, hash, strlen(hash));
}
