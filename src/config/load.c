/*
 * load.c - the configuration file: libconfig syntax read into a struct config.
 * One table of keys (keys.c) drives everything: the walk that rejects unknown keys and
 * wrong types (walk.c), the defaults and limits (ctx.c), and config_dump_keys(), which
 * is what onesyncd.conf(5) documents. Every error is collected, none stops the others,
 * and each is "FILE:LINE: message". This module reads the groups in order (daemon,
 * state, defaults, the credentials (cred.c), then each job: strategy, source,
 * destination, auth, identity; then the budgets, budget.c), frees, and looks a job up. It never acts on the configuration (no connections, no state): it only
 * reads, checks and compiles templates (which reads secret files).
 */
#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libconfig.h>

#include "config/budget.h"
#include "config/cred.h"
#include "config/ctx.h"
#include "config/dest.h"
#include "config/global.h"
#include "config/identity.h"
#include "config/load.h"
#include "config/source.h"
#include "config/source_file.h"
#include "config/strategy.h"
#include "config/walk.h"
#include "core/redact.h"
#include "core/secrets.h"

/* A job's name: present, well formed and unique. */
static void
parse_name(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	size_t		 i;

	if (ctx_get_str(c, job, "jobs.*.name", false, &j->name) != 0)
		return;
	if (!ctx_is_name(j->name))
		ctx_errf(c, ctx_line(c, ctx_member(job, "name")), "job name '%s' must be 1 to 64 "
		    "letters, digits, '_', '.' or '-'", j->name);
	for (i = 0; i < c->cfg->njobs; i++) {
		if (c->cfg->jobs[i].name != NULL &&
		    strcmp(c->cfg->jobs[i].name, j->name) == 0) {
			ctx_errf(c, ctx_line(c, ctx_member(job, "name")), "duplicate job name "
			    "'%s' (first at line %d)", j->name, c->cfg->jobs[i].line);
			break;
		}
	}
}

/*
 * A file libcurl reads on the loop (a CA file, an SSH key) that is a FIFO or a device
 * would block it or never end: refused here. A missing one is left to the transfer.
 */
