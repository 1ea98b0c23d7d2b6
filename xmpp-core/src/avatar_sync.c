/* avatar_sync.c - the vCard's PHOTO and the PEP avatar kept the same, and presence told of it
 * (avatar.h). */
#include "avatar.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "c2s.h"
#include "cm/buf.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "pep.h"
#include "presence.h"
#include "server.h"
#include "stanza.h"
#include "store.h"
#include "user.h"
#include "vcard.h"
#include "xc.h"

struct avatar_metrics {
	struct cm_counter *to_vcard, *to_pep, *mismatch, *private_photo;
};

struct xc_avatars {
	struct avatar_metrics m;
};

static const struct cm_metric_def metric_defs[] = {
    CM_METRIC_COUNTER_DEF(struct avatar_metrics, to_vcard, "xmpp_avatar_conversions_total",
                          "Avatars copied between a vCard's PHOTO and PEP (XEP-0398), by what "
                          "happened.",
                          "result", "pep_to_vcard"),
    CM_METRIC_COUNTER_DEF(struct avatar_metrics, to_pep, "xmpp_avatar_conversions_total",
                          "Avatars copied between a vCard's PHOTO and PEP (XEP-0398), by what "
                          "happened.",
                          "result", "vcard_to_pep"),
    CM_METRIC_COUNTER_DEF(struct avatar_metrics, private_photo, "xmpp_avatar_conversions_total",
                          "Avatars copied between a vCard's PHOTO and PEP (XEP-0398), by what "
                          "happened.",
                          "result", "private_not_copied"),
    CM_METRIC_COUNTER_DEF(struct avatar_metrics, mismatch, "xmpp_avatar_conversions_total",
                          "Avatars copied between a vCard's PHOTO and PEP (XEP-0398), by what "
                          "happened.",
                          "result", "refused"),
};

int xc_avatars_alloc(struct xc_avatars **out, struct cm_metrics *metrics)
{
	struct xc_avatars *a = calloc(1, sizeof(*a));
	char err[CM_ERR_MAX];
	int r;

	*out = NULL;
	if (!a)
		return -ENOMEM;
	r = cm_metrics_register(metrics, &a->m, metric_defs,
	                        sizeof(metric_defs) / sizeof(metric_defs[0]), err, sizeof(err));
	if (r) {
		CM_LOGE("avatar", "metrics: %s", err);
		free(a);
		return r;
	}
	*out = a;
	return 0;
}

void xc_avatars_free(struct xc_avatars *a)
{
	free(a);
}

enum xc_avatar_mode xc_avatar_mode(const struct xc_shard *sh)
{
	return (enum xc_avatar_mode)sh->srv->cfg->pep.vcard_avatars;
}

/* Count in one of the conversions' counters (none on a server made without them). */
#define COUNT(sh, field)                                                                           \
	do {                                                                                       \
		if ((sh)->srv->avatars)                                                            \
			cm_metrics_inc((sh)->srv->avatars->m.field);                               \
	} while (0)

/* --- presence -------------------------------------------------------------------------------- */

/* u's avatar is now hash (copied): each available session's presence goes out again with it. */
static void changed(struct xc_shard *sh, struct xc_user *u, const char *hash)
{
	char *old = u->avatar, *now = strdup(hash);
	struct xc_c2s *c;

	if (!now)
		return; /* the next load reads it */
	u->avatar = now;
	/* the presence changes only from one image to another, or to or from none */
	if ((old && strcmp(old, now) == 0) || (!*now && (!old || !*old))) {
		free(old);
		return;
	}
	if (xc_avatar_mode(sh) != XC_AVATAR_OFF && u->rstate == XC_ROSTER_READY) {
		xc_user_foreach_session(u, c)
		{
			struct cm_xml_node *st;

			if (!c->available || !c->presence ||
			    cm_xml_node_copy(&st, c->presence) != 0)
				continue;
			if (xc_avatar_stamp(st, now, old) != 0) {
				cm_xml_node_free(st);
				continue;
			}
			xc_presence_broadcast(sh, &c->jid, st); /* takes st */
		}
	}
	free(old);
}

