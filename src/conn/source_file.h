/* source_file.h - a file snapshot as source (source.type = "file"), read as a stream. */
#ifndef ONESYNC_SOURCE_FILE_H
#define ONESYNC_SOURCE_FILE_H

#include <jansson.h>
#include "conn/conn.h"
#include "record/parse.h"

/*
 * A file snapshot (source.type = "file": CSV, NDJSON or a JSON array over file://, ftp://,
 * ftps://, sftp:// or http(s)://, gzip optional), streamed through libcurl multi and parsed
 * as the bytes arrive: memory holds a few records, never the file.
 */
struct file_reader;
/* One record (borrowed; incref to keep). `line` is where it starts in the file. */
typedef void (*file_rec_cb)(void *arg, json_t *rec, long line);
/* A malformed record; the reader goes on with the next one. msg names the file and line. */
typedef void (*file_bad_cb)(void *arg, long line, const char *msg);
/* The end: rc 0 = the whole file was read; -1 = transfer failed or the file is truncated;
 * SOURCE_FILE_MISMATCH = the file does not match the job (a CSV header without a field the
 * job reads), found before any record. */
typedef void (*file_done_cb)(void *arg, int rc, const char *err);
#define SOURCE_FILE_MISMATCH	(-2)

/* No callback runs before this returns; NULL and *err when nothing could start. */
struct file_reader *source_file_open(const struct conn_env *, const struct job_conf *,
    file_rec_cb, file_bad_cb, file_done_cb, void *arg, char **err);
/* One CSV record as its fields (borrowed for the call; parse_row_json makes the object). */
typedef void (*file_row_cb)(void *arg, const struct parse_row *row, long line);
/* A CSV file's records go to row_cb instead of rec_cb (call it right after open, before
 * control returns to the loop: no record was parsed yet). */
void source_file_rows(struct file_reader *, file_row_cb);
/* Hold records back (the transfer pauses) until resumed; resume continues on a later
 * loop turn, never inside the call. */
void source_file_pause(struct file_reader *);
void source_file_resume(struct file_reader *);
void source_file_cancel(struct file_reader *);	/* no callback after this; frees it */
/* The redacted URL, for messages. */
const char *source_file_where(const struct file_reader *);

#endif
