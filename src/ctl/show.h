/* show.h - the read-only commands of onesyncctl (show.c), entries of main.c's table. */
#ifndef ONESYNC_CTL_SHOW_H
#define ONESYNC_CTL_SHOW_H

#include "ctl/ctl.h"

extern const struct ctl_cmd ctl_show_jobs;
extern const struct ctl_cmd ctl_show_runs;
extern const struct ctl_cmd ctl_show_failures;

#endif
