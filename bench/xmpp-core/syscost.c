/* syscost.c - what the kernel calls a routed message needs cost on this machine, in CPU time.
 *
 * A chat message costs a server at least one read() from its sender's socket and one write()
 * to its recipient's, plus its share of epoll_wait() and of the wake-ups between loops. This
 * measures each alone, on loopback TCP with messages of a chat stanza's size, in the calling
 * thread's CPU time over batches (no clock read inside a batch); then what waking a sleeping
 * thread costs: two threads passing a token back and forth through two eventfds, each blocked
 * in epoll_wait() until its turn (as a worker loop sleeps), in the process's CPU time per
 * hand-over. Prints one JSON line.
 * Built and run by bench/xmpp-core/run.sh; docs/benchmarks.md quotes it. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MSG    250 /* bytes: a one-to-one chat message with a short body, TLS record included */
#define BATCH  200 /* messages written, then read, per batch (50 KB: within the socket buffers) */
#define ROUNDS 200

static double cpu_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp);
	return v[n / 2];
}

#define PINGS 20000

struct pong {
	int in, out; /* eventfds: wait on in, answer on out */
};

/* Wait for the token in epoll_wait(), take it, hand it back: PINGS times. */
static void *pong_run(void *arg)
{
	struct pong *p = arg;
	struct epoll_event ee = {.events = EPOLLIN}, got;
	int ep = epoll_create1(0);
	uint64_t v;

	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, p->in, &ee))
		die("epoll");
	for (int i = 0; i < PINGS; i++) {
		if (epoll_wait(ep, &got, 1, -1) != 1 || read(p->in, &v, sizeof(v)) != sizeof(v) ||
		    write(p->out, &v, sizeof(v)) != sizeof(v))
			die("pong");
	}
	close(ep);
	return NULL;
}

/* CPU time of the whole process per hand-over of a token between two sleeping threads. */
static double wake_us(void)
{
	int a = eventfd(0, 0), b = eventfd(0, 0);
	struct pong p = {.in = a, .out = b};
	struct epoll_event ee = {.events = EPOLLIN}, got;
	struct timespec t0, t1;
	int ep = epoll_create1(0);
	uint64_t v = 1;
	pthread_t th;

	if (a < 0 || b < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, b, &ee))
		die("eventfd");
	if (pthread_create(&th, NULL, pong_run, &p))
		die("pthread_create");
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	for (int i = 0; i < PINGS; i++) {
		if (write(a, &v, sizeof(v)) != sizeof(v) || epoll_wait(ep, &got, 1, -1) != 1 ||
		    read(b, &v, sizeof(v)) != sizeof(v))
			die("ping");
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	pthread_join(th, NULL);
	close(a);
	close(b);
	close(ep);
	return ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) /
	       (2.0 * PINGS);
}

int main(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t sl = sizeof(sa);
	static char buf[MSG * BATCH];
	double w[ROUNDS], r[ROUNDS], e[ROUNDS], n[ROUNDS], f[ROUNDS], t;
	int one = 1, l, c, s, ep, ev;
	struct epoll_event ee = {.events = EPOLLIN}, out[8];
	uint64_t v = 1;

	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof(sa)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&sa, &sl))
		die("listen");
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)))
		die("connect");
	s = accept(l, NULL, NULL);
	if (s < 0)
		die("accept");
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	ep = epoll_create1(0);
	ev = eventfd(0, EFD_NONBLOCK);
	ee.data.fd = s;
	if (ep < 0 || ev < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, s, &ee))
		die("epoll");
	memset(buf, 'x', sizeof(buf));
	for (int k = 0; k < ROUNDS; k++) {
		t = cpu_us();
		for (int i = 0; i < BATCH; i++)
			if (write(c, buf, MSG) != MSG)
				die("write");
		w[k] = (cpu_us() - t) / BATCH;
		t = cpu_us();
		for (int i = 0; i < BATCH; i++)
			if (epoll_wait(ep, out, 8, 0) != 1)
				die("epoll_wait");
		e[k] = (cpu_us() - t) / BATCH;
		t = cpu_us();
		for (int i = 0; i < BATCH; i++) {
			ssize_t got = read(s, buf, MSG);

			if (got != MSG) {
				fprintf(stderr, "read %zd at %d of round %d\n", got, i, k);
				die("read");
			}
		}
		r[k] = (cpu_us() - t) / BATCH;
		t = cpu_us();
		for (int i = 0; i < BATCH; i++)
			if (write(ev, &v, sizeof(v)) != sizeof(v) ||
			    read(ev, &v, sizeof(v)) != sizeof(v))
				die("eventfd");
		f[k] = (cpu_us() - t) / BATCH / 2;
		t = cpu_us();
		for (int i = 0; i < BATCH; i++)
			syscall(SYS_getppid);
		n[k] = (cpu_us() - t) / BATCH;
	}
	printf("{\"bytes\": %d, \"write_us\": %.2f, \"read_us\": %.2f, \"epoll_wait_us\": %.2f, "
	       "\"eventfd_us\": %.2f, \"null_syscall_us\": %.2f, \"wake_us\": %.2f}\n",
	       MSG, median(w, ROUNDS), median(r, ROUNDS), median(e, ROUNDS), median(f, ROUNDS),
	       median(n, ROUNDS), wake_us());
	return 0;
}
