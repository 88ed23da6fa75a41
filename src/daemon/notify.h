/* notify.h - what the daemon tells systemd (sd_notify). */
#ifndef ONESYNC_NOTIFY_H
#define ONESYNC_NOTIFY_H

#include <stdint.h>
#include "core/util.h"

void notify_ready(void);
void notify_reloading(void);	/* RELOADING=1 + MONOTONIC_USEC */
void notify_stopping(void);
void notify_status(const char *, ...) PRINTF(1, 2);
void notify_watchdog(void);
/* Watchdog interval in microseconds from $WATCHDOG_USEC, or 0 when off. */
uint64_t notify_watchdog_usec(void);

#endif
