/* filter.h - the peer address policy: which addresses a client may relay to.
 *
 * Every address is compared as IPv6, IPv4 ones (and IPv4-mapped IPv6 ones, ::ffff:a.b.c.d, the
 * same thing to the kernel) as ::ffff:a.b.c.d, so a mapped address can never slip past an IPv4
 * rule. An address matching the allow list is allowed; otherwise one matching the deny list
 * (the built-in defaults of docs/icicle.md unless turned off, plus the configured ranges) is
 * denied; anything else is allowed. Port 0 is always denied. */
#ifndef ICICLE_FILTER_H
#define ICICLE_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct icicle_cidr {
	uint8_t addr[16]; /* network, host bits cleared */
	uint8_t bits;     /* prefix length over the IPv6 form */
};

struct icicle_filter {
	struct icicle_cidr *deny; /* owned */
	size_t ndeny;
	struct icicle_cidr *allow; /* owned */
	size_t nallow;
};

/* The built-in deny list, as text ("127.0.0.0/8", "::1/128", ...), NULL-terminated. */
extern const char *const icicle_filter_default_deny[];

/* Parse "ADDR/BITS" or "ADDR" (a host) into c. 0 or -EINVAL. */
int icicle_cidr_parse(const char *text, struct icicle_cidr *c);

/* Build a filter. with_defaults adds icicle_filter_default_deny to deny. 0, -EINVAL (an entry that
 * does not parse, named in err), -ENOMEM (cm/err.h). */
int icicle_filter_init(struct icicle_filter *f, bool with_defaults, const char *const *deny,
                       size_t ndeny, const char *const *allow, size_t nallow, char *err,
                       size_t errlen);
void icicle_filter_close(struct icicle_filter *f);

/* May a client relay to sa? (Port 0 never.) */
bool icicle_filter_allowed(const struct icicle_filter *f, const struct sockaddr *sa);

/* The same for the address alone, whatever the port (CreatePermission ignores ports). */
bool icicle_filter_allowed_ip(const struct icicle_filter *f, const struct sockaddr *sa);

#endif
