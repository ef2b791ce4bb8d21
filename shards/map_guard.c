/* map_guard.c - see map_guard.h */
#include "shards/map_guard.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static _Thread_local pg_map_guard *active_guard; /* innermost guard of this thread */
static struct sigaction prev_sigbus;              /* the disposition before ours */

static void on_sigbus(int sig, siginfo_t *si, void *uctx)
{
    pg_map_guard *g = active_guard;
    const unsigned char *a = si->si_addr;
    if (g && a >= g->lo && a < g->hi) {
        g->fault = a;
        active_guard = g->prev;
        siglongjmp(g->env, 1); /* restores the signal mask saved by sigsetjmp(env, 1) */
    }
    /* Not a guarded read: whatever handled SIGBUS before us. */
    if (prev_sigbus.sa_flags & SA_SIGINFO) {
        prev_sigbus.sa_sigaction(sig, si, uctx);
    } else if (prev_sigbus.sa_handler != SIG_DFL && prev_sigbus.sa_handler != SIG_IGN) {
        prev_sigbus.sa_handler(sig);
    } else {
        /* default (a faulting access cannot be ignored): restore it and
         * return; the access faults again and the process dies of SIGBUS */
        struct sigaction dfl;
        memset(&dfl, 0, sizeof dfl);
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        sigaction(SIGBUS, &dfl, NULL);
    }
}

/* Makes on_sigbus the SIGBUS handler, chaining to the one it replaces.
 * Checked on every guard rather than once: a program (or a test framework)
 * that installs its own handler later would otherwise turn the guards off. */
static pthread_mutex_t install_lock = PTHREAD_MUTEX_INITIALIZER;

static int is_ours(const struct sigaction *sa)
{
    return (sa->sa_flags & SA_SIGINFO) && sa->sa_sigaction == on_sigbus;
}

static void ensure_installed(void)
{
    struct sigaction cur;
    if (sigaction(SIGBUS, NULL, &cur) == 0 && is_ours(&cur))
        return;
    pthread_mutex_lock(&install_lock);
    if (sigaction(SIGBUS, NULL, &cur) == 0 && !is_ours(&cur)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_sigbus;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        /* if this fails the guard is inert: a fault kills the process as before */
        if (sigaction(SIGBUS, &sa, NULL) == 0)
            prev_sigbus = cur;
    }
    pthread_mutex_unlock(&install_lock);
}

void pg_map_guard_enter(pg_map_guard *g, const void *map, size_t len)
{
    ensure_installed();
    g->lo = map;
    g->hi = (const unsigned char *)map + len;
    g->fault = NULL;
    g->prev = active_guard;
    active_guard = g;
}

void pg_map_guard_leave(pg_map_guard *g)
{
    active_guard = g->prev;
}

int pg_map_guard_fail(const pg_map_guard *g, const char *path, uint64_t mapped_size,
                      pg_error *err)
{
    unsigned long long off = (unsigned long long)((const unsigned char *)g->fault - g->lo);
    struct stat st;
    char now[64];
    if (stat(path, &st) == 0)
        snprintf(now, sizeof now, "is now %llu bytes", (unsigned long long)st.st_size);
    else
        snprintf(now, sizeof now, "can no longer be read: %s", strerror(errno));
    return pg_fail(err, PG_EIO,
                   "%s: the file changed while it was being read (reading byte %llu of the %llu "
                   "bytes it had when it was opened raised SIGBUS; it %s): was it truncated or "
                   "rewritten during the run? Rebuild or restore it and run again",
                   path, off, (unsigned long long)mapped_size, now);
}
