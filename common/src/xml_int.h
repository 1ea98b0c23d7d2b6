/* xml_int.h - cm_xml internals shared by the tree, writer and parser files. */
#ifndef CM_XML_INT_H
#define CM_XML_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/xml.h"

/* Allocate an element whose strings are copied into the same allocation. prefix may be NULL,
 * ns must not be. No validation: the parser's strings come from expat, the builders check. */
struct cm_xml_node *cm_xml__elem_alloc(const char *prefix, size_t plen, const char *name,
                                       size_t nlen, const char *ns, size_t nslen);

/* A text node holding a copy of text. */
struct cm_xml_node *cm_xml__text_alloc(const char *text, size_t len);

/* An attribute; ns and prefix may be NULL (both or neither). */
struct cm_xml_attr *cm_xml__attr_alloc(const char *prefix, size_t plen, const char *name,
                                       size_t nlen, const char *ns, size_t nslen, const char *value,
                                       size_t vlen);

/* A namespace declaration; prefix may be NULL. */
struct cm_xml_nsdecl *cm_xml__nsdecl_alloc(const char *prefix, const char *uri);

/* Link child (a root) as the last child of parent. Cannot fail. */
void cm_xml__append(struct cm_xml_node *parent, struct cm_xml_node *child);

/* Free a list of attributes / declarations. */
void cm_xml__attrs_free(struct cm_xml_attr *a);
void cm_xml__nsdecls_free(struct cm_xml_nsdecl *d);

/* True if s[0..n) is UTF-8 made only of characters XML 1.0 allows (the Char production). */
bool cm_xml__chars_valid(const char *s, size_t n);

#endif
