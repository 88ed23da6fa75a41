/* budgets.h - onesyncctl budgets (budgets.c), an entry of main.c's table. */
#ifndef ONESYNC_CTL_BUDGETS_H
#define ONESYNC_CTL_BUDGETS_H

#include "ctl/ctl.h"

extern const struct ctl_cmd ctl_show_budgets;

#endif
