/* fake_resolver.h - for platypus's unit tests: a resolver under the test's control, so that a
 * name can resolve to several addresses in a chosen order without /etc/hosts or DNS. Included
 * by at most one file of a test binary (it defines getaddrinfo()).
 *
 * uv_getaddrinfo() and libcurl's threaded resolver call getaddrinfo() from their threads; this
 * definition in the test binary takes the C library's place (the dynamic linker binds the
 * libraries' references to the executable first). Set fake_addrs before starting a client. While
 * fake_addrs is set, "localhost" (a name the mock's certificate carries) resolves to its "address",
 * "port" pairs, in that order, "MOCK" standing for the port asked for; everything else goes to the
 * C library. No /etc/hosts, no DNS. */
#ifndef TEST_PP_FAKE_RESOLVER_H
#define TEST_PP_FAKE_RESOLVER_H

#include <dlfcn.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

typedef int (*gai_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
static const char *const *fake_addrs;
static const char *fake_name = "localhost";
static volatile unsigned fake_calls;

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
	static gai_fn real;
	struct addrinfo h = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV,
	                     .ai_socktype = SOCK_STREAM};
	struct addrinfo *head = NULL, **tail = &head, *one;

	if (!real)
		real = (gai_fn)dlsym(RTLD_NEXT, "getaddrinfo");
	if (!fake_addrs || !node || strcmp(node, fake_name))
		return real(node, service, hints, res);
	fake_calls++;
	for (const char *const *a = fake_addrs; *a; a += 2) {
		int r = real(a[0], strcmp(a[1], "MOCK") ? a[1] : service, &h, &one);

		if (r) {
			if (head)
				freeaddrinfo(head);
			return r;
		}
		*tail = one;
		while (*tail)
			tail = &(*tail)->ai_next;
	}
	*res = head;
	return 0;
}

#endif
