/*
 * global.c - the groups outside the jobs: state (where onesyncd keeps its own state),
 * daemon (how this instance runs, and the names secrets.c adds) and defaults (what every
 * job inherits, kept in the context as a pseudo job).
 */
#include <stdlib.h>
#include <string.h>

#include "config/ctx.h"
#include "config/endpoint.h"
#include "config/global.h"
#include "core/secrets.h"
#include "core/url.h"

static void
parse_state(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*g = ctx_group(root, "state");
	int64_t			 v;

	if (g == NULL && ctx_member(root, "state") == NULL)
		ctx_errf(c, 1, "missing required group 'state' (state = { conninfo = "
		    "\"...\"; };)");
	if (g != NULL)
		if (ctx_get_str(c, g, "state.conninfo", true, &c->cfg->state.conninfo) == 0)
			endpoint_conninfo(c, g, "state.conninfo", c->cfg->state.conninfo);
	(void)ctx_get_str(c, g, "state.schema", false, &c->cfg->state.schema);
	if (c->cfg->state.schema != NULL && !ctx_is_ident(c->cfg->state.schema, true))
		ctx_errf(c, ctx_line(c, ctx_member(g, "schema")), "'state.schema' must be a "
		    "plain lower-case identifier, not '%s'", c->cfg->state.schema);
	(void)ctx_get_int32(c, g, "state.connections", NULL, &c->cfg->state.connections);
	(void)ctx_get_dur(c, g, "state.connect_timeout", NULL, &v);
	c->cfg->state.connect_timeout_ms = v;
}

/*
 * daemon.redact_params: added to the names secrets.c treats as credentials, before the jobs'
 * URLs are learnt. Never removed by a reload (nor is anything secrets.c learnt).
 */
static void
parse_redact_params(struct ctx *c, config_setting_t *g)
{
	config_setting_t	*s = ctx_member(g, "redact_params");
	char			**v;
	size_t			  n, i;

	ctx_get_strlist(s, &v, &n);
	for (i = 0; i < n; i++) {
		if (v[i][0] == '\0')
			ctx_errf(c, ctx_line(c, s), "'daemon.redact_params' must not contain an "
			    "empty name");
		else
			secrets_add_name(v[i]);
		free(v[i]);
	}
	free(v);
}

static void
parse_daemon(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*g = ctx_group(root, "daemon");
	struct config		*cfg = c->cfg;

	(void)ctx_get_str(c, g, "daemon.instance", false, &cfg->daemon.instance);
	(void)ctx_get_dur(c, g, "daemon.lease", NULL, &cfg->daemon.lease_ms);
	(void)ctx_get_int32(c, g, "daemon.max_runs", NULL, &cfg->daemon.max_runs);
	(void)ctx_get_str(c, g, "daemon.status_listen", false, &cfg->daemon.status_listen);
	if (cfg->daemon.status_listen != NULL && cfg->daemon.status_listen[0] != '\0') {
		char *host = NULL, *err = NULL;
		uint16_t port;
		config_setting_t *m = g != NULL ? config_setting_get_member(g, "status_listen") : NULL;

		if (url_parse_listen(cfg->daemon.status_listen, &host, &port, &err) != 0)
			ctx_errf(c, m != NULL ? ctx_line(c, m) : 0, "'daemon.status_listen': %s",
			    err);
		free(host);
		free(err);
	}
	(void)ctx_get_str(c, g, "daemon.secrets_dir", false, &cfg->daemon.secrets_dir);
	parse_redact_params(c, g);
	(void)ctx_get_dur(c, g, "daemon.stop_timeout", NULL, &cfg->daemon.stop_timeout_ms);
}

/* The defaults group, kept in c->d as a pseudo job. */
static void
parse_defaults(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*g = ctx_group(root, "defaults");
	struct job_conf		*d = &c->d;
	int64_t			 v;

	(void)ctx_get_dur(c, g, "defaults.interval", NULL, &d->interval_ms);
	(void)ctx_get_dur(c, g, "defaults.jitter", NULL, &c->d_jitter);
	(void)ctx_get_int32(c, g, "defaults.batch", NULL, &d->batch);
	(void)ctx_get_int32(c, g, "defaults.max_attempts", NULL, &d->max_attempts);
	(void)ctx_get_dur(c, g, "defaults.retry_backoff", NULL, &d->retry_backoff_ms);
	(void)ctx_get_dur(c, g, "defaults.retry_backoff_max", NULL,
	    &d->retry_backoff_max_ms);
	(void)ctx_get_dur(c, g, "defaults.timeout", NULL, &d->src.http.timeout_ms);
	(void)ctx_get_dur(c, g, "defaults.run_timeout", NULL, &d->timeout_ms);
	(void)ctx_get_int32(c, g, "defaults.retries", NULL, &d->src.http.retries);
	(void)ctx_get_bool(c, g, "defaults.tls_verify", NULL, &d->src.http.tls_verify);
	(void)ctx_get_int(c, g, "defaults.max_bytes", NULL, &v);
	d->src.http.max_bytes = v;
	(void)ctx_get_int(c, g, "defaults.max_records", NULL, &d->max_records);
	if (d->retry_backoff_max_ms < d->retry_backoff_ms)
		ctx_errf(c, ctx_line(c, g), "'defaults.retry_backoff_max' must not be "
		    "shorter than 'defaults.retry_backoff'");
}

void
config_global_parse(struct ctx *c, config_setting_t *root)
{
	parse_daemon(c, root);
	parse_state(c, root);
	parse_defaults(c, root);
}
