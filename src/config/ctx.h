/* ctx.h - reading one configuration file: the context, errors at lines, typed getters. */
#ifndef ONESYNC_CTX_H
#define ONESYNC_CTX_H

#include <stdbool.h>
#include <stdint.h>

#include <libconfig.h>

#include "config/keys.h"
#include "config/model.h"

/* Parsing context. */
struct ctx {
	const char	*file;
	struct strlist	*errs;
	int		 line;		/* fallback line (the enclosing job) */
	struct config	*cfg;
	int64_t		 d_jitter;	/* defaults.jitter, -1 = interval/10 */
	bool		 strat_ok;	/* the current job's strategy is a supported one */
	config_setting_t *job;		/* the current job's group */
	struct job_conf	 d;		/* the defaults group, as a job */
	const char	*scope;		/* what errors are about ("budget 'crm'"), or NULL */
};

/* Record one error, "FILE:LINE: message" ("FILE:LINE: SCOPE: message" in a scope); line 0 =
 * the first line. */
void ctx_errf(struct ctx *c, int line, const char *fmt, ...) PRINTF(3, 4);
/* The line of a setting (or of the nearest parent that has one), else c->line. */
int ctx_line(struct ctx *c, const config_setting_t *s);
/* The key's entry in the table, or NULL. */
const struct key_def *ctx_key(const char *path);
/* The last component of a path; the name users see ("batch", "source.url"). */
const char *ctx_leaf(const char *path);
const char *ctx_dname(const char *path);
/* A member of a group (NULL when g is no group); ctx_group: one that is a group. */
config_setting_t *ctx_member(config_setting_t *g, const char *name);
config_setting_t *ctx_group(config_setting_t *g, const char *name);
bool ctx_is_int(const config_setting_t *s);
bool ctx_is_strlist(const config_setting_t *s);
/* A duration in ms the way users write it ("10s", "1h", "500ms"), into b. */
const char *ctx_fmt_dur(int64_t ms, char *b, size_t len);
/* A name of a job or budget: 1 to 64 letters, digits, '_', '.' or '-'. */
bool ctx_is_name(const char *s);
/* A plain SQL identifier, optionally lower-case only. */
bool ctx_is_ident(const char *s, bool lower);
/* Report a missing required key (why: a hint after the name, or NULL). */
void ctx_missing(struct ctx *c, config_setting_t *g, const char *path, const char *why);

/*
 * Typed getters of the key `path` ("jobs.*.batch") in group g, by the table: from the file,
 * else *inh when given (what the job inherits from defaults), else the table's default;
 * a value out of the table's limits is reported. 0 when fine, -1 when not (reported, or
 * left to the walk when the type is wrong).
 */
int ctx_get_int(struct ctx *c, config_setting_t *g, const char *path, const int64_t *inh,
    int64_t *out);
int ctx_get_int32(struct ctx *c, config_setting_t *g, const char *path, const int *inh,
    int *out);
int ctx_get_dur(struct ctx *c, config_setting_t *g, const char *path, const int64_t *inh,
    int64_t *out);
int ctx_get_bool(struct ctx *c, config_setting_t *g, const char *path, const bool *inh,
    bool *out);
int ctx_get_ratio(struct ctx *c, config_setting_t *g, const char *path, double *out);
int ctx_get_auto(struct ctx *c, config_setting_t *g, const char *path, int *out);
int ctx_get_str(struct ctx *c, config_setting_t *g, const char *path, bool req, char **out);
/* Compile a template (its literal credentials learnt by secrets.c); errors name the key. */
struct tmpl *ctx_compile(struct ctx *c, config_setting_t *at, const char *name,
    const char *src, enum tmpl_place place, unsigned allowed);
struct tmpl *ctx_get_tmpl(struct ctx *c, config_setting_t *g, const char *path, bool req,
    const char *def_src, enum tmpl_place place, unsigned allowed);
void ctx_get_strlist(config_setting_t *s, char ***v, size_t *n);
void ctx_get_headers(struct ctx *c, config_setting_t *g, const char *path, unsigned allowed,
    struct tmpl ***out, size_t *n);

#endif
