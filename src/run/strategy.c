/*
 * strategy.c - the table of strategies, chosen by name: a new strategy is one file
 * (strategy_NAME.c, its ops) and one entry here. The engine (run.c) never names one; it
 * never includes this file either (the daemon chooses the ops when it starts a run).
 */
#include <string.h>

#include "run/strategy.h"
#include "run/strategy_capture.h"
#include "run/strategy_flag.h"
#include "run/strategy_modified.h"

static const struct strategy_ops *const strategies[] = {
	&strategy_flag_ops,
	&strategy_modified_ops,
	&strategy_capture_ops,
};

const struct strategy_ops *
strategy_find(const char *name)
{
	for (size_t i = 0; i < NELEM(strategies); i++)
		if (strcmp(strategies[i]->name, name) == 0)
			return strategies[i];
	return NULL;
}

const struct strategy_ops *
strategy_lookup(enum strategy s)
{
	/* by the name the configuration gives it; "?" (outside the enum) finds none */
	return strategy_find(config_strategy_name(s));
}
