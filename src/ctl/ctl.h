/*
 * ctl.h - what the files of onesyncctl share: the handle of one invocation (the
 * configuration, the connection to the state database, the output mode), the arguments a
 * command gets, and a command's entry in the table of main.c. Types only: each .c declares
 * its functions in its own header (conn.h; show.h and steer.h name their entries).
 */
#ifndef ONESYNC_CTL_H
#define ONESYNC_CTL_H

#include <stdbool.h>

#include <libpq-fe.h>

#include "config/model.h"

#define CTL_PROG	"onesyncctl"	/* the prefix of every message on stderr */
#define CTL_EX_FAILED	1		/* failed or not found; the others are sysexits */

struct ctl {
	const char	*path;
	struct config	*cfg;
	PGconn		*pg;
	char		*schema;	/* quoted identifier */
	bool		 have_schema;	/* the state tables exist */
	bool		 json;
};

/* The command line after the options: what a command may use. */
struct ctl_args {
	const char	*job;		/* NULL for a command without one */
	char		**keys;		/* the arguments after the job (retry) */
	int		 nkeys;
	long		 n;		/* -n: how many runs */
	bool		 dead;		/* --dead */
	bool		 failures;	/* --failures */
	bool		 yes;		/* --yes */
};

/* The options a command accepts beyond -c and --json. */
#define CTL_OPT_N	0x1	/* -n N */
#define CTL_OPT_DEAD	0x2	/* --dead */
#define CTL_OPT_RESET	0x4	/* --failures, --yes */
#define CTL_OPT_NOJOB	0x8	/* its first argument is not a job's name */

/*
 * One command: its name, its line of the usage text (a NULL synopsis: the line of the
 * entry before it says it too), how many arguments follow it, what it does. A command
 * that takes arguments takes the job name first.
 */
struct ctl_cmd {
	const char	*name;
	const char	*synopsis;
	const char	*help;		/* lines without their indent, '\n' between */
	int		 min, max;	/* arguments after the command; -1 = any */
	int		 opts;		/* CTL_OPT_* */
	int		(*exec)(struct ctl *, const struct ctl_args *);
};

#endif
