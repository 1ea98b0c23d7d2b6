/* plain_cache.c - verified PLAIN logins remembered as MACs (plain_cache.h). */
#include "plain_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cm/buf.h"
#include "cm/crypto.h"

struct entry {
	struct cm_map_node node;
	struct cm_list link; /* in fifo */
	unsigned char mac[XC_PLAIN_MAC];
};

int xc_plain_cache_init(struct xc_plain_cache *c, size_t cap)
{
	memset(c, 0, sizeof(*c));
	c->cap = cap;
	cm_list_init(&c->fifo);
	if (cm_crypto_random(c->key, sizeof(c->key)) != 0)
		return -EIO;
	return cm_map_init(&c->map, 64);
}

void xc_plain_cache_close(struct xc_plain_cache *c)
{
	struct cm_list *n;

	if (!c->fifo.next)
		return; /* never initialised */
	while ((n = cm_list_pop(&c->fifo)) != NULL) {
		struct entry *e = cm_list_entry(n, struct entry, link);

		cm_map_remove(&c->map, &e->node);
		free(e);
	}
	cm_map_close(&c->map);
	cm_crypto_wipe(c->key, sizeof(c->key));
}

int xc_plain_cache_mac(const struct xc_plain_cache *c, const char *account,
                       const struct xc_scram_creds *creds, const char *password, size_t len,
                       unsigned char mac[XC_PLAIN_MAC])
{
	struct cm_buf b;
	int r;

	/* each field with its length first, so that no two inputs read the same */
	cm_buf_init(&b, 0);
	r = cm_buf_printf(&b, "%zu:%s:%u:%u:", strlen(account), account, (unsigned)creds->iter,
	                  (unsigned)creds->salt_len);
	r = r ? r : cm_buf_append(&b, creds->salt, creds->salt_len);
	r = r ? r : cm_buf_append(&b, creds->stored_key, sizeof(creds->stored_key));
	r = r ? r : cm_buf_printf(&b, ":%zu:", len);
	r = r ? r : cm_buf_append(&b, password, len);
	r = r ? r : cm_crypto_hmac_sha256(c->key, sizeof(c->key), b.data, b.len, mac);
	cm_crypto_wipe(b.data, b.len);
	cm_buf_free(&b);
	return r ? -EIO : 0;
}

bool xc_plain_cache_has(const struct xc_plain_cache *c, const unsigned char mac[XC_PLAIN_MAC])
{
	uint64_t h = cm_map_hash(&c->map, mac, XC_PLAIN_MAC);

	for (struct cm_map_node *n = cm_map_first(&c->map, h); n; n = cm_map_next(n)) {
		struct entry *e = cm_list_entry(n, struct entry, node);

		if (cm_crypto_equal(e->mac, mac, XC_PLAIN_MAC))
			return true;
	}
	return false;
}

void xc_plain_cache_add(struct xc_plain_cache *c, const unsigned char mac[XC_PLAIN_MAC])
{
	struct entry *e;

	if (c->cap == 0 || xc_plain_cache_has(c, mac))
		return;
	if (cm_map_count(&c->map) >= c->cap) {
		/* full: the oldest makes room */
		struct cm_list *n = cm_list_pop(&c->fifo);

		e = cm_list_entry(n, struct entry, link);
		cm_map_remove(&c->map, &e->node);
	} else if (!(e = malloc(sizeof(*e)))) {
		return;
	}
	memcpy(e->mac, mac, XC_PLAIN_MAC);
	cm_map_insert(&c->map, &e->node, cm_map_hash(&c->map, mac, XC_PLAIN_MAC));
	cm_list_insert_tail(&c->fifo, &e->link);
}
