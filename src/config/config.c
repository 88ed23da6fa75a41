/*
 * config.c - the configuration file: libconfig syntax read into a struct config.
 * One table of keys (keys[] below) drives everything: the walk that rejects
 * unknown keys and wrong types, the defaults and limits, and config_dump_keys(),
 * which is what onesyncd.conf(5) documents. Every error is collected, none stops
 * the others, and each is "FILE:LINE: message". This module never acts on the
 * configuration (no connections, no state): it only reads, checks and compiles
 * templates (which reads secret files).
 */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <libconfig.h>
#include <libpq-fe.h>
#include <xxhash.h>

#include "config/model.h"
#include "core/url.h"
#include "core/redact.h"

enum ktype {
	K_GROUP, K_JOBS, K_STR, K_TMPL, K_INT, K_BOOL, K_DUR, K_STRLIST, K_KEY, K_MAP,
	K_QUERY, K_FLOAT, K_AUTO
};

#define F_REQ		0x01	/* required */
#define F_NORELOAD	0x02	/* a change needs a restart */
#define F_HTTP		0x04	/* source/destination: only for type http */
#define F_PG		0x08	/* source/destination: only for type postgresql */
#define F_FILE		0x10	/* source: only for type file */
#define F_CONN		(F_HTTP | F_PG | F_FILE)	/* any of these: only for those types */

#define DUR_MAX		(INT64_MAX / 4)

struct key_def {
	const char	*path;	/* "jobs.*.x" for the keys of each job */
	enum ktype	 type;
	const char	*def;	/* documented default; NULL = none */
	int64_t		 min, max;	/* integers; durations in ms; K_FLOAT: unused (0..1) */
	int		 flags;
	const char	*doc;
};

static const struct key_def keys[] = {
	{ "state", K_GROUP, NULL, 0, 0, F_REQ | F_NORELOAD,
	  "Where onesyncd keeps its own state (PostgreSQL)." },
	{ "state.conninfo", K_STR, NULL, 0, 0, F_REQ | F_NORELOAD,
	  "libpq connection string or URI of the state database." },
	{ "state.schema", K_STR, "onesync", 0, 0, F_NORELOAD,
	  "Schema of the state tables (a plain lower-case identifier)." },
	{ "state.connections", K_INT, "4", 1, 64, F_NORELOAD,
	  "Connections to the state database for sync work." },
	{ "state.connect_timeout", K_DUR, "10s", 100, DUR_MAX, F_NORELOAD,
	  "Time allowed to connect to the state database." },
	{ "daemon", K_GROUP, NULL, 0, 0, 0,
	  "How this instance runs." },
	{ "daemon.instance", K_STR, "", 0, 0, F_NORELOAD,
	  "Name of this instance in the state database; \"\" = hostname:pid." },
	{ "daemon.lease", K_DUR, "30s", 2000, DUR_MAX, 0,
	  "How long a job's lease lasts without renewal (at least 2s)." },
	{ "daemon.max_runs", K_INT, "64", 1, 10000, 0,
	  "Runs in flight at once on this instance." },
	{ "daemon.status_listen", K_STR, "", 0, 0, F_NORELOAD,
	  "host:port of the HTTP status endpoint (/healthz, /metrics, /jobs); \"\" = off." },
	{ "daemon.secrets_dir", K_STR, NULL, 0, 0, 0,
	  "Directory of {{secret:NAME}} files; unset = $CREDENTIALS_DIRECTORY." },
	{ "daemon.redact_params", K_STRLIST, NULL, 0, 0, 0,
	  "More query parameter and field names whose values are credentials, hidden in logs." },
	{ "daemon.stop_timeout", K_DUR, "10s", 0, DUR_MAX, 0,
	  "On SIGTERM, how long runs in flight may take to finish before they are cut." },
	{ "defaults", K_GROUP, NULL, 0, 0, 0,
	  "Defaults for every job; a job's own key overrides them." },
	{ "defaults.interval", K_DUR, "1m", 100, DUR_MAX, 0,
	  "Time between the starts of two runs of a job." },
	{ "defaults.jitter", K_DUR, NULL, 0, DUR_MAX, 0,
	  "Random delay added to each schedule; unset = interval/10." },
	{ "defaults.batch", K_INT, "200", 1, 100000, 0,
	  "Records per delivery batch (and per state transaction)." },
	{ "defaults.max_attempts", K_INT, "8", 1, 1000, 0,
	  "Delivery attempts of a failed record before it is dead-lettered." },
	{ "defaults.retry_backoff", K_DUR, "30s", 0, DUR_MAX, 0,
	  "Delay before a failed record's first retry; doubles per attempt." },
	{ "defaults.retry_backoff_max", K_DUR, "1h", 0, DUR_MAX, 0,
	  "Longest delay between two retries of a failed record." },
	{ "defaults.timeout", K_DUR, "30s", 100, DUR_MAX, 0,
	  "Time allowed for one HTTP request attempt (source and destination)." },
	{ "defaults.run_timeout", K_DUR, "6h", 0, DUR_MAX, 0,
	  "Time allowed for a whole run; 0 = no limit." },
	{ "defaults.retries", K_INT, "3", 0, 100, 0,
	  "HTTP retries of 408, 429, 5xx and transport errors." },
	{ "defaults.tls_verify", K_BOOL, "true", 0, 0, 0,
	  "Verify TLS certificates and host names." },
	{ "defaults.max_bytes", K_INT, "67108864", 1024, INT64_C(1) << 40, 0,
	  "Largest HTTP response body accepted, in bytes." },
	{ "defaults.max_records", K_INT, "10000", 1, 10000000, 0,
	  "Strategy flag: most pending records one run collects from an HTTP source." },
	{ "jobs", K_JOBS, "()", 0, 0, 0,
	  "The list of jobs, each a group ( { ... }, { ... } )." },
	{ "jobs.*.name", K_STR, NULL, 0, 0, F_REQ,
	  "Unique job name: letters, digits, '_', '.', '-'." },
	{ "jobs.*.strategy", K_STR, NULL, 0, 0, F_REQ,
	  "How changes are found: modified, flag or capture." },
	{ "jobs.*.key", K_KEY, NULL, 0, 0, F_REQ,
	  "Record field (dot path), or list of fields, that identifies a record." },
	{ "jobs.*.interval", K_DUR, "defaults.interval", 100, DUR_MAX, 0,
	  "Time between the starts of two runs." },
	{ "jobs.*.jitter", K_DUR, "defaults.jitter", 0, DUR_MAX, 0,
	  "Random delay added to each schedule." },
	{ "jobs.*.batch", K_INT, "defaults.batch", 1, 100000, 0,
	  "Records per delivery batch." },
	{ "jobs.*.max_attempts", K_INT, "defaults.max_attempts", 1, 1000, 0,
	  "Delivery attempts before a record is dead-lettered." },
	{ "jobs.*.retry_backoff", K_DUR, "defaults.retry_backoff", 0, DUR_MAX, 0,
	  "First retry delay of a failed record." },
	{ "jobs.*.retry_backoff_max", K_DUR, "defaults.retry_backoff_max", 0, DUR_MAX, 0,
	  "Longest retry delay of a failed record." },
	{ "jobs.*.run_timeout", K_DUR, "defaults.run_timeout", 0, DUR_MAX, 0,
	  "Time allowed for a whole run; 0 = no limit." },
	{ "jobs.*.enabled", K_BOOL, "true", 0, 0, 0,
	  "false keeps the job configured but never runs it." },
	{ "jobs.*.max_records", K_INT, "defaults.max_records", 1, 10000000, 0,
	  "Strategy flag: most pending records one run collects from an HTTP source." },
	{ "jobs.*.modified", K_GROUP, NULL, 0, 0, 0,
	  "Settings of strategy modified." },
	{ "jobs.*.modified.field", K_STR, NULL, 0, 0, 0,
	  "Record field (dot path) holding the last-modified time; required." },
	{ "jobs.*.modified.format", K_STR, "rfc3339", 0, 0, 0,
	  "Format of that field: rfc3339, epoch (seconds) or epoch_ms." },
	{ "jobs.*.modified.sorted", K_BOOL, "false", 0, 0, 0,
	  "The source answers sorted by (modified, key) ascending: checkpoint per page." },
	{ "jobs.*.modified.lookback", K_DUR, "0", 0, DUR_MAX, 0,
	  "Window re-read below the watermark for late commits." },
	{ "jobs.*.modified.settle", K_DUR, "0", 0, DUR_MAX, 0,
	  "Take only records older than source time minus this." },
	{ "jobs.*.modified.max_future", K_DUR, "1d", 0, DUR_MAX, 0,
	  "A record timestamped later than the source's clock plus this fails; 0 = no check." },
	{ "jobs.*.flag", K_GROUP, NULL, 0, 0, 0,
	  "Settings of strategy flag." },
	{ "jobs.*.flag.version", K_STR, NULL, 0, 0, 0,
	  "PostgreSQL source: column compared when marking (compare-and-set); unset = none." },
	{ "jobs.*.capture", K_GROUP, NULL, 0, 0, 0,
	  "Settings of strategy capture." },
	{ "jobs.*.capture.fields", K_STRLIST, "all fields", 0, 0, 0,
	  "Record fields (dot paths) that make the hashed form; unset = the whole record." },
	{ "jobs.*.capture.exclude", K_STRLIST, NULL, 0, 0, 0,
	  "Top-level fields left out of the hashed form (volatile fields); unset = none." },
	{ "jobs.*.capture.deletes", K_BOOL, "false", 0, 0, 0,
	  "Delete at the destination the records a complete snapshot no longer has." },
	{ "jobs.*.capture.max_delete_ratio", K_FLOAT, "0.1", 0, 0, 0,
	  "Most deletions one run may make, as a share of the records stored before it (0..1)." },
	{ "jobs.*.capture.min_records", K_INT, "0", 0, INT64_C(1) << 40, 0,
	  "Fewest records a complete snapshot has; fewer fails the run, nothing deleted; 0 = none." },
	{ "jobs.*.source", K_GROUP, NULL, 0, 0, F_REQ,
	  "Where records are read." },
	{ "jobs.*.source.type", K_STR, "http", 0, 0, 0,
	  "Connector: http, postgresql or file (file: strategy capture only)." },
	{ "jobs.*.source.url", K_TMPL, NULL, 0, 0, F_HTTP | F_FILE,
	  "URL template of the read request (http), or URL of the file (file); required." },
	{ "jobs.*.source.query", K_QUERY, NULL, 0, 0, F_HTTP,
	  "Query parameters: { name = \"template\"; } or [ \"name=template\" ]." },
	{ "jobs.*.source.headers", K_STRLIST, NULL, 0, 0, F_HTTP,
	  "Request headers, [ \"Name: template\", ... ]." },
	{ "jobs.*.source.records", K_STR, "", 0, 0, F_HTTP,
	  "JSON path of the record array in the answer; \"\" = the body itself." },
	{ "jobs.*.source.page", K_GROUP, NULL, 0, 0, F_HTTP | F_PG,
	  "Pagination of the read." },
	{ "jobs.*.source.page.style", K_STR, "none", 0, 0, F_HTTP,
	  "none, page ({{page}}), offset ({{offset}}), link (Link header) or next." },
	{ "jobs.*.source.page.first", K_INT, "1", INT_MIN, INT_MAX, F_HTTP,
	  "First page number of style page." },
	{ "jobs.*.source.page.size", K_INT, "100", 1, 100000, F_HTTP | F_PG,
	  "Records per page ({{limit}}, or the LIMIT of one SQL read)." },
	{ "jobs.*.source.page.max_records", K_INT, "100000", 1, 1000000, F_HTTP,
	  "Most records one answer may hold when the request does not send {{limit}}." },
	{ "jobs.*.source.page.next", K_STR, NULL, 0, 0, F_HTTP,
	  "Style next: JSON path of the next URL or cursor token; required there." },
	{ "jobs.*.source.page.stable", K_BOOL, "false", 0, 0, F_HTTP,
	  "Style link or next: the API pages one stable order by cursor; capture.deletes needs it." },
	{ "jobs.*.source.fetch", K_TMPL, NULL, 0, 0, F_HTTP,
	  "URL template reading one record by {{key}}, for retries; unset = replay." },
	{ "jobs.*.source.allow_origins", K_STRLIST, NULL, 0, 0, F_HTTP | F_FILE,
	  "Origins besides source.url's that next links or redirects may lead to, "
	  "[ \"https://host:port\" ]." },
	{ "jobs.*.source.timeout", K_DUR, "defaults.timeout", 100, DUR_MAX,
	  F_HTTP | F_FILE | F_PG, "Time for one request attempt; a file source: longest wait "
	  "for a byte, \"10m\"; postgresql: for one statement." },
	{ "jobs.*.source.retries", K_INT, "defaults.retries", 0, 100, F_HTTP,
	  "Retries of a failed source request." },
	{ "jobs.*.source.max_bytes", K_INT, "defaults.max_bytes", 1024,
	  INT64_C(1) << 40, F_HTTP | F_FILE,
	  "Largest source response accepted, in bytes; a file source: unset = no limit." },
	{ "jobs.*.source.tls_verify", K_BOOL, "defaults.tls_verify", 0, 0, F_HTTP | F_FILE,
	  "Verify the source's TLS certificate." },
	{ "jobs.*.source.ca_file", K_STR, NULL, 0, 0, F_HTTP | F_FILE,
	  "CA bundle for the source; unset = the system store." },
	{ "jobs.*.source.conninfo", K_STR, NULL, 0, 0, F_PG,
	  "libpq connection string of the source database; required for postgresql." },
	{ "jobs.*.source.table", K_STR, NULL, 0, 0, F_PG,
	  "Source table or view, name or schema.name; required for postgresql." },
	{ "jobs.*.source.columns", K_STRLIST, NULL, 0, 0, F_PG,
	  "Columns read, [ \"a\", \"b\" ]; unset = all columns." },
	{ "jobs.*.source.where", K_STR, NULL, 0, 0, F_PG,
	  "Extra SQL condition of every read, run as written; unset = none." },
	{ "jobs.*.source.pending", K_STR, NULL, 0, 0, F_PG,
	  "Strategy flag: SQL condition of a row still to sync; required there." },
	{ "jobs.*.source.mark", K_GROUP, NULL, 0, 0, F_HTTP | F_PG,
	  "Strategy flag: how a delivered record is marked done at the source." },
	{ "jobs.*.source.mark.method", K_STR, "PATCH", 0, 0, F_HTTP,
	  "HTTP method of the marking request: POST, PUT, PATCH or DELETE." },
	{ "jobs.*.source.mark.url", K_TMPL, NULL, 0, 0, F_HTTP,
	  "URL template of the marking request; required for an http source." },
	{ "jobs.*.source.mark.body", K_TMPL, NULL, 0, 0, F_HTTP,
	  "JSON body template of the marking request; unset or \"\" = no body." },
	{ "jobs.*.source.mark.headers", K_STRLIST, NULL, 0, 0, F_HTTP,
	  "Headers of the marking request, [ \"Name: template\", ... ]." },
	{ "jobs.*.source.mark.set", K_MAP, NULL, 0, 0, F_PG,
	  "column = \"template\" set on a delivered row; required for postgresql." },
	{ "jobs.*.source.format", K_STR, "csv", 0, 0, F_FILE,
	  "Format of the file: csv (RFC 4180, header row), ndjson or json (an array)." },
	{ "jobs.*.source.delimiter", K_STR, ",", 0, 0, F_FILE,
	  "CSV field delimiter, one character." },
	{ "jobs.*.source.gzip", K_AUTO, "auto", 0, 0, F_FILE,
	  "The file is gzip-compressed: true, false or \"auto\" (a .gz suffix)." },
	{ "jobs.*.source.ssh_key", K_STR, NULL, 0, 0, F_FILE,
	  "sftp: private key file, unencrypted (ed25519 recommended); unset = password login." },
	{ "jobs.*.source.ssh_host_sha256", K_STR, NULL, 0, 0, F_FILE,
	  "sftp: SHA256 fingerprint of the server's host key; unset = not checked." },
	{ "jobs.*.source.username", K_STR, NULL, 0, 0, F_FILE,
	  "User name of an ftp, ftps, sftp or http(s) file source; unset = from the URL." },
	{ "jobs.*.source.password", K_TMPL, NULL, 0, 0, F_FILE,
	  "Login password: \"{{secret:NAME}}\" or \"{{env:NAME}}\" (a literal is accepted)." },
	{ "jobs.*.destination", K_GROUP, NULL, 0, 0, F_REQ,
	  "Where records are delivered." },
	{ "jobs.*.destination.type", K_STR, NULL, 0, 0, F_REQ,
	  "Connector: http or postgresql." },
	{ "jobs.*.destination.method", K_STR, "PUT", 0, 0, F_HTTP,
	  "HTTP method per record: POST, PUT, PATCH or DELETE." },
	{ "jobs.*.destination.url", K_TMPL, NULL, 0, 0, F_HTTP,
	  "URL template per record; required for http." },
	{ "jobs.*.destination.body", K_TMPL, "{{record}}", 0, 0, F_HTTP,
	  "JSON body template; \"\" = no body." },
	{ "jobs.*.destination.headers", K_STRLIST, NULL, 0, 0, F_HTTP,
	  "Request headers, [ \"Name: template\", ... ]." },
	{ "jobs.*.destination.create", K_GROUP, NULL, 0, 0, F_HTTP,
	  "Request sent instead when the first one answers 404 (create)." },
	{ "jobs.*.destination.create.method", K_STR, "POST", 0, 0, F_HTTP,
	  "HTTP method of the create request." },
	{ "jobs.*.destination.create.url", K_TMPL, NULL, 0, 0, F_HTTP,
	  "URL template of the create request; required." },
	{ "jobs.*.destination.create.body", K_TMPL, "destination.body", 0, 0, F_HTTP,
	  "JSON body template of the create request." },
	{ "jobs.*.destination.concurrency", K_INT, "8", 1, 256, F_HTTP,
	  "Requests in flight at once for this job." },
	{ "jobs.*.destination.timeout", K_DUR, "defaults.timeout", 100, DUR_MAX, F_HTTP | F_PG,
	  "Time allowed for one destination request attempt; postgresql: one statement." },
	{ "jobs.*.destination.retries", K_INT, "defaults.retries", 0, 100, F_HTTP,
	  "Retries of 408, 429, 5xx and transport errors." },
	{ "jobs.*.destination.max_bytes", K_INT, "defaults.max_bytes", 1024,
	  INT64_C(1) << 40, F_HTTP, "Largest destination response accepted, in bytes." },
	{ "jobs.*.destination.tls_verify", K_BOOL, "defaults.tls_verify", 0, 0, F_HTTP,
	  "Verify the destination's TLS certificate." },
	{ "jobs.*.destination.ca_file", K_STR, NULL, 0, 0, F_HTTP,
	  "CA bundle for the destination; unset = the system store." },
	{ "jobs.*.destination.conninfo", K_STR, NULL, 0, 0, F_PG,
	  "libpq connection string of the destination database; required." },
	{ "jobs.*.destination.table", K_STR, NULL, 0, 0, F_PG,
	  "Destination table, name or schema.name; required." },
	{ "jobs.*.destination.columns", K_MAP, NULL, 0, 0, F_PG,
	  "column = \"record.path\" for every column written; required." },
	{ "jobs.*.destination.key_columns", K_STRLIST, "columns of the key", 0, 0, F_PG,
	  "Conflict target of the upsert; default = the columns mapped from the key." },
	{ "jobs.*.destination.delete", K_GROUP, NULL, 0, 0, F_HTTP,
	  "Strategy capture: the request that deletes a record gone from the source." },
	{ "jobs.*.destination.delete.method", K_STR, "DELETE", 0, 0, F_HTTP,
	  "HTTP method of the delete request." },
	{ "jobs.*.destination.delete.url", K_TMPL, NULL, 0, 0, F_HTTP,
	  "URL template of the delete request, by {{key}}; required." },
};

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
};

