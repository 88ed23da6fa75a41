/* steer.h - the commands of onesyncctl that change a job's state (steer.c), entries of
 * main.c's table. */
#ifndef ONESYNC_CTL_STEER_H
#define ONESYNC_CTL_STEER_H

#include "ctl/ctl.h"

extern const struct ctl_cmd ctl_steer_retry;
extern const struct ctl_cmd ctl_steer_reset;
extern const struct ctl_cmd ctl_steer_run;
extern const struct ctl_cmd ctl_steer_pause;
extern const struct ctl_cmd ctl_steer_resume;

#endif
