/* fuzz_archive_import.c - libFuzzer target: the archive route's document
 * (xmpp-core/src/archive_import.c), which xmppctl import-prosody sends with another server's
 * archived messages.
 *
 * Whatever the bytes, the parser answers 0, -EINVAL (with a message, and nothing kept) or
 * -ENOMEM. A batch it keeps holds the account (user@host, on a host served) and 1 to
 * XC_ARCHIVE_IMPORT_MAX messages, each a <message/> written by our writer within the stanza
 * limit, that parses again, has the account on one side and the peer it is filed under on the
 * other, and keeps no stanza-id in the server's name. Anything else abort()s. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/cfg.h"
#include "cm/err.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "xmpp-core/src/archive_import.h"
#include "xmpp-core/src/jid.h"
#include "xmpp-core/src/server.h"
#include "xmpp-core/src/stanza.h"
#include "xmpp-core/src/xc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_STANZA 4096

static struct {
	struct xc_config cfg;
	struct cm_metrics *metrics;
	struct xc_server *srv;
	char dir[64];
} F;

static void setup(void)
{
	static char yaml[256];
	struct cm_cfg_errors errs;

	cm_log_setup("fuzz_archive_import", CM_LOG_ERROR, CM_LOG_TEXT, 2);
	snprintf(F.dir, sizeof(F.dir), "/tmp/fuzz_archive_import.XXXXXX");
	if (!mkdtemp(F.dir))
		abort();
	snprintf(yaml, sizeof(yaml),
	         "hosts: [localhost, example.org]\nworkers: 1\nstorage: {path: %s/db}\n", F.dir);
	cm_cfg_errors_init(&errs);
	if (cm_cfg_load_buffer(&xc_config_schema, &F.cfg, "fuzz", yaml, strlen(yaml), &errs) != 0)
		abort();
	cm_cfg_errors_free(&errs);
	if (cm_metrics_alloc(&F.metrics) != 0 || xc_server_init(&F.srv, &F.cfg, F.metrics, 1) != 0)
		abort();
}

/* One kept message, checked. */
static void check_row(const struct xc_archive_row *row, const struct xc_jid *user)
{
	struct cm_xml_node *st = NULL;
	struct xc_jid from = {0}, to = {0};

	if (!row->stanza || strlen(row->stanza) != row->len || row->len > MAX_STANZA ||
	    strncmp(row->stanza, "<message", 8) != 0 || !row->with || !*row->with ||
	    row->stamp_ms < 0)
		abort();
	if (xc_stanza_parse(row->stanza, row->len, &st) != 0 ||
	    xc_stanza_jid(st, "from", &from) != 0 || xc_stanza_jid(st, "to", &to) != 0)
		abort();
	if (!(xc_jid_bare_equal(&from, user) && strcmp(to.s, row->with) == 0) &&
	    !(xc_jid_bare_equal(&to, user) && strcmp(from.s, row->with) == 0))
		abort();
	for (const struct cm_xml_node *c = st->children; c; c = c->next) {
		const char *by = c->kind == CM_XML_ELEMENT && strcmp(c->name, "stanza-id") == 0 &&
		                         strcmp(c->ns, "urn:xmpp:sid:0") == 0
		                     ? cm_xml_attr(c, "by")
		                     : NULL;
		struct xc_jid j;

		if (by && xc_jid_parse(&j, by, strlen(by), NULL, 0) == 0) {
			if (xc_local_host(F.srv, xc_jid_domain(&j), j.dlen))
				abort(); /* an id in the server's name survived */
			xc_jid_free(&j);
		}
	}
	xc_jid_free(&from);
	xc_jid_free(&to);
	cm_xml_node_free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xc_archive_batch b;
	char err[CM_ERR_MAX] = "";
	struct xc_jid user;
	int rc;

	if (!F.srv)
		setup();
	if (size > 1 << 20)
		return 0;
	rc = xc_archive_import_parse((const char *)data, size, F.srv, MAX_STANZA, &b, err,
	                             sizeof(err));
	if (rc == -EINVAL || rc == -ENOMEM) {
		if (b.user || b.rows || b.n || (rc == -EINVAL && !err[0]))
			abort();
		return 0;
	}
	if (rc != 0 || !b.user || b.n == 0 || b.n > XC_ARCHIVE_IMPORT_MAX ||
	    xc_jid_parse(&user, b.user, strlen(b.user), NULL, 0) != 0 || !user.llen || user.rlen ||
	    !xc_local_host(F.srv, xc_jid_domain(&user), user.dlen))
		abort();
	for (size_t i = 0; i < b.n; i++)
		check_row(&b.rows[i], &user);
	xc_jid_free(&user);
	xc_archive_batch_clear(&b);
	return 0;
}
