/* creds.h - onesyncctl credentials (creds.c), an entry of main.c's table. */
#ifndef ONESYNC_CTL_CREDS_H
#define ONESYNC_CTL_CREDS_H

#include "ctl/ctl.h"

extern const struct ctl_cmd ctl_creds;

#endif
