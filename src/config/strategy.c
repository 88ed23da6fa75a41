/*
 * strategy.c - the groups of the three strategies (modified, flag, capture), each refused
 * with another strategy, and the questions the other sections ask about the job's
 * strategy (only once it is a supported one: an unknown strategy is reported once).
 */
#include <stdlib.h>
#include <string.h>

#include "config/ctx.h"
#include "config/strategy.h"

/* Strategy flag (and a supported strategy at all). */
bool
config_strategy_is_flag(const struct ctx *c, const struct job_conf *j)
{
	return c->strat_ok && j->strategy == STRAT_FLAG;
}

/* A supported strategy other than flag. */
bool
config_strategy_not_flag(const struct ctx *c, const struct job_conf *j)
{
	return c->strat_ok && j->strategy != STRAT_FLAG;
}

/* Strategy capture (and a supported strategy at all). */
bool
config_strategy_is_capture(const struct ctx *c, const struct job_conf *j)
{
	return c->strat_ok && j->strategy == STRAT_CAPTURE;
}

static void
parse_modified(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*g = ctx_group(job, "modified");
	struct modified_conf	*m = &j->modified;
	char			*f;

	if (!c->strat_ok || j->strategy != STRAT_MODIFIED)
		return;
	if (g == NULL)
		ctx_errf(c, ctx_line(c, job), "missing required key 'modified.field' (the "
		    "record's last-modified field) for strategy 'modified'");
	else
		(void)ctx_get_str(c, g, "jobs.*.modified.field", true, &m->field);
	if (ctx_get_str(c, g, "jobs.*.modified.format", false, &f) == 0) {
		if (ts_format_parse(f, &m->format) != 0)
			ctx_errf(c, ctx_line(c, ctx_member(g, "format")), "'modified.format': "
			    "unknown timestamp format '%s' (expected rfc3339, epoch or "
			    "epoch_ms)", f);
		free(f);
	}
	(void)ctx_get_bool(c, g, "jobs.*.modified.sorted", NULL, &m->sorted);
	(void)ctx_get_dur(c, g, "jobs.*.modified.lookback", NULL, &m->lookback_ms);
	(void)ctx_get_dur(c, g, "jobs.*.modified.settle", NULL, &m->settle_ms);
	(void)ctx_get_dur(c, g, "jobs.*.modified.max_future", NULL, &m->max_future_ms);
}

/* The flag group, and the groups of one strategy used with another. */
static void
parse_flag(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*g = ctx_group(job, "flag");

	if (!c->strat_ok)
		return;
	if (j->strategy == STRAT_FLAG && ctx_member(job, "modified") != NULL)
		ctx_errf(c, ctx_line(c, ctx_member(job, "modified")), "'modified' is used only "
		    "by strategy 'modified' (strategy 'flag' reads what the source "
		    "reports pending)");
	if (j->strategy == STRAT_CAPTURE && ctx_member(job, "modified") != NULL)
		ctx_errf(c, ctx_line(c, ctx_member(job, "modified")), "'modified' is used only "
		    "by strategy 'modified' (strategy 'capture' reads every record "
		    "and compares it with the hash stored for its key)");
	if (j->strategy != STRAT_FLAG) {
		if (ctx_member(job, "flag") != NULL)
			ctx_errf(c, ctx_line(c, ctx_member(job, "flag")), "'flag' is used only "
			    "by strategy 'flag'");
		return;
	}
	if (ctx_get_str(c, g, "jobs.*.flag.version", false, &j->flag.version) == 0 &&
	    j->flag.version != NULL && *j->flag.version == '\0') {
		ctx_errf(c, ctx_line(c, ctx_member(g, "version")), "'flag.version' is empty "
		    "(leave it out to mark without compare-and-set)");
		free(j->flag.version);
		j->flag.version = NULL;
	}
}

/* capture.fields or capture.exclude: non-empty names, each once. */
static void
get_names(struct ctx *c, config_setting_t *g, const char *path, bool paths,
    char ***v, size_t *n)
{
	config_setting_t	*s = ctx_member(g, ctx_leaf(path));
	size_t			 i, k;

	ctx_get_strlist(s, v, n);
	if (s == NULL || !ctx_is_strlist(s))
		return;
	if (*n == 0)
		ctx_errf(c, ctx_line(c, s), "'%s' is empty (leave it out%s)", ctx_dname(path),
		    paths ? " to hash the whole record" : "");
	for (i = 0; i < *n; i++) {
		if (*(*v)[i] == '\0') {
			ctx_errf(c, ctx_line(c, s), "'%s' must not contain an empty name",
			    ctx_dname(path));
			continue;
		}
		if (!paths && strchr((*v)[i], '.') != NULL)
			ctx_errf(c, ctx_line(c, s), "'%s': '%s' is a path; exclude takes "
			    "top-level field names (list the fields to keep in "
			    "capture.fields instead)", ctx_dname(path), (*v)[i]);
		for (k = 0; k < i; k++) {
			if (strcmp((*v)[k], (*v)[i]) == 0) {
				ctx_errf(c, ctx_line(c, s), "'%s': '%s' is given twice",
				    ctx_dname(path), (*v)[i]);
				break;
			}
		}
	}
	if (*n == 0) {
		free(*v);
		*v = NULL;
	}
}

/* The capture group: what is hashed, and deletions. */
static void
parse_capture(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*g = ctx_group(job, "capture");
	struct capture_conf	*cc = &j->capture;

	if (!c->strat_ok)
		return;
	if (j->strategy != STRAT_CAPTURE) {
		if (ctx_member(job, "capture") != NULL)
			ctx_errf(c, ctx_line(c, ctx_member(job, "capture")), "'capture' is used "
			    "only by strategy 'capture'");
		return;
	}
	get_names(c, g, "jobs.*.capture.fields", true, &cc->fields, &cc->nfields);
	get_names(c, g, "jobs.*.capture.exclude", false, &cc->exclude,
	    &cc->nexclude);
	(void)ctx_get_bool(c, g, "jobs.*.capture.deletes", NULL, &cc->deletes);
	(void)ctx_get_ratio(c, g, "jobs.*.capture.max_delete_ratio",
	    &cc->max_delete_ratio);
	(void)ctx_get_int(c, g, "jobs.*.capture.min_records", NULL, &cc->min_records);
}

void
config_strategy_parse(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	parse_modified(c, job, j);
	parse_flag(c, job, j);
	parse_capture(c, job, j);
}
