/*
 * source_file.c - file snapshots over libcurl (placeholder until the streaming reader
 * lands): refuses to open, so a capture job over a file fails with a clear message.
 */
#include <stdlib.h>

#include "source.h"

struct file_reader *
source_file_open(struct daemon *d, const struct job_conf *job, file_rec_cb rc,
    file_bad_cb bc, file_done_cb dc, void *arg, char **err)
{
	*err = xstrdup("file sources are not supported by this build yet");
	return NULL;
}

void
source_file_pause(struct file_reader *fr)
{
}

void
source_file_resume(struct file_reader *fr)
{
}

void
source_file_cancel(struct file_reader *fr)
{
}

const char *
source_file_where(const struct file_reader *fr)
{
	return "the file";
}
