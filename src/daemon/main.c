/*
 * main.c - the command line of onesyncd: check the configuration (-t), run as a daemon,
 * or run jobs once (--once). Everything else lives in daemon.c (and the files it composes).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include "config/model.h"
#include "config/cred.h"
#include "config/load.h"
#include "daemon/daemon.h"
#include "core/log.h"

#define DEFAULT_CONFIG	SYSCONFDIR "/onesyncd/onesyncd.conf"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: onesyncd [-c FILE] [-t] [--once [JOB...]] [-v...] [--version] [--help]\n"
	    "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -t, --test         check the configuration, print 'configuration OK', exit\n"
	    "      --once [JOB..] run every job (or the named ones) once, then exit:\n"
	    "                     0 when every run completed, 1 when one failed,\n"
	    "                     75 when a job did not run (paused, disabled, its\n"
	    "                     lease held by another instance, or throttled by a\n"
	    "                     request budget)\n"
	    "  -v, --verbose      more detail in the log (repeat for more)\n"
	    "      --dump-keys    list every configuration key with type and default\n"
	    "      --version      print the version and exit\n"
	    "  -h, --help         this text\n"
	    "See onesyncd(8) and onesyncd.conf(5).\n");
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "once", no_argument, NULL, 'o' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "dump-keys", no_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG;
	bool test = false, once = false;
	int verbose = 0, ch;

	while ((ch = getopt_long(argc, argv, "c:tvh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			test = true;
			break;
		case 'o':
			once = true;
			break;
		case 'v':
			verbose++;
			break;
		case 'V':
			printf("onesyncd %s\n", PACKAGE_VERSION);
			return 0;
		case 'K':
			config_dump_keys(stdout);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind < argc && !once) {
		fprintf(stderr, "onesyncd: unexpected argument '%s' (job names go after --once)\n",
		    argv[optind]);
		usage(stderr);
		return EX_USAGE;
	}
	log_init(verbose, "onesyncd");
	if (test) {
		struct strlist errs = { 0 };
		struct config *cfg;
		char *warn;

		if (config_load(path, &cfg, &errs) != 0) {
			/* redacted by config_load() */
			for (size_t i = 0; i < errs.n; i++)
				fprintf(stderr, "%s\n", errs.v[i]);
			strlist_free(&errs);
			return EX_CONFIG;
		}
		config_creds_warnings(cfg, &errs);
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "warning: %s\n", errs.v[i]);
		strlist_free(&errs);
		config_free(cfg);
		if ((warn = config_exposed(path)) != NULL)
			fprintf(stderr, "warning: %s\n", warn);
		free(warn);
		printf("configuration OK\n");
		return 0;
	}
	return daemon_main(path, once, once && optind < argc ? argv + optind : NULL, verbose);
}
