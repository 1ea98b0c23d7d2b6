/* sd.c - systemd notifications (see cm/sd.h); the only file that includes sd-daemon.h. */
#include "cm/sd.h"
#include "cm/buf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

/* sd_notify() returns > 0 when sent, 0 when there is no socket, < 0 on error. */
static int notify(const char *text)
{
	int r = sd_notify(0, text);

	return r < 0 ? r : 0;
}

int cm_sd_ready(const char *status)
{
	int r = status ? cm_sd_status("%s", status) : 0;

	return r ? r : notify("READY=1");
}

int cm_sd_reloading(void)
{
	return notify("RELOADING=1");
}

int cm_sd_stopping(const char *status)
{
	int r = notify("STOPPING=1");

	if (r == 0 && status)
		r = cm_sd_status("%s", status);
	return r;
}

int cm_sd_status(const char *fmt, ...)
{
	struct cm_buf b;
	va_list ap;
	int r;

	cm_buf_init(&b, 4096);
	r = cm_buf_puts(&b, "STATUS=");
	if (r == 0) {
		va_start(ap, fmt);
		r = cm_buf_vprintf(&b, fmt, ap);
		va_end(ap);
	}
	if (r == 0)
		r = notify(b.data);
	cm_buf_free(&b);
	return r;
}

int cm_sd_watchdog_ping(void)
{
	return notify("WATCHDOG=1");
}

int cm_sd_watchdog_usec(uint64_t *usec)
{
	int r = sd_watchdog_enabled(0, usec);

	if (r <= 0)
		*usec = 0;
	return r < 0 ? r : 0;
}
