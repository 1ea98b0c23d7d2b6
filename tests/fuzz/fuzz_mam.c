/* fuzz_mam.c - libFuzzer target: archive queries and preferences as a client writes them
 * (xmpp-core/src/mam_query.c), and XEP-0082 times.
 *
 * The bytes are a stanza in jabber:client; its first child is read as a query and as
 * preferences. Either is refused with a known code and a text, or taken with every value
 * inside its bounds; a time either fails or prints back to the same instant. Any breach
 * abort()s; leaks show under the sanitizers. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cm/err.h"
#include "xmpp-core/src/mam_int.h"
#include "xmpp-core/src/stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_PAGE 50

static void query(const struct cm_xml_node *q)
{
	struct xc_mam__query mq;
	char err[CM_ERR_MAX] = "";
	int rc = xc_mam__query_parse(q, MAX_PAGE, &mq, err, sizeof(err));

	if (rc) {
		if ((rc != -EINVAL && rc != -ENOTSUP && rc != -ENOMEM) ||
		    (rc != -ENOMEM && !err[0]) || mq.queryid || mq.aq.with || mq.aq.ids)
			abort();
		return;
	}
	if (mq.aq.max > MAX_PAGE || mq.aq.nids > MAX_PAGE ||
	    (mq.queryid && strlen(mq.queryid) > XC_MAM_QUERYID_MAX))
		abort();
	for (size_t i = 0; i < mq.aq.nids; i++)
		if (!*mq.aq.ids[i] || strlen(mq.aq.ids[i]) > XC_MAM_ID_MAX)
			abort();
	xc_mam__query_clear(&mq);
}

static void prefs(const struct cm_xml_node *p)
{
	struct xc_archive_prefs ap;
	struct cm_xml_node *back;
	char err[CM_ERR_MAX] = "";
	int rc = xc_mam__prefs_parse(p, &ap, err, sizeof(err));

	if (rc) {
		if ((rc != -EINVAL && rc != -ENOMEM) || ap.always || ap.never)
			abort();
		return;
	}
	if (ap.def < 0 || ap.def > 2 || ap.nalways + ap.nnever > XC_MAM_PREFS_MAX)
		abort();
	back = xc_mam__prefs_build(&ap, 0);
	cm_xml_node_free(back);
	xc_archive_prefs_clear(&ap);
}

static void times(const uint8_t *data, size_t size)
{
	char s[64], out[40];
	int64_t ms, again;

	if (size >= sizeof(s))
		return;
	memcpy(s, data, size);
	s[size] = '\0';
	if (xc_mam__parse_time(s, &ms) != 0 || ms < 0 || ms > 253402300799999LL)
		return;
	xc_mam__format_time(ms, out, sizeof(out));
	if (xc_mam__parse_time(out, &again) != 0 || again != ms)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_xml_node *st;
	const struct cm_xml_node *first;

	times(data, size);
	if (xc_stanza_parse((const char *)data, size, &st) != 0)
		return 0;
	first = cm_xml_child(st, NULL, NULL);
	if (first) {
		query(first);
		prefs(first);
	}
	cm_xml_node_free(st);
	return 0;
}
