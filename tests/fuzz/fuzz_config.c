/*
 * fuzz_config.c - libFuzzer harness for the configuration loader (config_load, which is
 * what onesyncd -c, -t and a SIGHUP reload run). Input: the text of a configuration file.
 * The loader takes a path (libconfig reads the file, and names it in its messages), so
 * the text goes to a memory file opened by its /proc/self/fd path. Any text may be
 * refused, but with at least one message; an accepted one must free cleanly. Nothing is connected to: the loader checks, it does not open databases.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config/model.h"
#include "config/load.h"
#include "core/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *, size_t);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int		 fd = -1;
	static char		 path[64];
	struct config		*cfg = NULL;
	struct strlist		 errs = { NULL, 0 };
	size_t			 i;
	int			 rc;

	if (fd == -1) {
		/* No secrets or environment from the machine that runs the harness. */
		unsetenv("CREDENTIALS_DIRECTORY");
		if ((fd = memfd_create("fuzz.conf", 0)) == -1)
			abort();
		snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	rc = config_load(path, &cfg, &errs);
	if (rc == 0) {
		if (cfg == NULL || errs.n != 0)
			__builtin_trap();
		config_free(cfg);
	} else {
		if (rc != -1 || cfg != NULL || errs.n == 0)
			__builtin_trap();
		for (i = 0; i < errs.n; i++) {
			if (errs.v[i] == NULL || *errs.v[i] == '\0')
				__builtin_trap();
		}
	}
	strlist_free(&errs);
	return 0;
}