static void errf(struct ctx *, int, const char *, ...) PRINTF(3, 4);

/* Record one error at a line. */
static void
errf(struct ctx *c, int line, const char *fmt, ...)
{
	va_list	 ap;
	char	*m;

	va_start(ap, fmt);
	m = xvasprintf(fmt, ap);
	va_end(ap);
	strlist_addf(c->errs, "%s:%d: %s", c->file, line > 0 ? line : 1, m);
	free(m);
}

static const struct key_def *
kd_find(const char *path)
{
	size_t	i;

	for (i = 0; i < NELEM(keys); i++) {
		if (strcmp(keys[i].path, path) == 0)
			return &keys[i];
	}
	return NULL;
}

static const struct key_def *
kd_get(const char *path)
{
	const struct key_def	*kd;

	if ((kd = kd_find(path)) == NULL)
		abort();	/* a key missing from the table is a bug */
	return kd;
}

static const char *
leaf(const char *path)
{
	const char	*p = strrchr(path, '.');

	return p != NULL ? p + 1 : path;
}

/* The name users see: "batch", "source.url", "daemon.lease". */
static const char *
dname(const char *path)
{
	return strncmp(path, "jobs.*.", 7) == 0 ? path + 7 : path;
}

static int
line_of(struct ctx *c, const config_setting_t *s)
{
	int	line;

	for (; s != NULL; s = config_setting_parent(s)) {
		if ((line = (int)config_setting_source_line(s)) > 0)
			return line;
	}
	return c->line;
}

static config_setting_t *
member(config_setting_t *g, const char *name)
{
	if (g == NULL || !config_setting_is_group(g))
		return NULL;
	return config_setting_get_member(g, name);
}

/*
 * A conninfo libpq cannot parse is a configuration error here, not a connection that fails
 * on every retry. libpq's message may quote a piece of the string, which may be a piece of a
 * password: it is not repeated, only its kind.
 */
/*
 * A URL (or a postgresql:// URI) whose password holds a raw '/' ("u:pa/ss@h"): libpq and
 * curl end the host at the '/', read the password's pieces as a host and a port, and quote
 * them in their messages. Told at the configuration check instead.
 */
static bool
userinfo_raw_slash(const char *url, size_t n)
{
	const char *auth, *end, *slash, *colon, *p;

	if ((auth = memmem(url, n, "://", 3)) == NULL)
		return false;
	auth += 3;
	/* a raw '?' or '#' before the authority's '@' ("u:ab#cd@h"): curl ends the host there */
	end = auth + strcspn(auth, "/");
	if (end > url + n)
		end = url + n;
	if ((p = memchr(auth, '@', (size_t)(end - auth))) != NULL &&
	    auth + strcspn(auth, "?#") < p)
		return true;
	end = auth + strcspn(auth, "?#");
	if (end > url + n)
		end = url + n;
	if ((slash = memchr(auth, '/', (size_t)(end - auth))) == NULL ||
	    memchr(slash, '@', (size_t)(end - slash)) == NULL)
		return false;
	if (*auth == '[' && (p = memchr(auth, ']', (size_t)(slash - auth))) != NULL)
		auth = p;	/* an IPv6 address: its colons are no port */
	if ((colon = memchr(auth, ':', (size_t)(slash - auth))) == NULL)
		return false;
	for (p = colon + 1; p < slash; p++)
		if (!isdigit((unsigned char)*p))
			return true;	/* not a port: a password cut at a '/' */
	return false;
}
#define RAW_SLASH_MSG	"the password in the URL holds a raw '/', '?' or '#' (or the URL a " \
			"port that is not a number, then an '@'): write them in a password as " \
			"%%2F, %%3F, %%23"

static void
check_conninfo(struct ctx *c, config_setting_t *g, const char *key, const char *conninfo)
{
	PQconninfoOption *o;
	char *err = NULL;
	const char *why;

	if (conninfo == NULL)
		return;
	redact_learn_conninfo(conninfo);
	if (userinfo_raw_slash(conninfo, strlen(conninfo))) {
		errf(c, line_of(c, member(g, "conninfo")), "'%s': " RAW_SLASH_MSG, key);
		return;
	}
	if ((o = PQconninfoParse(conninfo, &err)) != NULL) {
		PQconninfoFree(o);
		return;
	}
	if (err != NULL && strstr(err, "invalid connection option") != NULL)
		why = "an unknown option name (a misspelt keyword, or a value with a space that "
		    "is not in single quotes)";
	else if (err != NULL && strstr(err, "missing \"=\"") != NULL)
		why = "a word without '=' (a value with a space that is not in single quotes?)";
	else if (err != NULL && strstr(err, "unterminated quoted string") != NULL)
		why = "an unterminated quoted value";
	else if (err != NULL && strstr(err, "invalid URI") != NULL)
		why = "a malformed postgresql:// URI";
	else
		why = "a string libpq cannot parse";
	errf(c, line_of(c, member(g, "conninfo")), "'%s' is not a valid PostgreSQL connection "
	    "string: %s (its text is not shown: it may hold a password)", key, why);
	PQfreemem(err);
}

/* A member that is a group, else NULL (wrong types are reported by walk()). */
static config_setting_t *
group(config_setting_t *g, const char *name)
{
	config_setting_t	*s = member(g, name);

	return s != NULL && config_setting_is_group(s) ? s : NULL;
}

static bool
is_int(const config_setting_t *s)
{
	int	t = config_setting_type(s);

	return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
}

static bool
is_strlist(const config_setting_t *s)
{
	int	i, n;

	if (!config_setting_is_array(s) && !config_setting_is_list(s))
		return false;
	n = config_setting_length(s);
	for (i = 0; i < n; i++) {
		if (config_setting_type(config_setting_get_elem(s, i)) !=
		    CONFIG_TYPE_STRING)
			return false;
	}
	return true;
}

/* Edit distance, for "did you mean" hints. */
static size_t
distance(const char *a, const char *b)
{
	size_t	la = strlen(a), lb = strlen(b), i, j, d[64], prev, tmp;

	if (lb >= NELEM(d))
		return SIZE_MAX;
	for (j = 0; j <= lb; j++)
		d[j] = j;
	for (i = 1; i <= la; i++) {
		prev = d[0];
		d[0] = i;
		for (j = 1; j <= lb; j++) {
			tmp = d[j];
			d[j] = prev + (a[i - 1] != b[j - 1]);
			if (d[j - 1] + 1 < d[j])
				d[j] = d[j - 1] + 1;
			if (tmp + 1 < d[j])
				d[j] = tmp + 1;
			prev = tmp;
		}
	}
	return d[lb];
}

