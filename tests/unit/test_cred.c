/* test_cred.c - credentials (config/cred.c): what a file's credentials and auth keys load
 * to, state.encryption_key's 64 hex digits as 32 bytes, and a credential as part of a job's
 * fingerprint but not of its identity. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/cred.h"
#include "config/load.h"
#include "core/util.h"

/* Load text as a configuration file: the configuration, or NULL and the first error in
 * *err (caller frees). */
static struct config *
load_text(const char *text, char **err)
{
	char		 path[] = "/tmp/test_cred.XXXXXX";
	struct config	*cfg = NULL;
	struct strlist	 errs = { 0 };
	FILE		*f;
	int		 fd;

	*err = NULL;
	assert_true((fd = mkstemp(path)) >= 0);
	assert_non_null(f = fdopen(fd, "w"));
	fputs(text, f);
	fclose(f);
	if (config_load(path, &cfg, &errs) != 0)
		*err = xstrdup(errs.n > 0 ? errs.v[0] : "?");
	unlink(path);
	strlist_free(&errs);
	return cfg;
}

static struct config *
load_ok(const char *text)
{
	char		*err;
	struct config	*cfg = load_text(text, &err);

	if (cfg == NULL)
		fail_msg("refused: %s", err);
	return cfg;
}

/* The key's error for state.encryption_key = v, or NULL when accepted (bytes in key). */
static char *
key_try(const char *v, unsigned char key[32])
{
	char		*text, *err;
	struct config	*cfg;

	text = xasprintf("state = { conninfo = \"dbname=test\"; encryption_key = \"%s\"; };\n", v);
	cfg = load_text(text, &err);
	free(text);
	if (cfg != NULL) {
		assert_true(cfg->state.has_key);
		memcpy(key, cfg->state.key, 32);
		config_free(cfg);
	}
	return err;
}

static void
test_key(void **state)
{
	static const char hex[] =
	    "00ff10A0b1C2d3E4f5061728394a5b6c7d8e9fAaBbCcDdEeFf0123456789abcd";
	static const unsigned char want[32] = {
		0x00, 0xff, 0x10, 0xa0, 0xb1, 0xc2, 0xd3, 0xe4, 0xf5, 0x06, 0x17, 0x28,
		0x39, 0x4a, 0x5b, 0x6c, 0x7d, 0x8e, 0x9f, 0xaa, 0xbb, 0xcc, 0xdd, 0xee,
		0xff, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
	};
	unsigned char	 key[32];
	char		*err, *v;
	struct config	*cfg;

	(void)state;
	assert_null(err = key_try(hex, key));
	assert_memory_equal(key, want, 32);
	/* 63 and 65 digits, a non-hex digit, spaces, nothing: refused, the value unquoted */
	v = xstrndup(hex, 63);
	assert_non_null(err = key_try(v, key));
	assert_non_null(strstr(err, "it has 63 characters"));
	assert_null(strstr(err, "00ff10A0b1"));
	free(err);
	free(v);
	v = xasprintf("%s0", hex);
	assert_non_null(err = key_try(v, key));
	assert_non_null(strstr(err, "it has 65 characters"));
	free(err);
	free(v);
	v = xstrdup(hex);
	v[40] = 'g';
	assert_non_null(err = key_try(v, key));
	assert_non_null(strstr(err, "holds another character"));
	assert_null(strstr(err, "00ff10A0b1"));
	free(err);
	free(v);
	v = xasprintf(" %.62s ", hex);
	assert_non_null(err = key_try(v, key));
	free(err);
	free(v);
	assert_non_null(err = key_try("", key));
	free(err);
	/* no key: none */
	cfg = load_ok("state = { conninfo = \"dbname=test\"; };\n");
	assert_false(cfg->state.has_key);
	config_free(cfg);
}

static const char job_fmt[] =
    "state = { conninfo = \"dbname=test\"; };\n"
    "credentials = (\n"
    "  { name = \"crm\"; type = \"oauth2_client_credentials\";\n"
    "    token_url = \"https://crm.example.com/oauth/token\";\n"
    "    client_id = \"crm-client-id\"; client_secret = \"%s\"; },\n"
    "  { name = \"other\"; type = \"oauth2_client_credentials\";\n"
    "    token_url = \"http://127.0.0.1:9/token\"; client_id = \"other-client\";\n"
    "    client_auth = \"body\"; scope = \"read\"; timeout = \"5s\"; }\n"
    ");\n"
    "jobs = ( { name = \"orders\"; strategy = \"flag\"; key = \"id\";\n"
    "  source = { url = \"https://crm.example.com/api/orders\"; %s\n"
    "    mark = { url = \"https://crm.example.com/api/orders/{{key}}\"; %s }; };\n"
    "  destination = { type = \"http\"; url = \"http://127.0.0.1:8081/o/{{key}}\"; %s };"
    " } );\n";

static struct config *
load_job(const char *secret, const char *src, const char *mark, const char *dst)
{
	char		*text = xasprintf(job_fmt, secret, src, mark, dst);
	struct config	*cfg = load_ok(text);

	free(text);
	return cfg;
}

