/* reproduce.h - `leaderboard verify --weights FILE --model CONFIG`: re-run the
 * harness on the shards and compare its per-token NLLs with the dump.
 *
 * An entry is `consistent` when its dump and the shards agree with its
 * numbers (verify.c); that says nothing about whether a model produced the
 * dump. It is `verified` only when this toolkit's harness, given the
 * entry's weights and config (checked against the SHA-256s the entry
 * records), scores the same books and every per-token NLL matches the dump
 * within the tolerance documented here for the backend and precision of the
 * run that made the entry.
 *
 * Books: all of the split's, or `--sample N` of them chosen by a seed that
 * is derived from the entry's content hash (lb_sample_seed), so anyone can
 * recompute which books were checked:
 *
 *   seed = the first 8 bytes, big-endian, of the SHA-256 of the entry's
 *          canonical form (the hash whose first 12 hex digits name the file)
 *   ids  = the split's book ids in ascending order (n of them)
 *   splitmix64 state = seed; for i in 0 .. N-1:
 *       j = i + splitmix64_next() % (n - i); swap ids[i], ids[j]
 *   the sample is ids[0 .. N-1], sorted ascending
 */
#ifndef PG19_LEADERBOARD_REPRODUCE_H
#define PG19_LEADERBOARD_REPRODUCE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"
#include "leaderboard/nll_dump.h"
#include "leaderboard/plausible.h"

#define LB_REPRODUCE_TOOL "pg19-leaderboard-reproduce/1"

/* The per-token tolerance of a re-run (lb_tolerance_for) is in plausible.h. */

/* The sample seed of an entry whose content SHA-256 is sha (32 bytes). */
uint64_t lb_sample_seed(const uint8_t sha[32]);
/* Chooses n_sample of the n ids (ascending, distinct) as described above
 * into out[n_sample], ascending. n_sample <= n. */
int lb_sample_books(const uint64_t *ids, size_t n, uint64_t seed, size_t n_sample,
                    uint64_t *out, pg_error *err);

typedef struct lb_reproduce_opts {
    const char *weights, *config; /* files; both set to reproduce */
    uint64_t sample;              /* books to re-run; 0 = all */
    int threads;                  /* harness --threads; 0 = its default */
} lb_reproduce_opts;

typedef struct lb_reproduction {
    uint64_t seed;
    size_t n_books;
    uint64_t *books;          /* [n_books] ascending */
    uint64_t tokens;          /* compared */
    double max_abs_deviation;
    double max_ratio;         /* max |deviation| / (abs + rel |dump|); <= 1 to pass */
    char weights_sha256[65], config_sha256[65];
    char harness[80];         /* "pg19-harness 0.1.0", from the re-run's results */
} lb_reproduction;

/* The harness binary: $PG19_BIN/harness when PG19_BIN is set, else the
 * `harness` next to this executable. */
int lb_find_harness(char *path, size_t cap, pg_error *err);

/* Checks what can be checked before any work: the entry has weights, a
 * documented tolerance and a handling the harness runs; the weights and
 * config files hash to the entry's SHA-256s. */
int lb_reproduce_precheck(const json_t *entry, const lb_reproduce_opts *o,
                          lb_reproduction *out, pg_error *err);

/* Re-runs the harness on the chosen books of the entry's split in
 * shards_dir and compares with `dump` (already checked consistent with the
 * entry). content_sha: the entry's canonical SHA-256. Disagreements become
 * lines of *mismatch (count in *n_mismatch; the caller frees them). */
int lb_reproduce(const json_t *entry, const uint8_t content_sha[32], const lb_nll_dump *dump,
                 const char *shards_dir, const lb_reproduce_opts *o, lb_reproduction *out,
                 char ***mismatch, size_t *n_mismatch, pg_error *err);
void lb_reproduction_free(lb_reproduction *r);

#endif
