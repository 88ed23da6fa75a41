/* fuzz_json_array.c - libFuzzer harness for the json array parser (see fuzz_parse.h). */
#include "fuzz_parse.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_parse(PARSE_JSON_ARRAY, data, size);
	return 0;
}