/* The known key under parent closest to name, or NULL. */
static const char *
closest(const char *parent, const char *name)
{
	const char	*best = NULL, *p, *l;
	size_t		 i, plen = strlen(parent), bd = 3, dd;

	for (i = 0; i < NELEM(keys); i++) {
		p = keys[i].path;
		if (plen > 0 && (strncmp(p, parent, plen) != 0 || p[plen] != '.'))
			continue;
		l = plen > 0 ? p + plen + 1 : p;
		if (strchr(l, '.') != NULL)
			continue;
		if ((dd = distance(name, l)) < bd && dd < strlen(l)) {
			bd = dd;
			best = l;
		}
	}
	return best;
}

/* Check the type of a known setting; 0 when it fits. */
static int
check_type(struct ctx *c, const struct key_def *kd, config_setting_t *s)
{
	const char	*n = dname(kd->path), *what = NULL;
	int		 t = config_setting_type(s), i;

	switch (kd->type) {
	case K_GROUP:
		if (t != CONFIG_TYPE_GROUP)
			what = "a group { ... }";
		break;
	case K_JOBS:
		if (t != CONFIG_TYPE_LIST)
			what = "a list of groups ( { ... }, { ... } )";
		break;
	case K_STR:
	case K_TMPL:
		if (t != CONFIG_TYPE_STRING)
			what = "a string";
		break;
	case K_INT:
		if (!is_int(s))
			what = "an integer";
		break;
	case K_BOOL:
		if (t != CONFIG_TYPE_BOOL)
			what = "true or false";
		break;
	case K_FLOAT:
		if (t != CONFIG_TYPE_FLOAT && !is_int(s))
			what = "a number such as 0.1";
		break;
	case K_AUTO:
		if (t != CONFIG_TYPE_BOOL && (t != CONFIG_TYPE_STRING ||
		    strcmp(config_setting_get_string(s), "auto") != 0))
			what = "true, false or \"auto\"";
		break;
	case K_DUR:
		if (t != CONFIG_TYPE_STRING && !is_int(s))
			what = "a duration such as \"30s\" (or an integer of seconds)";
		break;
	case K_STRLIST:
		if (!is_strlist(s))
			what = "a list of strings [ \"a\", \"b\" ]";
		break;
	case K_KEY:
		if (t != CONFIG_TYPE_STRING && !is_strlist(s))
			what = "a string or a list of strings";
		break;
	case K_QUERY:
		if (t != CONFIG_TYPE_GROUP) {
			if (!is_strlist(s)) {
				what = "a group { name = \"value\"; } or a list "
				    "[ \"name=value\" ]";
				break;
			}
			for (i = 0; i < config_setting_length(s); i++) {
				const char	*q = config_setting_get_string_elem(s, i);

				if (strchr(q, '=') == NULL || *q == '=')
					errf(c, line_of(c, s), "'%s[%d]': expected "
					    "\"name=value\", got \"%s\"", n, i, q);
			}
			break;
		}
		/* FALLTHROUGH */
	case K_MAP:
		if (t != CONFIG_TYPE_GROUP) {
			what = "a group of name = \"value\" settings";
			break;
		}
		for (i = 0; i < config_setting_length(s); i++) {
			config_setting_t	*e = config_setting_get_elem(s, i);

			if (config_setting_type(e) != CONFIG_TYPE_STRING && !is_int(e))
				errf(c, line_of(c, e), "'%s.%s' must be a string", n,
				    config_setting_name(e));
		}
		break;
	}
	if (what == NULL)
		return 0;
	errf(c, line_of(c, s), "'%s' must be %s", n, what);
	return -1;
}

/* Walk a group: unknown keys and wrong types, everywhere, before anything else. */
static void
walk(struct ctx *c, config_setting_t *g, const char *tpath, const char *dpath)
{
	config_setting_t	*s, *e;
	const struct key_def	*kd;
	const char		*name, *hint;
	char			*cpath, *cd, *ed;
	int			 i, j;

	for (i = 0; i < config_setting_length(g); i++) {
		s = config_setting_get_elem(g, i);
		name = config_setting_name(s);
		cpath = *tpath != '\0' ? xasprintf("%s.%s", tpath, name) : xstrdup(name);
		if ((kd = kd_find(cpath)) == NULL) {
			hint = closest(tpath, name);
			errf(c, line_of(c, s), "unknown key '%s' in %s%s%s%s", name,
			    *dpath != '\0' ? dpath : "the top level",
			    hint != NULL ? " (did you mean '" : "",
			    hint != NULL ? hint : "", hint != NULL ? "'?)" : "");
		} else if (check_type(c, kd, s) == 0 && kd->type == K_GROUP) {
			cd = *dpath != '\0' ? xasprintf("%s.%s", dpath, name) :
			    xstrdup(name);
			walk(c, s, cpath, cd);
			free(cd);
		} else if (kd->type == K_JOBS && config_setting_is_list(s)) {
			for (j = 0; j < config_setting_length(s); j++) {
				e = config_setting_get_elem(s, j);
				if (!config_setting_is_group(e)) {
					errf(c, line_of(c, e), "jobs[%d] must be a "
					    "group { ... }", j);
					continue;
				}
				ed = xasprintf("jobs[%d]", j);
				walk(c, e, "jobs.*", ed);
				free(ed);
			}
		}
		free(cpath);
	}
}

/* Print a duration in ms the way users write it. */
static const char *
fmt_dur(int64_t ms, char *b, size_t len)
{
	if (ms % 3600000 == 0 && ms != 0)
		snprintf(b, len, "%" PRId64 "h", ms / 3600000);
	else if (ms % 60000 == 0 && ms != 0)
		snprintf(b, len, "%" PRId64 "m", ms / 60000);
	else if (ms % 1000 == 0)
		snprintf(b, len, "%" PRId64 "s", ms / 1000);
	else
		snprintf(b, len, "%" PRId64 "ms", ms);
	return b;
}

/* A missing required key. */
static void
missing(struct ctx *c, config_setting_t *g, const char *path, const char *why)
{
	errf(c, g != NULL ? line_of(c, g) : c->line, "missing required key '%s'%s%s",
	    dname(path), why != NULL ? " " : "", why != NULL ? why : "");
}

/* An integer key: from the file, else *inh, else the table's default. */
static int
get_int(struct ctx *c, config_setting_t *g, const char *path, const int64_t *inh,
    int64_t *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = member(g, leaf(path));
	int64_t			 v;

	if (s == NULL || !is_int(s)) {
		if (s == NULL && (kd->flags & F_REQ)) {
			missing(c, g, path, NULL);
			return -1;
		}
		*out = inh != NULL ? *inh : strtoll(kd->def, NULL, 10);
		return s == NULL ? 0 : -1;
	}
	v = config_setting_get_int64(s);
	if (v < kd->min || v > kd->max) {
		errf(c, line_of(c, s), "'%s' must be between %" PRId64 " and %" PRId64
		    " (got %" PRId64 ")", dname(path), kd->min, kd->max, v);
		*out = inh != NULL ? *inh : strtoll(kd->def, NULL, 10);
		return -1;
	}
	*out = v;
	return 0;
}

/* get_int into an int. */
static int
get_int32(struct ctx *c, config_setting_t *g, const char *path, const int *inh,
    int *out)
{
	int64_t	v, i = inh != NULL ? *inh : 0;
	int	r;

	r = get_int(c, g, path, inh != NULL ? &i : NULL, &v);
	*out = (int)v;
	return r;
}

/* A duration key in ms; *inh (or -1 = unset default) when absent. */
static int
get_dur(struct ctx *c, config_setting_t *g, const char *path, const int64_t *inh,
    int64_t *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = member(g, leaf(path));
	const char		*str;
	int64_t			 v;
	char			 b1[32];

	*out = inh != NULL ? *inh : kd->def != NULL ? parse_duration_ms(kd->def) : -1;
	if (s == NULL)
		return 0;
	if (is_int(s)) {
		v = config_setting_get_int64(s);
		if (v < 0 || v > DUR_MAX / 1000) {
			errf(c, line_of(c, s), "'%s': bad duration %" PRId64,
			    dname(path), v);
			return -1;
		}
		v *= 1000;
	} else if ((str = config_setting_get_string(s)) != NULL) {
		if ((v = parse_duration_ms(str)) < 0) {
			errf(c, line_of(c, s), "'%s': bad duration '%s' (expected a "
			    "number with a unit: \"500ms\", \"30s\", \"5m\", \"1h\", "
			    "\"2d\")", dname(path), str);
			return -1;
		}
	} else
		return -1;
	if (v < kd->min) {
		errf(c, line_of(c, s), "'%s' must be at least %s", dname(path),
		    fmt_dur(kd->min, b1, sizeof b1));
		return -1;
	}
	if (v > kd->max) {
		errf(c, line_of(c, s), "'%s' is too long", dname(path));
		return -1;
	}
	*out = v;
	return 0;
}

static int
get_bool(struct ctx *c, config_setting_t *g, const char *path, const bool *inh,
    bool *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = member(g, leaf(path));

	*out = inh != NULL ? *inh : strcmp(kd->def, "true") == 0;
	if (s == NULL)
		return 0;
	if (config_setting_type(s) != CONFIG_TYPE_BOOL)
		return -1;
	*out = config_setting_get_bool(s);
	return 0;
}

/* A number between 0 and 1 (a float, or the integer 0 or 1). */
static int
get_ratio(struct ctx *c, config_setting_t *g, const char *path, double *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = member(g, leaf(path));
	double			 v;

	*out = strtod(kd->def, NULL);
	if (s == NULL)
		return 0;
	if (is_int(s))
		v = (double)config_setting_get_int64(s);
	else if (config_setting_type(s) == CONFIG_TYPE_FLOAT)
		v = config_setting_get_float(s);
	else
		return -1;	/* reported by walk() */
	if (!(v >= 0.0 && v <= 1.0)) {
		errf(c, line_of(c, s), "'%s' must be between 0 and 1 (got %g)",
		    dname(path), v);
		return -1;
	}
	*out = v;
	return 0;
}

/* true (1), false (0) or "auto" (-1); the table's default when absent. */
static int
get_auto(struct ctx *c, config_setting_t *g, const char *path, int *out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = member(g, leaf(path));

	*out = strcmp(kd->def, "auto") == 0 ? -1 : strcmp(kd->def, "true") == 0;
	if (s == NULL)
		return 0;
	if (config_setting_type(s) == CONFIG_TYPE_BOOL) {
		*out = config_setting_get_bool(s) ? 1 : 0;
		return 0;
	}
	if (config_setting_type(s) == CONFIG_TYPE_STRING &&
	    strcmp(config_setting_get_string(s), "auto") == 0) {
		*out = -1;
		return 0;
	}
	return -1;	/* reported by walk() */
}

/* A string key (copied); NULL when absent and without default. */
static int
get_str(struct ctx *c, config_setting_t *g, const char *path, bool req, char **out)
{
	const struct key_def	*kd = kd_get(path);
	config_setting_t	*s = member(g, leaf(path));
	const char		*v;

	*out = NULL;
	if (s == NULL) {
		if (req || (kd->flags & F_REQ)) {
			missing(c, g, path, NULL);
			return -1;
		}
		if (kd->def != NULL && (kd->type == K_STR || kd->type == K_TMPL))
			*out = xstrdup(kd->def);
		return 0;
	}
	if ((v = config_setting_get_string(s)) == NULL)
		return -1;
	*out = xstrdup(v);
	return 0;
}

/* Compile a template; errors name the key. */
static struct tmpl *
compile(struct ctx *c, config_setting_t *at, const char *name, const char *src,
    enum tmpl_place place, unsigned allowed)
{
	struct tmpl	*t;
	char		*err;

	t = tmpl_compile(src, place, allowed, c->cfg->daemon.secrets_dir, &err);
	/* the literal credentials in it are masked in whatever a user sees */
	if (place == TMPL_URL) {
		redact_learn_url(src);
		if (t != NULL && strstr(src, "{{") != NULL) {
			/* "u:{{secret:p}}@h": the rendered userinfo, as Basic carries it */
			struct buf pre;

			buf_init(&pre);
			buf_adds(&pre, "");
			(void)tmpl_fixed_prefix(t, &pre);
			redact_learn_rendered_url(pre.data);
			explicit_bzero(pre.data, pre.len);
			buf_free(&pre);
		}
	}
	else if (place == TMPL_HEADER)
		redact_learn_header(src);
	else if (place == TMPL_BODY)
		redact_learn_body(src);
	if (t == NULL) {
		errf(c, line_of(c, at), "%s: %s", name, err);
		free(err);
	}
	return t;
}

/* A template key; def_src overrides the table's default (NULL = table). */
static struct tmpl *
get_tmpl(struct ctx *c, config_setting_t *g, const char *path, bool req,
    const char *def_src, enum tmpl_place place, unsigned allowed)
{
	config_setting_t	*s = member(g, leaf(path));
	struct tmpl		*t;
	char			*src;

	if (get_str(c, g, path, req, &src) != 0 || (src == NULL && def_src == NULL))
		return NULL;
	if (s == NULL && def_src != NULL) {
		free(src);
		src = xstrdup(def_src);
	}
	t = compile(c, s != NULL ? s : g, dname(path), src, place, allowed);
	free(src);
	return t;
}

