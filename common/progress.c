/* progress.c - see progress.h */
#include "common/progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double pg_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void pg_format_amount(char *buf, int cap, double amount, const char *unit)
{
    if (strcmp(unit, "B") == 0) {
        static const char *sfx[] = {"B", "KB", "MB", "GB", "TB"};
        int i = 0;
        while (amount >= 1000.0 && i < 4) {
            amount /= 1000.0;
            i++;
        }
        snprintf(buf, (size_t)cap, i ? "%.2f %s" : "%.0f %s", amount, sfx[i]);
    } else {
        static const char *sfx[] = {"", "k", "M", "G", "T"};
        int i = 0;
        while (amount >= 1000.0 && i < 4) {
            amount /= 1000.0;
            i++;
        }
        snprintf(buf, (size_t)cap, i ? "%.2f%s %s" : "%.0f%s %s", amount, sfx[i], unit);
    }
}

void pg_progress_init(pg_progress *p, const char *label, const char *items, const char *unit,
                      uint64_t total_items,
                      uint64_t total_amount)
{
    memset(p, 0, sizeof *p);
    p->label = label;
    p->items = items;
    p->unit = unit;
    p->total_items = total_items;
    p->total_amount = total_amount;
    p->t_start = pg_now();
    const char *env = getenv("PG19_PROGRESS");
    if (env && *env)
        p->live = atoi(env) != 0;
    else
        p->live = isatty(STDERR_FILENO);
}

static void format_line(const pg_progress *p, char *line, size_t cap, double now)
{
    double el = now - p->t_start;
    double rate = el > 0 ? (double)p->done_amount / el : 0;
    char done[32], total[32], rate_s[32], eta[32] = "?";
    pg_format_amount(done, sizeof done, (double)p->done_amount, p->unit);
    pg_format_amount(total, sizeof total, (double)p->total_amount, p->unit);
    pg_format_amount(rate_s, sizeof rate_s, rate, p->unit);
    if (rate > 0 && p->total_amount >= p->done_amount) {
        double s = (double)(p->total_amount - p->done_amount) / rate;
        snprintf(eta, sizeof eta, "%dh%02dm%02ds", (int)(s / 3600), (int)(s / 60) % 60, (int)s % 60);
    }
    snprintf(line, cap, "%s: %llu/%llu %s, %s/%s, %s/s, ETA %s", p->label,
             (unsigned long long)p->done_items, (unsigned long long)p->total_items, p->items, done, total,
             rate_s, eta);
}

void pg_progress_update(pg_progress *p, uint64_t done_items, uint64_t done_amount)
{
    p->done_items = done_items;
    p->done_amount = done_amount;
    if (!p->live)
        return;
    double now = pg_now();
    if (now - p->t_last_draw < 0.25)
        return;
    p->t_last_draw = now;
    char line[256];
    format_line(p, line, sizeof line, now);
    fprintf(stderr, "\r\033[K%s", line);
    fflush(stderr);
}

void pg_progress_finish(pg_progress *p, const char *extra)
{
    double el = pg_now() - p->t_start;
    char done[32], rate_s[32];
    pg_format_amount(done, sizeof done, (double)p->done_amount, p->unit);
    pg_format_amount(rate_s, sizeof rate_s, el > 0 ? (double)p->done_amount / el : 0, p->unit);
    if (p->live)
        fprintf(stderr, "\r\033[K");
    fprintf(stderr, "%s: %llu/%llu %s, %s in %.1f s (%s/s)%s%s\n", p->label,
            (unsigned long long)p->done_items, (unsigned long long)p->total_items, p->items, done, el, rate_s,
            extra ? ", " : "", extra ? extra : "");
}
