/* daemon.h - the process: event loop, configuration, jobs, scheduling, leases, signals. */
#ifndef ONESYNC_DAEMON_H
#define ONESYNC_DAEMON_H

#include <stdbool.h>

int daemon_main(const char *cfg_path, bool once, char **once_jobs, int verbose);

#endif