/* The account (bare JID) has the avatar hash now, if it is in memory with its roster (and,
 * only_unknown, has none known: a hash learnt does not overwrite one set meanwhile). */
static void changed_for(struct xc_shard *sh, const char *owner, const char *hash, bool only_unknown)
{
	struct xc_jid j;
	struct xc_user *u;

	if (xc_jid_parse(&j, owner, strlen(owner), NULL, 0) != 0)
		return;
	u = xc_user_find(sh, &j);
	/* not READY: a load on its way reads the new hash (the store answers in order) */
	if (u && u->rstate == XC_ROSTER_READY && (!only_unknown || !u->avatar))
		changed(sh, u, hash);
	xc_jid_free(&j);
}

/* --- PEP to vCard ---------------------------------------------------------------------------- */

struct to_vcard {
	char *owner; /* owned: bare JID */
	char id[XC_AVATAR_HASH_LEN + 1];
	char *type;              /* owned, may be NULL: the info's */
	struct xc_avatar avatar; /* what the PHOTO becomes (none: no PHOTO) */
};

static void to_vcard_free(struct to_vcard *t)
{
	if (!t)
		return;
	free(t->owner);
	free(t->type);
	xc_avatar_clear(&t->avatar);
	free(t);
}

static void on_photo_stored(struct xc_store_req *r)
{
	struct to_vcard *t = r->arg;
	struct xc_shard *sh = r->loop->data;

	if (r->err) {
		CM_LOGW("avatar", "%s: cannot store the vCard with the new avatar: %s", t->owner,
		        strerror(-r->err));
	} else {
		COUNT(sh, to_vcard);
		changed_for(sh, t->owner, t->avatar.hash, false);
	}
	to_vcard_free(t);
	xc_store_req_free(r);
}

static void on_vcard_read(struct xc_store_req *r)
{
	struct to_vcard *t = r->arg;
	struct xc_shard *sh = r->loop->data;
	struct cm_xml_node *v = NULL;
	struct xc_store_req *w = NULL;
	struct cm_buf b;
	bool diff = false;
	int rc = r->err;

	cm_buf_init(&b, 0);
	if (!rc && r->found && r->stanza)
		rc = xc_stanza_parse(r->stanza, strlen(r->stanza), &v);
	else if (!rc)
		rc = cm_xml_node_new(&v, "vCard", XC_NS_VCARD);
	rc = rc ? rc : xc_avatar_set_photo(v, &t->avatar, &diff);
	if (!rc && diff)
		rc = cm_xml_write(&b, v, NULL);
	if (!rc && diff && !b.data)
		rc = -ENOMEM;
	if (!rc && diff && b.len > sh->srv->cfg->pep.max_payload)
		rc = -EMSGSIZE;
	if (!rc && diff) {
		w = xc_store_req_new(XC_STORE_VCARD_SET, sh->loop, on_photo_stored, t);
		rc = w ? xc_store_req_set(&w->user, t->owner) : -ENOMEM;
		rc = rc ? rc : xc_store_req_set(&w->avatar, t->avatar.hash);
		if (!rc) {
			w->stanza = b.data; /* handed over */
			cm_buf_init(&b, 0);
			rc = xc_store_submit(sh->srv->store, w);
		}
		if (!rc)
			t = NULL; /* the write's */
		else
			xc_store_req_free(w);
	}
	if (rc)
		CM_LOGW("avatar", "%s: the vCard does not take the new avatar: %s", t->owner,
		        rc == -EMSGSIZE ? "it would be larger than pep.max_payload"
		                        : strerror(-rc));
	cm_buf_free(&b);
	cm_xml_node_free(v);
	to_vcard_free(t);
	xc_store_req_free(r);
}

/* Make the owner's vCard's PHOTO t->avatar. Takes t. */
static void update_vcard(struct xc_shard *sh, struct to_vcard *t)
{
	struct xc_store_req *r = xc_store_req_new(XC_STORE_VCARD_GET, sh->loop, on_vcard_read, t);

	if (!r || xc_store_req_set(&r->user, t->owner) != 0 ||
	    xc_store_submit(sh->srv->store, r) != 0) {
		CM_LOGW("avatar", "%s: cannot read the vCard for the new avatar", t->owner);
		xc_store_req_free(r);
		to_vcard_free(t);
	}
}

