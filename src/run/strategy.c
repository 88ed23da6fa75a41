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
	/* the names the configuration gives them (enum strategy) */
	static const char *const name[] = {
		[STRAT_FLAG] = "flag", [STRAT_MODIFIED] = "modified", [STRAT_CAPTURE] = "capture",
	};

	if ((size_t)s >= NELEM(name) || name[s] == NULL)
		return NULL;
	return strategy_find(name[s]);
}
