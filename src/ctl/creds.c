/*
 * creds.c - onesyncctl credentials: the OAuth2 credentials of the configuration as the
 * state database holds them (a token or none, when it expires, needs re-authorization),
 * and `credentials set-refresh-token NAME`, which seals a new refresh token read from
 * standard input with state.encryption_key and stores it (onesyncd(8), CREDENTIALS).
 */
#include <openssl/crypto.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "ctl/creds.h"
#include "ctl/conn.h"
#include "config/cred.h"
#include "core/aead.h"
#include "core/util.h"

#define TOKEN_MAX	8192
#define TOKEN_MIN	6	/* shorter: not masked in logs (core/secrets.h) */

static const char creds_sql[] =
"SELECT COALESCE(json_object_agg(c.name, json_build_object(\n"
"    'needs_reauth', c.needs_reauth, 'generation', c.generation,\n"
"    'has_token', c.access_sealed IS NOT NULL, 'has_refresh', c.refresh_sealed IS NOT NULL,\n"
"    'expires_in', extract(epoch FROM c.access_expires_at - now())::float8,\n"
"    'updated_at', to_char(c.updated_at, 'YYYY-MM-DD HH24:MI:SS'), 'updated_by', c.updated_by,\n"
"    'key_check', c.key_check, 'origin', c.origin, 'mark_origin', c.mark_origin)),\n"
"  '{}')\n"
"FROM @S@.credentials c";

static const char *
type_name(enum cred_type t)
{
	return t == CRED_REFRESH_TOKEN ? "oauth2_refresh_token" : "oauth2_client_credentials";
}

/* The row's state for this configuration: its tokens sealed with another key, a mark of
 * re-authorization made for this configuration (or before schema 5), tokens of another
 * configuration, or fine (NULL). */
static char *
row_state(const struct ctl *ctl, const struct cred_conf *cc, json_t *s)
{
	char kc[AEAD_MAC_HEX + 1], origin[CRED_ORIGIN_HEX + 1], mark[CRED_ORIGIN_HEX + 1];
	bool keyed = ctl->cfg->state.has_key;

	if (keyed) {
		aead_key_check(ctl->cfg->state.key, kc);
		config_cred_origin(cc, ctl->cfg->state.key, origin);
		memcpy(mark, origin, CRED_ORIGIN_HEX / 2);	/* the client, the seed */
		config_cred_seed(ctl->cfg->state.key, cc->refresh_token, mark + CRED_ORIGIN_HEX / 2);
	}
	if (keyed && !ctl_jnull(s, "key_check") && strcmp(ctl_jstr(s, "key_check"), kc) != 0)
		return xstrdup("tokens stored are sealed with another state.encryption_key");
	if (!ctl_jnull(s, "needs_reauth") && (!keyed || ctl_jnull(s, "mark_origin") ||
	    strcmp(ctl_jstr(s, "mark_origin"), mark) == 0))
		return xasprintf("needs re-authorization: %s", ctl_jstr(s, "needs_reauth"));
	if (keyed && !ctl_jnull(s, "origin") && strncmp(ctl_jstr(s, "origin"), origin,
	    CRED_ORIGIN_HEX / 2) != 0)
		return xstrdup("tokens stored are another client's (token_url or client_id "
		    "changed)");
	return NULL;
}

static char *
state_cell(const struct ctl *ctl, const struct cred_conf *cc, json_t *s)
{
	char *st;

	if (s == NULL)
		return xstrdup("no token yet");
	if ((st = row_state(ctl, cc, s)) != NULL)
		return st;
	return xstrdup(json_is_true(json_object_get(s, "has_token")) ? "ok" : "no token yet");
}

static char *
token_cell(json_t *s)
{
	char *age, *out;

	if (s == NULL || !json_is_true(json_object_get(s, "has_token")))
		return xstrdup("-");
	if (ctl_jnum(s, "expires_in") <= 0)
		return xstrdup("expired");
	age = ctl_fmt_age(ctl_jnum(s, "expires_in"));
	out = xasprintf("expires in %s", age);
	free(age);
	return out;
}

static int
list(struct ctl *ctl)
{
	static const char *const hdr[] = { "CREDENTIAL", "TYPE", "STATE", "ACCESS TOKEN",
	    "UPDATED" };
	struct ctl_table t = { NELEM(hdr), hdr, "lllll", { 0 } };
	json_t *rows, *out;
	int rc = 0;

	if (ctl->cfg->ncreds == 0) {
		if (ctl->json)
			printf("[]\n");
		else
			printf("no credential is configured\n");
		return 0;
	}
	rows = ctl->have_schema && ctl_has_table(ctl, "credentials") ? ctl_q_json(ctl,
	    "reading the credentials", creds_sql, 0, NULL, &rc) : json_object();
	if (rows == NULL)
		return rc;
	out = json_array();
	for (size_t i = 0; i < ctl->cfg->ncreds; i++) {
		const struct cred_conf *cc = &ctl->cfg->creds[i];
		json_t *s = json_object_get(rows, cc->name);

		if (ctl->json) {
			json_t *o = json_pack("{ss ss}", "name", cc->name, "type",
			    type_name(cc->type));

			if (s != NULL)
				json_object_update(o, s);
			json_array_append_new(out, o);
			continue;
		}
		ctl_table_add(&t, xstrdup(cc->name));
		ctl_table_add(&t, xstrdup(type_name(cc->type)));
		ctl_table_add(&t, state_cell(ctl, cc, s));
		ctl_table_add(&t, token_cell(s));
		ctl_table_add(&t, s != NULL && !ctl_jnull(s, "updated_at") ? xasprintf("%s by %s",
		    ctl_jstr(s, "updated_at"), ctl_jnull(s, "updated_by") ? "-" :
		    ctl_jstr(s, "updated_by")) : xstrdup("-"));
	}
	if (ctl->json)
		ctl_print_json(out);
	else
		ctl_table_print(&t);
	json_decref(out);
	json_decref(rows);
	return 0;
}

