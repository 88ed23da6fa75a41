/*
 * fuzz_http.c - libFuzzer harness for what onesyncd reads from an HTTP answer: header
 * lines (Link rel="next", Retry-After in seconds or as an HTTP date, Date, Location,
 * Content-Encoding), the JSON body (the records at source.records, the next page at
 * page.next) and the Date header as the reference clock of modified.max_future.
 *
 * The code under test is static in src/io/http_req.c, src/conn/source_http.c and
 * src/run/modified_page.c, and runs inside libcurl's callbacks. Rather than export it
 * for a test, the harness includes those files and calls the very functions the daemon
 * calls (http_req_header_cb, answered, future_limit); their objects in libonesync.a are then not
 * linked. Nothing is sent: no event loop, no libcurl transfer.
 *
 * Input: one selector byte, then the data.
 *   0: header lines, one per '\n' of the data, as libcurl hands them to http_req_header_cb, for a
 *      request to REQ_URL; then the Link and Retry-After parsers on the whole data.
 *   1: a JSON answer. Byte 1: bit 0 the answer to a fetch by key (one record), bit 1 page
 *      style "next" (else "link"), bits 2-3 the HTTP status class. The data is
 *      "RECORDS\nNEXT\nBODY": the source.records path, the page.next path, the body.
 *   2: a Date header value, as the reference time of a modified job (HTTP source; with
 *      byte 1 odd, a PostgreSQL source's now() in RFC 3339).
 */
#include "../../src/io/http_req.c"
#include "../../src/conn/source_http.c"
#include "../../src/run/modified_page.c"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define REQ_URL	"https://api.example.com/v1/items?page=2&q=a%20b"

static void
fz_headers(const char *data, size_t size)
{
	struct http_call	 c;
	const char		*p = data, *nl, *end = data + size;
	char			*s, *next;
	long			 ms;

	memset(&c, 0, sizeof c);
	c.url = xstrdup(REQ_URL);
	c.retry_after_ms = -1;
	http_req_header_cb((char *)"HTTP/1.1 200 OK\r\n", 1, 17, &c);
	while (p < end) {
		nl = memchr(p, '\n', (size_t)(end - p));
		nl = nl != NULL ? nl + 1 : end;
		/* libcurl hands a copy that is not NUL-terminated: so does the harness. */
		s = xmalloc((size_t)(nl - p));
		memcpy(s, p, (size_t)(nl - p));
		if (http_req_header_cb(s, 1, (size_t)(nl - p), &c) != (size_t)(nl - p))
			__builtin_trap();
		free(s);
		p = nl;
	}
	if (c.retry_after_ms < -1 || c.retry_after_ms > HTTP_RETRY_AFTER_CAP_MS)
		__builtin_trap();
	if (c.link_next != NULL)
		(void)strlen(c.link_next);
	free(c.url);
	free(c.date);
	free(c.location);
	free(c.link_next);
	free(c.encoding);

	/* The value parsers alone, on the whole data (NUL-terminated: http_req_header_cb's copy). */
	s = xstrndup(data, size);
	ms = parse_retry_after(s);
	if (ms < -1 || ms > HTTP_RETRY_AFTER_CAP_MS)
		__builtin_trap();
	if ((next = link_find_next(s)) != NULL) {
		if (strlen(next) >= strlen(s))
			__builtin_trap();
		free(next);
	}
	free(s);
}

struct fz_answer {
	bool	 called;
	int	 rc;
};

static void
fz_answered(void *arg, int rc, struct source_page *page, const char *err)
{
	struct fz_answer	*a = arg;

	if (a->called)
		__builtin_trap();
	a->called = true;
	a->rc = rc;
	if (rc == 0) {
		if (page == NULL || err != NULL || !json_is_array(page->records) ||
		    page->log_url == NULL)
			__builtin_trap();
		if (page->next_url != NULL && page->cursor != NULL)
			__builtin_trap();
		source_page_free(page);
	} else if (page != NULL || err == NULL || *err == '\0')
		__builtin_trap();
}

static void
fz_answer(uint8_t flags, const char *data, size_t size)
{
	static const long	 status[] = { 200, 204, 404, 503 };
	struct job_conf		 job;
	struct http_response	 resp;
	struct source_req	*sr;
	struct fz_answer	 a = { false, 0 };
	const char		*end = data + size, *n1, *n2;
	char			*records, *next;

	if ((n1 = memchr(data, '\n', size)) == NULL ||
	    (n2 = memchr(n1 + 1, '\n', (size_t)(end - n1 - 1))) == NULL)
		return;
	records = xstrndup(data, (size_t)(n1 - data));
	next = xstrndup(n1 + 1, (size_t)(n2 - n1 - 1));

	memset(&job, 0, sizeof job);
	job.name = (char *)"fuzz";
	job.src.type = CONN_HTTP;
	job.src.records = records;
	job.src.page_next = next;
	job.src.page_style = (flags & 2) ? PAGE_NEXT : PAGE_LINK;

	memset(&resp, 0, sizeof resp);
	resp.status = status[(flags >> 2) & 3];
	resp.len = (size_t)(end - n2 - 1);
	resp.body = xstrndup(n2 + 1, resp.len);	/* http_req.c's bodies are NUL-terminated */
	resp.link_next = (char *)"https://api.example.com/v1/items?page=3";
	resp.date = (char *)"Tue, 15 Nov 1994 08:12:31 GMT";
	resp.attempts = 1;

	sr = xcalloc(1, sizeof *sr);
	sr->kind = CONN_HTTP;
	sr->job = &job;
	sr->log_url = xstrdup(REQ_URL);
	sr->single = flags & 1;
	sr->cb = fz_answered;
	sr->arg = &a;
	answered(&resp, sr);	/* frees sr */
	if (!a.called)
		__builtin_trap();
	free(resp.body);
	free(records);
	free(next);
}

static void
fz_date(uint8_t flags, const char *data, size_t size)
{
	struct job_conf		 job;
	struct source_page	 page;
	struct run		 r;
	struct modified_state	 md;
	char			*ref = NULL;
	int64_t			 limit;

	memset(&job, 0, sizeof job);
	job.src.type = (flags & 1) ? CONN_POSTGRESQL : CONN_HTTP;
	job.modified.max_future_ms = 3600 * 1000;
	memset(&r, 0, sizeof r);
	memset(&md, 0, sizeof md);
	r.job = &job;
	r.md = &md;
	memset(&page, 0, sizeof page);
	page.date = xstrndup(data, size);
	limit = future_limit(&r, &page, &ref);
	if (ref == NULL || limit <= local_ns())
		__builtin_trap();
	free(ref);
	free(page.date);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	switch (data[0] % 3) {
	case 0:
		fz_headers((const char *)data + 1, size - 1);
		break;
	case 1:
		fz_answer(data[1], (const char *)data + 2, size - 2);
		break;
	case 2:
		fz_date(data[1], (const char *)data + 2, size - 2);
		break;
	}
	return 0;
}