static void on_data(struct xc_shard *sh, int err, int access, const char *payload, void *arg)
{
	struct to_vcard *t = arg;
	struct cm_xml_node *d = NULL;
	const char *text;

	if (err) {
		CM_LOGI("avatar",
		        "%s: metadata names %s, which is not in %s: the vCard stays as it is",
		        t->owner, t->id, XC_NS_AVATAR_DATA);
		COUNT(sh, mismatch);
		to_vcard_free(t);
		return;
	}
	if (xc_avatar_mode(sh) == XC_AVATAR_OPEN && access != XC_PEP_OPEN) {
		COUNT(sh, private_photo); /* not for everyone's eyes: the PHOTO goes */
		update_vcard(sh, t);
		return;
	}
	if (xc_stanza_parse(payload, strlen(payload), &d) != 0 || strcmp(d->name, "data") != 0 ||
	    strcmp(d->ns, XC_NS_AVATAR_DATA) != 0 || !(text = cm_xml_text(d)) ||
	    xc_avatar_from_b64(text, strlen(text), t->type, &t->avatar) != 0 ||
	    strcasecmp(t->avatar.hash, t->id) != 0) {
		CM_LOGI("avatar",
		        "%s: the data item %s is not an image whose SHA-1 is its id: the "
		        "vCard stays as it is",
		        t->owner, t->id);
		COUNT(sh, mismatch);
		cm_xml_node_free(d);
		to_vcard_free(t);
		return;
	}
	cm_xml_node_free(d);
	update_vcard(sh, t);
}

void xc_avatar_pep_published(struct xc_shard *sh, const struct xc_jid *owner,
                             const struct cm_xml_node *meta)
{
	const char *id = NULL, *type = NULL;
	struct to_vcard *t;
	int rc;

	if (xc_avatar_mode(sh) == XC_AVATAR_OFF || !meta || strcmp(meta->name, "metadata") != 0 ||
	    strcmp(meta->ns, XC_NS_AVATAR_META) != 0)
		return;
	rc = xc_avatar_meta_info(meta, &id, &type);
	if (rc == -EINVAL)
		return; /* nothing this server keeps: the vCard stays as it is */
	t = calloc(1, sizeof(*t));
	if (!t || !(t->owner = strdup(owner->s)) ||
	    (rc == 0 && type && strlen(type) < 128 && !(t->type = strdup(type)))) {
		to_vcard_free(t);
		return;
	}
	if (rc == -ENOENT) {
		update_vcard(sh, t); /* taken away: no PHOTO either */
		return;
	}
	memcpy(t->id, id, XC_AVATAR_HASH_LEN);
	for (size_t i = 0; i < XC_AVATAR_HASH_LEN; i++) /* hashes compare in lower case */
		if (t->id[i] >= 'A' && t->id[i] <= 'F')
			t->id[i] = (char)(t->id[i] - 'A' + 'a');
	xc_pep_read_item(sh, owner->s, XC_NS_AVATAR_DATA, id, on_data, t);
}

/* --- vCard to PEP ---------------------------------------------------------------------------- */

struct to_pep {
	char *owner; /* owned */
	char hash[XC_AVATAR_HASH_LEN + 1];
	struct cm_xml_node *meta; /* owned: published once the data is */
};

static void to_pep_free(struct to_pep *t)
{
	if (!t)
		return;
	free(t->owner);
	cm_xml_node_free(t->meta);
	free(t);
}

static void on_meta_published(struct xc_shard *sh, int err, void *arg)
{
	struct to_pep *t = arg;

	if (err)
		CM_LOGW("avatar", "%s: cannot publish the vCard's avatar's metadata: %s", t->owner,
		        strerror(-err));
	else
		COUNT(sh, to_pep);
	to_pep_free(t);
}