/* What the credentials and the auth keys load to. */
static void
test_load(void **state)
{
	struct config		*cfg;
	const struct cred_conf	*cr;

	(void)state;
	cfg = load_job("s3cretValue1", "auth = \"crm\";", "", "auth = \"other\";");
	assert_int_equal(cfg->ncreds, 2);
	cr = config_cred(cfg, "crm");
	assert_non_null(cr);
	assert_int_equal(cr->type, CRED_CLIENT_CREDENTIALS);
	assert_string_equal(cr->client_id, "crm-client-id");
	assert_string_equal(cr->client_secret, "s3cretValue1");
	assert_null(cr->scope);
	assert_null(cr->audience);
	assert_null(cr->refresh_token);
	assert_true(cr->basic_auth);
	assert_int_equal(cr->http.timeout_ms, 30000);	/* defaults.timeout */
	assert_int_equal(cr->http.retries, 3);
	assert_true(cr->http.tls_verify);
	cr = config_cred(cfg, "other");
	assert_non_null(cr);
	assert_false(cr->basic_auth);
	assert_null(cr->client_secret);
	assert_string_equal(cr->scope, "read");
	assert_int_equal(cr->http.timeout_ms, 5000);
	assert_null(config_cred(cfg, "none"));
	assert_string_equal(cfg->jobs[0].src.auth, "crm");
	assert_string_equal(cfg->jobs[0].src.mark_auth, "crm");	/* source.auth's */
	assert_string_equal(cfg->jobs[0].dst.auth, "other");
	config_free(cfg);
	cfg = load_job("s3cretValue1", "", "auth = \"other\";", "");
	assert_null(cfg->jobs[0].src.auth);
	assert_string_equal(cfg->jobs[0].src.mark_auth, "other");
	assert_null(cfg->jobs[0].dst.auth);
	config_free(cfg);
}

/*
 * Naming a credential, naming another one, or the credential's own secret changing are
 * changes of the job's fingerprint (a reload restarts it), never of its identity (its state
 * stays its own).
 */
static void
test_fingerprint(void **state)
{
	static const struct { const char *secret, *src, *mark, *dst; } v[] = {
		{ "s3cretValue1", "", "", "" },
		{ "s3cretValue1", "auth = \"crm\";", "", "" },
		{ "s3cretValue2", "auth = \"crm\";", "", "" },
		{ "s3cretValue2", "auth = \"other\";", "", "" },
		{ "s3cretValue2", "auth = \"other\";", "auth = \"crm\";", "" },
		{ "s3cretValue2", "auth = \"other\";", "auth = \"crm\";", "auth = \"crm\";" },
		{ "s3cretValue1", "auth = \"other\";", "auth = \"crm\";", "auth = \"crm\";" },
	};
	char		*fp[NELEM(v)], *id = NULL;
	struct config	*cfg;

	(void)state;
	for (size_t i = 0; i < NELEM(v); i++) {
		cfg = load_job(v[i].secret, v[i].src, v[i].mark, v[i].dst);
		fp[i] = xstrdup(cfg->jobs[0].fingerprint);
		if (id == NULL)
			id = xstrdup(cfg->jobs[0].identity);
		assert_string_equal(cfg->jobs[0].identity, id);
		for (size_t k = 0; k < i; k++)
			if (strcmp(fp[k], fp[i]) == 0)
				fail_msg("variants %zu and %zu have one fingerprint", k, i);
		config_free(cfg);
	}
	/* the same file twice: the same fingerprint */
	cfg = load_job(v[2].secret, v[2].src, v[2].mark, v[2].dst);
	assert_string_equal(cfg->jobs[0].fingerprint, fp[2]);
	config_free(cfg);
	for (size_t i = 0; i < NELEM(v); i++)
		free(fp[i]);
	free(id);
}

/* A warning for plain http to a host that is not loopback, none for loopback or https. */
static void
test_warnings(void **state)
{
	static const struct { const char *url; bool warn; } v[] = {
		{ "http://auth.example.com/token", true },
		{ "http://10.0.0.1:8080/token", true },
		{ "http://[2001:db8::1]/token", true },
		{ "http://127.0.0.1:9/token", false },
		{ "http://127.10.0.3/token", false },
		{ "HTTP://LOCALHOST:8080/token", false },
		{ "http://[::1]:8080/token", false },
		{ "https://auth.example.com/token", false },
	};
	struct strlist	 w = { 0 };
	struct config	*cfg;
	char		*text;

	(void)state;
	for (size_t i = 0; i < NELEM(v); i++) {
		text = xasprintf("state = { conninfo = \"dbname=test\"; };\n"
		    "credentials = ( { name = \"c\"; type = \"oauth2_client_credentials\";\n"
		    "  token_url = \"%s\"; client_id = \"id\"; } );\n", v[i].url);
		cfg = load_ok(text);
		free(text);
		config_creds_warnings(cfg, &w);
		if ((w.n > 0) != v[i].warn)
			fail_msg("%s: %zu warnings, expected %s", v[i].url, w.n,
			    v[i].warn ? "one" : "none");
		if (w.n > 0)
			assert_non_null(strstr(w.v[0], ":2: credential 'c': token_url is plain "
			    "http"));
		strlist_free(&w);
		config_free(cfg);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_fingerprint),
		cmocka_unit_test(test_warnings),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
