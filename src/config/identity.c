/*
 * identity.c - what a job's definition is worth comparing: its fingerprint (a hash of its
 * settings, the defaults and the secret values it resolved: differs => the job changed on
 * a reload) and its identity (what its state in PostgreSQL means, with no secret: a
 * definition as JSON and its hash), and which members of two definitions differ.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libpq-fe.h>
#include <xxhash.h>

#include "config/cred.h"
#include "config/ctx.h"
#include "config/identity.h"

/* Serialize a setting for the fingerprint. */
static void
serialize(config_setting_t *s, struct buf *b)
{
	int	i;

	if (config_setting_name(s) != NULL)
		buf_printf(b, "%s=", config_setting_name(s));
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_GROUP:
	case CONFIG_TYPE_LIST:
	case CONFIG_TYPE_ARRAY:
		buf_addc(b, '{');
		for (i = 0; i < config_setting_length(s); i++)
			serialize(config_setting_get_elem(s, i), b);
		buf_addc(b, '}');
		break;
	case CONFIG_TYPE_INT:
	case CONFIG_TYPE_INT64:
		buf_printf(b, "i%lld", config_setting_get_int64(s));
		break;
	case CONFIG_TYPE_FLOAT:
		buf_printf(b, "f%.17g", config_setting_get_float(s));
		break;
	case CONFIG_TYPE_BOOL:
		buf_printf(b, "b%d", config_setting_get_bool(s));
		break;
	case CONFIG_TYPE_STRING:
		buf_printf(b, "s%zu:%s", strlen(config_setting_get_string(s)),
		    config_setting_get_string(s));
		break;
	}
	buf_addc(b, ';');
}

/* Hash of the job's settings, the defaults and the secret values it resolved. */
static void
make_fingerprint(struct ctx *c, config_setting_t *root, config_setting_t *job,
    struct job_conf *j)
{
	config_setting_t	*d = ctx_group(root, "defaults");
	struct buf		 b;
	XXH128_hash_t		 h;
	size_t			 i;

	buf_init(&b);
	serialize(job, &b);
	if (d != NULL)
		serialize(d, &b);
	buf_printf(&b, "secrets_dir=%s;", c->cfg->daemon.secrets_dir != NULL ?
	    c->cfg->daemon.secrets_dir : "");
	for (i = 0; i < j->src.nheaders; i++)
		tmpl_digest(j->src.headers[i], &b);
	for (i = 0; i < j->src.nquery; i++)
		tmpl_digest(j->src.query[i].value, &b);
	for (i = 0; i < j->dst.nheaders; i++)
		tmpl_digest(j->dst.headers[i], &b);
	if (j->src.url != NULL)
		tmpl_digest(j->src.url, &b);
	if (j->src.fetch != NULL)
		tmpl_digest(j->src.fetch, &b);
	if (j->dst.url != NULL)
		tmpl_digest(j->dst.url, &b);
	if (j->dst.body != NULL)
		tmpl_digest(j->dst.body, &b);
	if (j->dst.create_url != NULL)
		tmpl_digest(j->dst.create_url, &b);
	if (j->dst.create_body != NULL)
		tmpl_digest(j->dst.create_body, &b);
	if (j->src.mark_url != NULL)
		tmpl_digest(j->src.mark_url, &b);
	if (j->src.mark_body != NULL)
		tmpl_digest(j->src.mark_body, &b);
	for (i = 0; i < j->src.mark_nheaders; i++)
		tmpl_digest(j->src.mark_headers[i], &b);
	for (i = 0; i < j->src.nmark_set; i++)
		tmpl_digest(j->src.mark_set[i].value, &b);
	if (j->dst.delete_url != NULL)
		tmpl_digest(j->dst.delete_url, &b);
	/* The file source's password, resolved from its secret or variable. */
	if (j->src.password != NULL)
		buf_printf(&b, "password=%zu:%s;", strlen(j->src.password),
		    j->src.password);
	/* The credentials its requests use, secrets resolved: another one is a change (and
	 * no part of the identity: a new credential never refuses the job's state). */
	config_cred_digest(c->cfg, j->src.auth, &b);
	config_cred_digest(c->cfg, j->src.mark_auth, &b);
	config_cred_digest(c->cfg, j->dst.auth, &b);
	h = XXH3_128bits(b.data, b.len);
	explicit_bzero(b.data, b.len);
	buf_free(&b);
	j->fingerprint = xasprintf("%016llx%016llx", (unsigned long long)h.high64,
	    (unsigned long long)h.low64);
}

/*
 * Job identity: what the job's state in PostgreSQL means. A watermark, a seen set, stored
 * hashes and a retry queue belong to one strategy, one key, one source data set, one
 * destination and (capture) one canonical form. Credentials, headers, query parameters
 * and every tuning key are not part of it, so rotating a password or changing interval,
 * batch or timeouts never refuses a job. Places are hashed: the stored definition shows no
 * host, path or table in clear.
 */

