/* capture_delete.h - the end of a capture run's snapshot: guard, alias check, deletions. */
#ifndef ONESYNC_CAPTURE_DELETE_H
#define ONESYNC_CAPTURE_DELETE_H

#include "run/capture_state.h"

/*
 * The snapshot is read (r->cs->read_done; read_error set when it failed): the guard,
 * the deletions, the last checkpoint and the run's end; or, when the last checkpoint is
 * written (r->last_page), the run's end.
 */
void capture_end_of_read(struct run *);
/* Free what the alias check holds (none when it is not under way). */
void capture_alias_done(struct capture_state *);

#endif