static void
regular_file(struct ctx *c, config_setting_t *at, const char *key, const char *path)
{
	struct stat st;

	if (path != NULL && *path != '\0' && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
		ctx_errf(c, ctx_line(c, at), "'%s' names %s, which is %s, not a regular file",
		    key, path, file_kind(st.st_mode));
}

/* Each credential's ca_file, as a job's. */
static void
creds_files(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*l = config_setting_get_member(root, "credentials"), *e;

	for (int i = 0; l != NULL && config_setting_is_list(l) &&
	    i < config_setting_length(l); i++) {
		e = config_setting_get_elem(l, (unsigned)i);
		if (config_setting_is_group(e) && ctx_member(e, "ca_file") != NULL &&
		    config_setting_type(ctx_member(e, "ca_file")) == CONFIG_TYPE_STRING)
			regular_file(c, ctx_member(e, "ca_file"), "credentials.ca_file",
			    config_setting_get_string(ctx_member(e, "ca_file")));
	}
}

static void
parse_job(struct ctx *c, config_setting_t *root, config_setting_t *job,
    struct job_conf *j)
{
	const struct job_conf	*d = &c->d;
	config_setting_t	*k, *dg;
	int64_t			 jit;
	size_t			 i;
	char			*s;

	j->line = c->line = ctx_line(c, job);
	c->job = job;
	c->strat_ok = false;
	parse_name(c, job, j);
	if (ctx_get_str(c, job, "jobs.*.strategy", false, &s) == 0) {
		j->strategy = STRAT_MODIFIED;
		for (enum strategy t = STRAT_FLAG; t <= STRAT_CAPTURE; t++)
			if (strcmp(s, config_strategy_name(t)) == 0) {
				j->strategy = t;
				c->strat_ok = true;
			}
		if (!c->strat_ok)
			ctx_errf(c, ctx_line(c, ctx_member(job, "strategy")), "unknown strategy "
			    "'%s' (expected modified, flag or capture)", s);
		free(s);
	}
	if ((k = ctx_member(job, "key")) == NULL)
		ctx_missing(c, job, "jobs.*.key", "(the record field that identifies a "
		    "record)");
	else if (config_setting_type(k) == CONFIG_TYPE_STRING) {
		j->key = xcalloc(2, sizeof *j->key);
		j->key[0] = xstrdup(config_setting_get_string(k));
		j->nkey = 1;
	} else
		ctx_get_strlist(k, &j->key, &j->nkey);
	for (i = 0; k != NULL && i < j->nkey; i++) {
		if (*j->key[i] == '\0')
			ctx_errf(c, ctx_line(c, k), "'key' must not contain an empty field");
	}
	if (k != NULL && ctx_is_strlist(k) && j->nkey == 0)
		ctx_errf(c, ctx_line(c, k), "'key' must name at least one field");
	(void)ctx_get_dur(c, job, "jobs.*.interval", &d->interval_ms, &j->interval_ms);
	jit = c->d_jitter >= 0 ? c->d_jitter : j->interval_ms / 10;
	(void)ctx_get_dur(c, job, "jobs.*.jitter", &jit, &j->jitter_ms);
	(void)ctx_get_int32(c, job, "jobs.*.batch", &d->batch, &j->batch);
	(void)ctx_get_int32(c, job, "jobs.*.max_attempts", &d->max_attempts,
	    &j->max_attempts);
	(void)ctx_get_dur(c, job, "jobs.*.retry_backoff", &d->retry_backoff_ms,
	    &j->retry_backoff_ms);
	(void)ctx_get_dur(c, job, "jobs.*.retry_backoff_max", &d->retry_backoff_max_ms,
	    &j->retry_backoff_max_ms);
	if (j->retry_backoff_max_ms < j->retry_backoff_ms)
		ctx_errf(c, j->line, "'retry_backoff_max' must not be shorter than "
		    "'retry_backoff'");
	(void)ctx_get_dur(c, job, "jobs.*.run_timeout", &d->timeout_ms, &j->timeout_ms);
	(void)ctx_get_bool(c, job, "jobs.*.enabled", NULL, &j->enabled);
	(void)ctx_get_int(c, job, "jobs.*.max_records", &d->max_records, &j->max_records);
	config_strategy_parse(c, job, j);
	config_source_parse(c, job, j);
	config_dest_parse(c, job, j);
	regular_file(c, ctx_member(ctx_member(job, "source"), "ca_file"), "source.ca_file",
	    j->src.http.ca_file);
	regular_file(c, ctx_member(ctx_member(job, "source"), "ssh_key"), "source.ssh_key",
	    j->src.ssh_key);
	regular_file(c, ctx_member(ctx_member(job, "destination"), "ca_file"),
	    "destination.ca_file", j->dst.http.ca_file);
	for (size_t ik = 0; ik < j->nkey; ik++)
		config_source_file_flat(c, ctx_line(c, ctx_member(job, "key")), j, "key",
		    j->key[ik]);
	dg = ctx_member(job, "destination");
	config_source_file_flat_tmpl(c, dg, "url", j, "destination.url", j->dst.url);
	config_source_file_flat_tmpl(c, dg, "body", j, "destination.body", j->dst.body);
	for (size_t ih = 0; ih < j->dst.nheaders; ih++)
		config_source_file_flat_tmpl(c, dg, "headers", j, "destination.headers",
		    j->dst.headers[ih]);
	config_source_file_flat_tmpl(c, ctx_member(dg, "create"), "url", j,
	    "destination.create.url", j->dst.create_url);
	config_source_file_flat_tmpl(c, ctx_member(dg, "create"), "body", j,
	    "destination.create.body", j->dst.create_body);
	config_creds_auth(c, job, j);
	config_identity_job(c, root, job, j);
}

static void
parse_jobs(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*l = config_setting_get_member(root, "jobs"), *e;
	int			 i, n;

	if (l == NULL || !config_setting_is_list(l))
		return;
	n = config_setting_length(l);
	c->cfg->jobs = xcalloc((size_t)n + 1, sizeof *c->cfg->jobs);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(l, (unsigned)i);
		if (!config_setting_is_group(e))
			continue;
		parse_job(c, root, e, &c->cfg->jobs[c->cfg->njobs]);
		c->cfg->njobs++;
	}
}

/*
 * The messages from first on redacted, once every literal credential of the file is learnt:
 * whoever prints them (-t, the daemon's start, --once, a reload, onesyncctl) shows no
 * secret a message quotes.
 */
static void
redact_errors(struct strlist *errs, size_t first)
{
	for (size_t i = first; i < errs->n; i++)
		errs->v[i] = redact_text_free(errs->v[i]);
}

char *
config_exposed(const char *path)
{
	struct stat st;

	if (!secrets_literal_learnt() || stat(path, &st) == -1 || (st.st_mode & S_IROTH) == 0)
		return NULL;
	return xasprintf("%s is readable by every user and holds credentials written in "
	    "it: chmod o-r, or move them to {{secret:}} files", path);
}

