/*
 * state_ck.c - one checkpoint's content as the strategies build it: each column of its lists
 * an array literal that grows by one quoted element per entry, so that a checkpoint of a
 * thousand keys costs neither a document per key here nor parsing one jsonb of them all in
 * the database (sql_schema.h, checkpoint_lists). It never talks to the database.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "record/json.h"
#include "store/state_ck.h"

/*
 * Append s to an array literal as one quoted element: a backslash before '"' and '\',
 * everything else as it is (braces, commas, spaces, any UTF-8). ASCII goes as it is; other
 * text through jsonx_text_storable, which keeps valid UTF-8 and replaces what PostgreSQL
 * could not store (a second line of defence: one such key must not fail the checkpoint,
 * and with it every later one).
 */
void
state_arr_text(struct buf *b, const char *s)
{
	char *fixed = NULL;
	const char *p;
	size_t n;

	for (p = s; *p != '\0' && (unsigned char)*p < 0x80; p++)
		;
	if (*p != '\0')
		s = fixed = jsonx_text_storable(s, strlen(s), SIZE_MAX);
	buf_addc(b, '"');
	for (p = s; *p != '\0'; p += n) {
		n = strcspn(p, "\"\\");
		buf_add(b, p, n);
		if (p[n] != '\0') {
			buf_addc(b, '\\');
			buf_addc(b, p[n++]);
		}
	}
	buf_addc(b, '"');
	free(fixed);
}

/* Where each list's columns start in struct state_ck's col[], and how many it has. */
static const int ck_first[CK_NLISTS] = { 0, 3, 5, 6, 7, 11, 12 };
static const int ck_ncols[CK_NLISTS] = { 3, 2, 1, 1, 4, 1, 4 };

struct state_ck *
state_ck_new(void)
{
	struct state_ck *ck = xcalloc(1, sizeof *ck);

	ck->d = json_object();
	for (int i = 0; i < CK_NCOLS; i++) {
		buf_init(&ck->col[i]);
		buf_addc(&ck->col[i], '{');
	}
	return ck;
}

void
state_ck_free(struct state_ck *ck)
{
	if (ck == NULL)
		return;
	json_decref(ck->d);
	for (int i = 0; i < CK_NCOLS; i++)
		buf_free(&ck->col[i]);
	free(ck);
}

size_t
state_ck_count(const struct state_ck *ck, enum state_list l)
{
	return ck->n[l];
}

/* The next entry of list l: a separator in each of its columns when it is not the first;
 * returns its first column. */
static struct buf *
ck_entry(struct state_ck *ck, enum state_list l)
{
	struct buf *c = &ck->col[ck_first[l]];

	if (ck->n[l]++ > 0)
		for (int i = 0; i < ck_ncols[l]; i++)
			buf_addc(&c[i], ',');
	return c;
}

void
state_ck_key(struct state_ck *ck, enum state_list l, const char *key)
{
	state_arr_text(ck_entry(ck, l), key);
}

void
state_ck_seen(struct state_ck *ck, const char *key, const char *hash, int64_t ts_ns)
{
	struct buf *c = ck_entry(ck, CK_SEEN);

	state_arr_text(&c[0], key);
	state_arr_text(&c[1], hash);
	buf_printf(&c[2], "%lld", (long long)ts_ns);
}

void
state_ck_put(struct state_ck *ck, const char *key, const char *hash)
{
	struct buf *c = ck_entry(ck, CK_PUT);

	state_arr_text(&c[0], key);
	state_arr_text(&c[1], hash);
}

/* An entry of a four-column list. */
static void
ck_four(struct state_ck *ck, enum state_list l, const char *const v[4])
{
	struct buf *c = ck_entry(ck, l);

	for (int i = 0; i < 4; i++)
		state_arr_text(&c[i], v[i]);
}

void
state_ck_failed(struct state_ck *ck, const char *key, const char *error,
    const char *payload, const char *hash)
{
	ck_four(ck, CK_FAILED, (const char *const[]){ key, error, payload, hash });
}

void
state_ck_unmarked(struct state_ck *ck, const char *key, const char *hash,
    const char *answer, const char *error)
{
	ck_four(ck, CK_UNMARKED_ADD, (const char *const[]){ key, hash, answer, error });
}

void
state_ck_move(struct state_ck *to, struct state_ck *from)
{
	for (int l = 0; l < CK_NLISTS; l++) {
		if (from->n[l] == 0)
			continue;
		for (int i = ck_first[l]; i < ck_first[l] + ck_ncols[l]; i++) {
			if (to->n[l] > 0)
				buf_addc(&to->col[i], ',');
			buf_add(&to->col[i], from->col[i].data + 1, from->col[i].len - 1);
			from->col[i].len = 1;
		}
		to->n[l] += from->n[l];
		from->n[l] = 0;
	}
}

void
state_ck_close(struct state_ck *ck, const char *v[CK_NCOLS])
{
	for (int l = 0; l < CK_NLISTS; l++)
		for (int i = ck_first[l]; i < ck_first[l] + ck_ncols[l]; i++) {
			v[i] = NULL;
			if (ck->n[l] > 0) {
				buf_addc(&ck->col[i], '}');
				v[i] = ck->col[i].data;
			}
		}
}

void
state_ck_reopen(struct state_ck *ck)
{
	for (int l = 0; l < CK_NLISTS; l++)
		for (int i = ck_first[l]; i < ck_first[l] + ck_ncols[l]; i++)
			if (ck->n[l] > 0)
				ck->col[i].len--;
}