/* A list of strings (copied). */
static void
get_strlist(config_setting_t *s, char ***v, size_t *n)
{
	int	i, len;

	*v = NULL;
	*n = 0;
	if (s == NULL || !is_strlist(s))
		return;
	len = config_setting_length(s);
	*v = xcalloc((size_t)len + 1, sizeof **v);
	for (i = 0; i < len; i++)
		(*v)[i] = xstrdup(config_setting_get_string_elem(s, i));
	*n = (size_t)len;
}

/* Header templates: each "Name: value" with a literal token name. */
static void
get_headers(struct ctx *c, config_setting_t *g, const char *path, unsigned allowed,
    struct tmpl ***out, size_t *n)
{
	config_setting_t	*s = member(g, leaf(path)), *e;
	const char		*h, *p;
	char			*name;
	int			 i;

	*out = NULL;
	*n = 0;
	if (s == NULL || !is_strlist(s))
		return;
	*out = xcalloc((size_t)config_setting_length(s) + 1, sizeof **out);
	for (i = 0; i < config_setting_length(s); i++) {
		e = config_setting_get_elem(s, i);
		h = config_setting_get_string(e);
		for (p = h; *p != '\0' && (isalnum((unsigned char)*p) ||
		    strchr("!#$%&'*+-.^_`|~", *p) != NULL); p++)
			;
		if (p == h || *p != ':') {
			/* not quoted: a line without its colon is often "Authorization Bearer X" */
			errf(c, line_of(c, e), "'%s[%d]': expected \"Name: value\" (a name, a "
			    "colon, then the value; the text is not shown: it may hold a "
			    "credential)", dname(path), i);
			continue;
		}
		name = xasprintf("%s[%d]", dname(path), i);
		if (((*out)[*n] = compile(c, e, name, h, TMPL_HEADER, allowed)) != NULL)
			(*n)++;
		free(name);
	}
}

/* A plain SQL identifier, optionally lower-case only. */
static bool
is_ident(const char *s, bool lower)
{
	const char	*p;

	if (*s == '\0' || isdigit((unsigned char)*s) || strlen(s) > 63)
		return false;
	for (p = s; *p != '\0'; p++) {
		if (*p == '_' || isdigit((unsigned char)*p) ||
		    (lower ? islower((unsigned char)*p) : isalpha((unsigned char)*p)))
			continue;
		return false;
	}
	return true;
}

static void
parse_state(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*g = group(root, "state");
	int64_t			 v;

	if (g == NULL && member(root, "state") == NULL)
		errf(c, 1, "missing required group 'state' (state = { conninfo = "
		    "\"...\"; };)");
	if (g != NULL)
		if (get_str(c, g, "state.conninfo", true, &c->cfg->state.conninfo) == 0)
			check_conninfo(c, g, "state.conninfo", c->cfg->state.conninfo);
	(void)get_str(c, g, "state.schema", false, &c->cfg->state.schema);
	if (c->cfg->state.schema != NULL && !is_ident(c->cfg->state.schema, true))
		errf(c, line_of(c, member(g, "schema")), "'state.schema' must be a "
		    "plain lower-case identifier, not '%s'", c->cfg->state.schema);
	(void)get_int32(c, g, "state.connections", NULL, &c->cfg->state.connections);
	(void)get_dur(c, g, "state.connect_timeout", NULL, &v);
	c->cfg->state.connect_timeout_ms = v;
}

/*
 * daemon.redact_params: added to the names redact.c treats as credentials, before the jobs'
 * URLs are learnt. Never removed by a reload (nor is anything redact.c learnt).
 */
static void
parse_redact_params(struct ctx *c, config_setting_t *g)
{
	config_setting_t	*s = member(g, "redact_params");
	char			**v;
	size_t			  n, i;

	get_strlist(s, &v, &n);
	for (i = 0; i < n; i++) {
		if (v[i][0] == '\0')
			errf(c, line_of(c, s), "'daemon.redact_params' must not contain an "
			    "empty name");
		else
			redact_add_param(v[i]);
		free(v[i]);
	}
	free(v);
}

static void
parse_daemon(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*g = group(root, "daemon");
	struct config		*cfg = c->cfg;

	(void)get_str(c, g, "daemon.instance", false, &cfg->daemon.instance);
	(void)get_dur(c, g, "daemon.lease", NULL, &cfg->daemon.lease_ms);
	(void)get_int32(c, g, "daemon.max_runs", NULL, &cfg->daemon.max_runs);
	(void)get_str(c, g, "daemon.status_listen", false, &cfg->daemon.status_listen);
	if (cfg->daemon.status_listen != NULL && cfg->daemon.status_listen[0] != '\0') {
		char *host = NULL, *err = NULL;
		uint16_t port;
		config_setting_t *m = g != NULL ? config_setting_get_member(g, "status_listen") : NULL;

		if (url_parse_listen(cfg->daemon.status_listen, &host, &port, &err) != 0)
			errf(c, m != NULL ? line_of(c, m) : 0, "'daemon.status_listen': %s", err);
		free(host);
		free(err);
	}
	(void)get_str(c, g, "daemon.secrets_dir", false, &cfg->daemon.secrets_dir);
	parse_redact_params(c, g);
	(void)get_dur(c, g, "daemon.stop_timeout", NULL, &cfg->daemon.stop_timeout_ms);
}

/* The defaults group, kept in c->d as a pseudo job. */
static void
parse_defaults(struct ctx *c, config_setting_t *root)
{
	config_setting_t	*g = group(root, "defaults");
	struct job_conf		*d = &c->d;
	int64_t			 v;

	(void)get_dur(c, g, "defaults.interval", NULL, &d->interval_ms);
	(void)get_dur(c, g, "defaults.jitter", NULL, &c->d_jitter);
	(void)get_int32(c, g, "defaults.batch", NULL, &d->batch);
	(void)get_int32(c, g, "defaults.max_attempts", NULL, &d->max_attempts);
	(void)get_dur(c, g, "defaults.retry_backoff", NULL, &d->retry_backoff_ms);
	(void)get_dur(c, g, "defaults.retry_backoff_max", NULL,
	    &d->retry_backoff_max_ms);
	(void)get_dur(c, g, "defaults.timeout", NULL, &d->src.http.timeout_ms);
	(void)get_dur(c, g, "defaults.run_timeout", NULL, &d->timeout_ms);
	(void)get_int32(c, g, "defaults.retries", NULL, &d->src.http.retries);
	(void)get_bool(c, g, "defaults.tls_verify", NULL, &d->src.http.tls_verify);
	(void)get_int(c, g, "defaults.max_bytes", NULL, &v);
	d->src.http.max_bytes = v;
	(void)get_int(c, g, "defaults.max_records", NULL, &d->max_records);
	if (d->retry_backoff_max_ms < d->retry_backoff_ms)
		errf(c, line_of(c, g), "'defaults.retry_backoff_max' must not be "
		    "shorter than 'defaults.retry_backoff'");
}

/* HTTP options of a source or destination (prefix "jobs.*.source"). */
static void
parse_http_opts(struct ctx *c, config_setting_t *g, const char *prefix,
    struct http_opts *h)
{
	const struct http_opts	*d = &c->d.src.http;
	char			*p;

	p = xasprintf("%s.timeout", prefix);
	(void)get_dur(c, g, p, &d->timeout_ms, &h->timeout_ms);
	free(p);
	p = xasprintf("%s.retries", prefix);
	(void)get_int32(c, g, p, &d->retries, &h->retries);
	free(p);
	p = xasprintf("%s.max_bytes", prefix);
	(void)get_int(c, g, p, &d->max_bytes, &h->max_bytes);
	free(p);
	p = xasprintf("%s.tls_verify", prefix);
	(void)get_bool(c, g, p, &d->tls_verify, &h->tls_verify);
	free(p);
	p = xasprintf("%s.ca_file", prefix);
	(void)get_str(c, g, p, false, &h->ca_file);
	free(p);
}

static const char *page_styles[] = { "none", "page", "offset", "link", "next" };

/* The placeholder a page style needs in the source url or query. */
static void
check_paging(struct ctx *c, config_setting_t *g, struct source_conf *s, unsigned uses)
{
	static const struct {
		unsigned	 var;
		enum page_style	 style;
		const char	*name;
	} need[] = {
		{ TV_PAGE, PAGE_PAGE, "page" },
		{ TV_OFFSET, PAGE_OFFSET, "offset" },
		{ TV_CURSOR, PAGE_NEXT, "cursor" },
	};
	config_setting_t	*pg = group(g, "page");
	size_t			 i;

	for (i = 0; i < NELEM(need); i++) {
		if (s->page_style == need[i].style && (uses & need[i].var) == 0 &&
		    need[i].style != PAGE_NEXT)
			errf(c, line_of(c, pg != NULL ? pg : g), "page.style '%s' but no "
			    "{{%s}} in source url or query", page_styles[s->page_style],
			    need[i].name);
		if (s->page_style != need[i].style && (uses & need[i].var) != 0)
			errf(c, line_of(c, g), "{{%s}} in source url or query but "
			    "page.style is '%s' (use '%s')", need[i].name,
			    page_styles[s->page_style], page_styles[need[i].style]);
	}
}

/* Query parameters, from a group or from a list of "name=value" strings. */
static unsigned
parse_query(struct ctx *c, config_setting_t *q, struct source_conf *s)
{
	config_setting_t	*e;
	const char		*v, *eq;
	char			*name, *str, *key;
	unsigned		 uses = 0;
	int			 i, n;
	bool			 grp = config_setting_is_group(q);

	if (!grp && !is_strlist(q))
		return 0;
	n = config_setting_length(q);
	s->query = xcalloc((size_t)n + 1, sizeof *s->query);
	for (i = 0; i < n; i++) {
		e = config_setting_get_elem(q, (unsigned)i);
		if (!grp) {
			v = config_setting_get_string(e);
			if ((eq = strchr(v, '=')) == NULL || eq == v)
				continue;
			name = xstrndup(v, (size_t)(eq - v));
			str = xstrdup(eq + 1);
		} else if (is_int(e)) {
			name = xstrdup(config_setting_name(e));
			str = xasprintf("%lld", config_setting_get_int64(e));
		} else if (config_setting_type(e) == CONFIG_TYPE_STRING) {
			name = xstrdup(config_setting_name(e));
			str = xstrdup(config_setting_get_string(e));
		} else
			continue;
		key = xasprintf("source.query.%s", name);
		redact_learn_param(name, str);
		s->query[s->nquery].value = compile(c, e, key, str, TMPL_QUERY, TV_READ);
		free(key);
		free(str);
		if (s->query[s->nquery].value == NULL) {
			free(name);
			continue;
		}
		uses |= tmpl_uses(s->query[s->nquery].value);
		s->query[s->nquery++].name = name;
	}
	return uses;
}

/* An HTTP method of a destination or a marking request. */
static void
check_method(struct ctx *c, config_setting_t *g, const char *key, const char *m)
{
	static const char	*ok[] = { "POST", "PUT", "PATCH", "DELETE" };
	size_t			 i;

	for (i = 0; i < NELEM(ok); i++) {
		if (strcmp(m, ok[i]) == 0)
			return;
	}
	errf(c, line_of(c, member(g, "method")), "'%s': unknown method '%s' "
	    "(expected POST, PUT, PATCH or DELETE)", key, m);
}

/* A table: name or schema.name. */
static bool
is_table(const char *t)
{
	const char	*dot = strchr(t, '.');
	char		*schema;
	bool		 ok;

	if (dot == NULL)
		return is_ident(t, false);
	schema = xstrndup(t, (size_t)(dot - t));
	ok = is_ident(schema, false) && is_ident(dot + 1, false);
	free(schema);
	return ok;
}

/* The F_* flag of a connector type. */
static int
conn_flag(enum conn_type type)
{
	switch (type) {
	case CONN_HTTP:
		return F_HTTP;
	case CONN_POSTGRESQL:
		return F_PG;
	case CONN_FILE:
		return F_FILE;
	}
	return 0;
}

/*
 * Keys of a source or destination group (and of its subgroups) that belong to
 * another connector type: "'source.url' is not valid for a postgresql source".
 */
static void
check_conn_keys(struct ctx *c, config_setting_t *g, const char *tpath,
    enum conn_type type, const char *tname, const char *what)
{
	const struct key_def	*kd;
	config_setting_t	*e;
	char			*p;
	int			 i;

	for (i = 0; i < config_setting_length(g); i++) {
		e = config_setting_get_elem(g, (unsigned)i);
		p = xasprintf("%s.%s", tpath, config_setting_name(e));
		kd = kd_find(p);
		if (kd != NULL && (kd->flags & F_CONN) != 0 &&
		    (kd->flags & conn_flag(type)) == 0)
			errf(c, line_of(c, e), "'%s' is not valid for a %s %s", dname(p),
			    tname, what);
		else if (kd != NULL && kd->type == K_GROUP && config_setting_is_group(e))
			check_conn_keys(c, e, p, type, tname, what);
		free(p);
	}
}

/* Strategy flag (and a supported strategy at all). */
static bool
is_flag(const struct ctx *c, const struct job_conf *j)
{
	return c->strat_ok && j->strategy == STRAT_FLAG;
}