/* The terminal as it was before the prompt, for a signal that ends the prompt. */
static struct termios tty_saved;
static const int tty_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };

/* A signal at the prompt: the terminal echoes again, then the signal does what it does. */
static void
tty_restore_raise(int sig)
{
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* One line from the terminal, not echoed (the echo comes back whatever ends it). */
static size_t
read_quiet(char *buf, size_t size)
{
	struct termios quiet = tty_saved;
	struct sigaction sa = { 0 }, old[NELEM(tty_signals)];
	size_t n;

	sa.sa_handler = tty_restore_raise;
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < NELEM(tty_signals); i++)
		sigaction(tty_signals[i], &sa, &old[i]);
	fprintf(stderr, "refresh token (not echoed): ");
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	n = fgets(buf, (int)size, stdin) != NULL ? strlen(buf) : 0;
	(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &tty_saved);
	for (size_t i = 0; i < NELEM(tty_signals); i++)
		sigaction(tty_signals[i], &old[i], NULL);
	return n;
}

/* The token on standard input: one line, visible ASCII, at most TOKEN_MAX bytes. From a
 * terminal: a prompt on standard error, and the line not echoed. */
static char *
read_token(void)
{
	char *buf = xmalloc(TOKEN_MAX + 2);
	size_t n;

	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &tty_saved) == 0)
		n = read_quiet(buf, TOKEN_MAX + 2);
	else
		n = fread(buf, 1, TOKEN_MAX + 1, stdin);

	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	buf[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] < 0x21 || buf[i] > 0x7e)
			n = 0;
	if (n < TOKEN_MIN || n > TOKEN_MAX) {
		OPENSSL_cleanse(buf, TOKEN_MAX + 2);
		free(buf);
		return NULL;
	}
	return buf;
}

static int
set_refresh(struct ctl *ctl, const char *name)
{
	const struct cred_conf *cc = NULL;
	char *token, *ad, *sealed;
	char kc[AEAD_MAC_HEX + 1], origin[CRED_ORIGIN_HEX + 1], seed[AEAD_MAC_HEX + 1];
	const char *v[5];
	PGresult *res;
	int rc = 0;

	for (size_t i = 0; i < ctl->cfg->ncreds; i++)
		if (strcmp(ctl->cfg->creds[i].name, name) == 0)
			cc = &ctl->cfg->creds[i];
	if (cc == NULL || cc->type != CRED_REFRESH_TOKEN) {
		fprintf(stderr, "%s: %s is not a credential of type oauth2_refresh_token in %s\n",
		    CTL_PROG, name, ctl->path);
		return CTL_EX_FAILED;
	}
	if (!ctl->cfg->state.has_key) {
		fprintf(stderr, "%s: state.encryption_key is not set in %s\n", CTL_PROG, ctl->path);
		return CTL_EX_FAILED;
	}
	if ((rc = ctl_need_schema(ctl)) != 0)
		return rc;
	if (!ctl_has_table(ctl, "credentials")) {
		fprintf(stderr, "%s: the state schema %s has no credentials table yet: start this "
		    "version of onesyncd once to upgrade it\n", CTL_PROG, ctl->schema);
		return CTL_EX_FAILED;
	}
	if ((token = read_token()) == NULL) {
		fprintf(stderr, "%s: no refresh token on standard input (one line of %d to %d "
		    "visible characters)\n", CTL_PROG, TOKEN_MIN, TOKEN_MAX);
		return CTL_EX_FAILED;
	}
	ad = xasprintf("%s/%s/refresh", ctl->cfg->state.schema, name);
	sealed = aead_seal(ctl->cfg->state.key, ad, token, strlen(token));
	config_cred_seed(ctl->cfg->state.key, token, seed);
	OPENSSL_cleanse(token, strlen(token));
	free(token);
	free(ad);
	if (sealed == NULL) {
		fprintf(stderr, "%s: cannot seal the token\n", CTL_PROG);
		return CTL_EX_FAILED;
	}
	aead_key_check(ctl->cfg->state.key, kc);
	config_cred_origin(cc, ctl->cfg->state.key, origin);
	v[0] = name;
	v[1] = sealed;
	v[2] = kc;
	v[3] = origin;
	v[4] = seed;	/* spent once it is stored: never presented from a configuration */
	res = ctl_q(ctl, "storing the refresh token", "SELECT @S@.credential_set_refresh($1, $2, "
	    "$3, $4, $5)", 5, v, &rc);
	free(sealed);
	if (res == NULL)
		return rc;
	PQclear(res);
	printf("credential %s: the new refresh token is stored, sealed; every onesyncd on this "
	    "state database uses it for its next token request\n", name);
	return 0;
}

static int
cmd_creds(struct ctl *ctl, const struct ctl_args *args)
{
	if (args->job == NULL)
		return list(ctl);
	if (strcmp(args->job, "set-refresh-token") != 0 || args->nkeys != 1) {
		fprintf(stderr, "%s: usage: credentials [set-refresh-token NAME]\n", CTL_PROG);
		return 64;
	}
	return set_refresh(ctl, args->keys[0]);
}

const struct ctl_cmd ctl_creds = {
	"credentials", "credentials [set-refresh-token NAME]", "the OAuth2 credentials: token, "
	"needs re-authorization;\nset-refresh-token NAME: a new refresh token, read from stdin",
	0, 2, CTL_OPT_NOJOB, cmd_creds
};
