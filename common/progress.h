/* progress.h - progress reporting for long work.
 *
 * On a terminal (stderr is a tty) it redraws one status line at most four
 * times a second: items done/total, amount done/total, rate and ETA. In a log
 * or a pipe it is silent until pg_progress_finish(), which prints one summary
 * line. PG19_PROGRESS=0 silences the live line; =1 forces it.
 */
#ifndef PG19_PROGRESS_H
#define PG19_PROGRESS_H

#include <stdint.h>

typedef struct pg_progress {
    const char *label;   /* "fetch", "encode", ... */
    const char *items;   /* what the items are: "files", "books" */
    const char *unit;    /* "B" prints bytes as KB/MB/GB; anything else is a count unit */
    uint64_t total_items, total_amount;
    uint64_t done_items, done_amount;
    double t_start, t_last_draw;
    int live;            /* draw the live line */
} pg_progress;

double pg_now(void); /* monotonic seconds */
void pg_progress_init(pg_progress *p, const char *label, const char *items, const char *unit,
                      uint64_t total_items,
                      uint64_t total_amount);
void pg_progress_update(pg_progress *p, uint64_t done_items, uint64_t done_amount);
/* Prints the summary line (always), followed by `extra` if non-NULL. */
void pg_progress_finish(pg_progress *p, const char *extra);
/* "1.23 GB" style formatting into buf. */
void pg_format_amount(char *buf, int cap, double amount, const char *unit);

#endif