/* A supported strategy other than flag. */
static bool
not_flag(const struct ctx *c, const struct job_conf *j)
{
	return c->strat_ok && j->strategy != STRAT_FLAG;
}

/* Strategy capture (and a supported strategy at all). */
static bool
is_capture(const struct ctx *c, const struct job_conf *j)
{
	return c->strat_ok && j->strategy == STRAT_CAPTURE;
}

/*
 * A URL the configuration holds, checked as far as its literal text goes (up to the first
 * placeholder): a scheme the connector reads (a comma list), and a host (file:// takes
 * none, or localhost). A scheme or host that a placeholder supplies is known only once
 * rendered: http.c checks every URL the same way before a request goes out.
 */
static void
check_url(struct ctx *c, config_setting_t *at, const char *key, const char *url,
    const char *schemes)
{
	const char	*ph = strstr(url, "{{");
	char		*why = NULL;

	if (url_check(url, ph != NULL ? (size_t)(ph - url) : strlen(url), schemes,
	    &why) < 0)
		errf(c, line_of(c, at), "'%s': '%s': %s", key, url, why);
	else if (userinfo_raw_slash(url, ph != NULL ? (size_t)(ph - url) : strlen(url)))
		errf(c, line_of(c, at), "'%s': " RAW_SLASH_MSG, key);
	free(why);
}

/*
 * The origin (scheme, user, host, port) of every request comes from the configuration:
 * the literal text, {{secret:}} and {{env:}}, which must fix scheme://host/ (a '/', '?'
 * or '#' ends the host) before any placeholder whose value comes with a request. A record,
 * a key or a page value is escaped, so after that point it can never become a host; before
 * it, "https://api.example.com{{record.p}}" would let ".evil.com" or "@evil.com" choose
 * where the job's headers go. Returns the origin when it is known (NULL else).
 */
static char *
check_origin(struct ctx *c, config_setting_t *at, const char *key, const struct tmpl *t)
{
	struct buf	 pre;
	const char	*ph, *sep;
	char		*origin = NULL;

	buf_init(&pre);
	buf_adds(&pre, "");
	ph = tmpl_fixed_prefix(t, &pre);
	sep = strstr(pre.data, "://");
	if (ph != NULL && (sep == NULL || sep[3 + strcspn(sep + 3, "/?#")] == '\0'))
		errf(c, line_of(c, at), "'%s': {{%s}} may go only in the path or the "
		    "query, after scheme://host/ (the origin of a request comes from the "
		    "configuration, never from a value)", key, ph);
	else
		origin = url_origin(pre.data);
	explicit_bzero(pre.data, pre.len);
	buf_free(&pre);
	return origin;
}

/*
 * source.allow_origins: bare origins (scheme://host[:port]), stored as url_origin
 * writes them so that a link's origin compares as text. An http one is refused beside an
 * https source.url: a link is never followed from https to http.
 */
static void
parse_allow_origins(struct ctx *c, config_setting_t *g, struct source_conf *s)
{
	config_setting_t	*at = member(g, "allow_origins");
	const char		*v, *auth;
	char			*o;
	size_t			 i, n;

	get_strlist(at, &s->allow_origins, &s->nallow_origins);
	for (i = 0; i < s->nallow_origins; i++) {
		config_setting_t *el = config_setting_get_elem(at, (unsigned)i);
		int line = line_of(c, el != NULL ? el : at);

		v = s->allow_origins[i];
		auth = strstr(v, "://");
		n = auth != NULL ? strcspn(auth + 3, "/?#") : 0;
		o = NULL;
		if (auth == NULL || memchr(auth + 3, '@', n) != NULL ||
		    (auth[3 + n] != '\0' && strcmp(auth + 3 + n, "/") != 0) ||
		    (o = url_origin(v)) == NULL)
			errf(c, line, "'source.allow_origins': '%s' is not an "
			    "origin (expected http://host or https://host, with an optional "
			    ":port and nothing after it)", v);
		else if (s->origin != NULL && strncmp(s->origin, "https:", 6) == 0 &&
		    strncmp(o, "http:", 5) == 0)
			errf(c, line, "'source.allow_origins': '%s' is http, "
			    "but source.url is https: a link is never followed from https "
			    "to http", v);
		if (o != NULL) {
			free(s->allow_origins[i]);
			s->allow_origins[i] = o;
		}
	}
}

/*
 * An HTTP URL template of the connector (source.url, destination.url, ...). When a secret
 * or an environment value supplies the scheme or the host, they are known now: the URL is
 * rendered with stand-ins for the per-request values and checked whole (named redacted).
 */
static void
check_http_url(struct ctx *c, config_setting_t *g, const char *name, const char *key,
    const struct tmpl *t, char **origin)
{
	struct tmpl_vals	 v = { .have = TV_WATERMARK | TV_PAGE | TV_OFFSET | TV_LIMIT |
				    TV_KEY, .watermark = "w", .page = 1, .limit = 1, .key = "k" };
	const char		*src = t != NULL ? tmpl_source(t) : NULL, *ph;
	struct buf		 url, shown;
	char			*err = NULL, *why = NULL, *o;

	if (src == NULL)
		return;
	check_url(c, member(g, name), key, src, "http,https");
	o = check_origin(c, member(g, name), key, t);
	if (origin != NULL)
		*origin = o;
	else
		free(o);
	ph = strstr(src, "{{");
	if (ph == NULL || url_check(src, (size_t)(ph - src), "http,https", &why) != 1 ||
	    (tmpl_uses(t) & (TV_RECORD | TV_DEST | TV_CURSOR)) != 0) {
		free(why);	/* check_url above reported it */
		return;
	}
	free(why);
	why = NULL;
	buf_init(&url);
	buf_init(&shown);
	if (tmpl_render(t, &v, false, &url, &err) == 0 &&
	    tmpl_render(t, &v, true, &shown, &err) == 0 &&
	    url_check(url.data, url.len, "http,https", &why) < 0)
		errf(c, line_of(c, member(g, name)), "'%s': '%s' renders to '%s': %s", key,
		    src, shown.data, why);
	free(err);
	free(why);
	if (url.data != NULL)
		explicit_bzero(url.data, url.len);
	buf_free(&url);
	buf_free(&shown);
}

/* source.mark of an HTTP source: the request that marks a record done. */
static void
parse_mark_http(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	config_setting_t	*mk = group(g, "mark"), *b;
	struct source_conf	*s = &j->src;
	const char		*body;

	if (member(g, "mark") != NULL && !is_flag(c, j)) {
		if (not_flag(c, j))
			errf(c, line_of(c, member(g, "mark")), "source.mark is used "
			    "only by strategy 'flag'");
		return;
	}
	if (!is_flag(c, j))
		return;
	if (mk == NULL || member(mk, "url") == NULL) {
		if (member(g, "mark") == NULL || mk != NULL)
			errf(c, line_of(c, mk != NULL ? mk : g), "strategy 'flag' needs "
			    "source.mark.url: the request that marks a record done");
		return;
	}
	s->has_mark = true;
	if (get_str(c, mk, "jobs.*.source.mark.method", false, &s->mark_method) == 0)
		check_method(c, mk, "source.mark.method", s->mark_method);
	s->mark_url = get_tmpl(c, mk, "jobs.*.source.mark.url", true, NULL, TMPL_URL,
	    TV_MARK);
	check_http_url(c, mk, "url", "source.mark.url", s->mark_url, NULL);
	b = member(mk, "body");
	body = b != NULL ? config_setting_get_string(b) : NULL;
	if (body != NULL && *body != '\0')
		s->mark_body = get_tmpl(c, mk, "jobs.*.source.mark.body", false, NULL,
		    TMPL_BODY, TV_MARK);
	get_headers(c, mk, "jobs.*.source.mark.headers", TV_MARK, &s->mark_headers,
	    &s->mark_nheaders);
}

/*
 * capture.deletes deletes what a snapshot lacks, so the read must not be able to miss a
 * record that exists: a page number or an offset counts records, and one that moves to an
 * earlier page while the run reads is skipped and would be deleted. One answer (style
 * none), or links/cursors over a stable order the operator declares (page.stable), can.
 */
static void
check_deletes_read(struct ctx *c, config_setting_t *g, const struct job_conf *j)
{
	const struct source_conf	*s = &j->src;
	config_setting_t		*pg = group(g, "page");
	int				 line = line_of(c, member(pg, "style") != NULL ?
					    member(pg, "style") : pg != NULL ? pg : g);

	if (!is_capture(c, j) || !j->capture.deletes)
		return;
	if (s->page_style == PAGE_PAGE || s->page_style == PAGE_OFFSET)
		errf(c, line, "capture.deletes cannot be used with page.style '%s': a "
		    "page number or an offset counts records, so a record that moves "
		    "between pages while a run reads is missed and would be deleted; "
		    "use page.style 'link' or 'next' over a stable order (page.stable = "
		    "true), a single answer (style 'none'), a file or a postgresql source",
		    page_styles[s->page_style]);
	else if ((s->page_style == PAGE_LINK || s->page_style == PAGE_NEXT) &&
	    !s->page_stable)
		errf(c, line, "capture.deletes with page.style '%s' needs page.stable = "
		    "true: declare that the API's %s walk one stable order (a cursor on "
		    "the key, not an offset), or no record may be missed and deleted",
		    page_styles[s->page_style], s->page_style == PAGE_LINK ?
		    "links" : "next cursors");
}

static void
parse_source_http(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	struct source_conf	*s = &j->src;
	config_setting_t	*q, *pg;
	char			*str;
	unsigned		 uses = 0;
	size_t			 i;

	s->url = get_tmpl(c, g, "jobs.*.source.url", true, NULL, TMPL_URL, TV_READ);
	if (s->url != NULL)
		uses |= tmpl_uses(s->url);
	/* No watermark on the first run, no cursor on the first page. */
	if ((uses & TV_WATERMARK) && is_capture(c, j))
		errf(c, line_of(c, member(g, "url")), "source.url: {{watermark}} has no "
		    "value with strategy 'capture' (it reads the whole data set every "
		    "run and keeps no watermark)");
	else if (uses & (TV_WATERMARK | TV_CURSOR))
		errf(c, line_of(c, member(g, "url")), "source.url: {{%s}} has no value "
		    "on the first %s; use it in source.query, where the parameter is "
		    "then left out", (uses & TV_WATERMARK) ? "watermark" : "cursor",
		    (uses & TV_WATERMARK) ? "run" : "page");
	if ((q = config_setting_get_member(g, "query")) != NULL) {
		unsigned	qu = parse_query(c, q, s);

		/* Strategy flag keeps no watermark: the parameter would never be sent. */
		if ((qu & TV_WATERMARK) && is_flag(c, j))
			errf(c, line_of(c, q), "source.query: {{watermark}} has no value "
			    "with strategy 'flag' (the pending records are asked by "
			    "the query itself)");
		/* Nor strategy capture, which reads everything every run. */
		if ((qu & TV_WATERMARK) && is_capture(c, j))
			errf(c, line_of(c, q), "source.query: {{watermark}} has no value "
			    "with strategy 'capture' (it reads the whole data set every "
			    "run and keeps no watermark)");
		uses |= qu;
	}
	/* Source headers are rendered once per request, without page values. */
	get_headers(c, g, "jobs.*.source.headers", TV_SECRET | TV_ENV, &s->headers,
	    &s->nheaders);
	for (i = 0; i < s->nheaders; i++)
		uses |= tmpl_uses(s->headers[i]);
	(void)get_str(c, g, "jobs.*.source.records", false, &s->records);
	pg = group(g, "page");
	if (get_str(c, pg, "jobs.*.source.page.style", false, &str) == 0) {
		for (i = 0; i < NELEM(page_styles); i++) {
			if (strcmp(str, page_styles[i]) == 0)
				break;
		}
		if (i == NELEM(page_styles))
			errf(c, line_of(c, member(pg, "style")), "unknown page.style "
			    "'%s' (expected none, page, offset, link or next)", str);
		else {
			s->page_style = (enum page_style)i;
			check_paging(c, g, s, uses);
		}
		free(str);
	}
	(void)get_int(c, pg, "jobs.*.source.page.first", NULL, &s->page_first);
	(void)get_int(c, pg, "jobs.*.source.page.size", NULL, &s->page_size);
	(void)get_int(c, pg, "jobs.*.source.page.max_records", NULL, &s->page_max_records);
	(void)get_str(c, pg, "jobs.*.source.page.next", s->page_style == PAGE_NEXT,
	    &s->page_next);
	(void)get_bool(c, pg, "jobs.*.source.page.stable", NULL, &s->page_stable);
	if (member(pg, "stable") != NULL && s->page_style != PAGE_LINK &&
	    s->page_style != PAGE_NEXT)
		errf(c, line_of(c, member(pg, "stable")), "'source.page.stable' applies to "
		    "page.style 'link' or 'next' only (a page number or an offset counts "
		    "records, which is never stable)");
	check_deletes_read(c, g, j);
	s->fetch = get_tmpl(c, g, "jobs.*.source.fetch", false, NULL, TMPL_URL,
	    TV_KEY | TV_SECRET | TV_ENV);
	check_http_url(c, g, "url", "source.url", s->url, &s->origin);
	check_http_url(c, g, "fetch", "source.fetch", s->fetch, NULL);
	parse_allow_origins(c, g, s);
	parse_http_opts(c, g, "jobs.*.source", &s->http);
	parse_mark_http(c, g, j);
	if (j->flag.version != NULL)
		errf(c, line_of(c, member(group(c->job, "flag"), "version")),
		    "'flag.version' is used only with a postgresql source; with an "
		    "http source make source.mark a conditional request (e.g. "
		    "{{record.version}} in its url or headers)");
}

