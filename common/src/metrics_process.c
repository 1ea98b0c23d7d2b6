/* metrics_process.c - the standard process_* metrics, read from /proc at scrape time. */
#include "metrics_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* The fields of /proc/self/stat we use (see proc(5); numbering from 1). */
struct proc_stat {
	unsigned long long utime;     /* 14, clock ticks */
	unsigned long long stime;     /* 15, clock ticks */
	unsigned long long starttime; /* 22, clock ticks after boot */
	unsigned long long vsize;     /* 23, bytes */
	unsigned long long rss;       /* 24, pages */
};

/* Read a small /proc file with plain read(2): no stdio buffer, no allocation, safe to call with
 * the registry lock held. Returns the length or a negative errno. */
static ssize_t read_small(const char *path, char *buf, size_t size)
{
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		ssize_t n = read(fd, buf + len, size - 1 - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return (ssize_t)len;
}

static int read_stat(struct proc_stat *st)
{
	char buf[1024], *p, *end;

	if (read_small("/proc/self/stat", buf, sizeof(buf)) <= 0)
		return -EIO;
	/* The command name (field 2) may hold spaces and parentheses: fields resume after the
	 * last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	p++;
	memset(st, 0, sizeof(*st));
	for (int field = 3; field <= 24; field++) {
		unsigned long long v;

		while (*p == ' ')
			p++;
		if (!*p)
			return -EIO;
		if (field == 3) {
			p++; /* the state letter */
			continue;
		}
		v = strtoull(p, &end, 10);
		if (end == p) {
			/* some fields (priority, nice) may be negative; only ours matter */
			v = (unsigned long long)strtoll(p, &end, 10);
			if (end == p)
				return -EIO;
		}
		p = end;
		switch (field) {
		case 14:
			st->utime = v;
			break;
		case 15:
			st->stime = v;
			break;
		case 22:
			st->starttime = v;
			break;
		case 23:
			st->vsize = v;
			break;
		case 24:
			st->rss = v;
			break;
		default:
			break;
		}
	}
	return 0;
}

static double clk_tck(void)
{
	long t = sysconf(_SC_CLK_TCK);

	return t > 0 ? (double)t : 100.0;
}

static double cpu_seconds(void *arg)
{
	struct proc_stat st;

	(void)arg;
	if (read_stat(&st))
		return NAN;
	return (double)(st.utime + st.stime) / clk_tck();
}

static double resident_bytes(void *arg)
{
	struct proc_stat st;
	long page = sysconf(_SC_PAGESIZE);

	(void)arg;
	if (read_stat(&st) || page <= 0)
		return NAN;
	return (double)st.rss * (double)page;
}

static double virtual_bytes(void *arg)
{
	struct proc_stat st;

	(void)arg;
	if (read_stat(&st))
		return NAN;
	return (double)st.vsize;
}

static double open_fds(void *arg)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	double n = 0;

	(void)arg;
	if (!d)
		return NAN;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own descriptor is listed too */
}

static double max_fds(void *arg)
{
	struct rlimit rl;

	(void)arg;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return NAN;
	return rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
}

/* Boot time, in seconds since the epoch, from the "btime" line of /proc/stat. The file grows
 * with the CPU count, so it is scanned in chunks rather than read whole. */
static int boot_time(unsigned long long *out)
{
	char buf[4096];
	size_t keep = 0;
	int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC), r = -EIO;

	if (fd < 0)
		return -errno;
	for (;;) {
		ssize_t n = read(fd, buf + keep, sizeof(buf) - 1 - keep);
		char *line, *nl;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		buf[keep + (size_t)n] = '\0';
		line = buf;
		while ((nl = strchr(line, '\n')) != NULL) {
			if (strncmp(line, "btime ", 6) == 0) {
				*out = strtoull(line + 6, NULL, 10);
				r = 0;
				goto out;
			}
			line = nl + 1;
		}
		/* Carry the unfinished line over; a line longer than the buffer (the "intr"
		 * counts) is dropped, which is fine since it is not the one we want. */
		keep = strlen(line);
		if (keep >= sizeof(buf) / 2)
			keep = 0;
		else
			memmove(buf, line, keep);
	}
out:
	close(fd);
	return r;
}

static double start_time(void *arg)
{
	struct proc_stat st;
	unsigned long long btime;

	(void)arg;
	if (read_stat(&st) || boot_time(&btime))
		return NAN;
	return (double)btime + (double)st.starttime / clk_tck();
}

/* The time this process's threads spent runnable but waiting for a CPU, ns: the second field of
 * each /proc/self/task/TID/schedstat. -ENOENT on a kernel without schedstats. */
static int cpu_wait_ns(uint64_t *out)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	uint64_t sum = 0;
	int seen = 0;

	if (!d)
		return -errno;
	while ((e = readdir(d)) != NULL) {
		char path[64], buf[128], *p, *end;
		unsigned long long v;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%.20s/schedstat", e->d_name);
		if (read_small(path, buf, sizeof(buf)) <= 0)
			continue;     /* the thread ended in between, or no schedstats */
		p = strchr(buf, ' '); /* after the time on a CPU */
		if (!p)
			continue;
		v = strtoull(p + 1, &end, 10);
		if (end == p + 1)
			continue;
		sum += v;
		seen = 1;
	}
	closedir(d);
	if (!seen)
		return -ENOENT;
	*out = sum;
	return 0;
}

/* A thread that ends takes its share with it; the counter keeps the highest sum it reported,
 * so that it never goes down (arg: the registry, whose lock the renderer holds). */
static double cpu_wait_seconds(void *arg)
{
	struct cm_metrics *m = arg;
	uint64_t ns;

	if (cpu_wait_ns(&ns))
		return NAN;
	if (ns > m->cpu_wait_ns)
		m->cpu_wait_ns = ns;
	return (double)m->cpu_wait_ns / 1e9;
}

int cm_metrics_add_process(struct cm_metrics *m)
{
	uint64_t ns;
	int r;

	r = cm_metrics__counter_fn(m, "process_cpu_seconds_total",
	                           "Total user and system CPU time spent in seconds.", cpu_seconds,
	                           NULL, NULL);
	r = r ? r
	      : cm_metrics_gauge_fn(m, "process_resident_memory_bytes",
	                            "Resident memory size in bytes.", resident_bytes, NULL, NULL);
	r = r ? r
	      : cm_metrics_gauge_fn(m, "process_virtual_memory_bytes",
	                            "Virtual memory size in bytes.", virtual_bytes, NULL, NULL);
	r = r ? r
	      : cm_metrics_gauge_fn(m, "process_open_fds", "Number of open file descriptors.",
	                            open_fds, NULL, NULL);
	r = r ? r
	      : cm_metrics_gauge_fn(m, "process_max_fds",
	                            "Maximum number of open file descriptors.", max_fds, NULL,
	                            NULL);
	r = r ? r
	      : cm_metrics_gauge_fn(m, "process_start_time_seconds",
	                            "Start time of the process since unix epoch in seconds.",
	                            start_time, NULL, NULL);
	/* only where the kernel keeps schedstats (CONFIG_SCHED_INFO) */
	if (r == 0 && cpu_wait_ns(&ns) == 0)
		r = cm_metrics__counter_fn(
		    m, "process_cpu_wait_seconds_total",
		    "Time the process's threads spent runnable but waiting for "
		    "a CPU, in seconds (a rise is contention for the machine's "
		    "CPUs, not slower work).",
		    cpu_wait_seconds, m, NULL);
	return r;
}
