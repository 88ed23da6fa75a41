/*
 * main.c - onesyncctl, the admin tool: look at and steer the jobs of onesyncd through the
 * state database (doc/design.md §10.2). It reads the daemon's configuration file for
 * state.conninfo, state.schema and the job names, checks the command line against the
 * table of commands below, connects (conn.c) and runs the one command asked for: the
 * read-only ones are in show.c, those that change a job's state in steer.c. A command is
 * one entry of the table; its line of the usage text comes with it. Never talks to a
 * daemon but through the state database.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <libpq-fe.h>

#include "config/load.h"
#include "config/model.h"
#include "core/util.h"
#include "ctl/conn.h"
#include "ctl/ctl.h"
#include "ctl/budgets.h"
#include "ctl/creds.h"
#include "ctl/show.h"
#include "ctl/steer.h"

#define DEFAULT_CONFIG	SYSCONFDIR "/onesyncd/onesyncd.conf"

/* Every command, in the order of the usage text. */
static const struct ctl_cmd *const commands[] = {
	&ctl_show_jobs,
	&ctl_show_runs,
	&ctl_show_failures,
	&ctl_show_budgets,
	&ctl_creds,
	&ctl_steer_retry,
	&ctl_steer_reset,
	&ctl_steer_run,
	&ctl_steer_pause,
	&ctl_steer_resume,
};

/* The commands' lines: the synopsis in a column of 22, the help beside it or below. */
static void
usage_commands(FILE *f)
{
	const struct ctl_cmd *c;
	const char *h, *nl;

	for (size_t i = 0; i < NELEM(commands); i++) {
		c = commands[i];
		if (c->synopsis == NULL)
			continue;
		if (strlen(c->synopsis) > 22)
			fprintf(f, "  %s\n%26s", c->synopsis, "");
		else
			fprintf(f, "  %-22s  ", c->synopsis);
		for (h = c->help; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
			fprintf(f, "%.*s\n%26s", (int)(nl - h), h, "");
		fprintf(f, "%s\n", h);
	}
}

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: onesyncctl [-c FILE] [--json] COMMAND [ARGS]\n"
	    "commands:\n");
	usage_commands(f);
	fprintf(f,
	    "options:\n"
	    "  -c, --config FILE       configuration file (default " DEFAULT_CONFIG ")\n"
	    "  -j, --json              machine-readable output\n"
	    "      --version           print the version and exit\n"
	    "  -h, --help              this text\n"
	    "exit: 0 ok, 1 failed or not found, 64 usage, 69 state database unreachable,\n"
	    "      78 configuration error. See onesyncctl(1).\n");
}

static int bad_usage(const char *, ...) PRINTF(1, 2);
static int
bad_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", CTL_PROG);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'onesyncctl --help'.\n");
	return EX_USAGE;
}

/*
 * The options, into ctl and a (-n as given, in *nopt): -1 to go on, else the exit code
 * (--help and --version are done).
 */
static int
parse_options(int argc, char **argv, struct ctl *ctl, struct ctl_args *a,
    const char **nopt)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ "dead", no_argument, NULL, 'D' },
		{ "failures", no_argument, NULL, 'F' },
		{ "yes", no_argument, NULL, 'y' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	while ((ch = getopt_long(argc, argv, "c:jn:yh", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			ctl->path = optarg;
			break;
		case 'j':
			ctl->json = true;
			break;
		case 'n':
			*nopt = optarg;
			break;
		case 'D':
			a->dead = true;
			break;
		case 'F':
			a->failures = true;
			break;
		case 'y':
			a->yes = true;
			break;
		case 'V':
			printf("onesyncctl %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'onesyncctl --help'.\n");
			return EX_USAGE;
		}
	}
	return -1;
}

/*
 * The command and its arguments after the options, checked against its entry: 0 with *cmd
 * and a filled in, or the exit code.
 */
static int
parse_command(int argc, char **argv, const char *nopt, struct ctl_args *a,
    const struct ctl_cmd **cmd)
{
	const struct ctl_cmd *c = NULL;
	int nargs;

	if (optind >= argc)
		return bad_usage("a command is missing");
	for (size_t i = 0; i < NELEM(commands) && c == NULL; i++)
		if (strcmp(commands[i]->name, argv[optind]) == 0)
			c = commands[i];
	if (c == NULL)
		return bad_usage("unknown command '%s'", argv[optind]);
	nargs = argc - optind - 1;
	if (nargs < c->min)
		return bad_usage("%s: the job name is missing", c->name);
	if (c->max >= 0 && nargs > c->max)
		return bad_usage("unexpected argument '%s'", argv[optind + 1 + c->max]);
	if (nopt != NULL && !(c->opts & CTL_OPT_N))
		return bad_usage("-n goes only with the command runs");
	if (a->dead && !(c->opts & CTL_OPT_DEAD))
		return bad_usage("--dead goes only with the command failures");
	if ((a->failures || a->yes) && !(c->opts & CTL_OPT_RESET))
		return bad_usage("--failures and --yes go only with the command reset");
	if (nopt != NULL) {
		char *end;

		errno = 0;
		a->n = strtol(nopt, &end, 10);
		if (errno != 0 || end == nopt || *end != '\0' || a->n < 1 || a->n > 1000000)
			return bad_usage("-n '%s': a number of runs from 1 to 1000000 is expected",
			    nopt);
	}
	a->job = nargs > 0 ? argv[optind + 1] : NULL;
	if (a->job != NULL && *a->job == '\0')
		return bad_usage("the job name is empty");
	if (nargs > 0) {
		a->keys = argv + optind + 2;
		a->nkeys = nargs - 1;
	}
	*cmd = c;
	return 0;
}

/* Load the configuration, connect, check the job, run the command: the exit code. */
static int
run(struct ctl *ctl, const struct ctl_cmd *cmd, const struct ctl_args *a)
{
	struct strlist errs = { 0 };
	int rc;

	if (config_load(ctl->path, &ctl->cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		strlist_free(&errs);
		return EX_CONFIG;
	}
	rc = ctl_connect(ctl);
	if (rc == 0 && a->job != NULL && !(cmd->opts & CTL_OPT_NOJOB))
		rc = ctl_check_job(ctl, a->job);
	if (rc == 0)
		rc = cmd->exec(ctl, a);
	if (fflush(stdout) != 0 && rc == 0) {
		fprintf(stderr, "%s: writing the output: %s\n", CTL_PROG, strerror(errno));
		rc = CTL_EX_FAILED;
	}
	PQfinish(ctl->pg);
	free(ctl->schema);
	config_free(ctl->cfg);
	return rc;
}

int
main(int argc, char **argv)
{
	struct ctl ctl = { .path = DEFAULT_CONFIG };
	struct ctl_args a = { .n = 20 };
	const struct ctl_cmd *cmd = NULL;
	const char *nopt = NULL;
	int rc;

	if ((rc = parse_options(argc, argv, &ctl, &a, &nopt)) != -1)
		return rc;
	if ((rc = parse_command(argc, argv, nopt, &a, &cmd)) != 0)
		return rc;
	return run(&ctl, cmd, &a);
}
