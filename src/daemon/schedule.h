/* schedule.h - when each job runs: its timer, the queue of due jobs, the max_runs slots. */
#ifndef ONESYNC_SCHEDULE_H
#define ONESYNC_SCHEDULE_H

#include <stdbool.h>
#include <stdint.h>
#include <event2/util.h>

struct daemon;
struct job_conf;
struct jobrt;

/* A job as the daemon runs it, on the daemon's current configuration; and its end. */
struct jobrt *schedule_jobrt_new(struct daemon *, const struct job_conf *);
void schedule_jobrt_free(struct jobrt *);
/* The job's timer: queue it for a run slot (when it is this instance's to run). */
void schedule_timer(evutil_socket_t, short, void *jobrt);
/* Arm the job's timer (nothing when --once, stopping, removed or disabled). */
void schedule_in(struct jobrt *, int64_t delay_ms);
/* The delay to the next run: the interval plus a random part of the jitter. */
int64_t schedule_next_delay(const struct job_conf *);
/* Take a job out of the queue of due jobs, if it is there. */
void schedule_unqueue(struct daemon *, struct jobrt *);
/* Put every job (or the --once ones) on the schedule. */
void schedule_all(struct daemon *);
/* STATUS= for systemd: jobs, runs in flight, failing jobs, the state store, a reload. */
void schedule_status_line(struct daemon *);

#endif