static void on_data_published(struct xc_shard *sh, int err, void *arg)
{
	struct to_pep *t = arg;
	struct cm_xml_node *meta = t->meta;

	if (err) {
		CM_LOGW("avatar", "%s: cannot publish the vCard's avatar: %s", t->owner,
		        strerror(-err));
		to_pep_free(t);
		return;
	}
	t->meta = NULL;
	xc_pep_publish_for(sh, t->owner, XC_NS_AVATAR_META, t->hash, meta, XC_PEP_OPEN,
	                   on_meta_published, t);
}

void xc_avatar_vcard_set(struct xc_shard *sh, struct xc_user *u, const struct xc_avatar *photo)
{
	const char *old = u->avatar;
	struct cm_xml_node *data = NULL;
	struct to_pep *t = NULL;
	bool publish;

	/* an unknown old hash counts as another image; "none" over "unknown" says nothing */
	if (old ? strcmp(old, photo->hash) == 0 : !photo->b64) {
		if (!old)
			changed(sh, u, photo->hash);
		return;
	}
	publish = xc_avatar_mode(sh) != XC_AVATAR_OFF && xc_pep_enabled(sh->srv->pep) &&
	          (photo->b64 || (old && *old));
	if (publish && (!(t = calloc(1, sizeof(*t))) || !(t->owner = strdup(u->bare.s))))
		publish = false;
	if (publish && photo->b64) {
		memcpy(t->hash, photo->hash, sizeof(t->hash));
		if (xc_avatar_payloads(photo, &data, &t->meta) != 0)
			publish = false;
		else
			xc_pep_publish_for(sh, t->owner, XC_NS_AVATAR_DATA, t->hash, data,
			                   XC_PEP_OPEN, on_data_published, t);
	} else if (publish) {
		char id[17];

		/* the PHOTO went: an empty metadata takes the avatar away (XEP-0084 4.5) */
		xc_new_id(sh->srv, id);
		memcpy(t->hash, id, sizeof(id));
		if (cm_xml_node_new(&t->meta, "metadata", XC_NS_AVATAR_META) != 0)
			publish = false;
		else
			on_data_published(sh, 0, t);
	}
	if (!publish)
		to_pep_free(t);
	changed(sh, u, photo->hash);
}

/* --- hashes of vCards stored before they were kept ------------------------------------------ */

static void on_learn_stored(struct xc_store_req *r)
{
	xc_store_req_free(r);
}

static void on_learn_read(struct xc_store_req *r)
{
	struct xc_shard *sh = r->loop->data;
	struct cm_xml_node *v = NULL;
	struct xc_avatar a = {0};
	struct xc_store_req *w;

	if (r->err) {
		xc_store_req_free(r);
		return; /* the next load tries again */
	}
	/* no vCard, or one whose PHOTO cannot be read: no avatar */
	if (r->found && r->stanza && xc_stanza_parse(r->stanza, strlen(r->stanza), &v) == 0 &&
	    xc_avatar_from_vcard(v, &a) == -ENOMEM) {
		cm_xml_node_free(v);
		xc_store_req_free(r);
		return;
	}
	cm_xml_node_free(v);
	w = xc_store_req_new(XC_STORE_VCARD_HASH, sh->loop, on_learn_stored, NULL);
	if (!w || xc_store_req_set(&w->user, r->user) != 0 ||
	    xc_store_req_set(&w->avatar, a.hash) != 0 || xc_store_submit(sh->srv->store, w) != 0)
		xc_store_req_free(w);
	changed_for(sh, r->user, a.hash, true);
	xc_avatar_clear(&a);
	xc_store_req_free(r);
}

void xc_avatar_learn(struct xc_shard *sh, struct xc_user *u)
{
	struct xc_store_req *r;

	if (xc_avatar_mode(sh) == XC_AVATAR_OFF)
		return;
	r = xc_store_req_new(XC_STORE_VCARD_GET, sh->loop, on_learn_read, NULL);
	if (!r || xc_store_req_set(&r->user, u->bare.s) != 0 ||
	    xc_store_submit(sh->srv->store, r) != 0)
		xc_store_req_free(r);
}
