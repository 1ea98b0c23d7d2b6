/* fuzz_import.c - libFuzzer target: the import document (xc_import_parse()) and Prosody's rows
 * turned into one (xc_prosody_doc()).
 *
 * The first byte chooses: even, the rest is a document for the import route; odd, the rest is
 * rows of Prosody's table, one per line as store TAB key TAB type TAB value (store "~offline":
 * an offline message, its key the time it came; "~pep_NODE": an item of NODE; "~archive": a
 * message of mod_mam's archive, its key the time), whose document (if one comes out) then goes
 * to the import route as xmppctl sends it, and whose archive goes through the cutter: each
 * message sent, in requests of JSON holding what they say, or left behind. Results must be
 * documented codes; a document accepted must hold a bare account JID, no more contacts than a
 * roster holds and only the subscription states RFC 6121 allows; a document written from rows must
 * be a JSON object naming the account. Anything else abort()s. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "xmpp-core/src/import.h"
#include "xmpp-core/src/prosody.h"
#include "xmpp-core/src/roster.h"
#include "xmpp-core/src/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ROWS_MAX 64

static void check_import(const char *text, size_t len)
{
	struct xc_store_req *r = xc_store_req_new(XC_STORE_ACCOUNT_IMPORT, NULL, NULL, NULL);
	struct xc_import_summary sum;
	char err[CM_ERR_MAX];
	int rc;

	if (!r)
		return;
	/* one iteration: a password in the document costs no real PBKDF2 here */
	static const struct xc_import_limits lim = {.iter = 1,
	                                            .max_offline = 8,
	                                            .max_stanza = 4096,
	                                            .max_nodes = 8,
	                                            .max_items = 4,
	                                            .max_payload = 4096,
	                                            .max_private = 4,
	                                            .max_private_bytes = 1024};

	rc = xc_import_parse(text, len, &lim, r, &sum, err, sizeof(err));
	if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
		abort();
	if (rc == 0) {
		if (!r->user || !strchr(r->user, '@') || strchr(r->user, '/') || !sum.hashes)
			abort();
		if (r->nitems > XC_ROSTER_MAX_ITEMS || sum.roster + sum.requests != r->nitems ||
		    sum.blocked != r->njids || sum.offline != r->nmsgs ||
		    r->nmsgs > lim.max_offline)
			abort();
		for (size_t i = 0; i < r->nmsgs; i++)
			if (!r->msgs[i].stanza || strncmp(r->msgs[i].stanza, "<message", 8) != 0)
				abort();
		for (size_t i = 0; r->pep && i < r->pep->nitems; i++) {
			const struct xc_pep_item *it = &r->pep->items[i];

			if (!it->node || !it->id || !it->payload || it->payload[0] != '<' ||
			    strlen(it->payload) > lim.max_payload || it->access < 0 ||
			    it->access > 3 || (it->access == XC_PEP_ROSTER) != (it->groups != NULL))
				abort();
		}
		if (sum.pep_items != (r->pep ? r->pep->nitems : 0) || sum.pep_nodes > lim.max_nodes)
			abort();
		if (sum.vcard != (r->stanza != NULL) ||
		    (r->stanza &&
		     (strncmp(r->stanza, "<vCard", 6) != 0 || strlen(r->stanza) > lim.max_payload)))
			abort();
		if (sum.private_ns != r->npriv || r->npriv > lim.max_private)
			abort();
		for (size_t i = 0; i < r->npriv; i++) {
			const struct xc_private_item *p = &r->priv[i];

			if (!p->ns || !*p->ns || !p->xml || p->xml[0] != '<' ||
			    strlen(p->xml) > lim.max_private_bytes)
				abort();
			for (size_t j = 0; j < i; j++)
				if (strcmp(r->priv[j].ns, p->ns) == 0)
					abort();
		}
		for (size_t i = 0; i < r->nitems; i++) {
			const struct xc_sub_state *s = &r->items[i].st;
			bool seen = s->sub == XC_SUB_TO || s->sub == XC_SUB_BOTH;
			bool sees = s->sub == XC_SUB_FROM || s->sub == XC_SUB_BOTH;

			if ((s->out && seen) || ((s->in || s->approved) && sees) ||
			    r->items[i].ngroups > XC_ROSTER_MAX_GROUPS || !r->items[i].contact)
				abort();
		}
		for (int h = 0; h < XC_SCRAM_NHASH; h++)
			if ((sum.hashes & (1u << h)) && r->creds[h].iter == 0)
				abort();
	}
	xc_store_req_free(r);
}