int
config_load(const char *path, struct config **out, struct strlist *errs)
{
	struct ctx	 c;
	config_t	 lc;
	FILE		*f;
	size_t		 before = errs->n;

	*out = NULL;
	if ((f = fopen(path, "r")) == NULL) {
		strlist_addf(errs, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	fclose(f);
	config_init(&lc);
	if (config_read_file(&lc, path) != CONFIG_TRUE) {
		strlist_addf(errs, "%s:%d: %s", config_error_file(&lc) != NULL ?
		    config_error_file(&lc) : path, config_error_line(&lc),
		    config_error_text(&lc));
		config_destroy(&lc);
		redact_errors(errs, before);
		return -1;
	}
	memset(&c, 0, sizeof c);
	c.file = path;
	c.errs = errs;
	c.line = 1;
	c.cfg = xcalloc(1, sizeof *c.cfg);
	c.cfg->path = xstrdup(path);
	walk_group(&c, config_root_setting(&lc), "", "");
	config_global_parse(&c, config_root_setting(&lc));
	config_creds_parse(&c, config_root_setting(&lc));
	creds_files(&c, config_root_setting(&lc));
	parse_jobs(&c, config_root_setting(&lc));
	config_budgets_parse(&c, config_root_setting(&lc));
	config_destroy(&lc);
	if (errs->n != before) {
		config_free(c.cfg);
		redact_errors(errs, before);
		return -1;
	}
	*out = c.cfg;
	return 0;
}

static void
free_tmpls(struct tmpl **v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		tmpl_free(v[i]);
	free(v);
}

static void
free_strv(char **v, size_t n)
{
	size_t	i;

	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Free one job's contents. */
static void
job_free(struct job_conf *j)
{
	size_t	i;

	free(j->name);
	free_strv(j->key, j->nkey);
	free(j->modified.field);
	tmpl_free(j->src.url);
	for (i = 0; i < j->src.nquery; i++) {
		free(j->src.query[i].name);
		tmpl_free(j->src.query[i].value);
	}
	free(j->src.query);
	free_tmpls(j->src.headers, j->src.nheaders);
	free(j->src.records);
	free(j->src.page_next);
	free(j->src.origin);
	free_strv(j->src.allow_origins, j->src.nallow_origins);
	tmpl_free(j->src.fetch);
	free(j->src.http.ca_file);
	free(j->src.mark_method);
	tmpl_free(j->src.mark_url);
	tmpl_free(j->src.mark_body);
	free_tmpls(j->src.mark_headers, j->src.mark_nheaders);
	free(j->src.conninfo);
	free(j->src.table);
	free_strv(j->src.columns, j->src.ncolumns);
	free(j->src.where);
	free(j->src.pending);
	for (i = 0; i < j->src.nmark_set; i++) {
		free(j->src.mark_set[i].column);
		tmpl_free(j->src.mark_set[i].value);
	}
	free(j->src.mark_set);
	free(j->src.file_url);
	free(j->src.ssh_key);
	free(j->src.ssh_host_sha256);
	free(j->src.username);
	if (j->src.password != NULL)
		explicit_bzero(j->src.password, strlen(j->src.password));
	free(j->src.password);
	free(j->src.auth);
	free(j->src.mark_auth);
	free(j->flag.version);
	free_strv(j->capture.fields, j->capture.nfields);
	free_strv(j->capture.exclude, j->capture.nexclude);
	free(j->dst.method);
	tmpl_free(j->dst.url);
	tmpl_free(j->dst.body);
	free_tmpls(j->dst.headers, j->dst.nheaders);
	free(j->dst.create_method);
	tmpl_free(j->dst.create_url);
	tmpl_free(j->dst.create_body);
	free(j->dst.http.ca_file);
	free(j->dst.conninfo);
	free(j->dst.table);
	for (i = 0; i < j->dst.ncolumns; i++) {
		free(j->dst.columns[i].column);
		free(j->dst.columns[i].field);
	}
	free(j->dst.columns);
	free_strv(j->dst.key_columns, j->dst.nkey_columns);
	free(j->dst.key_fields);
	free(j->dst.delete_method);
	tmpl_free(j->dst.delete_url);
	free(j->dst.auth);
	free(j->fingerprint);
	free(j->identity);
	free(j->definition);
}

void
config_free(struct config *cfg)
{
	size_t	i;

	if (cfg == NULL)
		return;
	for (i = 0; i < cfg->njobs; i++)
		job_free(&cfg->jobs[i]);
	free(cfg->jobs);
	for (i = 0; i < cfg->nbudgets; i++)
		budget_conf_free(&cfg->budgets[i]);
	free(cfg->budgets);
	for (i = 0; i < cfg->ncreds; i++)
		cred_conf_free(&cfg->creds[i]);
	free(cfg->creds);
	explicit_bzero(cfg->state.key, sizeof cfg->state.key);
	free(cfg->path);
	free(cfg->state.conninfo);
	free(cfg->state.schema);
	free(cfg->daemon.instance);
	free(cfg->daemon.status_listen);
	free(cfg->daemon.secrets_dir);
	free(cfg);
}

const struct job_conf *
config_job(const struct config *cfg, const char *name)
{
	size_t	i;

	for (i = 0; i < cfg->njobs; i++) {
		if (strcmp(cfg->jobs[i].name, name) == 0)
			return &cfg->jobs[i];
	}
	return NULL;
}

void
config_dump_keys(FILE *f)
{
	static const char	*types[] = { "group", "list", "string", "template",
	    "integer", "boolean", "duration", "strings", "key", "map", "query",
	    "number", "boolean or auto" };
	const struct key_def	*kd;
	size_t			 i;

	for (i = 0; i < keys_count; i++) {
		kd = &keys_table[i];
		fprintf(f, "%s\t%s\t%s\t%s\t%s\n", kd->path, types[kd->type],
		    kd->def == NULL ? ((kd->flags & F_REQ) ? "required" : "-") :
		    *kd->def == '\0' ? "\"\"" : kd->def,
		    (kd->flags & F_NORELOAD) ? "restart" : "reload", kd->doc);
	}
}