/* Is column one of the columns read (always true when all columns are read)? */
static bool
src_reads(const struct source_conf *s, const char *column)
{
	size_t	i;

	if (s->ncolumns == 0)
		return true;
	for (i = 0; i < s->ncolumns; i++) {
		if (strcmp(s->columns[i], column) == 0)
			return true;
	}
	return false;
}

/* A column named by another key of a job with a postgresql source. */
static void
check_src_column(struct ctx *c, config_setting_t *at, const struct source_conf *s,
    const char *key, const char *column)
{
	if (!is_ident(column, false))
		errf(c, line_of(c, at), "'%s': '%s' is not a plain column name (a "
		    "postgresql source reads it as a column)", key, column);
	else if (!src_reads(s, column))
		errf(c, line_of(c, at), "'%s': column '%s' is not in source.columns",
		    key, column);
}

/* source.mark.set of a postgresql source: UPDATE ... SET column = value. */
static void
parse_mark_pg(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	config_setting_t	*mk = group(g, "mark"), *set, *e;
	struct source_conf	*s = &j->src;
	const char		*col;
	char			*src, *name;
	size_t			 i;
	int			 n;

	if (member(g, "mark") != NULL && !is_flag(c, j)) {
		if (not_flag(c, j))
			errf(c, line_of(c, member(g, "mark")), "source.mark is used "
			    "only by strategy 'flag'");
		return;
	}
	if (!is_flag(c, j))
		return;
	set = group(mk, "set");
	if (set == NULL) {
		if (member(g, "mark") == NULL || mk != NULL)
			errf(c, line_of(c, mk != NULL ? mk : g), "strategy 'flag' needs "
			    "source.mark.set: the columns that mark a row done");
		return;
	}
	n = config_setting_length(set);
	if (n == 0) {
		errf(c, line_of(c, set), "'source.mark.set' is empty");
		return;
	}
	s->mark_set = xcalloc((size_t)n + 1, sizeof *s->mark_set);
	for (i = 0; i < (size_t)n; i++) {
		e = config_setting_get_elem(set, (unsigned)i);
		col = config_setting_name(e);
		if (is_int(e))
			src = xasprintf("%lld", config_setting_get_int64(e));
		else if (config_setting_type(e) == CONFIG_TYPE_STRING)
			src = xstrdup(config_setting_get_string(e));
		else
			continue;	/* reported by walk() */
		if (!is_ident(col, false))
			errf(c, line_of(c, e), "'source.mark.set': '%s' is not a plain "
			    "column name", col);
		else if (j->nkey == 1 && strcmp(col, j->key[0]) == 0)
			errf(c, line_of(c, e), "'source.mark.set': '%s' is the key "
			    "column, which a marking must not change", col);
		name = xasprintf("source.mark.set.%s", col);
		s->mark_set[s->nmark_set].value = compile(c, e, name, src, TMPL_TEXT,
		    TV_MARK);
		free(name);
		free(src);
		if (s->mark_set[s->nmark_set].value != NULL)
			s->mark_set[s->nmark_set++].column = xstrdup(col);
	}
}

static void
parse_source_pg(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	struct source_conf	*s = &j->src;
	config_setting_t	*cols = member(g, "columns"), *e, *k;
	size_t			 i;

	if (get_str(c, g, "jobs.*.source.conninfo", true, &s->conninfo) == 0)
		check_conninfo(c, g, "source.conninfo", s->conninfo);
	(void)get_dur(c, g, "jobs.*.source.timeout", &c->d.src.http.timeout_ms,
	    &s->http.timeout_ms);	/* statement_timeout, lock_timeout */
	if (get_str(c, g, "jobs.*.source.table", true, &s->table) == 0 &&
	    !is_table(s->table))
		errf(c, line_of(c, member(g, "table")), "'source.table': '%s' is not "
		    "a plain name or schema.name", s->table);
	if (cols != NULL && is_strlist(cols)) {
		get_strlist(cols, &s->columns, &s->ncolumns);
		if (s->ncolumns == 0) {
			errf(c, line_of(c, cols), "'source.columns' is empty (leave it "
			    "out to read all columns)");
			free(s->columns);
			s->columns = NULL;
		}
		for (i = 0; i < s->ncolumns; i++) {
			e = config_setting_get_elem(cols, (unsigned)i);
			if (!is_ident(s->columns[i], false))
				errf(c, line_of(c, e), "'source.columns': '%s' is not a "
				    "plain column name", s->columns[i]);
		}
	}
	if (get_str(c, g, "jobs.*.source.where", false, &s->where) == 0 &&
	    s->where != NULL && strspn(s->where, " \t\r\n") == strlen(s->where)) {
		free(s->where);
		s->where = NULL;
	}
	(void)get_int(c, group(g, "page"), "jobs.*.source.page.size", NULL,
	    &s->page_size);
	s->page_first = 1;

	/* The key: one column, read, by which rows are paged and marked. */
	k = member(c->job, "key");
	if (j->nkey > 1)
		errf(c, line_of(c, k), "a postgresql source needs a single-column key");
	else if (j->nkey == 1 && *j->key[0] != '\0')
		check_src_column(c, k, s, "key", j->key[0]);
	if (c->strat_ok && j->strategy == STRAT_MODIFIED && j->modified.field != NULL)
		check_src_column(c, member(group(c->job, "modified"), "field"), s,
		    "modified.field", j->modified.field);
	if (j->flag.version != NULL)
		check_src_column(c, member(group(c->job, "flag"), "version"), s,
		    "flag.version", j->flag.version);

	if (is_flag(c, j)) {
		if (member(g, "pending") == NULL)
			errf(c, line_of(c, g), "strategy 'flag' with a postgresql source "
			    "needs source.pending: the SQL condition of a row still to "
			    "sync");
		else if (get_str(c, g, "jobs.*.source.pending", false, &s->pending) == 0 &&
		    strspn(s->pending, " \t\r\n") == strlen(s->pending))
			errf(c, line_of(c, member(g, "pending")), "'source.pending' is "
			    "empty");
	} else if (not_flag(c, j) && member(g, "pending") != NULL)
		errf(c, line_of(c, member(g, "pending")), "source.pending is used only "
		    "by strategy 'flag'");
	parse_mark_pg(c, g, j);
}

static const char *file_schemes[] = { "file", "ftp", "ftps", "sftp", "http", "https" };
static const char *file_formats[] = { "csv", "ndjson", "json" };

/*
 * The scheme of a file source's URL (lower case, into scheme), or an error.
 * A password in the URL is refused: it belongs in source.password.
 */
static int
file_url_scheme(struct ctx *c, config_setting_t *at, const char *url, char *scheme,
    size_t len)
{
	const char	*p, *auth, *end, *at_sign, *colon;
	size_t		 i, n;

	for (p = url; isalnum((unsigned char)*p) || *p == '+' || *p == '-' ||
	    *p == '.'; p++)
		;
	n = (size_t)(p - url);
	if (n == 0 || strncmp(p, "://", 3) != 0 || !isalpha((unsigned char)*url)) {
		errf(c, line_of(c, at), "'source.url': '%s' is not a URL such as "
		    "sftp://host/path/items.csv or file:///srv/export/items.csv", url);
		return -1;
	}
	if (strstr(url, "{{") != NULL) {
		errf(c, line_of(c, at), "'source.url': the url of a file source takes "
		    "no placeholders (a password goes in source.password)");
		return -1;
	}
	for (i = 0; i < n && i + 1 < len; i++)
		scheme[i] = (char)tolower((unsigned char)url[i]);
	scheme[i] = '\0';
	for (i = 0; i < NELEM(file_schemes); i++) {
		if (strcmp(scheme, file_schemes[i]) == 0)
			break;
	}
	if (i == NELEM(file_schemes)) {
		errf(c, line_of(c, at), "'source.url': unknown scheme '%s' (a file "
		    "source reads file, ftp, ftps, sftp, http or https URLs)", scheme);
		return -1;
	}
	/* user:password@ in the authority would end up in logs. */
	auth = p + 3;
	end = auth + strcspn(auth, "/?#");
	at_sign = memchr(auth, '@', (size_t)(end - auth));
	colon = at_sign != NULL ? memchr(auth, ':', (size_t)(at_sign - auth)) : NULL;
	if (colon != NULL) {
		errf(c, line_of(c, at), "'source.url': a password in the URL would be "
		    "logged; give it in source.password as \"{{secret:NAME}}\"");
		return -1;
	}
	return 0;
}

/* The SHA256 host key fingerprint as OpenSSH prints it, stored without "SHA256:" and '='. */
static void
parse_host_sha256(struct ctx *c, config_setting_t *g, struct source_conf *s)
{
	static const char	*b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	config_setting_t	*at = member(g, "ssh_host_sha256");
	char			*v, *p;
	const char		*q;
	size_t			 n;

	if (get_str(c, g, "jobs.*.source.ssh_host_sha256", false, &v) != 0 || v == NULL)
		return;
	p = strncmp(v, "SHA256:", 7) == 0 ? v + 7 : v;
	n = strlen(p);
	if (n == 44 && p[43] == '=')
		n = 43;
	/* 32 bytes: 43 characters, the last one carrying 2 bits of padding (zero). */
	if (n != 43 || strspn(p, b64) < 43 ||
	    (q = strchr(b64, p[42])) == NULL || (q - b64) % 4 != 0) {
		errf(c, line_of(c, at), "'source.ssh_host_sha256': '%s' is not a "
		    "base64 SHA-256 fingerprint (43 characters, as printed by "
		    "ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub on the server "
		    "after \"SHA256:\")", v);
		free(v);
		return;
	}
	s->ssh_host_sha256 = xstrndup(p, 43);
	free(v);
}

/*
 * A file source (strategy capture): one snapshot in CSV, NDJSON or a JSON array,
 * read over libcurl from file://, ftp(s)://, sftp:// or http(s)://.
 */
static void
parse_source_file(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	static const int64_t	 file_timeout = 10 * 60 * 1000, no_limit = 0;
	struct source_conf	*s = &j->src;
	const struct http_opts	*d = &c->d.src.http;
	config_setting_t	*at;
	struct tmpl		*t;
	struct tmpl_vals	 v = { 0 };
	struct buf		 b;
	char			 scheme[16] = "", *str, *err;
	size_t			 i;
	bool			 sftp, local;

	if (c->strat_ok && j->strategy != STRAT_CAPTURE)
		errf(c, line_of(c, member(g, "type")), "a file source works only with "
		    "strategy 'capture' (every run reads the whole file: there is no "
		    "watermark or flag to filter it by)");
	if (get_str(c, g, "jobs.*.source.url", true, &s->file_url) == 0)
		redact_learn_url(s->file_url);
	if (s->file_url != NULL &&
	    file_url_scheme(c, member(g, "url"), s->file_url, scheme,
	    sizeof scheme) != 0)
		*scheme = '\0';
	else if (s->file_url != NULL)
		check_url(c, member(g, "url"), "source.url", s->file_url,
		    "file,ftp,ftps,sftp,http,https");
	sftp = strcmp(scheme, "sftp") == 0;
	local = strcmp(scheme, "file") == 0;
	/* Over http(s), redirects stay within these origins (http.c). */
	if (s->file_url != NULL)
		s->origin = url_origin(s->file_url);
	parse_allow_origins(c, g, s);

	if (get_str(c, g, "jobs.*.source.format", false, &str) == 0) {
		for (i = 0; i < NELEM(file_formats); i++) {
			if (strcmp(str, file_formats[i]) == 0)
				break;
		}
		if (i == NELEM(file_formats))
			errf(c, line_of(c, member(g, "format")), "'source.format': "
			    "unknown format '%s' (expected csv, ndjson or json)", str);
		else
			s->file_format = (enum file_format)i;
		free(str);
	}
	s->delimiter = ',';
	at = member(g, "delimiter");
	if (at != NULL && s->file_format != FILE_CSV)
		errf(c, line_of(c, at), "'source.delimiter' is used only with format "
		    "'csv'");
	else if (get_str(c, g, "jobs.*.source.delimiter", false, &str) == 0) {
		if (strlen(str) != 1 || (unsigned char)*str >= 0x80 || *str == '"' ||
		    *str == '\n' || *str == '\r')
			errf(c, line_of(c, at), "'source.delimiter' must be one character "
			    "other than '\"', CR or LF, such as \",\", \";\", \"|\" or "
			    "\"\\t\"");
		else
			s->delimiter = *str;
		free(str);
	}
	(void)get_auto(c, g, "jobs.*.source.gzip", &s->gzip);

	at = member(g, "ssh_key");
	if (at != NULL && *scheme != '\0' && !sftp)
		errf(c, line_of(c, at), "'source.ssh_key' is used only with an sftp:// "
		    "url (this one is %s://)", scheme);
	else if (get_str(c, g, "jobs.*.source.ssh_key", false, &s->ssh_key) == 0 &&
	    s->ssh_key != NULL && *s->ssh_key == '\0')
		errf(c, line_of(c, at), "'source.ssh_key' is empty");
	at = member(g, "ssh_host_sha256");
	if (at != NULL && *scheme != '\0' && !sftp)
		errf(c, line_of(c, at), "'source.ssh_host_sha256' is used only with an "
		    "sftp:// url (this one is %s://)", scheme);
	else
		parse_host_sha256(c, g, s);

	at = member(g, "username");
	if (at != NULL && local)
		errf(c, line_of(c, at), "'source.username' has no use with a file:// "
		    "url");
	else
		(void)get_str(c, g, "jobs.*.source.username", false, &s->username);
	at = member(g, "password");
	if (at != NULL && local)
		errf(c, line_of(c, at), "'source.password' has no use with a file:// "
		    "url");
	else if (at != NULL && (t = get_tmpl(c, g, "jobs.*.source.password", false,
	    NULL, TMPL_HEADER, TV_SECRET | TV_ENV)) != NULL) {
		/* Rendered once, now: only secrets and environment values. */
		buf_init(&b);
		if (tmpl_render(t, &v, false, &b, &err) != 0) {
			errf(c, line_of(c, at), "source.password: %s", err);
			free(err);
		} else {
			s->password = xstrdup(b.data != NULL ? b.data : "");
			/* a literal password too; and as "Authorization: Basic" carries it */
			redact_add_secret(s->password);
			redact_learn_basic(s->username != NULL ? s->username : "",
			    s->password);
		}
		if (b.data != NULL)
			explicit_bzero(b.data, b.len);
		buf_free(&b);
		tmpl_free(t);
	}

	/* libcurl's options: one whole transfer, never retried within a run. */
	(void)get_dur(c, g, "jobs.*.source.timeout", &file_timeout, &s->http.timeout_ms);
	s->http.retries = 0;
	if (member(g, "max_bytes") == NULL)
		s->http.max_bytes = 0;
	else
		(void)get_int(c, g, "jobs.*.source.max_bytes", &no_limit,
		    &s->http.max_bytes);
	(void)get_bool(c, g, "jobs.*.source.tls_verify", &d->tls_verify,
	    &s->http.tls_verify);
	(void)get_str(c, g, "jobs.*.source.ca_file", false, &s->http.ca_file);
}

