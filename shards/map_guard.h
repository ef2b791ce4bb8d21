/* map_guard.h - turn a SIGBUS inside a read-only file mapping into an error.
 *
 * A mapped file that shrinks while it is mapped (truncated, or rewritten in
 * place by another process) makes every read of a page beyond its new end
 * raise SIGBUS, which by default kills the process without a word. A reader
 * that reads a mapping wraps each read in a guard:
 *
 *     pg_map_guard g;
 *     pg_map_guard_enter(&g, map, len);
 *     if (sigsetjmp(g.env, 1)) {          // a read inside [map, map+len) faulted
 *         pg_map_guard_leave(&g);
 *         return pg_map_guard_fail(&g, path, len, err);
 *     }
 *     ... read map[0 .. len) ...
 *     pg_map_guard_leave(&g);
 *
 * pg_map_guard_enter makes sure its SIGBUS handler is installed (sigaction,
 * SA_SIGINFO; checked on every call, one sigaction(2) query, so a handler
 * that someone installed later is chained rather than left in charge). The
 * handler acts only on a fault whose address (si_addr) lies inside the
 * innermost guard of the faulting thread: it jumps back to that guard's
 * sigsetjmp, and the reader returns an error naming the file like any other
 * (library code never exits). Any other SIGBUS goes to the disposition it
 * replaced (by default the process dies as it did without the guard).
 * Only the guarded code's own reads of the mapping can fault, so the jump
 * never leaves a lock or a malloc half done; it abandons the guarded code at
 * that read, so whatever that code built must be reachable for cleanup (the
 * shard reader's half-filled book table hangs off the pg_shard that
 * pg_shard_close frees). Guards nest per thread.
 */
#ifndef PG19_SHARDS_MAP_GUARD_H
#define PG19_SHARDS_MAP_GUARD_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct pg_map_guard {
    sigjmp_buf env;
    const unsigned char *lo, *hi;  /* the guarded bytes [lo, hi) */
    const void *volatile fault;    /* set by the handler: the faulting address */
    struct pg_map_guard *prev;     /* the enclosing guard of this thread */
} pg_map_guard;

/* Arms g for reads of [map, map+len) on this thread (installs the handler on
 * first use). Call sigsetjmp(g->env, 1) right after, in the same function. */
void pg_map_guard_enter(pg_map_guard *g, const void *map, size_t len);
/* Disarms g (on both the normal and the fault path). */
void pg_map_guard_leave(pg_map_guard *g);
/* The error for a fault caught by g in the mapping of path (mapped_size
 * bytes when it was mapped): PG_EIO, naming the file, the offset and the
 * file's size now. */
int pg_map_guard_fail(const pg_map_guard *g, const char *path, uint64_t mapped_size,
                      pg_error *err);

#endif
