/* results.h - strict parsing and validation of results JSON and leaderboard entries.
 *
 * The format is defined in harness/RESULTS.md (`pg19-results/1`). A submission
 * is exactly that object; a leaderboard entry is that object plus a
 * "provenance" object that says whether the numbers were measured with this
 * toolkit's harness or reported in a paper, where they come from, and whether
 * `leaderboard verify` recomputed them from a per-token NLL dump.
 *
 * Validation is strict: every key is known, every required key is present,
 * types and ranges are checked, and the numbers must agree with one another
 * (perplexity = exp(NLL / words), bucket sums = totals, the official splits
 * use PG-19's own word counts). The first problem found is reported with the
 * JSON path of the offending field ("eval.book_handling: ...").
 *
 * A "reported" entry carries only what its paper published: fields that only
 * a measured run can know (NLL, token and byte counts, buckets, shard hashes,
 * hardware ...) are JSON null there, never invented. Every key must still be
 * present, so "unknown" is always explicit.
 */
#ifndef PG19_LEADERBOARD_RESULTS_H
#define PG19_LEADERBOARD_RESULTS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"

#define LB_SCHEMA "pg19-results/1"
#define LB_MAX_JSON_BYTES ((size_t)1 << 20)  /* a real submission is a few KB */
#define LB_MAX_SHARDS 100000

/* PG-19's own word counts (Rae et al. 2020, Table 2), the `pg19-table2` normaliser. */
#define LB_PG19_VALIDATION_WORDS 3007061LL
#define LB_PG19_TEST_WORDS 6966499LL
/* Books in the official splits of the PG-19 release. */
#define LB_PG19_TRAIN_BOOKS 28602LL
#define LB_PG19_VALIDATION_BOOKS 50LL
#define LB_PG19_TEST_BOOKS 100LL

/* Relative tolerance of the identities between numbers of one file
 * (ppl = exp(nll/words), bucket NLLs sum to the total, ...). Writers print
 * doubles with 17 significant digits, so this only absorbs summation order. */
#define LB_REL_TOL 1e-6

typedef enum {
    LB_SUBMISSION = 0,  /* a results JSON: no provenance, every measured field present */
    LB_REPORTED_SUBMISSION, /* a published result: measured-only fields may be null */
    LB_ENTRY            /* an entry file: provenance decides measured or reported */
} lb_mode;

enum { LB_BUCKETS = 4 };
extern const char *const lb_bucket_names[LB_BUCKETS];
extern const int64_t lb_bucket_min[LB_BUCKETS];
extern const int64_t lb_bucket_max[LB_BUCKETS]; /* -1: no upper bound */

/* Parses a JSON document from memory: at most LB_MAX_JSON_BYTES, valid UTF-8,
 * an object at the top, no duplicate keys, no NUL characters, nothing after
 * it. `name` is used in error messages. */
int lb_parse(const char *buf, size_t len, const char *name, json_t **out, pg_error *err);
/* Reads and parses a file (same rules). */
int lb_load_file(const char *path, json_t **out, pg_error *err);

/* Validates a parsed document in the given mode. */
int lb_validate(const json_t *root, lb_mode mode, const char *name, pg_error *err);

/* Number of Unicode code points of a valid UTF-8 string. */
size_t lb_utf8_len(const char *s);

/* True when |a-b| is within rel_tol of the larger magnitude (or both tiny). */
int lb_close(double a, double b, double rel_tol);

#endif