/* A URL template's source text without user information and query string. */
static void
url_place(struct buf *b, const char *url)
{
	const char *p = strstr(url, "://"), *at, *end;

	if (p == NULL) {
		buf_adds(b, url);
		return;
	}
	p += 3;
	buf_add(b, url, (size_t)(p - url));
	end = p + strcspn(p, "/?#");
	if ((at = memchr(p, '@', (size_t)(end - p))) != NULL)
		p = at + 1;
	buf_add(b, p, strcspn(p, "?#"));
}

/* A conninfo's server and database (no user, password or options) and a table. */
static void
pg_place(struct buf *b, const char *conninfo, const char *table)
{
	static const char *const keep[] = { "host", "hostaddr", "port", "dbname" };
	PQconninfoOption *o = PQconninfoParse(conninfo, NULL);

	for (size_t k = 0; k < NELEM(keep); k++)
		for (PQconninfoOption *e = o; e != NULL && e->keyword != NULL; e++)
			if (strcmp(e->keyword, keep[k]) == 0)
				buf_printf(b, "%s=%s;", keep[k], e->val != NULL ? e->val : "");
	if (o != NULL)
		PQconninfoFree(o);
	buf_printf(b, "table=%s", table != NULL ? table : "");
}

/* Hex of a 64-bit hash of b's text, set as definition member `name`; frees b. */
static void
def_hash(json_t *def, const char *name, const char *type, struct buf *b)
{
	char h[64];

	snprintf(h, sizeof h, "%s %016llx", type, (unsigned long long)XXH3_64bits(b->data,
	    b->len));
	json_object_set_new(def, name, json_string(h));
	buf_free(b);
}

static const char *const conn_names[] = { "http", "postgresql", "file" };

/* j->identity (hash of the definition) and j->definition (JSON text, no secrets). */
static void
make_identity(struct job_conf *j)
{
	json_t *def = json_object(), *key = json_array();
	struct buf b;
	XXH128_hash_t h;
	char *text;

	json_object_set_new(def, "strategy", json_string(config_strategy_name(j->strategy)));
	for (size_t i = 0; i < j->nkey; i++)
		json_array_append_new(key, json_string(j->key[i]));
	json_object_set_new(def, "key", key);
	buf_init(&b);
	if (j->src.type == CONN_POSTGRESQL && j->src.conninfo != NULL)
		pg_place(&b, j->src.conninfo, j->src.table);
	else if (j->src.type == CONN_FILE && j->src.file_url != NULL)
		url_place(&b, j->src.file_url);
	else if (j->src.url != NULL)
		url_place(&b, tmpl_source(j->src.url));
	def_hash(def, "source", conn_names[j->src.type], &b);
	buf_init(&b);
	if (j->dst.type == CONN_POSTGRESQL && j->dst.conninfo != NULL)
		pg_place(&b, j->dst.conninfo, j->dst.table);
	else if (j->dst.url != NULL)
		url_place(&b, tmpl_source(j->dst.url));
	def_hash(def, "destination", conn_names[j->dst.type], &b);
	if (j->strategy == STRAT_MODIFIED && j->modified.field != NULL)
		json_object_set_new(def, "modified.field", json_string(j->modified.field));
	if (j->strategy == STRAT_CAPTURE) {
		buf_init(&b);
		for (size_t i = 0; i < j->capture.nfields; i++)
			buf_printf(&b, "f%zu:%s;", strlen(j->capture.fields[i]), j->capture.fields[i]);
		for (size_t i = 0; i < j->capture.nexclude; i++)
			buf_printf(&b, "x%zu:%s;", strlen(j->capture.exclude[i]),
			    j->capture.exclude[i]);
		def_hash(def, "capture.fields", "canonical", &b);
	}
	text = json_dumps(def, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(def);
	h = XXH3_128bits(text, strlen(text));
	j->identity = xasprintf("%016llx%016llx", (unsigned long long)h.high64,
	    (unsigned long long)h.low64);
	j->definition = text;
}

static int
cmp_name(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

char *
config_identity_diff(const char *stored, const char *current)
{
	json_t *a = json_loads(stored != NULL ? stored : "{}", 0, NULL);
	json_t *b = json_loads(current != NULL ? current : "{}", 0, NULL);
	struct strlist names = { 0 };
	struct buf out;
	const char *k;
	json_t *v;

	buf_init(&out);
	buf_adds(&out, "");
	if (json_is_object(a) && json_is_object(b)) {
		json_object_foreach(a, k, v)
			if (!json_equal(v, json_object_get(b, k)))
				strlist_add(&names, xstrdup(k));
		json_object_foreach(b, k, v)
			if (json_object_get(a, k) == NULL)
				strlist_add(&names, xstrdup(k));
	}
	if (names.n > 0)
		qsort(names.v, names.n, sizeof *names.v, cmp_name);
	for (size_t i = 0; i < names.n; i++)
		buf_printf(&out, "%s%s", i > 0 ? ", " : "", names.v[i]);
	if (out.len == 0)
		buf_adds(&out, "definition");
	strlist_free(&names);
	json_decref(a);
	json_decref(b);
	return buf_steal(&out);
}

void
config_identity_job(struct ctx *c, config_setting_t *root, config_setting_t *job,
    struct job_conf *j)
{
	make_fingerprint(c, root, job, j);
	make_identity(j);
}
