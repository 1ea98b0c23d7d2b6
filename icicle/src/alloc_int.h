/* alloc_int.h - what alloc.c and alloc_port.c share: binding relay sockets in the configured
 * port range (private to icicle). */
#ifndef ICICLE_ALLOC_INT_H
#define ICICLE_ALLOC_INT_H

#include "alloc.h"

/* A socket of relay family idx (0 IPv4, 1 IPv6) bound to a free port of t's range, an even one
 * when even; with pair an even port N and a second socket on N+1 in *fd_next. Sockets are the
 * caller's. 0, -EADDRINUSE (no free port found), -EAFNOSUPPORT (family not configured), or
 * -errno. */
int icicle_alloc__bind(struct icicle_alloc_table *t, int idx, bool even, bool pair, bool df,
                       int *fd, int *fd_next);

/* Set DONT-FRAGMENT behaviour (IPv4 only) on a relay socket when df. */
void icicle_alloc__set_df(int fd, int af, bool df);

#endif
