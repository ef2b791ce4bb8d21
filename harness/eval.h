/* eval.h - scores books with a model: every token exactly once, from the
 * book's first token, memories reset per book and carried between windows.
 *
 * Books come from a pg_book_source (the shard reader through a thin adapter
 * in main.c, or arrays in the tests). Several books run side by side, one
 * per state slot; a slot that finishes its book takes the next one.
 * Per-token NLLs are attributed to words (word-start flags) and to the
 * rare-word buckets of harness/RESULTS.md (training frequency of the word).
 * Totals are summed per book and then over books in book order, so they do
 * not depend on the batching or the thread count.
 */
#ifndef PG19_HARNESS_EVAL_H
#define PG19_HARNESS_EVAL_H

#include <stdint.h>

#include "common/error.h"
#include "harness/backend.h"
#include "harness/model.h"

typedef struct pg_eval_book {
    uint64_t book_id, n_tokens, n_words, n_bytes;
} pg_eval_book;

typedef struct pg_book_source {
    void *ctx;
    uint64_t n_books;
    uint32_t vocab_size, bos_id;
    int (*book)(void *ctx, uint64_t i, pg_eval_book *out, pg_error *err);
    int (*tokens)(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint32_t *dst,
                  pg_error *err);
    int (*word_starts)(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint8_t *dst,
                       pg_error *err);
    int (*word_freqs)(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint64_t *dst,
                      pg_error *err);
} pg_book_source;

enum { PG_BUCKET_FREQUENT, PG_BUCKET_COMMON, PG_BUCKET_MEDIUM, PG_BUCKET_RARE, PG_N_BUCKETS };
extern const char *const pg_bucket_names[PG_N_BUCKETS];
extern const uint64_t pg_bucket_min[PG_N_BUCKETS]; /* half-open [min, max) */
int pg_bucket_of(uint64_t freq);

typedef struct pg_eval_totals {
    uint64_t tokens, words, bytes;
    double nll;
    uint64_t bucket_tokens[PG_N_BUCKETS], bucket_words[PG_N_BUCKETS];
    double bucket_nll[PG_N_BUCKETS];
} pg_eval_totals;

typedef struct pg_eval_opts {
    int batch;                    /* books side by side (state slots) */
    int window;                   /* tokens per forward; 0 = the config's window */
    uint64_t max_tokens_per_book; /* 0 = whole books; else score only this prefix */
    int keep_nll;                 /* keep every token's NLL (for the dump) */
    int progress;                 /* draw progress (common/progress.h) */
    pg_backend *backend;          /* where the forward runs; NULL: a CPU backend of
                                     `batch` slots, opened and freed by pg_evaluate */
} pg_eval_opts;

typedef struct pg_eval_result {
    pg_eval_totals tot;
    uint64_t n_books;
    uint64_t *book_ids, *book_tokens; /* [n_books], tokens scored per book */
    float *nll;                       /* [tot.tokens] books in order, if keep_nll */
    pg_eval_totals *book_tot;         /* [n_books] totals of each book */
    double seconds, flops;
} pg_eval_result;

int pg_evaluate(const pg_model *m, const pg_book_source *src, const pg_eval_opts *opts,
                pg_eval_result *res, pg_error *err);
void pg_eval_result_free(pg_eval_result *res);
/* res->tot = the sum of res->book_tot in book order (so that totals do not
 * depend on batching, threads or how books were spread over processes). */
void pg_eval_sum_books(pg_eval_result *res);

/* Writes the PG19NLL1 dump of harness/RESULTS.md (crash-safe); sha256 of the
 * file into sha (may be NULL). Needs keep_nll. */
int pg_nll_dump_write(const char *path, const pg_eval_result *res, uint8_t sha[32],
                      pg_error *err);

#endif
