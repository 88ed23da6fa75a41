/*
 * test_config.c - the configuration: good files load with the right values and
 * defaults, every file of tests/configs/bad fails with its FILE:LINE message,
 * etc/onesyncd.conf loads, and every key of the table is documented.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "config/model.h"
#include "config/load.h"

/* libconfig 1.5 leaks its lexer buffer on a syntax error; not ours to fix. */
const char *__lsan_default_suppressions(void);
const char *
__lsan_default_suppressions(void)
{
	return "leak:libconfig.so\n";
}

static char	tmpdir[] = "/tmp/onesync-config-XXXXXX";

static char *
src_path(const char *rel)
{
	const char	*s = getenv("srcdir");

	return xasprintf("%s/%s", s != NULL ? s : ".", rel);
}

static char *
slurp(const char *path)
{
	char	*s = read_small_file(path, 1 << 20);

	if (s == NULL)
		fail_msg("cannot read %s", path);
	return s;
}

/* Write text to a file in tmpdir; returns its path. */
static char *
write_tmp(const char *name, const char *text)
{
	char	*p = xasprintf("%s/%s", tmpdir, name);
	FILE	*f = fopen(p, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return p;
}

/* Replace every occurrence of a with b in s (s is freed). */
static char *
subst(char *s, const char *a, const char *b)
{
	struct buf	 out;
	char		*p, *q = s;

	buf_init(&out);
	while ((p = strstr(q, a)) != NULL) {
		buf_add(&out, q, (size_t)(p - q));
		buf_adds(&out, b);
		q = p + strlen(a);
	}
	buf_adds(&out, q);
	free(s);
	return buf_steal(&out);
}

static struct config *
load_ok(const char *path)
{
	struct config	*cfg = NULL;
	struct strlist	 errs = { 0 };
	size_t		 i;

	if (config_load(path, &cfg, &errs) != 0) {
		for (i = 0; i < errs.n; i++)
			print_error("%s\n", errs.v[i]);
		fail_msg("%s does not load", path);
	}
	assert_int_equal(errs.n, 0);
	assert_non_null(cfg);
	return cfg;
}

static int
setup(void **state)
{
	char	*p;

	if (mkdtemp(tmpdir) == NULL)
		return -1;
	p = write_tmp("token", "t0ken\n");
	free(p);
	unsetenv("CREDENTIALS_DIRECTORY");
	return 0;
}

static int
teardown(void **state)
{
	char	cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
test_minimal_defaults(void **state)
{
	char			*path = src_path("tests/configs/good/minimal.conf");
	struct config		*cfg = load_ok(path);
	const struct job_conf	*j;

	assert_string_equal(cfg->path, path);
	assert_string_equal(cfg->state.conninfo, "dbname=test");
	assert_string_equal(cfg->state.schema, "onesync");
	assert_int_equal(cfg->state.connections, 4);
	assert_int_equal(cfg->state.connect_timeout_ms, 10000);
	assert_string_equal(cfg->daemon.instance, "");
	assert_int_equal(cfg->daemon.lease_ms, 30000);
	assert_int_equal(cfg->daemon.max_runs, 64);
	assert_string_equal(cfg->daemon.status_listen, "");
	assert_null(cfg->daemon.secrets_dir);
	assert_int_equal(cfg->daemon.stop_timeout_ms, 10000);
	assert_int_equal(cfg->njobs, 1);
	j = config_job(cfg, "items");
	assert_ptr_equal(j, &cfg->jobs[0]);
	assert_null(config_job(cfg, "other"));
	assert_int_equal(j->line, 4);
	assert_int_equal(j->strategy, STRAT_MODIFIED);
	assert_int_equal(j->nkey, 1);
	assert_string_equal(j->key[0], "id");
	assert_int_equal(j->interval_ms, 60000);
	assert_int_equal(j->jitter_ms, 6000);
	assert_int_equal(j->batch, 200);
	assert_int_equal(j->max_attempts, 8);
	assert_int_equal(j->retry_backoff_ms, 30000);
	assert_int_equal(j->retry_backoff_max_ms, 3600000);
	assert_int_equal(j->timeout_ms, 6 * 3600 * 1000);	/* run_timeout: 6h */
	assert_true(j->enabled);
	assert_string_equal(j->modified.field, "updatedAt");
	assert_int_equal(j->modified.format, TS_RFC3339);
	assert_false(j->modified.sorted);
	assert_int_equal(j->modified.lookback_ms, 0);
	assert_int_equal(j->modified.settle_ms, 0);
	assert_int_equal(j->src.type, CONN_HTTP);
	assert_string_equal(tmpl_source(j->src.url), "http://127.0.0.1:8080/items");
	assert_int_equal(j->src.nquery, 0);
	assert_int_equal(j->src.nheaders, 0);
	assert_string_equal(j->src.records, "");
	assert_int_equal(j->src.page_style, PAGE_NONE);
	assert_int_equal(j->src.page_first, 1);
	assert_int_equal(j->src.page_size, 100);
	assert_null(j->src.page_next);
	assert_null(j->src.fetch);
	assert_int_equal(j->src.http.timeout_ms, 30000);
	assert_int_equal(j->src.http.retries, 3);
	assert_int_equal(j->src.http.max_bytes, 64 * 1024 * 1024);
	assert_true(j->src.http.tls_verify);
	assert_null(j->src.http.ca_file);
	assert_int_equal(j->dst.type, CONN_HTTP);
	assert_string_equal(j->dst.method, "PUT");
	assert_string_equal(tmpl_source(j->dst.body), "{{record}}");
	assert_false(j->dst.has_create);
	assert_int_equal(j->dst.concurrency, 8);
	assert_int_equal(j->dst.http.timeout_ms, 30000);
	assert_int_equal(j->dst.http.retries, 3);
	assert_true(j->dst.http.tls_verify);
	/* strategy flag and postgresql source fields keep their zero values */
	assert_int_equal(j->max_records, 10000);
	assert_null(j->flag.version);
	assert_false(j->src.has_mark);
	assert_null(j->src.mark_method);
	assert_null(j->src.mark_url);
	assert_null(j->src.mark_body);
	assert_int_equal(j->src.mark_nheaders, 0);
	assert_null(j->src.conninfo);
	assert_null(j->src.table);
	assert_null(j->src.columns);
	assert_int_equal(j->src.ncolumns, 0);
	assert_null(j->src.where);
	assert_null(j->src.pending);
	assert_null(j->src.mark_set);
	assert_int_equal(j->src.nmark_set, 0);
	/* strategy capture, file source and delete fields keep their zero values */
	assert_null(j->capture.fields);
	assert_int_equal(j->capture.nfields, 0);
	assert_null(j->capture.exclude);
	assert_int_equal(j->capture.nexclude, 0);
	assert_false(j->capture.deletes);
	assert_null(j->src.file_url);
	assert_null(j->src.ssh_key);
	assert_null(j->src.ssh_host_sha256);
	assert_null(j->src.username);
	assert_null(j->src.password);
	assert_false(j->dst.has_delete);
	assert_null(j->dst.delete_method);
	assert_null(j->dst.delete_url);
	assert_int_equal(strlen(j->fingerprint), 32);
	config_free(cfg);
	free(path);
}

static void
test_full_values(void **state)
{
	char			*in = src_path("tests/configs/good/full.conf");
	char			*text = subst(slurp(in), "@SECRETS@", tmpdir);
	char			*path = write_tmp("full.conf", text);
	struct config		*cfg = load_ok(path);
	const struct job_conf	*j;
	struct tmpl_vals	 v = { 0 };
	struct buf		 b;
	char			*err;

	assert_string_equal(cfg->state.schema, "sync_state");
	assert_int_equal(cfg->state.connections, 2);
	assert_int_equal(cfg->state.connect_timeout_ms, 5000);	/* bare int = s */
	assert_string_equal(cfg->daemon.instance, "test-1");
	assert_int_equal(cfg->daemon.lease_ms, 10000);
	assert_int_equal(cfg->daemon.max_runs, 3);
	assert_string_equal(cfg->daemon.status_listen, "127.0.0.1:9999");
	assert_string_equal(cfg->daemon.secrets_dir, tmpdir);
	assert_int_equal(cfg->daemon.stop_timeout_ms, 2000);
	assert_int_equal(cfg->njobs, 2);

	j = config_job(cfg, "to-pg");
	assert_non_null(j);
	assert_int_equal(j->nkey, 2);
	assert_string_equal(j->key[1], "id");
	assert_int_equal(j->interval_ms, 500);
	assert_int_equal(j->jitter_ms, 1000);		/* defaults.jitter */
	assert_int_equal(j->batch, 10);
	assert_int_equal(j->max_attempts, 2);
	assert_int_equal(j->retry_backoff_ms, 1000);
	assert_int_equal(j->retry_backoff_max_ms, 60000);
	assert_int_equal(j->timeout_ms, 30000);
	assert_false(j->enabled);
	assert_int_equal(j->max_records, 7);
	assert_string_equal(j->modified.field, "meta.modified");
	assert_int_equal(j->modified.format, TS_EPOCH_MS);
	assert_true(j->modified.sorted);
	assert_int_equal(j->modified.lookback_ms, 120000);
	assert_int_equal(j->modified.settle_ms, 5000);
	assert_int_equal(j->src.nquery, 4);
	assert_string_equal(j->src.query[0].name, "_since");
	assert_string_equal(j->src.query[3].name, "static");
	assert_string_equal(tmpl_source(j->src.query[1].value), "{{page}}");
	assert_int_equal(j->src.nheaders, 2);
	assert_true(tmpl_has_secret(j->src.headers[0]));
	buf_init(&b);
	assert_int_equal(tmpl_render(j->src.headers[0], &v, false, &b, &err), 0);
	assert_string_equal(b.data, "Authorization: Bearer t0ken");
	buf_free(&b);
	assert_string_equal(j->src.records, "data.items");
	assert_int_equal(j->src.page_style, PAGE_PAGE);
	assert_int_equal(j->src.page_first, 0);
	assert_int_equal(j->src.page_size, 25);
	assert_string_equal(tmpl_source(j->src.fetch), "https://api.example.com/v1/items/{{key}}");
	assert_int_equal(j->src.http.timeout_ms, 3000);
	assert_int_equal(j->src.http.retries, 7);
	assert_int_equal(j->src.http.max_bytes, 2048);
	assert_true(j->src.http.tls_verify);
	assert_string_equal(j->src.http.ca_file, "/etc/ssl/ca.pem");
	assert_int_equal(j->dst.type, CONN_POSTGRESQL);
	assert_string_equal(j->dst.conninfo, "dbname=dest");
	assert_string_equal(j->dst.table, "public.items");
	assert_int_equal(j->dst.ncolumns, 4);
	assert_string_equal(j->dst.columns[3].column, "modified");
	assert_string_equal(j->dst.columns[3].field, "meta.modified");
	/* key_columns default: the columns mapped from the key, in key order */
	assert_int_equal(j->dst.nkey_columns, 2);
	assert_string_equal(j->dst.key_columns[0], "tenant");
	assert_string_equal(j->dst.key_columns[1], "id");
	/* each key column carries the key field it is mapped from (deletes by key) */
	assert_int_equal(j->dst.key_fields[0], 0);
	assert_int_equal(j->dst.key_fields[1], 1);

	j = config_job(cfg, "to-http");
	assert_non_null(j);
	assert_int_equal(j->interval_ms, 120000);	/* defaults.interval */
	assert_int_equal(j->max_records, 123);		/* defaults.max_records */
	assert_int_equal(j->batch, 50);
	assert_int_equal(j->max_attempts, 4);
	assert_int_equal(j->timeout_ms, 300000);
	assert_int_equal(j->modified.format, TS_EPOCH);
	assert_int_equal(j->src.nquery, 3);
	assert_string_equal(j->src.query[2].name, "n");
	assert_string_equal(tmpl_source(j->src.query[2].value), "100");
	assert_int_equal(j->src.page_style, PAGE_NEXT);
	assert_string_equal(j->src.page_next, "meta.next");
	assert_int_equal(j->src.http.timeout_ms, 15000);	/* defaults.timeout */
	assert_int_equal(j->src.http.retries, 1);
	assert_false(j->src.http.tls_verify);
	assert_int_equal(j->src.http.max_bytes, 1048576);
	assert_string_equal(j->dst.method, "PATCH");
	assert_true(j->dst.has_create);
	assert_string_equal(j->dst.create_method, "POST");
	assert_string_equal(tmpl_source(j->dst.create_url), "https://erp.example.com/stock");
	assert_string_equal(tmpl_source(j->dst.create_body), tmpl_source(j->dst.body));
	assert_int_equal(j->dst.concurrency, 2);
	assert_int_equal(j->dst.http.timeout_ms, 1000);
	assert_int_equal(j->dst.http.retries, 0);
	assert_string_equal(j->dst.http.ca_file, "/etc/ssl/erp.pem");
	assert_string_not_equal(cfg->jobs[0].fingerprint, cfg->jobs[1].fingerprint);
	config_free(cfg);
	free(path);
	free(text);
	free(in);
}

/* Strategy flag with HTTP sources: the marking request and max_records. */
static void
test_flag_http(void **state)
{
	char			*path = src_path("tests/configs/good/flag_http.conf");
	struct config		*cfg = load_ok(path);
	const struct job_conf	*j;
	struct tmpl_vals	 v = { 0 };
	struct buf		 b;
	char			*err;

	assert_int_equal(cfg->njobs, 2);
	j = config_job(cfg, "web-orders");
	assert_non_null(j);
	assert_int_equal(j->strategy, STRAT_FLAG);
	assert_int_equal(j->max_records, 2000);
	assert_null(j->flag.version);
	assert_null(j->modified.field);
	assert_int_equal(j->src.type, CONN_HTTP);
	assert_int_equal(j->src.nquery, 3);
	assert_string_equal(j->src.query[0].name, "synced");
	assert_int_equal(j->src.page_style, PAGE_PAGE);
	assert_true(j->src.has_mark);
	assert_string_equal(j->src.mark_method, "PATCH");
	assert_string_equal(tmpl_source(j->src.mark_url),
	    "http://127.0.0.1:8080/api/orders/{{key}}?version={{record.v}}");
	assert_int_equal(tmpl_uses(j->src.mark_url), TV_KEY | TV_RECORD);
	assert_int_equal(tmpl_uses(j->src.mark_body), TV_DEST);
	assert_int_equal(j->src.mark_nheaders, 2);
	assert_null(j->src.conninfo);
	assert_int_equal(j->src.nmark_set, 0);

	/* the marking renders with the record and the destination's answer */
	v.have = TV_KEY | TV_RECORD | TV_DEST;
	v.key = "o/1";
	v.record = json_pack("{s:s, s:i}", "id", "o/1", "v", 3);
	v.dest = json_pack("{s:s}", "id", "A-42");
	buf_init(&b);
	assert_int_equal(tmpl_render(j->src.mark_url, &v, false, &b, &err), 0);
	assert_string_equal(b.data, "http://127.0.0.1:8080/api/orders/o%2F1?version=3");
	b.len = 0;
	assert_int_equal(tmpl_render(j->src.mark_body, &v, false, &b, &err), 0);
	assert_string_equal(b.data, "{\"synced\": true, \"erpId\": \"A-42\"}");
	b.len = 0;
	assert_int_equal(tmpl_render(j->src.mark_headers[1], &v, false, &b, &err), 0);
	assert_string_equal(b.data, "X-Erp-Id: A-42");
	buf_free(&b);
	json_decref(v.record);
	json_decref(v.dest);

	j = config_job(cfg, "web-customers");
	assert_non_null(j);
	assert_int_equal(j->max_records, 500);		/* defaults.max_records */
	assert_true(j->src.has_mark);
	assert_string_equal(j->src.mark_method, "PATCH");	/* default */
	assert_null(j->src.mark_body);			/* body = "" */
	assert_int_equal(j->src.mark_nheaders, 0);
	assert_string_equal(j->dst.method, "PUT");
	assert_string_not_equal(cfg->jobs[0].fingerprint, cfg->jobs[1].fingerprint);
	config_free(cfg);
	free(path);
}

/* PostgreSQL sources: strategy flag (pending, mark.set, flag.version) and modified. */
static void
test_pg_source(void **state)
{
	char			*path = src_path("tests/configs/good/pg_source.conf");
	struct config		*cfg = load_ok(path);
	const struct job_conf	*j;
	struct tmpl_vals	 v = { 0 };
	struct buf		 b;
	char			*err;

	assert_int_equal(cfg->njobs, 2);
	j = config_job(cfg, "pg-orders");
	assert_non_null(j);
	assert_int_equal(j->strategy, STRAT_FLAG);
	assert_int_equal(j->max_records, 10000);
	assert_string_equal(j->flag.version, "version");
	assert_int_equal(j->src.type, CONN_POSTGRESQL);
	assert_int_equal(j->src.line, 9);
	assert_string_equal(j->src.conninfo, "host=/run/postgresql dbname=shop");
	assert_string_equal(j->src.table, "sales.orders");
	assert_int_equal(j->src.ncolumns, 4);
	assert_string_equal(j->src.columns[0], "id");
	assert_string_equal(j->src.columns[3], "version");
	assert_null(j->src.columns[4]);
	assert_string_equal(j->src.where, "total > 0");
	assert_string_equal(j->src.pending, "NOT synced");
	assert_int_equal(j->src.page_size, 250);
	/* no http fields on a postgresql source */
	assert_null(j->src.url);
	assert_int_equal(j->src.nquery, 0);
	assert_null(j->src.records);
	assert_null(j->src.fetch);
	assert_false(j->src.has_mark);
	assert_null(j->src.mark_url);
	assert_int_equal(j->src.page_style, PAGE_NONE);
	/* mark.set in file order, each a TMPL_TEXT */
	assert_int_equal(j->src.nmark_set, 3);
	assert_string_equal(j->src.mark_set[0].column, "synced");
	assert_string_equal(j->src.mark_set[1].column, "erp_id");
	assert_string_equal(j->src.mark_set[2].column, "note");
	assert_string_equal(tmpl_source(j->src.mark_set[0].value), "true");
	v.have = TV_KEY | TV_RECORD | TV_DEST;
	v.key = "17";
	v.record = json_pack("{s:i, s:s}", "id", 17, "customer", "Zoë \"Z\"");
	v.dest = json_pack("{s:i}", "id", 42);
	buf_init(&b);
	assert_int_equal(tmpl_render(j->src.mark_set[1].value, &v, false, &b, &err), 0);
	assert_string_equal(b.data, "42");
	b.len = 0;
	assert_int_equal(tmpl_render(j->src.mark_set[2].value, &v, false, &b, &err), 0);
	assert_string_equal(b.data, "Zoë \"Z\"/17");
	buf_free(&b);
	json_decref(v.record);
	json_decref(v.dest);

	j = config_job(cfg, "pg-items");
	assert_non_null(j);
	assert_int_equal(j->strategy, STRAT_MODIFIED);
	assert_string_equal(j->modified.field, "updated_at");
	assert_int_equal(j->modified.settle_ms, 2000);
	assert_null(j->flag.version);
	assert_string_equal(j->src.table, "items");
	assert_null(j->src.columns);			/* all columns */
	assert_int_equal(j->src.ncolumns, 0);
	assert_null(j->src.where);
	assert_null(j->src.pending);
	assert_int_equal(j->src.nmark_set, 0);
	assert_int_equal(j->src.page_size, 100);
	assert_int_equal(j->dst.type, CONN_POSTGRESQL);
	config_free(cfg);
	free(path);
}

/* Strategy capture with file sources: CSV over SFTP, NDJSON over HTTPS, a JSON file. */
static void
test_capture_file(void **state)
{
	char			*path = src_path("tests/configs/good/capture_file.conf");
	struct config		*cfg = load_ok(path);
	const struct job_conf	*j;

	assert_int_equal(cfg->njobs, 3);
	j = config_job(cfg, "catalogue");
	assert_non_null(j);
	assert_int_equal(j->strategy, STRAT_CAPTURE);
	assert_null(j->capture.fields);			/* the whole record */
	assert_int_equal(j->capture.nfields, 0);
	assert_int_equal(j->capture.nexclude, 2);
	assert_string_equal(j->capture.exclude[0], "exported_at");
	assert_string_equal(j->capture.exclude[1], "row_no");
	assert_null(j->capture.exclude[2]);
	assert_true(j->capture.deletes);
	assert_true(j->capture.max_delete_ratio == 0.25);
	assert_null(j->modified.field);
	assert_int_equal(j->src.type, CONN_FILE);
	assert_int_equal(j->src.line, 16);
	assert_string_equal(j->src.file_url,
	    "sftp://supplier.example.com/out/catalogue.csv.gz");
	assert_null(j->src.url);			/* the http template */
	assert_null(j->src.records);
	assert_int_equal(j->src.nquery, 0);
	assert_int_equal(j->src.file_format, FILE_CSV);	/* default */
	assert_int_equal(j->src.delimiter, ';');
	assert_int_equal(j->src.gzip, -1);		/* default "auto" */
	assert_string_equal(j->src.ssh_key, "/etc/onesyncd/supplier_ed25519");
	/* "SHA256:" stripped */
	assert_string_equal(j->src.ssh_host_sha256,
	    "nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8");
	assert_string_equal(j->src.username, "onesync");
	assert_null(j->src.password);
	/* a whole file transfer: 10m, not defaults.timeout; no retries, no size limit */
	assert_int_equal(j->src.http.timeout_ms, 600000);
	assert_int_equal(j->src.http.retries, 0);
	assert_int_equal(j->src.http.max_bytes, 0);
	assert_false(j->src.http.tls_verify);		/* defaults.tls_verify */
	assert_null(j->src.http.ca_file);
	assert_int_equal(j->dst.type, CONN_POSTGRESQL);
	assert_false(j->dst.has_delete);		/* postgresql deletes by key_columns */
	assert_int_equal(j->dst.nkey_columns, 1);
	assert_string_equal(j->dst.key_columns[0], "sku");

	j = config_job(cfg, "stock");
	assert_non_null(j);
	assert_int_equal(j->nkey, 2);
	assert_int_equal(j->capture.nfields, 2);
	assert_string_equal(j->capture.fields[0], "qty");
	assert_string_equal(j->capture.fields[1], "bin.code");
	assert_null(j->capture.exclude);
	assert_int_equal(j->capture.nexclude, 0);
	assert_false(j->capture.deletes);		/* default */
	assert_true(j->capture.max_delete_ratio == 0.1);	/* default */
	assert_string_equal(j->src.file_url, "https://files.example.com/stock.ndjson");
	assert_int_equal(j->src.file_format, FILE_NDJSON);
	assert_int_equal(j->src.delimiter, ',');
	assert_int_equal(j->src.gzip, 0);
	assert_null(j->src.ssh_key);
	assert_null(j->src.ssh_host_sha256);
	assert_string_equal(j->src.username, "reader");
	assert_string_equal(j->src.password, "s3cret");
	assert_int_equal(j->src.http.timeout_ms, 120000);
	assert_int_equal(j->src.http.retries, 0);
	assert_int_equal(j->src.http.max_bytes, 1073741824);
	assert_true(j->src.http.tls_verify);
	assert_string_equal(j->src.http.ca_file, "/etc/ssl/files.pem");
	assert_int_equal(j->dst.type, CONN_HTTP);
	assert_false(j->dst.has_delete);

	j = config_job(cfg, "prices");
	assert_non_null(j);
	assert_int_equal(j->src.file_format, FILE_JSON);
	assert_int_equal(j->src.gzip, -1);
	assert_true(j->capture.max_delete_ratio == 1.0);	/* an integer 1 */
	assert_null(j->src.username);
	assert_string_not_equal(cfg->jobs[0].fingerprint, cfg->jobs[1].fingerprint);
	config_free(cfg);
	free(path);
}

/* Strategy capture over an HTTP API and a PostgreSQL table; HTTP delete requests. */
static void
test_capture_http(void **state)
{
	char			*path = src_path("tests/configs/good/capture_http.conf");
	struct config		*cfg = load_ok(path);
	const struct job_conf	*j;
	struct tmpl_vals	 v = { 0 };
	struct buf		 b;
	char			*err;

	assert_int_equal(cfg->njobs, 2);
	j = config_job(cfg, "products");
	assert_non_null(j);
	assert_int_equal(j->strategy, STRAT_CAPTURE);
	assert_int_equal(j->capture.nfields, 4);
	assert_string_equal(j->capture.fields[3], "stock.level");
	assert_true(j->capture.deletes);
	assert_true(j->capture.max_delete_ratio == 0.1);
	assert_int_equal(j->src.type, CONN_HTTP);
	assert_null(j->src.file_url);
	assert_int_equal(j->src.page_style, PAGE_LINK);
	assert_true(j->src.page_stable);
	assert_int_equal(j->src.page_size, 200);
	assert_string_equal(j->src.records, "items");
	assert_int_equal(j->src.http.timeout_ms, 30000);	/* http: defaults.timeout */
	assert_int_equal(j->src.http.retries, 3);
	assert_false(j->src.has_mark);
	assert_true(j->dst.has_delete);
	assert_string_equal(j->dst.delete_method, "DELETE");	/* default */
	assert_int_equal(tmpl_uses(j->dst.delete_url), TV_KEY);
	v.have = TV_KEY;
	v.key = "p/1";
	buf_init(&b);
	assert_int_equal(tmpl_render(j->dst.delete_url, &v, false, &b, &err), 0);
	assert_string_equal(b.data, "http://127.0.0.1:8081/api/products/p%2F1?soft=1");
	buf_free(&b);

	j = config_job(cfg, "pg-countries");
	assert_non_null(j);
	assert_int_equal(j->capture.nexclude, 1);
	assert_false(j->capture.deletes);
	assert_int_equal(j->src.type, CONN_POSTGRESQL);
	assert_string_equal(j->src.table, "ref.countries");
	assert_int_equal(j->src.ncolumns, 3);
	assert_string_equal(j->src.where, "active");
	assert_null(j->src.pending);
	assert_int_equal(j->src.nmark_set, 0);
	assert_int_equal(j->src.page_size, 1000);
	assert_true(j->dst.has_delete);			/* given, though deletes is off */
	assert_string_equal(j->dst.delete_method, "POST");
	config_free(cfg);
	free(path);
}

/* Load text that must fail with an error containing want. */
static void
expect_error(const char *text, const char *want)
{
	char		*path = write_tmp("err.conf", text);
	struct config	*cfg = NULL;
	struct strlist	 errs = { 0 };
	size_t		 i;
	bool		 found = false;

	if (config_load(path, &cfg, &errs) == 0)
		fail_msg("loaded, expected '%s':\n%s", want, text);
	for (i = 0; i < errs.n; i++) {
		if (strstr(errs.v[i], want) != NULL)
			found = true;
	}
	if (!found) {
		for (i = 0; i < errs.n; i++)
			print_error("  got: %s\n", errs.v[i]);
		fail_msg("no error contains '%s'", want);
	}
	strlist_free(&errs);
	free(path);
}

#define CJOB(capture, source, dest)						\
	"state = { conninfo = \"dbname=x\"; };\n"					\
	"jobs = ( { name = \"c\"; strategy = \"capture\"; key = \"id\";\n"	\
	capture "\n source = { " source " };\n destination = { " dest " }; } );\n"
#define FSRC	"type = \"file\"; "
#define HDST	"type = \"http\"; url = \"http://h/{{key}}\";"

/* The checks of capture, file sources and delete requests that have no bad file. */
static void
test_capture_errors(void **state)
{
	expect_error(CJOB("", FSRC "url = \"sftp://u:pw@h/a.csv\";", HDST),
	    "'source.url': a password in the URL would be logged");
	expect_error(CJOB("", FSRC "url = \"/srv/a.csv\";", HDST),
	    "'source.url': '/srv/a.csv' is not a URL");
	expect_error(CJOB("", FSRC "url = \"file:///{{env:HOME}}/a.csv\";", HDST),
	    "the url of a file source takes no placeholders");
	expect_error(CJOB("", FSRC "url = \"HTTPS://h/a\"; format = \"xml\";", HDST),
	    "'source.format': unknown format 'xml' (expected csv, ndjson or json)");
	expect_error(CJOB("", FSRC "url = \"file:///a\"; format = \"ndjson\"; "
	    "delimiter = \";\";", HDST),
	    "'source.delimiter' is used only with format 'csv'");
	expect_error(CJOB("", FSRC "url = \"file:///a\"; delimiter = \"\\\"\";", HDST),
	    "'source.delimiter' must be one character");
	expect_error(CJOB("", FSRC "url = \"file:///a\"; gzip = \"yes\";", HDST),
	    "'source.gzip' must be true, false or \"auto\"");
	expect_error(CJOB("", FSRC "url = \"sftp://h/a\"; ssh_host_sha256 = \"abc\";",
	    HDST), "'source.ssh_host_sha256': 'abc' is not a base64 SHA-256");
	expect_error(CJOB("", FSRC "url = \"https://h/a\"; ssh_host_sha256 = "
	    "\"nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8\";", HDST),
	    "'source.ssh_host_sha256' is used only with an sftp:// url");
	expect_error(CJOB("", FSRC "url = \"file:///a\"; username = \"u\";", HDST),
	    "'source.username' has no use with a file:// url");
	expect_error(CJOB("", FSRC "url = \"ftp://h/a\"; password = \"{{key}}\";",
	    HDST), "source.password: placeholder {{key}} is not valid here");
	expect_error(CJOB("", FSRC "url = \"ftp://h/a\"; retries = 2;", HDST),
	    "'source.retries' is not valid for a file source");
	expect_error(CJOB("", FSRC "url = \"ftp://h/a\"; page = { size = 2; };", HDST),
	    "'source.page' is not valid for a file source");
	expect_error(CJOB("", FSRC "url = \"ftp://h/a\"; max_bytes = 0;", HDST),
	    "'source.max_bytes' must be between 1024");
	expect_error(CJOB("", "url = \"http://h/a\"; format = \"csv\";", HDST),
	    "'source.format' is not valid for a http source");
	expect_error(CJOB("", "url = \"http://h/{{watermark}}\";", HDST),
	    "source.url: {{watermark}} has no value with strategy 'capture'");
	expect_error(CJOB("", "type = \"postgresql\"; conninfo = \"dbname=x\"; table = \"t\"; "
	    "pending = \"NOT done\";", HDST),
	    "source.pending is used only by strategy 'flag'");
	expect_error(CJOB("flag = { version = \"v\"; };", "url = \"http://h/a\";", HDST),
	    "'flag' is used only by strategy 'flag'");
	expect_error(CJOB("capture = { max_delete_ratio = 2; };", "url = \"http://h/a\";",
	    HDST), "'capture.max_delete_ratio' must be between 0 and 1 (got 2)");
	expect_error(CJOB("capture = { max_delete_ratio = \"10%\"; };",
	    "url = \"http://h/a\";", HDST),
	    "'capture.max_delete_ratio' must be a number such as 0.1");
	expect_error(CJOB("capture = { exclude = [ \"meta.ts\" ]; };",
	    "url = \"http://h/a\";", HDST), "'capture.exclude': 'meta.ts' is a path");
	expect_error(CJOB("capture = { fields = [ ]; };", "url = \"http://h/a\";", HDST),
	    "'capture.fields' is empty");
	expect_error(CJOB("capture = { fields = [ \"a\", \"a\" ]; };",
	    "url = \"http://h/a\";", HDST), "'capture.fields': 'a' is given twice");
	expect_error(CJOB("capture = { deletes = true; };", "url = \"http://h/a\";",
	    HDST " delete = { method = \"GET\"; url = \"http://h/{{key}}\"; };"),
	    "'destination.delete.method': unknown method 'GET'");
	expect_error(CJOB("", "url = \"http://h/a\";", HDST " delete = { method = "
	    "\"DELETE\"; };"), "missing required key 'destination.delete.url'");
	expect_error(CJOB("capture = { deletes = true; };", "url = \"http://h/a\";",
	    HDST " headers = [ \"If-Match: {{record.v}}\" ]; delete = { url = "
	    "\"http://h/{{key}}\"; };"),
	    "destination.headers[0]: {{record}} has no value in the delete request");
	expect_error(CJOB("capture = { deletes = true; };", "url = \"http://h/a\";",
	    "type = \"postgresql\"; conninfo = \"dbname=x\"; table = \"t\"; "
	    "columns = { id = \"id\"; }; delete = { url = \"http://h/{{key}}\"; };"),
	    "'destination.delete' is not valid for a postgresql destination");
	expect_error("state = { conninfo = \"dbname=x\"; };\n"
	    "jobs = ( { name = \"m\"; strategy = \"modified\"; key = \"id\";\n"
	    " modified = { field = \"t\"; }; source = { url = \"http://h/a\"; };\n"
	    " destination = { " HDST " delete = { url = \"http://h/{{key}}\"; }; }; } );\n",
	    "destination.delete is used only by strategy 'capture'");
}

/* A file source's password: rendered from its secret at load, in the fingerprint. */
static void
test_capture_password(void **state)
{
	char		*text, *p, *t;
	struct config	*c1, *c2;

	text = xasprintf("daemon = { secrets_dir = \"%s\"; };\n%s", tmpdir,
	    CJOB("", FSRC "url = \"sftp://h/a.csv\"; username = \"u\"; "
	    "password = \"{{secret:token}}\"; ssh_host_sha256 = "
	    "\"nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8=\";", HDST));
	p = write_tmp("pw.conf", text);
	c1 = load_ok(p);
	assert_string_equal(c1->jobs[0].src.password, "t0ken");
	/* the 44-character form (with '=') is stored as the 43 OpenSSH prints */
	assert_string_equal(c1->jobs[0].src.ssh_host_sha256,
	    "nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8");
	t = write_tmp("token", "n3w\n");
	free(t);
	c2 = load_ok(p);
	assert_string_equal(c2->jobs[0].src.password, "n3w");
	assert_string_not_equal(c1->jobs[0].fingerprint, c2->jobs[0].fingerprint);
	config_free(c2);
	t = write_tmp("token", "t0ken\n");
	free(t);
	c2 = load_ok(p);
	assert_string_equal(c1->jobs[0].fingerprint, c2->jobs[0].fingerprint);
	config_free(c2);
	config_free(c1);
	free(p);
	free(text);

	/* {{env:NAME}} too, and a literal password */
	setenv("ONESYNC_TEST_FILE_PW", "e-pw", 1);
	p = write_tmp("pw2.conf", CJOB("", FSRC "url = \"ftps://h/a.csv\"; "
	    "password = \"x-{{env:ONESYNC_TEST_FILE_PW}}\";", HDST));
	c1 = load_ok(p);
	assert_string_equal(c1->jobs[0].src.password, "x-e-pw");
	config_free(c1);
	unsetenv("ONESYNC_TEST_FILE_PW");
	free(p);
}

/* Every file in tests/configs/bad fails with its expected FILE:LINE message. */
static void
test_bad_configs(void **state)
{
	char		*dir = src_path("tests/configs/bad"), *exp, *line, *save, *tab;
	char		*path;
	struct config	*cfg;
	struct strlist	 errs;
	size_t		 i, n = 0;
	bool		 found;

	path = xasprintf("%s/EXPECTED", dir);
	exp = slurp(path);
	free(path);
	for (line = strtok_r(exp, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		if ((tab = strchr(line, '\t')) == NULL)
			fail_msg("bad EXPECTED line '%s'", line);
		*tab++ = '\0';
		path = xasprintf("%s/%s", dir, line);
		memset(&errs, 0, sizeof errs);
		cfg = (struct config *)1;
		if (config_load(path, &cfg, &errs) == 0)
			fail_msg("%s loaded", path);
		assert_null(cfg);
		found = false;
		for (i = 0; i < errs.n; i++) {
			/* every message is FILE:LINE: message */
			if (strncmp(errs.v[i], path, strlen(path)) != 0 ||
			    errs.v[i][strlen(path)] != ':' ||
			    strtol(errs.v[i] + strlen(path) + 1, NULL, 10) <= 0)
				fail_msg("'%s' is not FILE:LINE: message", errs.v[i]);
			if (strstr(errs.v[i], tab) != NULL)
				found = true;
		}
		if (!found) {
			for (i = 0; i < errs.n; i++)
				print_error("  got: %s\n", errs.v[i]);
			fail_msg("%s: no error contains '%s'", line, tab);
		}
		strlist_free(&errs);
		free(path);
		n++;
	}
	assert_true(n >= 40);
	free(exp);
	free(dir);
}

/* All errors are reported, not only the first. */
static void
test_all_errors(void **state)
{
	char		*path;
	struct config	*cfg;
	struct strlist	 errs = { 0 };

	path = write_tmp("multi.conf",
	    "state = { conninfo = \"dbname=x\"; connections = 0; };\n"	/* 1 */
	    "daemon = { lease = \"1x\"; };\n"				/* 2 */
	    "jobs = (\n"
	    "  { name = \"a\"; strategy = \"modified\"; key = \"id\";\n"
	    "    modified = { field = \"t\"; };\n"
	    "    source = { url = \"http://h/{{bogus}}\"; };\n"	/* 6 */
	    "    destination = { type = \"http\"; url = \"http://h/{{key}}\"; "
	    "colour = 1; }; },\n"					/* 7 */
	    "  { name = \"a\"; strategy = \"snapshot\"; key = 5;\n"	/* 8 */
	    "    source = { url = \"http://h/\"; };\n"
	    "    destination = { type = \"ftp\"; }; }\n"		/* 10 */
	    ");\n");
	assert_int_equal(config_load(path, &cfg, &errs), -1);
	assert_null(cfg);
	assert_int_equal(errs.n, 8);
	assert_non_null(strstr(errs.v[0], "multi.conf:7: unknown key 'colour' in "
	    "jobs[0].destination"));
	assert_non_null(strstr(errs.v[1], "multi.conf:8: 'key' must be a string or a "
	    "list of strings"));
	assert_non_null(strstr(errs.v[2], "multi.conf:2: 'daemon.lease': bad duration"));
	assert_non_null(strstr(errs.v[3], "multi.conf:1: 'state.connections' must be "
	    "between 1 and 64 (got 0)"));
	assert_non_null(strstr(errs.v[4], "multi.conf:6: source.url: unknown "
	    "placeholder {{bogus}}"));
	assert_non_null(strstr(errs.v[5], "multi.conf:8: duplicate job name 'a' "
	    "(first at line 4)"));
	assert_non_null(strstr(errs.v[6], "multi.conf:8: unknown strategy 'snapshot' "
	    "(expected modified, flag or capture)"));
	assert_non_null(strstr(errs.v[7], "multi.conf:10: unknown destination type "
	    "'ftp'"));
	strlist_free(&errs);
	free(path);

	assert_int_equal(config_load("/nonexistent/onesyncd.conf", &cfg, &errs), -1);
	assert_int_equal(errs.n, 1);
	assert_non_null(strstr(errs.v[0], "/nonexistent/onesyncd.conf: cannot open"));
	strlist_free(&errs);
}

/* The shipped example loads without any environment or secrets. */
static void
test_example(void **state)
{
	char		*path = src_path("etc/onesyncd.conf");
	struct config	*cfg = load_ok(path);

	assert_int_equal(cfg->njobs, 2);
	assert_int_equal(cfg->jobs[0].dst.type, CONN_POSTGRESQL);
	assert_int_equal(cfg->jobs[1].dst.type, CONN_HTTP);
	assert_int_equal(cfg->jobs[0].strategy, STRAT_MODIFIED);
	config_free(cfg);
	free(path);
}

/* Does text contain `name =` (as a setting, commented or not)? */
static bool
has_setting(const char *text, const char *name)
{
	const char	*p = text, *q;
	size_t		 n = strlen(name);

	while ((p = strstr(p, name)) != NULL) {
		q = p + n;
		while (*q == ' ' || *q == '\t')
			q++;
		if (*q == '=' && (p == text || !(p[-1] == '_' ||
		    (p[-1] >= 'a' && p[-1] <= 'z'))))
			return true;
		p += n;
	}
	return false;
}

/* Every key of the table is in the man page (full path) and the example. */
static void
test_keys_documented(void **state)
{
	char	*buf = NULL, *line, *save, *f[5], *mp, *ep, *man, *ex, *leafname;
	size_t	 len = 0, n = 0;
	FILE	*mf = open_memstream(&buf, &len);
	int	 i;

	assert_non_null(mf);
	config_dump_keys(mf);
	fclose(mf);
	mp = src_path("man/onesyncd.conf.5");
	ep = src_path("etc/onesyncd.conf");
	man = slurp(mp);
	ex = slurp(ep);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save)) {
		f[0] = line;
		for (i = 1; i < 5; i++) {
			if ((f[i] = strchr(f[i - 1], '\t')) == NULL)
				fail_msg("dump line '%s' has fewer than 5 fields", line);
			*f[i]++ = '\0';
		}
		assert_true(strcmp(f[3], "reload") == 0 || strcmp(f[3], "restart") == 0);
		assert_true(*f[4] != '\0');
		if (strstr(man, f[0]) == NULL)
			fail_msg("key %s is not in man/onesyncd.conf.5", f[0]);
		leafname = strrchr(f[0], '.') != NULL ? strrchr(f[0], '.') + 1 : f[0];
		if (!has_setting(ex, leafname))
			fail_msg("key %s is not in etc/onesyncd.conf", f[0]);
		n++;
	}
	assert_true(n > 60);
	free(man);
	free(ex);
	free(mp);
	free(ep);
	free(buf);
}

/* Reload support: only a changed job gets a new fingerprint. */
static void
test_fingerprint(void **state)
{
	const char	*base =
	    "state = { conninfo = \"dbname=x\"; };\n"
	    "defaults = { batch = 10; };\n"
	    "jobs = (\n"
	    "  { name = \"a\"; strategy = \"modified\"; key = \"id\";\n"
	    "    modified = { field = \"t\"; };\n"
	    "    source = { url = \"http://h/a\"; headers = [ \"T: {{secret:token}}\" ]; };\n"
	    "    destination = { type = \"http\"; url = \"http://h/{{key}}\"; }; },\n"
	    "  { name = \"b\"; strategy = \"modified\"; key = \"id\";\n"
	    "    modified = { field = \"t\"; };\n"
	    "    source = { url = \"http://h/B\"; };\n"
	    "    destination = { type = \"http\"; url = \"http://h/{{key}}\"; }; }\n"
	    ");\n";
	char		*text, *p1, *p2, *t;
	struct config	*c1, *c2, *c3;

	text = xasprintf("daemon = { secrets_dir = \"%s\"; };\n%s", tmpdir, base);
	p1 = write_tmp("fp1.conf", text);
	c1 = load_ok(p1);
	c2 = load_ok(p1);
	assert_string_equal(c1->jobs[0].fingerprint, c2->jobs[0].fingerprint);
	assert_string_equal(c1->jobs[1].fingerprint, c2->jobs[1].fingerprint);
	config_free(c2);

	/* change job b only */
	text = subst(text, "http://h/B", "http://h/C");
	p2 = write_tmp("fp2.conf", text);
	c2 = load_ok(p2);
	assert_string_equal(c1->jobs[0].fingerprint, c2->jobs[0].fingerprint);
	assert_string_not_equal(c1->jobs[1].fingerprint, c2->jobs[1].fingerprint);
	config_free(c2);

	/* a rotated secret changes the job that uses it */
	t = write_tmp("token", "n3w\n");
	c2 = load_ok(p1);
	assert_string_not_equal(c1->jobs[0].fingerprint, c2->jobs[0].fingerprint);
	assert_string_equal(c1->jobs[1].fingerprint, c2->jobs[1].fingerprint);
	config_free(c2);
	free(t);
	t = write_tmp("token", "t0ken\n");
	free(t);

	/* defaults apply to every job */
	text = subst(text, "batch = 10", "batch = 11");
	free(p2);
	p2 = write_tmp("fp3.conf", text);
	c3 = load_ok(p2);
	assert_string_not_equal(c1->jobs[0].fingerprint, c3->jobs[0].fingerprint);
	config_free(c3);
	config_free(c1);
	free(text);
	free(p1);
	free(p2);
}

/* Secrets in marking templates count in the fingerprint as well. */
static void
test_fingerprint_mark(void **state)
{
	const char	*base =
	    "state = { conninfo = \"dbname=x\"; };\n"
	    "jobs = (\n"
	    "  { name = \"h\"; strategy = \"flag\"; key = \"id\";\n"
	    "    source = { url = \"http://h/a\";\n"
	    "      mark = { url = \"http://h/{{key}}\"; headers = [ \"T: {{secret:token}}\" ]; }; };\n"
	    "    destination = { type = \"http\"; url = \"http://h/{{key}}\"; }; },\n"
	    "  { name = \"p\"; strategy = \"flag\"; key = \"id\";\n"
	    "    source = { type = \"postgresql\"; conninfo = \"dbname=s\"; table = \"t\";\n"
	    "      pending = \"NOT done\"; mark = { set = { done = \"{{secret:token}}\"; }; }; };\n"
	    "    destination = { type = \"http\"; url = \"http://h/{{key}}\"; }; },\n"
	    "  { name = \"q\"; strategy = \"flag\"; key = \"id\"; max_records = 5;\n"
	    "    source = { url = \"http://h/a\"; mark = { url = \"http://h/{{key}}\"; }; };\n"
	    "    destination = { type = \"http\"; url = \"http://h/{{key}}\"; }; }\n"
	    ");\n";
	char		*text, *p1, *p2, *t;
	struct config	*c1, *c2;

	text = xasprintf("daemon = { secrets_dir = \"%s\"; };\n%s", tmpdir, base);
	p1 = write_tmp("fpm1.conf", text);
	c1 = load_ok(p1);
	t = write_tmp("token", "n3w\n");
	free(t);
	c2 = load_ok(p1);
	assert_string_not_equal(c1->jobs[0].fingerprint, c2->jobs[0].fingerprint);
	assert_string_not_equal(c1->jobs[1].fingerprint, c2->jobs[1].fingerprint);
	assert_string_equal(c1->jobs[2].fingerprint, c2->jobs[2].fingerprint);
	config_free(c2);
	t = write_tmp("token", "t0ken\n");
	free(t);
	text = subst(text, "max_records = 5", "max_records = 6");
	p2 = write_tmp("fpm2.conf", text);
	c2 = load_ok(p2);
	assert_string_equal(c1->jobs[0].fingerprint, c2->jobs[0].fingerprint);
	assert_string_not_equal(c1->jobs[2].fingerprint, c2->jobs[2].fingerprint);
	config_free(c2);
	config_free(c1);
	free(text);
	free(p1);
	free(p2);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_minimal_defaults),
		cmocka_unit_test(test_full_values),
		cmocka_unit_test(test_flag_http),
		cmocka_unit_test(test_pg_source),
		cmocka_unit_test(test_capture_file),
		cmocka_unit_test(test_capture_http),
		cmocka_unit_test(test_capture_errors),
		cmocka_unit_test(test_capture_password),
		cmocka_unit_test(test_bad_configs),
		cmocka_unit_test(test_all_errors),
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_keys_documented),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_fingerprint_mark),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