static void
parse_source(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*g = group(job, "source");
	struct source_conf	*s = &j->src;
	char			*str;
	int			 bad = 0;

	if (g == NULL) {
		if (member(job, "source") == NULL)
			missing(c, job, "jobs.*.source", NULL);
		return;
	}
	s->line = line_of(c, g);
	if (get_str(c, g, "jobs.*.source.type", false, &str) != 0)
		return;
	if (strcmp(str, "http") == 0)
		s->type = CONN_HTTP;
	else if (strcmp(str, "postgresql") == 0)
		s->type = CONN_POSTGRESQL;
	else if (strcmp(str, "file") == 0)
		s->type = CONN_FILE;
	else {
		errf(c, line_of(c, member(g, "type")), "unknown source type '%s' "
		    "(expected http, postgresql or file)", str);
		s->type = CONN_HTTP;
		bad = 1;
	}
	if (!bad)
		check_conn_keys(c, g, "jobs.*.source", s->type, str, "source");
	free(str);
	if (bad)
		return;
	if (s->type == CONN_HTTP)
		parse_source_http(c, g, j);
	else if (s->type == CONN_POSTGRESQL)
		parse_source_pg(c, g, j);
	else
		parse_source_file(c, g, j);
}

/*
 * destination.delete of an HTTP destination: the request that deletes a record
 * that a complete snapshot no longer has (strategy capture with capture.deletes).
 * It is rendered with {{key}} only: a deleted record no longer exists.
 */
static void
parse_delete_http(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	config_setting_t	*dl = group(g, "delete"), *at;
	struct dest_conf	*d = &j->dst;
	size_t			 i;

	if (member(g, "delete") != NULL && !is_capture(c, j)) {
		if (c->strat_ok)
			errf(c, line_of(c, member(g, "delete")), "destination.delete is "
			    "used only by strategy 'capture' (with capture.deletes)");
		return;
	}
	if (!is_capture(c, j))
		return;
	if (dl == NULL || member(dl, "url") == NULL) {
		if (j->capture.deletes && (member(g, "delete") == NULL || dl != NULL))
			errf(c, line_of(c, dl != NULL ? dl : g), "capture.deletes needs "
			    "destination.delete.url: the request that deletes a record");
		else if (dl != NULL)
			missing(c, dl, "jobs.*.destination.delete.url", NULL);
		return;
	}
	d->has_delete = true;
	if (get_str(c, dl, "jobs.*.destination.delete.method", false,
	    &d->delete_method) == 0)
		check_method(c, dl, "destination.delete.method", d->delete_method);
	/* Compiled with the delivery's placeholders to name {{record}} clearly. */
	at = member(dl, "url");
	d->delete_url = get_tmpl(c, dl, "jobs.*.destination.delete.url", true, NULL,
	    TMPL_URL, TV_WRITE);
	check_http_url(c, dl, "url", "destination.delete.url", d->delete_url, NULL);
	if (d->delete_url != NULL && (tmpl_uses(d->delete_url) & ~(TV_KEY |
	    TV_SECRET | TV_ENV)) != 0) {
		errf(c, line_of(c, at), "destination.delete.url: {{record}} has no "
		    "value here: a deleted record no longer exists (use {{key}})");
		tmpl_free(d->delete_url);
		d->delete_url = NULL;
	}
	/* The destination's headers go with the delete request too. */
	for (i = 0; j->capture.deletes && i < d->nheaders; i++) {
		if (tmpl_uses(d->headers[i]) & TV_RECORD)
			errf(c, line_of(c, member(g, "headers")), "destination.headers"
			    "[%zu]: {{record}} has no value in the delete request "
			    "(capture.deletes), which sends these headers too", i);
	}
}

static void
parse_dest_http(struct ctx *c, config_setting_t *g, struct job_conf *j)
{
	config_setting_t	*cr = group(g, "create"), *b;
	struct dest_conf	*d = &j->dst;
	const char		*body;

	if (get_str(c, g, "jobs.*.destination.method", false, &d->method) == 0)
		check_method(c, g, "destination.method", d->method);
	d->url = get_tmpl(c, g, "jobs.*.destination.url", true, NULL, TMPL_URL,
	    TV_WRITE);
	check_http_url(c, g, "url", "destination.url", d->url, NULL);
	b = member(g, "body");
	body = b != NULL ? config_setting_get_string(b) : "{{record}}";
	if (body != NULL && *body != '\0')
		d->body = get_tmpl(c, g, "jobs.*.destination.body", false, NULL,
		    TMPL_BODY, TV_WRITE);
	get_headers(c, g, "jobs.*.destination.headers", TV_WRITE, &d->headers,
	    &d->nheaders);
	if (cr != NULL) {
		d->has_create = true;
		if (get_str(c, cr, "jobs.*.destination.create.method", false,
		    &d->create_method) == 0)
			check_method(c, cr, "destination.create.method",
			    d->create_method);
		d->create_url = get_tmpl(c, cr, "jobs.*.destination.create.url", true,
		    NULL, TMPL_URL, TV_WRITE);
		check_http_url(c, cr, "url", "destination.create.url", d->create_url, NULL);
		b = member(cr, "body");
		if (b == NULL && body != NULL && *body != '\0')
			d->create_body = compile(c, g, "destination.create.body", body,
			    TMPL_BODY, TV_WRITE);
		else if (b != NULL && config_setting_get_string(b) != NULL &&
		    *config_setting_get_string(b) != '\0')
			d->create_body = get_tmpl(c, cr,
			    "jobs.*.destination.create.body", false, NULL, TMPL_BODY,
			    TV_WRITE);
	}
	(void)get_int32(c, g, "jobs.*.destination.concurrency", NULL,
	    &d->concurrency);
	parse_http_opts(c, g, "jobs.*.destination", &d->http);
	parse_delete_http(c, g, j);
}

/* The first column mapped from a record field, or d->ncolumns. */
static size_t
column_of_field(const struct dest_conf *d, const char *field)
{
	size_t	i;

	for (i = 0; i < d->ncolumns; i++) {
		if (strcmp(d->columns[i].field, field) == 0)
			break;
	}
	return i;
}

/*
 * A PostgreSQL destination addresses a row (the upsert's conflict target, a deletion) by
 * the columns mapped from the job's key fields, and nothing else: every key field must be
 * mapped to a column, and every key column must be mapped from a key field. Otherwise an
 * upsert would merge rows of different records and a deletion would remove another row.
 * Sets d->key_fields (per key column, the key field it carries).
 */
static void
check_key_columns(struct ctx *c, config_setting_t *at, bool given, struct dest_conf *d,
    const struct job_conf *j)
{
	size_t	i, k, f;
	bool	covered;

	if (d->ncolumns == 0 || j->nkey == 0)
		return;
	d->key_fields = xcalloc(d->nkey_columns + 1, sizeof *d->key_fields);
	for (k = 0; k < d->nkey_columns; k++) {
		for (i = 0; i < d->ncolumns; i++) {
			if (strcmp(d->columns[i].column, d->key_columns[k]) == 0)
				break;
		}
		if (i == d->ncolumns) {
			errf(c, line_of(c, at), "'destination.key_columns': '%s' is not in "
			    "destination.columns", d->key_columns[k]);
			continue;
		}
		for (f = 0; f < j->nkey; f++) {
			if (strcmp(d->columns[i].field, j->key[f]) == 0)
				break;
		}
		if (f == j->nkey)
			errf(c, line_of(c, at), "'destination.key_columns': column '%s' is "
			    "mapped from '%s', which is not a key field (key: %s%s): a row "
			    "is upserted and deleted by the columns mapped from the key",
			    d->key_columns[k], d->columns[i].field, j->key[0],
			    j->nkey > 1 ? ", ..." : "");
		else
			d->key_fields[k] = f;
	}
	for (f = 0; f < j->nkey; f++) {
		covered = false;
		for (k = 0; k < d->nkey_columns && d->key_fields != NULL; k++) {
			i = 0;
			while (i < d->ncolumns && strcmp(d->columns[i].column,
			    d->key_columns[k]) != 0)
				i++;
			if (i < d->ncolumns && strcmp(d->columns[i].field, j->key[f]) == 0)
				covered = true;
		}
		if (covered)
			continue;
		if (column_of_field(d, j->key[f]) == d->ncolumns)
			errf(c, line_of(c, at), "no column in destination.columns is mapped "
			    "from the key field '%s': a row is upserted and deleted by the "
			    "columns mapped from the key; map it (column = \"%s\";)",
			    j->key[f], j->key[f]);
		else if (given)
			errf(c, line_of(c, at), "'destination.key_columns' lacks column '%s', "
			    "mapped from the key field '%s': a row is upserted and deleted by "
			    "all the columns mapped from the key",
			    d->columns[column_of_field(d, j->key[f])].column, j->key[f]);
	}
}

/* A CSV file's fields are flat strings: a dotted path into one can never match. */
static void
csv_flat(struct ctx *c, int line, const struct job_conf *j, const char *key,
    const char *path)
{
	if (j->src.type == CONN_FILE && j->src.file_format == FILE_CSV && path != NULL &&
	    strchr(path, '.') != NULL)
		errf(c, line, "'%s': '%s' is a dotted path, but the source is a CSV file, whose "
		    "fields are flat strings (a path into one never matches): name a header "
		    "field", key, path);
}

/* csv_flat for each {{record.PATH}} of template t, set at g's member name. */
static void
csv_flat_tmpl(struct ctx *c, config_setting_t *g, const char *name, const struct job_conf *j,
    const char *key, const struct tmpl *t)
{
	const char	*path;
	size_t		 it = 0;

	while (t != NULL && (path = tmpl_record_path(t, &it)) != NULL)
		csv_flat(c, line_of(c, member(g, name)), j, key, path);
}

static void
parse_dest_pg(struct ctx *c, config_setting_t *g, struct dest_conf *d,
    const struct job_conf *j)
{
	config_setting_t	*cols = group(g, "columns"), *e, *kc;
	size_t			 i, k;
	int			 n;

	if (get_str(c, g, "jobs.*.destination.conninfo", true, &d->conninfo) == 0)
		check_conninfo(c, g, "destination.conninfo", d->conninfo);
	(void)get_dur(c, g, "jobs.*.destination.timeout", &c->d.src.http.timeout_ms,
	    &d->http.timeout_ms);	/* statement_timeout, lock_timeout */
	if (get_str(c, g, "jobs.*.destination.table", true, &d->table) == 0 &&
	    !is_table(d->table))
		errf(c, line_of(c, member(g, "table")), "'destination.table': '%s' is "
		    "not a plain name or schema.name", d->table);
	if (cols == NULL)
		missing(c, g, "jobs.*.destination.columns", "(column = \"record.path\" "
		    "for every column written)");
	else if (config_setting_is_group(cols)) {
		n = config_setting_length(cols);
		if (n == 0)
			errf(c, line_of(c, cols), "'destination.columns' is empty");
		d->columns = xcalloc((size_t)n + 1, sizeof *d->columns);
		for (i = 0; i < (size_t)n; i++) {
			e = config_setting_get_elem(cols, (unsigned)i);
			if (config_setting_type(e) != CONFIG_TYPE_STRING)
				continue;
			if (!is_ident(config_setting_name(e), false))
				errf(c, line_of(c, e), "'destination.columns': '%s' is "
				    "not a plain column name", config_setting_name(e));
			d->columns[d->ncolumns].column = xstrdup(config_setting_name(e));
			d->columns[d->ncolumns++].field =
			    xstrdup(config_setting_get_string(e));
			csv_flat(c, line_of(c, e), j, "destination.columns",
			    config_setting_get_string(e));
		}
	}
	kc = member(g, "key_columns");
	if (kc != NULL) {
		get_strlist(kc, &d->key_columns, &d->nkey_columns);
		if (d->nkey_columns == 0)
			errf(c, line_of(c, kc), "'destination.key_columns' is empty");
	} else if (cols != NULL && d->ncolumns > 0) {
		/* The default: the first column mapped from each key field, in key order. */
		d->key_columns = xcalloc(j->nkey + 1, sizeof *d->key_columns);
		for (k = 0; k < j->nkey; k++) {
			if ((i = column_of_field(d, j->key[k])) < d->ncolumns)
				d->key_columns[d->nkey_columns++] =
				    xstrdup(d->columns[i].column);
		}
	}
	check_key_columns(c, kc != NULL ? kc : cols, kc != NULL, d, j);
}

