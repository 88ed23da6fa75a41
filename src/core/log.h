/* log.h - OpenBSD-style logging to stderr or to journald with structured fields. */
#ifndef ONESYNC_LOG_H
#define ONESYNC_LOG_H

#include <stdarg.h>
#include "core/redact.h"
#include "core/util.h"

/* Stable MESSAGE_IDs (journald catalog style, 128-bit hex). */
#define MSGID_RUN_FINISHED	"6f0c1a2e9b0d4d47a3e1b5c2d8f40101"
#define MSGID_RUN_FAILED	"6f0c1a2e9b0d4d47a3e1b5c2d8f40102"
#define MSGID_LEASE_ACQUIRED	"6f0c1a2e9b0d4d47a3e1b5c2d8f40103"
#define MSGID_LEASE_LOST	"6f0c1a2e9b0d4d47a3e1b5c2d8f40104"
#define MSGID_CONFIG_RELOADED	"6f0c1a2e9b0d4d47a3e1b5c2d8f40105"
#define MSGID_CONFIG_REJECTED	"6f0c1a2e9b0d4d47a3e1b5c2d8f40106"
#define MSGID_RECORD_FAILED	"6f0c1a2e9b0d4d47a3e1b5c2d8f40107"
#define MSGID_RECORD_DEAD	"6f0c1a2e9b0d4d47a3e1b5c2d8f40108"

enum log_target { LOG_TO_STDERR, LOG_TO_JOURNAL };

/* Chooses journald when stderr is the journal ($JOURNAL_STREAM), plain lines otherwise. */
void log_init(int verbose, const char *progname);
void log_setverbose(int);
int  log_getverbose(void);
enum log_target log_target(void);

void log_warn(const char *, ...) PRINTF(1, 2);		/* appends strerror(errno) */
void log_warnx(const char *, ...) PRINTF(1, 2);
void log_info(const char *, ...) PRINTF(1, 2);
void log_debug(const char *, ...) PRINTF(1, 2);
void fatal(const char *, ...) PRINTF(1, 2) __attribute__((noreturn));
void fatalx(const char *, ...) PRINTF(1, 2) __attribute__((noreturn));

/*
 * One line about a job (and optionally a run): carries ONESYNC_JOB=, ONESYNC_RUN=
 * and MESSAGE_ID= (NULL for none). prio is a syslog priority (LOG_ERR...).
 * Plain output: "job=NAME run=ID: message".
 */
void log_job(int prio, const char *job, long long run, const char *msgid,
    const char *, ...) PRINTF(5, 6);

#endif
