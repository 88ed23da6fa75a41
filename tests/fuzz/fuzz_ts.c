/*
 * fuzz_ts.c - libFuzzer harness for ts_parse (and ts_format on what it accepts).
 * Input: one control byte (the format), then the text. A timestamp in years
 * 0001..9999 formatted as RFC 3339 must parse back to the same instant.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record/ts.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

#define YEAR1		(-62135596800LL)	/* 0001-01-01T00:00:00Z */
#define YEAR10000	253402300800LL		/* 10000-01-01T00:00:00Z */

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ts	 t, u;
	char		*s, *f;

	if (size < 1)
		return 0;
	s = xstrndup((const char *)data + 1, size - 1);
	if (ts_parse(s, (enum ts_format)(data[0] % 3), &t) == 0) {
		if (t.nsec < 0 || t.nsec > 999999999)
			__builtin_trap();
		if (t.sec >= YEAR1 && t.sec < YEAR10000) {
			f = ts_format(t, TS_RFC3339);
			if (ts_parse(f, TS_RFC3339, &u) != 0 || ts_cmp(t, u) != 0)
				__builtin_trap();
			free(f);
		}
		(void)ts_ns(t);
	}
	free(s);
	return 0;
}
