/* pep_int.h - what pep.c (the service) and pep_caps.c (contacts' capabilities) share; private to
 * the PEP module. */
#ifndef XC_PEP_INT_H
#define XC_PEP_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "cm/xml.h"
#include "store.h"

struct xc_shard;

#define XC_PEP_NODE_MAX 1023 /* bytes in a node name or an item id */
#define XC_PEP_NOTIFY   "+notify"

#define XC_PEP_FORM_PUBLISH "http://jabber.org/protocol/pubsub#publish-options"
#define XC_PEP_FORM_CONFIG  "http://jabber.org/protocol/pubsub#node_config"

/* Read a publish-options or node configuration form (jabber:x:data whose FORM_TYPE is
 * form_type) into cfg (its set says which options it gave; other fields are left alone).
 * 0, or -EINVAL with *why (a constant) saying what is wrong, -ENOTSUP for an access model this
 * server has not (why says which). */
int xc_pep__options(const struct cm_xml_node *form, const char *form_type, struct xc_pep_cfg *cfg,
                    const char **why);

/* Whether a requester may read a node of this access model: owner (the account's own session),
 * sees (a contact with a subscription to the owner's presence), member (a contact in one of the
 * node's roster_groups_allowed). */
bool xc_pep__may_read(int access, bool owner, bool sees, bool member);

/* Whether one of groups is one of allowed (both: names each followed by '\n', NULL: none). */
bool xc_pep__member(const char *allowed, const char *groups);

/* The nodes a disco#info answer (a <query/>, borrowed) asks notifications for (features
 * NODE+notify), into *nodes (owned array of owned strings, *n of them). At most max nodes are
 * kept, each at most XC_PEP_NODE_MAX bytes. 0 or -ENOMEM. */
int xc_pep__notify_nodes(const struct cm_xml_node *query, size_t max, char ***nodes, size_t *n);

/* Call fn(sh, full, arg) for each contact resource (full JID) whose available presence reached
 * owner and whose capabilities ask for node's notifications. */
typedef void (*xc_pep__peer_fn)(struct xc_shard *sh, const char *full, void *arg);
void xc_pep__foreach_peer(struct xc_shard *sh, const char *owner, const char *node,
                          xc_pep__peer_fn fn, void *arg);

/* Whether the contact resource full, heard by owner, asks for node's notifications (full may
 * be one of the owner's resources too). */
bool xc_pep__wants(struct xc_shard *sh, const char *owner, const char *full, const char *node);

/* Whether the owner's resource full is to hear of node: its capabilities ask for the node, or
 * it announced none, or they are not learnt yet (it is not left out meanwhile). */
bool xc_pep__own_wants(struct xc_shard *sh, const char *owner, const char *full, const char *node);

/* Send full (a contact's resource, or one of the owner's) the newest item of each of owner's
 * nodes it may read and asks notifications for (pep.c). */
void xc_pep__send_last(struct xc_shard *sh, const char *owner, const char *full);

#endif