static void
parse_dest(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*g = group(job, "destination");
	struct dest_conf	*d = &j->dst;
	char			*type;
	int			 bad = 0;

	if (g == NULL) {
		if (member(job, "destination") == NULL)
			missing(c, job, "jobs.*.destination", NULL);
		return;
	}
	d->line = line_of(c, g);
	if (get_str(c, g, "jobs.*.destination.type", false, &type) != 0)
		return;
	if (strcmp(type, "http") == 0)
		d->type = CONN_HTTP;
	else if (strcmp(type, "postgresql") == 0)
		d->type = CONN_POSTGRESQL;
	else {
		if (strcmp(type, "file") == 0)
			errf(c, line_of(c, member(g, "type")), "'file' is a source "
			    "type only; a destination is http or postgresql");
		else
			errf(c, line_of(c, member(g, "type")), "unknown destination "
			    "type '%s' (expected http or postgresql)", type);
		bad = 1;
	}
	if (bad) {
		free(type);
		return;
	}
	check_conn_keys(c, g, "jobs.*.destination", d->type, type, "destination");
	free(type);
	if (d->type == CONN_HTTP)
		parse_dest_http(c, g, j);
	else
		parse_dest_pg(c, g, d, j);
}

static void
parse_modified(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*g = group(job, "modified");
	struct modified_conf	*m = &j->modified;
	char			*f;

	if (!c->strat_ok || j->strategy != STRAT_MODIFIED)
		return;
	if (g == NULL)
		errf(c, line_of(c, job), "missing required key 'modified.field' (the "
		    "record's last-modified field) for strategy 'modified'");
	else
		(void)get_str(c, g, "jobs.*.modified.field", true, &m->field);
	if (get_str(c, g, "jobs.*.modified.format", false, &f) == 0) {
		if (ts_format_parse(f, &m->format) != 0)
			errf(c, line_of(c, member(g, "format")), "'modified.format': "
			    "unknown timestamp format '%s' (expected rfc3339, epoch or "
			    "epoch_ms)", f);
		free(f);
	}
	(void)get_bool(c, g, "jobs.*.modified.sorted", NULL, &m->sorted);
	(void)get_dur(c, g, "jobs.*.modified.lookback", NULL, &m->lookback_ms);
	(void)get_dur(c, g, "jobs.*.modified.settle", NULL, &m->settle_ms);
	(void)get_dur(c, g, "jobs.*.modified.max_future", NULL, &m->max_future_ms);
}

/* The flag group, and the groups of one strategy used with another. */
static void
parse_flag(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	config_setting_t	*g = group(job, "flag");

	if (!c->strat_ok)
		return;
	if (j->strategy == STRAT_FLAG && member(job, "modified") != NULL)
		errf(c, line_of(c, member(job, "modified")), "'modified' is used only "
		    "by strategy 'modified' (strategy 'flag' reads what the source "
		    "reports pending)");
	if (j->strategy == STRAT_CAPTURE && member(job, "modified") != NULL)
		errf(c, line_of(c, member(job, "modified")), "'modified' is used only "
		    "by strategy 'modified' (strategy 'capture' reads every record "
		    "and compares it with the hash stored for its key)");
	if (j->strategy != STRAT_FLAG) {
		if (member(job, "flag") != NULL)
			errf(c, line_of(c, member(job, "flag")), "'flag' is used only "
			    "by strategy 'flag'");
		return;
	}
	if (get_str(c, g, "jobs.*.flag.version", false, &j->flag.version) == 0 &&
	    j->flag.version != NULL && *j->flag.version == '\0') {
		errf(c, line_of(c, member(g, "version")), "'flag.version' is empty "
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
	config_setting_t	*s = member(g, leaf(path));
	size_t			 i, k;

	get_strlist(s, v, n);
	if (s == NULL || !is_strlist(s))
		return;
	if (*n == 0)
		errf(c, line_of(c, s), "'%s' is empty (leave it out%s)", dname(path),
		    paths ? " to hash the whole record" : "");
	for (i = 0; i < *n; i++) {
		if (*(*v)[i] == '\0') {
			errf(c, line_of(c, s), "'%s' must not contain an empty name",
			    dname(path));
			continue;
		}
		if (!paths && strchr((*v)[i], '.') != NULL)
			errf(c, line_of(c, s), "'%s': '%s' is a path; exclude takes "
			    "top-level field names (list the fields to keep in "
			    "capture.fields instead)", dname(path), (*v)[i]);
		for (k = 0; k < i; k++) {
			if (strcmp((*v)[k], (*v)[i]) == 0) {
				errf(c, line_of(c, s), "'%s': '%s' is given twice",
				    dname(path), (*v)[i]);
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
	config_setting_t	*g = group(job, "capture");
	struct capture_conf	*cc = &j->capture;

	if (!c->strat_ok)
		return;
	if (j->strategy != STRAT_CAPTURE) {
		if (member(job, "capture") != NULL)
			errf(c, line_of(c, member(job, "capture")), "'capture' is used "
			    "only by strategy 'capture'");
		return;
	}
	get_names(c, g, "jobs.*.capture.fields", true, &cc->fields, &cc->nfields);
	get_names(c, g, "jobs.*.capture.exclude", false, &cc->exclude,
	    &cc->nexclude);
	(void)get_bool(c, g, "jobs.*.capture.deletes", NULL, &cc->deletes);
	(void)get_ratio(c, g, "jobs.*.capture.max_delete_ratio",
	    &cc->max_delete_ratio);
	(void)get_int(c, g, "jobs.*.capture.min_records", NULL, &cc->min_records);
}

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
fingerprint(struct ctx *c, config_setting_t *root, config_setting_t *job,
    struct job_conf *j)
{
	config_setting_t	*d = group(root, "defaults");
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
identity(struct job_conf *j)
{
	static const char *const strat[] = { "flag", "modified", "capture" };
	json_t *def = json_object(), *key = json_array();
	struct buf b;
	XXH128_hash_t h;
	char *text;

	json_object_set_new(def, "strategy", json_string(strat[j->strategy]));
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

/* A job's name: present, well formed and unique. */
static void
parse_name(struct ctx *c, config_setting_t *job, struct job_conf *j)
{
	const char	*p;
	size_t		 i;

	if (get_str(c, job, "jobs.*.name", false, &j->name) != 0)
		return;
	for (p = j->name; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && strchr("_.-", *p) == NULL)
			break;
	}
	if (*j->name == '\0' || *p != '\0' || strlen(j->name) > 64)
		errf(c, line_of(c, member(job, "name")), "job name '%s' must be 1 to 64 "
		    "letters, digits, '_', '.' or '-'", j->name);
	for (i = 0; i < c->cfg->njobs; i++) {
		if (c->cfg->jobs[i].name != NULL &&
		    strcmp(c->cfg->jobs[i].name, j->name) == 0) {
			errf(c, line_of(c, member(job, "name")), "duplicate job name "
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
		errf(c, line_of(c, at), "'%s' names %s, which is %s, not a regular file",
		    key, path, file_kind(st.st_mode));
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

	j->line = c->line = line_of(c, job);
	c->job = job;
	c->strat_ok = false;
	parse_name(c, job, j);
	if (get_str(c, job, "jobs.*.strategy", false, &s) == 0) {
		if (strcmp(s, "modified") == 0 || strcmp(s, "flag") == 0 ||
		    strcmp(s, "capture") == 0)
			c->strat_ok = true;
		else
			errf(c, line_of(c, member(job, "strategy")), "unknown strategy "
			    "'%s' (expected modified, flag or capture)", s);
		j->strategy = strcmp(s, "flag") == 0 ? STRAT_FLAG :
		    strcmp(s, "capture") == 0 ? STRAT_CAPTURE : STRAT_MODIFIED;
		free(s);
	}
	if ((k = member(job, "key")) == NULL)
		missing(c, job, "jobs.*.key", "(the record field that identifies a "
		    "record)");
	else if (config_setting_type(k) == CONFIG_TYPE_STRING) {
		j->key = xcalloc(2, sizeof *j->key);
		j->key[0] = xstrdup(config_setting_get_string(k));
		j->nkey = 1;
	} else
		get_strlist(k, &j->key, &j->nkey);
	for (i = 0; k != NULL && i < j->nkey; i++) {
		if (*j->key[i] == '\0')
			errf(c, line_of(c, k), "'key' must not contain an empty field");
	}
	if (k != NULL && is_strlist(k) && j->nkey == 0)
		errf(c, line_of(c, k), "'key' must name at least one field");
	(void)get_dur(c, job, "jobs.*.interval", &d->interval_ms, &j->interval_ms);
	jit = c->d_jitter >= 0 ? c->d_jitter : j->interval_ms / 10;
	(void)get_dur(c, job, "jobs.*.jitter", &jit, &j->jitter_ms);
	(void)get_int32(c, job, "jobs.*.batch", &d->batch, &j->batch);
	(void)get_int32(c, job, "jobs.*.max_attempts", &d->max_attempts,
	    &j->max_attempts);
	(void)get_dur(c, job, "jobs.*.retry_backoff", &d->retry_backoff_ms,
	    &j->retry_backoff_ms);
	(void)get_dur(c, job, "jobs.*.retry_backoff_max", &d->retry_backoff_max_ms,
	    &j->retry_backoff_max_ms);
	if (j->retry_backoff_max_ms < j->retry_backoff_ms)
		errf(c, j->line, "'retry_backoff_max' must not be shorter than "
		    "'retry_backoff'");
	(void)get_dur(c, job, "jobs.*.run_timeout", &d->timeout_ms, &j->timeout_ms);
	(void)get_bool(c, job, "jobs.*.enabled", NULL, &j->enabled);
	(void)get_int(c, job, "jobs.*.max_records", &d->max_records, &j->max_records);
	parse_modified(c, job, j);
	parse_flag(c, job, j);
	parse_capture(c, job, j);
	parse_source(c, job, j);
	parse_dest(c, job, j);
	regular_file(c, member(member(job, "source"), "ca_file"), "source.ca_file",
	    j->src.http.ca_file);
	regular_file(c, member(member(job, "source"), "ssh_key"), "source.ssh_key",
	    j->src.ssh_key);
	regular_file(c, member(member(job, "destination"), "ca_file"), "destination.ca_file",
	    j->dst.http.ca_file);
	for (size_t ik = 0; ik < j->nkey; ik++)
		csv_flat(c, line_of(c, member(job, "key")), j, "key", j->key[ik]);
	dg = member(job, "destination");
	csv_flat_tmpl(c, dg, "url", j, "destination.url", j->dst.url);
	csv_flat_tmpl(c, dg, "body", j, "destination.body", j->dst.body);
	for (size_t ih = 0; ih < j->dst.nheaders; ih++)
		csv_flat_tmpl(c, dg, "headers", j, "destination.headers", j->dst.headers[ih]);
	csv_flat_tmpl(c, member(dg, "create"), "url", j, "destination.create.url",
	    j->dst.create_url);
	csv_flat_tmpl(c, member(dg, "create"), "body", j, "destination.create.body",
	    j->dst.create_body);
	fingerprint(c, root, job, j);
	identity(j);
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

	if (!redact_literal_learnt() || stat(path, &st) == -1 || (st.st_mode & S_IROTH) == 0)
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
	walk(&c, config_root_setting(&lc), "", "");
	parse_daemon(&c, config_root_setting(&lc));
	parse_state(&c, config_root_setting(&lc));
	parse_defaults(&c, config_root_setting(&lc));
	parse_jobs(&c, config_root_setting(&lc));
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

	for (i = 0; i < NELEM(keys); i++) {
		kd = &keys[i];
		fprintf(f, "%s\t%s\t%s\t%s\t%s\n", kd->path, types[kd->type],
		    kd->def == NULL ? ((kd->flags & F_REQ) ? "required" : "-") :
		    *kd->def == '\0' ? "\"\"" : kd->def,
		    (kd->flags & F_NORELOAD) ? "restart" : "reload", kd->doc);
	}
}
