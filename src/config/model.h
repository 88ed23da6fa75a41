/* model.h - the configuration as the daemon uses it: types, and how a strategy is spelt
 * (config/load.h reads it). */
#ifndef ONESYNC_MODEL_H
#define ONESYNC_MODEL_H

#include <regex.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>
#include "record/tmpl.h"
#include "record/ts.h"
#include "core/util.h"

enum strategy	{ STRAT_FLAG, STRAT_MODIFIED, STRAT_CAPTURE };
enum conn_type	{ CONN_HTTP, CONN_POSTGRESQL, CONN_FILE };
enum page_style	{ PAGE_NONE, PAGE_PAGE, PAGE_OFFSET, PAGE_LINK, PAGE_NEXT };

/* A strategy as the configuration spells it ("?" for a value outside the enum). */
static inline const char *
config_strategy_name(enum strategy s)
{
	switch (s) {
	case STRAT_FLAG:
		return "flag";
	case STRAT_MODIFIED:
		return "modified";
	case STRAT_CAPTURE:
		return "capture";
	}
	return "?";
}

struct query_param {
	char		*name;
	struct tmpl	*value;		/* TMPL_QUERY */
};

struct http_opts {
	int64_t		 timeout_ms;	/* whole request */
	int		 retries;	/* 408/429/5xx/transport retried this many times */
	int64_t		 max_bytes;	/* response size limit */
	bool		 tls_verify;
	char		*ca_file;	/* NULL = system store */
};

struct source_conf {
	enum conn_type	 type;
	/* http */
	struct tmpl	*url;		/* TMPL_URL, TV_READ */
	struct query_param *query;
	size_t		 nquery;
	struct tmpl	**headers;	/* TMPL_HEADER, "Name: value" */
	size_t		 nheaders;
	char		*records;	/* JSON path of the record array, "" = body */
	enum page_style	 page_style;
	int64_t		 page_first;	/* style page: first page number (default 1) */
	int64_t		 page_size;	/* {{limit}}; a shorter page ends the read */
	int64_t		 page_max_records; /* an answer's bound when {{limit}} is not sent */
	char		*page_next;	/* style next: JSON path of the next URL/token */
	bool		 page_stable;	/* style link/next: one stable order (capture.deletes) */
	struct tmpl	*fetch;		/* optional URL to re-fetch one record by {{key}} */
	/* http, file over http(s): where a next link or a redirect may lead */
	char		*origin;	/* source.url's, as url_origin writes it */
	char		**allow_origins;	/* more origins, same form */
	size_t		 nallow_origins;
	struct http_opts http;
	/* http, strategy flag: the marking request (TV_MARK) */
	bool		 has_mark;
	char		*mark_method;	/* default "PATCH" */
	struct tmpl	*mark_url;	/* TMPL_URL */
	struct tmpl	*mark_body;	/* TMPL_BODY; NULL = no body */
	struct tmpl	**mark_headers;	/* TMPL_HEADER */
	size_t		 mark_nheaders;
	/* postgresql */
	char		*conninfo;
	char		*table;		/* "name" or "schema.name" (a table or a view) */
	char		**columns;	/* columns to read; NULL = all ("*") */
	size_t		 ncolumns;
	char		*where;		/* extra SQL condition for every read, or NULL */
	char		*pending;	/* strategy flag: SQL condition of a pending row */
	struct mark_set {
		char		*column;
		struct tmpl	*value;	/* TMPL_TEXT, TV_MARK: sent as a text parameter */
	}		*mark_set;	/* strategy flag: UPDATE ... SET column = value */
	size_t		 nmark_set;
	/* file (strategy capture): a CSV, NDJSON or JSON-array snapshot */
	char		*file_url;	/* file://, ftp://, ftps://, sftp://, http(s):// */
	enum file_format { FILE_CSV, FILE_NDJSON, FILE_JSON } file_format;
	char		 delimiter;	/* CSV, default ',' */
	int		 gzip;		/* 1 yes, 0 no, -1 auto (by a .gz suffix) */
	char		*ssh_key;	/* sftp: private key file (ed25519) */
	char		*ssh_host_sha256;	/* sftp: pinned host key, base64 SHA256 */
	char		*username;	/* ftp/sftp user (or in the URL) */
	char		*password;	/* secret: from {{secret:NAME}} or {{env:NAME}}, never logged */
	/* http, file over http(s): the credential that sets Authorization (config/cred.c) */
	char		*auth;		/* source.auth: a credential's name, or NULL */
	char		*mark_auth;	/* source.mark.auth, or NULL (default: source.auth) */
	int		 line;
};

struct column_map {
	char	*column;	/* destination column */
	char	*field;		/* record path */
};

struct dest_conf {
	enum conn_type	 type;
	/* http */
	char		*method;
	struct tmpl	*url;		/* TMPL_URL, TV_WRITE */
	struct tmpl	*body;		/* TMPL_BODY, TV_WRITE; NULL = no body */
	struct tmpl	**headers;
	size_t		 nheaders;
	bool		 has_create;	/* request to send when the first answers 404 */
	char		*create_method;
	struct tmpl	*create_url;
	struct tmpl	*create_body;
	int		 concurrency;	/* requests in flight per job */
	struct http_opts http;
	/* postgresql */
	char		*conninfo;
	char		*table;		/* "name" or "schema.name" */
	struct column_map *columns;
	size_t		 ncolumns;
	char		**key_columns;	/* conflict target; default: columns mapped from the job key */
	size_t		*key_fields;	/* per key column: the job key field it is mapped from */
	size_t		 nkey_columns;
	/* http: the request that deletes a record (strategy capture with deletes) */
	bool		 has_delete;
	char		*delete_method;	/* default "DELETE" */
	struct tmpl	*delete_url;	/* TMPL_URL, TV_KEY */
	char		*auth;		/* destination.auth, or NULL */
	int		 line;
};

