/*
 * log.c - the OpenBSD log API (log_warn, log_info, fatal...) plus log_job() for lines
 * about one job and run. Writes journald native fields when stderr is the journal
 * ($JOURNAL_STREAM names stderr's device and inode), "<N>"-prefixed plain lines on
 * stderr otherwise. Every message goes through redact_text() (callers redact too, but
 * a value quoted from a server or libpq may hold a secret no caller knew of) and has its
 * control characters escaped: a value from the data never starts a line of its own.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "core/log.h"
#include "core/escape.h"

static int		 verbose;
static enum log_target	 target = LOG_TO_STDERR;
static const char	*progname = "onesyncd";

/* True when $JOURNAL_STREAM is "dev:ino" of our stderr. */
static bool
stderr_is_journal(void)
{
	const char *e = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (e == NULL || sscanf(e, "%llu:%llu", &dev, &ino) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) == -1)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

/*
 * libevent's own messages (an accept() that fails, say) go through the log like every other
 * line (escaped, redacted, journal fields), ten a minute at most: it logs each failure of a
 * retried call, 90,777 lines in one test.
 */
static void
libevent_log(int severity, const char *msg)
{
	static time_t window;
	static int n;
	static long long quiet;
	time_t now = time(NULL);
	int prio = severity == EVENT_LOG_ERR ? LOG_ERR : severity == EVENT_LOG_WARN ?
	    LOG_WARNING : severity == EVENT_LOG_MSG ? LOG_INFO : LOG_DEBUG;

	if (now - window >= 60) {
		if (quiet > 0)
			log_job(LOG_WARNING, NULL, 0, NULL, "libevent: %lld more messages in the "
			    "last minute not logged", quiet);
		window = now;
		n = 0;
		quiet = 0;
	}
	if (n++ >= 10) {
		quiet++;
		return;
	}
	log_job(prio, NULL, 0, NULL, "libevent: %s", msg);
}

void
log_init(int v, const char *name)
{
	const char *force = getenv("ONESYNC_LOG_TARGET");

	verbose = v;
	event_set_log_callback(libevent_log);
	if (name != NULL)
		progname = name;
	if (force != NULL && strcmp(force, "journal") == 0)
		target = LOG_TO_JOURNAL;
	else if (force != NULL && strcmp(force, "stderr") == 0)
		target = LOG_TO_STDERR;
	else
		target = stderr_is_journal() ? LOG_TO_JOURNAL : LOG_TO_STDERR;
}

void
log_setverbose(int v)
{
	verbose = v;
}

int
log_getverbose(void)
{
	return verbose;
}

enum log_target
log_target(void)
{
	return target;
}

/* The message as it may be shown: redacted, one line. */
static char *
printable(const char *fmt, va_list ap)
{
	char *raw = redact_text_free(xvasprintf(fmt, ap));
	struct buf b;

	buf_init(&b);
	buf_adds(&b, "");
	escape_controls(&b, raw);
	free(raw);
	return buf_steal(&b);
}

/* Write one message; job/run/msgid are optional structured fields. */
static void
vlog_emit(int prio, const char *job, long long run, const char *msgid,
    const char *fmt, va_list ap)
{
	char *msg;

	if (prio == LOG_DEBUG && verbose < 1)
		return;
	msg = printable(fmt, ap);
	if (target == LOG_TO_JOURNAL) {
		char runbuf[32];

		snprintf(runbuf, sizeof runbuf, "%lld", run);
		/* sd_journal_send stops at the first NULL: put optional fields last. */
		if (job != NULL && run > 0 && msgid != NULL)
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio,
			    "SYSLOG_IDENTIFIER=%s", progname, "ONESYNC_JOB=%s", job,
			    "ONESYNC_RUN=%s", runbuf, "MESSAGE_ID=%s", msgid, NULL);
		else if (job != NULL && run > 0)
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio,
			    "SYSLOG_IDENTIFIER=%s", progname, "ONESYNC_JOB=%s", job,
			    "ONESYNC_RUN=%s", runbuf, NULL);
		else if (job != NULL && msgid != NULL)
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio,
			    "SYSLOG_IDENTIFIER=%s", progname, "ONESYNC_JOB=%s", job,
			    "MESSAGE_ID=%s", msgid, NULL);
		else if (job != NULL)
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio,
			    "SYSLOG_IDENTIFIER=%s", progname, "ONESYNC_JOB=%s", job, NULL);
		else if (msgid != NULL)
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio,
			    "SYSLOG_IDENTIFIER=%s", progname, "MESSAGE_ID=%s", msgid, NULL);
		else
			sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%d", prio,
			    "SYSLOG_IDENTIFIER=%s", progname, NULL);
	} else {
		struct buf b;

		buf_init(&b);
		buf_printf(&b, "<%d>", prio);
		if (job != NULL)
			buf_printf(&b, "job=%s ", job);
		if (run > 0)
			buf_printf(&b, "run=%lld ", run);
		if (job != NULL || run > 0)
			b.data[b.len - 1] = ':', buf_addc(&b, ' ');
		buf_adds(&b, msg);
		buf_addc(&b, '\n');
		fwrite(b.data, 1, b.len, stderr);
		fflush(stderr);
		buf_free(&b);
	}
	free(msg);
}

static void
vlog_plain(int prio, int errnum, const char *fmt, va_list ap)
{
	if (errnum != 0) {
		char *m = xvasprintf(fmt, ap);

		log_job(prio, NULL, 0, NULL, "%s: %s", m, strerror(errnum));
		free(m);
	} else
		vlog_emit(prio, NULL, 0, NULL, fmt, ap);
}

void
log_job(int prio, const char *job, long long run, const char *msgid, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_emit(prio, job, run, msgid, fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_plain(LOG_WARNING, e, fmt, ap);
	va_end(ap);
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_plain(LOG_WARNING, 0, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_plain(LOG_INFO, 0, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_plain(LOG_DEBUG, 0, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	int e = errno;
	va_list ap;

	va_start(ap, fmt);
	vlog_plain(LOG_CRIT, e, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog_plain(LOG_CRIT, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