/* The archive cutter's requests: JSON of the account with n messages, each a stamp and a
 * message. */
static int check_request(void *arg, const char *body, size_t len, size_t n)
{
	json_t *d = json_loadb(body, len, 0, NULL), *list = json_object_get(d, "messages");

	(void)arg;
	if (!json_is_object(d) ||
	    strcmp(json_string_value(json_object_get(d, "jid")) ?: "", "user@example.org") ||
	    json_array_size(list) != n || n == 0 || n > 4 || len > 64 * 1024)
		abort();
	for (size_t i = 0; i < n; i++) {
		const json_t *m = json_array_get(list, i);
		const char *st = json_string_value(json_object_get(m, "stanza"));

		if (!json_is_integer(json_object_get(m, "stamp_ms")) || !st ||
		    strncmp(st, "<message", 8) != 0 || strlen(st) > 4096)
			abort();
	}
	json_decref(d);
	return 0;
}

/* The items of the store "archive" through the cutter: every one is sent or left behind. */
static void check_archive(const struct xc_prosody_item *items, size_t n)
{
	static const struct xc_prosody_mam_limits lim = {4096, 4, 64 * 1024};
	struct xc_prosody_mam *m = NULL;
	size_t mine = 0, sent, left;
	int rc = xc_prosody_mam_alloc(&m, "user@example.org", &lim, check_request, NULL);

	for (size_t i = 0; i < n && !rc; i++)
		if (strcmp(items[i].store, XC_PROSODY_MAM_STORE) == 0) {
			mine++;
			rc = xc_prosody_mam_add(m, &items[i]);
		}
	rc = rc ? rc : xc_prosody_mam_end(m);
	if (rc && rc != -ENOMEM)
		abort();
	xc_prosody_mam_counts(m, &sent, &left);
	if (!rc && sent + left != mine)
		abort();
	xc_prosody_mam_free(m);
}

static void check_rows(const char *text, size_t len)
{
	struct xc_prosody_row rows[ROWS_MAX];
	struct xc_prosody_item items[ROWS_MAX];
	struct xc_import_notes notes = {0};
	char *copy = malloc(len + 1), *line, *save = NULL, *doc = NULL;
	char err[CM_ERR_MAX];
	size_t n = 0, nitems = 0;
	int rc;

	if (!copy)
		return;
	memcpy(copy, text, len);
	copy[len] = '\0';
	for (line = strtok_r(copy, "\n", &save); line && n < ROWS_MAX && nitems < ROWS_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		char *f[4] = {line, NULL, NULL, NULL};

		for (int k = 1; k < 4 && f[k - 1]; k++) {
			f[k] = strchr(f[k - 1], '\t');
			if (f[k])
				*f[k]++ = '\0';
		}
		if (strcmp(f[0], "~offline") == 0)
			items[nitems++] =
			    (struct xc_prosody_item){"offline", "1", f[1] ? atoll(f[1]) : 0,
			                             f[2] ? f[2] : "", f[3] ? f[3] : ""};
		else if (strcmp(f[0], "~archive") == 0)
			items[nitems++] = (struct xc_prosody_item){
			    XC_PROSODY_MAM_STORE, "k", f[1] ? atoll(f[1]) : 0, f[2] ? f[2] : "",
			    f[3] ? f[3] : ""};
		else if (strncmp(f[0], "~pep_", 5) == 0)
			items[nitems++] = (struct xc_prosody_item){
			    f[0] + 1, f[1] ? f[1] : "", 0, f[2] ? f[2] : "", f[3] ? f[3] : ""};
		else
			rows[n++] = (struct xc_prosody_row){f[0], f[1] ? f[1] : "",
			                                    f[2] ? f[2] : "", f[3] ? f[3] : ""};
	}
	check_archive(items, nitems);
	rc = xc_prosody_doc("user@example.org", rows, n, items, nitems, &doc, &notes, err,
	                    sizeof(err));
	if (rc != 0 && rc != -EINVAL && rc != -ENOMEM)
		abort();
	if (rc == 0) {
		json_t *d = json_loads(doc, 0, NULL);

		if (!json_is_object(d) ||
		    strcmp(json_string_value(json_object_get(d, "jid")) ?: "", "user@example.org"))
			abort();
		json_decref(d);
		check_import(doc, strlen(doc));
	} else if (doc)
		abort();
	free(doc);
	xc_import_notes_free(&notes);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > 1 << 16)
		return 0;
	if (data[0] & 1)
		check_rows((const char *)data + 1, size - 1);
	else
		check_import((const char *)data + 1, size - 1);
	return 0;
}