struct capture_conf {
	char		**fields;	/* only these fields make the canonical form (NULL = all) */
	size_t		 nfields;
	char		**exclude;	/* volatile fields left out of the canonical form */
	size_t		 nexclude;
	bool		 deletes;	/* delete at the destination what a complete snapshot lacks */
	double		 max_delete_ratio;	/* guard, default 0.1, of the records stored */
	int64_t		 min_records;	/* a snapshot with fewer records is incomplete; 0 = none */
};

struct flag_conf {
	char		*version;	/* record field compared when marking (compare-and-set), or NULL */
};

struct modified_conf {
	char		*field;		/* record path of the timestamp */
	enum ts_format	 format;
	bool		 sorted;	/* source answers sorted by (modified, key) ascending */
	int64_t		 lookback_ms;
	int64_t		 settle_ms;
	int64_t		 max_future_ms;	/* a later timestamp than source clock + this is refused; 0 = off */
};

struct job_conf {
	char		*name;
	int		 line;
	enum strategy	 strategy;
	char		**key;		/* key fields (record paths) */
	size_t		 nkey;
	int64_t		 interval_ms;
	int64_t		 jitter_ms;	/* default: interval/10 */
	int		 batch;		/* records per delivery batch */
	int		 max_attempts;	/* then dead-lettered */
	int64_t		 retry_backoff_ms;	/* first retry delay; doubles per attempt */
	int64_t		 retry_backoff_max_ms;
	int64_t		 timeout_ms;	/* whole run; 0 = none */
	bool		 enabled;
	int64_t		 max_records;	/* flag: pending records collected per run */
	struct modified_conf modified;
	struct flag_conf flag;
	struct capture_conf capture;
	struct source_conf src;
	struct dest_conf dst;
	char		*fingerprint;	/* hash of everything above; differs => job changed on reload */
	/* what its state means (strategy, key, source, destination, canonical form), no
	 * secrets: the definition as JSON text and its hash; see config/identity.c */
	char		*identity;
	char		*definition;
};

/* A shared API budget (config/budget.c): what it covers, its windows, what requests cost. */
struct budget_window {
	int64_t		 limit;		/* cost units per window */
	int64_t		 window_ms;
};

struct budget_cost {
	char		*method;	/* NULL = any method; upper case */
	char		*path;		/* the regular expression as written */
	regex_t		 re;		/* POSIX extended, REG_NOSUB, on the URL's path and query */
	int64_t		 cost;
};

struct budget_conf {
	char		*name;
	int		 line;
	char		**match;	/* URL prefixes, normalised by budget_url_norm */
	size_t		 nmatch;
	struct budget_window *rate;	/* sorted by window_ms ascending */
	size_t		 nrate;
	int		 concurrency;	/* requests in flight per instance; 0 = no limit */
	double		 reserve;	/* share of the longest window left to others */
	struct budget_cost *costs;
	size_t		 ncosts;
	int64_t		 park_after_ms;	/* a longer wait ends the run as throttled */
};

/* An OAuth2 credential (config/cred.c): how a token is asked for; the token is the
 * runtime's. */
enum cred_type { CRED_CLIENT_CREDENTIALS, CRED_REFRESH_TOKEN };
struct cred_conf {
	char		*name;
	int		 line;
	enum cred_type	 type;		/* "oauth2_client_credentials", "oauth2_refresh_token" */
	char		*token_url;	/* http(s), no userinfo, no placeholder */
	char		*client_id;	/* rendered at load ({{secret:}}, {{env:}} or plain); a secret */
	char		*client_secret;	/* rendered at load; a secret; NULL = none (public client) */
	char		*scope;		/* NULL = none */
	char		*audience;	/* NULL = none (sent as audience= when set) */
	char		*refresh_token;	/* refresh_token type: the first one, rendered; a secret */
	bool		 basic_auth;	/* client_auth = "basic" (default) or "body" */
	struct http_opts http;		/* timeout, retries, tls_verify, ca_file: as a source's http keys,
					 * from the credential's own keys or the defaults */
};

struct config {
	char		*path;
	struct {
		char	*conninfo;
		char	*schema;
		int	 connections;
		int64_t	 connect_timeout_ms;
		bool	 has_key;	/* state.encryption_key given */
		unsigned char key[32];	/* state.encryption_key: AES-256-GCM key; a secret */
	} state;
	struct {
		char	*instance;	/* "" = hostname:pid */
		int64_t	 lease_ms;
		int	 max_runs;
		char	*status_listen;	/* "" = off */
		char	*secrets_dir;	/* NULL = $CREDENTIALS_DIRECTORY */
		int64_t	 stop_timeout_ms;
	} daemon;
	struct job_conf	*jobs;
	size_t		 njobs;
	struct budget_conf *budgets;
	size_t		 nbudgets;
	struct cred_conf *creds;
	size_t		 ncreds;
};

#endif
