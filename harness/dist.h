/* dist.h - processes across GPUs and machines (Open MPI), or just one.
 *
 * The harness scales out by running one process per GPU (or per group of
 * CPU threads) under Open MPI's `mpirun`; this module is the only place that
 * talks to MPI, so evaluation and training see a handful of collectives:
 * an all-reduce of sums (gradients, totals), a broadcast (configs, the NCCL
 * id) and a gather of byte buffers to rank 0 (per-book results).
 *
 * MPI is initialised only when the process was started by an MPI launcher
 * (mpirun/mpiexec, or srun with PMIx), recognised by the environment those
 * set. A plain `bin/harness ...` never touches MPI: it is rank 0 of 1 and
 * every collective is a local no-op or copy, so a single-process run pays
 * nothing and needs no MPI runtime at all.
 *
 * Counts are 64-bit; MPI's int counts are met by splitting transfers into
 * chunks of at most PG_DIST_CHUNK elements. MPI errors are returned (the
 * communicator uses MPI_ERRORS_RETURN), never fatal inside the library.
 * Sums are done by MPI_Allreduce: for a fixed number of ranks Open MPI's
 * reduction order is fixed, but it is not the order of a single process, so
 * callers that need bit-identical totals across rank counts gather the parts
 * and sum them in a fixed order themselves (pg_dist_gather_bytes).
 *
 * Tests run binaries under `mpirun --oversubscribe -np 2` with the
 * environment of tests/harness/mpienv.py (tests/harness/test_dist.py).
 */
#ifndef PG19_HARNESS_DIST_H
#define PG19_HARNESS_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define PG_DIST_CHUNK (1 << 28) /* elements per MPI call */

typedef struct pg_dist {
    int rank, size;             /* in the world communicator */
    int local_rank, local_size; /* among the ranks on this machine (GPU choice) */
    int active;                 /* 1 when MPI was initialised by pg_dist_init */
} pg_dist;

/* 1 if the environment says an MPI launcher started this process. */
int pg_dist_launched(void);

/* Initialises MPI when launched by mpirun, else fills d as rank 0 of 1.
 * argc/argv may be NULL. */
int pg_dist_init(int *argc, char ***argv, pg_dist *d, pg_error *err);
/* Finalises MPI if pg_dist_init started it. */
void pg_dist_finalize(pg_dist *d);
/* Ends every rank at once (a failed rank must not leave the others waiting
 * in a collective); for main() only. Exits with code when not active. */
void pg_dist_abort(const pg_dist *d, int code) __attribute__((noreturn));

int pg_dist_barrier(const pg_dist *d, pg_error *err);
/* In-place element-wise sums over all ranks. */
int pg_dist_allreduce_sum_f32(const pg_dist *d, float *buf, uint64_t n, pg_error *err);
int pg_dist_allreduce_sum_f64(const pg_dist *d, double *buf, uint64_t n, pg_error *err);
int pg_dist_allreduce_sum_u64(const pg_dist *d, uint64_t *buf, uint64_t n, pg_error *err);
/* 1 if ok is non-zero on every rank, else 0 (a collective: every rank calls
 * it), so that all ranks take the same error path. Returns 0 on MPI failure. */
int pg_dist_all_ok(const pg_dist *d, int ok);
/* Copies root's bytes into buf on every rank. */
int pg_dist_bcast(const pg_dist *d, void *buf, uint64_t bytes, int root, pg_error *err);
/* Gathers every rank's n bytes on rank 0: *all (malloc'd, caller frees) is
 * rank 0's bytes, then rank 1's, ...; counts[r] (d->size entries, rank 0
 * only) their lengths. On other ranks *all is NULL and counts unused (may be
 * NULL). */
int pg_dist_gather_bytes(const pg_dist *d, const void *buf, uint64_t n, uint8_t **all,
                         uint64_t *counts, pg_error *err);

#endif
