/* verify.h - recompute an entry's metrics from a per-token NLL dump and the shards.
 *
 * `leaderboard verify` trusts nothing in the entry: it lists the split's
 * shard files, hashes and opens each one with full checksum verification,
 * matches every book of the dump to a book of the shards (each shard book
 * scored exactly once, with the same token count), and then, token by token,
 * adds each NLL to its word and each word to its training-frequency bucket
 * using the shards' word-start flags and word frequencies. The entry is
 * marked "consistent" only if every recomputed number agrees with it (counts
 * exactly, NLLs and perplexities within LB_REL_TOL) and the shard, vocabulary
 * and dump hashes match. That is arithmetic: "verified" needs a re-run of
 * the model (reproduce.h).
 */
#ifndef PG19_LEADERBOARD_VERIFY_H
#define PG19_LEADERBOARD_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "leaderboard/nll_dump.h"
#include "leaderboard/results.h"

#define LB_VERIFY_TOOL "pg19-leaderboard-verify/1"

/* What the dump and shards say. */
typedef struct lb_metrics {
    uint64_t books, tokens, words, bytes;
    double nll;
    uint64_t bucket_words[LB_BUCKETS], bucket_tokens[LB_BUCKETS];
    double bucket_nll[LB_BUCKETS];
    uint32_t vocab_size;
    uint8_t vocab_sha256[32];
    size_t n_shards;
    char (*shard_file)[64];   /* base names */
    char (*shard_sha256)[65]; /* hex */
    /* the shards' books (id, bytes, text SHA-256) against PG-19's file list */
    int book_set;             /* PG19_BOOKS_* (shards/pg19_official.h) */
    char books_sha256[65];    /* hex digest of the books */
    char book_set_reason[200];
} lb_metrics;

typedef struct lb_verify_report {
    char **mismatch;   /* one line per disagreement */
    size_t n_mismatch;
    size_t n_checks;
    uint64_t books, tokens, words;
    const char *status;        /* the entry's status after success: "consistent" or "verified" */
    int reproduced;            /* the re-run matched the dump */
    uint64_t rerun_books, rerun_tokens;
    double max_abs_deviation;  /* of the re-run from the dump */
} lb_verify_report;

struct lb_reproduce_opts;

/* Bucket index of a word with training frequency f. */
int lb_bucket_of(uint64_t f);

/* Recomputes the metrics of `split` from the dump and the shards in dir.
 * prefix_tokens = 0: every token of every book was scored (book_handling
 * "whole" or "chunked"); else only the first prefix_tokens of each book
 * ("prefix"), whose bytes are unknown (m->bytes = 0). */
int lb_recompute(const lb_nll_dump *dump, const char *shards_dir, const char *split,
                 uint64_t prefix_tokens, lb_metrics *m, pg_error *err);
void lb_metrics_free(lb_metrics *m);

/* Compares a validated measured entry with recomputed metrics; every
 * disagreement is one line of rep. nll_sha256: hex SHA-256 of the dump. */
int lb_compare(const json_t *entry, const lb_metrics *m, const char *nll_sha256,
               lb_verify_report *rep, pg_error *err);

/* The whole command: load and validate the entry, recompute, compare, and on
 * full agreement rewrite the entry atomically with provenance.status
 * "consistent" and its consistency record (a reproduction of this same dump
 * is kept, of another dump dropped). Returns 0 with rep->n_mismatch > 0 when
 * the numbers disagree (the entry is left untouched); a negative code when
 * the inputs cannot be read or are inconsistent with the shards. */
int lb_verify_entry(const char *entry_path, const char *nll_path, const char *shards_dir,
                    lb_verify_report *rep, pg_error *err);
/* The same, and with ro (weights and config) then re-runs the harness
 * (reproduce.h) on all or a sample of the books; only if every per-token
 * NLL is within the tolerance does the entry become "verified", with its
 * reproduction record. A failed re-run leaves the entry untouched. */
int lb_verify_entry_reproduce(const char *entry_path, const char *nll_path,
                              const char *shards_dir, const struct lb_reproduce_opts *ro,
                              lb_verify_report *rep, pg_error *err);
void lb_verify_report_free(lb_verify_report *rep);

#endif
