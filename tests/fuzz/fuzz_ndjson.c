/* fuzz_ndjson.c - libFuzzer harness for the ndjson parser (see fuzz_parse.h). */
#include "fuzz_parse.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_parse(PARSE_NDJSON, data, size);
	return 0;
}
