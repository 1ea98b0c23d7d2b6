/* fuzz_caps.c - libFuzzer target: XEP-0115 verification strings of disco#info answers
 * (xmpp-core/src/caps.c), which contacts send and the server checks.
 *
 * Whatever the answer, the result is a hash (28 characters of base64) or one of the errors
 * caps.h names; and the order of the answer's children never matters: the same answer with its
 * children (and each form's fields and values) reversed gives the same result. Any breach
 * abort()s. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp-core/src/caps.h"
#include "xmpp-core/src/stanza.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reverse n's children, and theirs down to depth levels. */
static void reverse(struct cm_xml_node *n, int depth)
{
	struct cm_xml_node *c = n->children, *next;

	if (depth == 0 || n->kind != CM_XML_ELEMENT)
		return;
	n->last = c;
	n->children = NULL;
	for (; c; c = next) {
		next = c->next;
		c->next = n->children;
		c->prev = NULL;
		if (n->children)
			n->children->prev = c;
		n->children = c;
		reverse(c, depth - 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cm_xml_node *q = NULL;
	char a[64], b[64];
	int ra, rb;

	if (size > 1 << 16 || xc_stanza_parse((const char *)data, size, &q) != 0)
		return 0;
	ra = xc_caps_ver(q, a, sizeof(a));
	if (ra != 0 && ra != -EINVAL && ra != -E2BIG && ra != -ENOMEM)
		abort();
	if (ra == 0 && strlen(a) != 28)
		abort();
	reverse(q, 3); /* query, its forms, their fields (the values of a field too) */
	rb = xc_caps_ver(q, b, sizeof(b));
	if (ra != rb || (ra == 0 && strcmp(a, b) != 0))
		abort();
	cm_xml_node_free(q);
	return 0;
}
