/* cm/sd.h - readiness, status and watchdog notifications to systemd (libsystemd's sd_notify).
 *
 * Every call is a no-op returning 0 when the process was not started by systemd with a
 * notification socket (NOTIFY_SOCKET unset), so daemons call them unconditionally. */
#ifndef CM_SD_H
#define CM_SD_H

#include <stdint.h>

/* READY=1 plus STATUS=status (status may be NULL). */
int cm_sd_ready(const char *status);

/* RELOADING=1 (a READY=1 must follow when the reload is over). */
int cm_sd_reloading(void);

/* STOPPING=1 plus STATUS=status. */
int cm_sd_stopping(const char *status);

/* STATUS=... for `systemctl status`. */
int cm_sd_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* WATCHDOG=1. */
int cm_sd_watchdog_ping(void);

/* The watchdog interval systemd expects pings within, in microseconds; 0 when the watchdog is
 * off for this process. Returns 0 or a negative errno. */
int cm_sd_watchdog_usec(uint64_t *usec);

#endif
