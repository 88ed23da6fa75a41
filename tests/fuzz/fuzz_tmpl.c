/*
 * fuzz_tmpl.c - libFuzzer harness for tmpl_compile and tmpl_render. Input: one control
 * byte (place, allowed placeholders), then the template text. Secrets are looked up in
 * a directory that does not exist, so nothing is read from the disk.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record/tmpl.h"
#include "record/tmpl_compile.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned	 allow[] = { TV_READ, TV_WRITE, TV_MARK, ~0u };
	static json_t		*rec, *dest;
	struct tmpl_vals	 v = { 0 };
	struct tmpl		*t;
	struct buf		 out;
	enum tmpl_place		 place;
	char			*src, *err = NULL;
	int			 r;

	if (size < 1)
		return 0;
	if (rec == NULL) {
		rec = json_pack("{s:i, s:s, s:f, s:{s:[i,s,{s:b}]}, s:n, s:s#}", "id", 42,
		    "name", "Ann \"Bo\" / é", "price", 1.5, "a", "b", 7, "x\r\ny", "c", 1,
		    "nil", "nul", "a\0b", (size_t)3);
		dest = json_pack("{s:s, s:{s:i}}", "id", "d-1", "res", "n", 3);
	}
	place = (enum tmpl_place)(data[0] % 5);
	src = xstrndup((const char *)data + 1, size - 1);
	t = tmpl_compile(src, place, allow[(data[0] >> 3) & 3], "/nonexistent/secrets", &err);
	if (t == NULL) {
		if (err == NULL)
			__builtin_trap();
		free(err);
		free(src);
		return 0;
	}
	v.have = (data[0] & 0x80) ? ~0u : TV_KEY | TV_RECORD;
	v.watermark = "2024-05-01T12:00:00.5Z";
	v.page = 3;
	v.offset = 200;
	v.limit = 100;
	v.cursor = "c ur/s?or=&";
	v.key = "k/1 é";
	v.record = rec;
	v.dest = dest;
	for (int redact = 0; redact <= 1; redact++) {
		buf_init(&out);
		r = tmpl_render(t, &v, redact, &out, &err);
		if (r == -1 ? err == NULL : err != NULL)
			__builtin_trap();
		free(err);
		err = NULL;
		buf_free(&out);
	}
	(void)tmpl_uses(t);
	(void)tmpl_source(t);
	buf_init(&out);
	tmpl_digest(t, &out);
	buf_free(&out);
	tmpl_free(t);
	free(src);
	return 0;
}
