/* cm/srclimit.h - connections counted per source address, with a cap per source.
 *
 * A listener asks before it keeps an accepted connection (cm_srclimit_take()) and gives the
 * count back when the connection closes (cm_srclimit_release()), so that one address cannot hold
 * every connection slot of the listener. icicle's TCP/TLS listeners (one table for all worker
 * threads) and every cm_http server (admin ports, platypus's REST API) use it.
 *
 * The source is the client's IP address: an IPv4 address, an IPv4-mapped IPv6 address
 * (::ffff:a.b.c.d) as the IPv4 address it is, and an IPv6 address by its /64, since one
 * customer (a home, a phone's network attachment) usually holds a whole /64. Other address
 * families are not counted.
 *
 * The table holds one entry per source that has connections open: its size follows the open
 * connections, never the address space of whoever connects. Entries are found by a hash seeded
 * per table, so that nobody outside can aim many addresses at one chain.
 *
 * Thread-safe: one mutex, taken once per accept and once per close, never per read.
 */
#ifndef CM_SRCLIMIT_H
#define CM_SRCLIMIT_H

#include <stddef.h>
#include <sys/socket.h>

struct cm_srclimit;

/* A table allowing max_per_source connections per source (0: no cap, and nothing is counted).
 * 0 or -ENOMEM. */
int cm_srclimit_alloc(struct cm_srclimit **out, unsigned max_per_source);
void cm_srclimit_free(struct cm_srclimit *t); /* accepts NULL */

/* Count one more connection from sa (borrowed; sa_family tells its size). 0, -EDQUOT (the source
 * already holds max_per_source: refuse the connection; nothing was counted), -ENOMEM (nothing
 * counted either). Every 0 must be matched by one cm_srclimit_release() with the same address. */
int cm_srclimit_take(struct cm_srclimit *t, const struct sockaddr *sa);

/* Give back one connection counted by cm_srclimit_take(). */
void cm_srclimit_release(struct cm_srclimit *t, const struct sockaddr *sa);

/* Connections counted for sa's source now. */
unsigned cm_srclimit_count(struct cm_srclimit *t, const struct sockaddr *sa);

/* Sources with at least one connection counted. */
size_t cm_srclimit_sources(struct cm_srclimit *t);

/* The source of sa as text for logs: "192.0.2.1", "2001:db8:1:2::/64", "?" for other families.
 * out gets at most len bytes, NUL included (48 always suffice). */
void cm_srclimit_format(const struct sockaddr *sa, char *out, size_t len);

#endif
