/*
 * budgets_def.h - whether the instances on the state database define a budget alike
 * (budgets_def.c), for daemon/budgets.c.
 */
#ifndef ONESYNC_BUDGETS_DEF_H
#define ONESYNC_BUDGETS_DEF_H

struct bud;

/* When due (first use, then every BUD_DEF_CHECK_MS; b->def_next 0: at once), write b's
 * shared definition to the state store and warn of the other instances' that differ. */
void budgets_def_check(struct bud *);

#endif
