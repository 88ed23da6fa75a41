/* http_stream.h - streamed downloads through the multi driver (io/http.h). */
#ifndef ONESYNC_HTTP_STREAM_H
#define ONESYNC_HTTP_STREAM_H

#include "io/http.h"

/*
 * A streamed download (a file source) over file, ftp, ftps, sftp, http or https: the bytes
 * go to a callback as they arrive, nothing is kept, and the reader can pause the transfer.
 * No retries (a file read starts again from scratch on the next run).
 */
struct http_stream_req {
	const char	*url;
	const char	*log_url;	/* redacted URL for messages; NULL = redact_url(url) */
	const char	*username;	/* NULL = the URL's, if any */
	const char	*password;	/* never logged */
	const char	*ssh_key;	/* sftp: private key file (the public key is derived from it) */
	const char	*ssh_host_sha256;	/* sftp: pinned host key, base64 SHA256 (no "SHA256:") */
	long		 stall_ms;	/* fail after this long without a byte while not paused; 0 = 30 s */
	long		 connect_timeout_ms;	/* 0 = 10 s */
	long long	 max_bytes;	/* size limit of the whole file; 0 = none */
	bool		 tls_verify;	/* https, ftps */
	const char	*ca_file;
	const char	*auth;		/* http(s): a credential's name (io/http.h), or NULL */
	char *const	*allow_origins;	/* http(s): origins besides the URL's that a
					 * redirect may lead to (http_origin_allowed) */
	size_t		 nallow_origins;
	bool		 decode;	/* http(s): ask for a compressed transfer (leave false
					 * when the file itself is gzip); the bytes always come as
					 * sent: the reader decodes by http_stream_encoding */
};

/*
 * Bytes of a stream, in order. Return 0 to go on, 1 to pause after these bytes (they are
 * consumed; nothing more comes until http_stream_resume), -1 to stop the transfer (it ends
 * with an error). It runs inside libcurl: it must not start, cancel or finish other
 * requests; it may call http_stream_pause or http_cancel on its own call.
 */
typedef int (*http_data_cb)(void *arg, const char *data, size_t len);

/*
 * Start a stream. on_done runs once, at the end, never before this returns: resp->error is
 * "" when the whole file arrived, otherwise a text that names the (redacted) URL and what
 * failed; resp->status is the protocol's last answer code (HTTP status, FTP reply) or 0.
 * NULL and *err (caller frees) when it cannot start.
 */
struct http_call *http_stream(const struct http_stream_req *, http_data_cb on_data,
    http_cb on_done, void *arg, char **err);
void http_stream_pause(struct http_call *);
/*
 * The Content-Encoding of a stream's answer (http(s), once its first bytes arrived), or
 * NULL. libcurl never decodes: its decoder takes a gzip stream cut before the trailer for
 * a whole one, so the reader decodes with a decoder that checks the end (parse.c).
 * http_send.s answers are decoded by http_req.c the same way: a cut one is an error.
 */
const char *http_stream_encoding(const struct http_call *);
/* Go on from a later loop turn: no data arrives inside this call. */
void http_stream_resume(struct http_call *);


#endif
