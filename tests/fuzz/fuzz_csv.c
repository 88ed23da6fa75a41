/* fuzz_csv.c - libFuzzer harness for the csv parser (see fuzz_parse.h). */
#include "fuzz_parse.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fz_parse(PARSE_CSV, data, size);
	return 0;
}
