/* bind2.c - XEP-0386 Bind 2 (bind2.h). */
#include "bind2.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "c2s.h"
#include "carbons.h"
#include "cm/crypto.h"
#include "cm/log.h"
#include "cm/metrics.h"
#include "csi.h"
#include "jid.h"
#include "server.h"
#include "session.h"
#include "sm.h"

int xc_bind2_resource(const char *tag, const char *agent, const char *gen, char *out, size_t len)
{
	unsigned char h[CM_SHA256_LEN];
	size_t tl = tag ? strlen(tag) : 0, chars = 0;
	char suffix[17];

	for (size_t i = 0; i < tl; i++)
		chars += ((unsigned char)tag[i] & 0xC0) != 0x80; /* code points, not bytes */
	if (chars > XC_BIND2_TAG_MAX || tl + 1 + sizeof(suffix) > len)
		return -EINVAL;
	if (agent && cm_crypto_sha256(agent, strlen(agent), h) == 0)
		snprintf(suffix, sizeof(suffix), "%02x%02x%02x%02x", h[0], h[1], h[2], h[3]);
	else
		snprintf(suffix, sizeof(suffix), "%s", gen);
	snprintf(out, len, "%s%s%s", tl ? tag : "", tl ? "." : "", suffix);
	return 0;
}

int xc_bind2_features(const struct xc_c2s *c, struct cm_xml_node *inline_el)
{
	const struct xc_config *cfg = c->sh->srv->cfg;
	struct cm_xml_node *b, *in, *f;
	int r = cm_xml_node_new_child(&b, inline_el, "bind", XC_NS_BIND2);

	r = r ? r : cm_xml_node_new_child(&in, b, "inline", NULL);
	if (!r && cfg->sm.enabled) {
		r = cm_xml_node_new_child(&f, in, "feature", NULL);
		r = r ? r : cm_xml_node_set_attr(f, "var", XC_NS_SM);
	}
	if (!r) {
		r = cm_xml_node_new_child(&f, in, "feature", NULL);
		r = r ? r : cm_xml_node_set_attr(f, "var", XC_NS_CARBONS);
	}
	if (!r && cfg->csi.enabled) {
		r = cm_xml_node_new_child(&f, in, "feature", NULL);
		r = r ? r : cm_xml_node_set_attr(f, "var", XC_NS_CSI);
	}
	return r;
}

int xc_bind2_bind(struct xc_c2s *c, const struct cm_xml_node *bind, const char *agent,
                  struct cm_buf *out)
{
	const struct cm_xml_node *tn = cm_xml_child(bind, "tag", XC_NS_BIND2), *sm, *cb;
	const char *tag = tn ? cm_xml_text(tn) : NULL;
	char res[XC_BIND2_RES_MAX], gen[17];
	char *prepped = NULL;
	int r;

	xc_new_id(c->sh->srv, gen);
	if (xc_bind2_resource(tag, agent, gen, res, sizeof(res)) != 0 ||
	    xc_jid_resourceprep(res, strlen(res), &prepped, NULL, 0) != 0)
		return -EINVAL;
	r = xc_session_bind_resource(c, prepped);
	free(prepped);
	if (r)
		return r;
	cm_metrics_inc(c->sh->srv->m.bind2_bound);
	cm_buf_puts(out, "<bound xmlns='" XC_NS_BIND2 "'>");
	sm = cm_xml_child(bind, "enable", XC_NS_SM);
	if (sm)
		xc_sm_enable_inline(c, sm, out);
	cb = cm_xml_child(bind, "enable", XC_NS_CARBONS);
	if (cb)
		c->carbons = true;
	cm_buf_puts(out, "</bound>");
	CM_LOGD("bind2", "%s: bound %s inline%s%s", xc_c2s_peer(c), c->jid.s,
	        sm ? ", stream management" : "", cb ? ", carbons" : "");
	return 0;
}

void xc_bind2_after(struct xc_c2s *c, const struct cm_xml_node *bind)
{
	const struct cm_xml_node *in = cm_xml_child(bind, "inactive", XC_NS_CSI);

	if (in && c->sh->srv->cfg->csi.enabled && c->st == XC_C2S_BOUND)
		xc_csi_element(c, in);
}
