/* fuzz_platypus_push.c - the component's stanza handling: a component stream carrying the input,
 * each stanza read as a XEP-0357 publish (platypus/src/component_push.c) and validated. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cm/xml.h"
#include "platypus/src/component_int.h"
#include "platypus/src/notif.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_open(void *arg, const struct cm_xml_node *h)
{
	(void)arg;
	(void)h;
	return 0;
}

static int on_stanza(void *arg, struct cm_xml_node *st)
{
	struct pp_notif n;
	const char *secret;
	char err[256];

	(void)arg;
	pp_notif_init(&n);
	if (pp_component__push_parse(st, &n, &secret, err, sizeof(err)) == 0)
		pp_notif_validate(&n, err, sizeof(err));
	pp_notif_free(&n);
	cm_xml_node_free(st);
	return 0;
}

static int on_close(void *arg)
{
	(void)arg;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char hdr[] = "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' "
	                          "xmlns='jabber:component:accept' id='x'>";
	struct cm_xml_parser_cfg cfg = {
	    .content_ns = CM_XML_NS_COMPONENT,
	    .open_cb = on_open,
	    .stanza_cb = on_stanza,
	    .close_cb = on_close,
	};
	struct cm_xml_parser *p;

	if (cm_xml_parser_alloc(&p, &cfg) != 0)
		return 0;
	if (cm_xml_parser_feed(p, hdr, sizeof(hdr) - 1) == 0)
		cm_xml_parser_feed(p, data, size);
	cm_xml_parser_free(p);
	return 0;
}
