/* caps.h - the verification string of entity capabilities (XEP-0115 5): the SHA-1 of a
 * disco#info answer's identities, features and extended forms (XEP-0128), as the server's own
 * caps hash is announced and as a contact's is checked before its answer is shared. */
#ifndef XC_CAPS_H
#define XC_CAPS_H

#include <stddef.h>

#include "cm/xml.h"

#define XC_NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define XC_NS_DATA       "jabber:x:data"

/* The base64 SHA-1 of query's (a disco#info <query/>, borrowed) verification string into out
 * (len bytes). -EINVAL when the answer is ill-formed by XEP-0115 5.4 (an identity or feature
 * twice, two forms of one FORM_TYPE, a FORM_TYPE with two different values: such an answer is
 * never shared); -E2BIG past 1024 identities, features, forms, or fields or values of a form;
 * -ENOBUFS, -ENOMEM. A form without a hidden FORM_TYPE does not count, as 5.4 says. */
int xc_caps_ver(const struct cm_xml_node *query, char *out, size_t len);

#endif
