/* results.h - the results JSON (`pg19-results/1`, harness/RESULTS.md) and
 * the readable table of one evaluation. */
#ifndef PG19_HARNESS_RESULTS_H
#define PG19_HARNESS_RESULTS_H

#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "harness/eval.h"
#include "harness/model.h"
#include "shards/pg19_official.h"

#define PG_HARNESS_NAME "pg19-harness"
#define PG_HARNESS_VERSION "0.1.0"

/* PG-19's own word counts (Rae et al. 2020, Table 2). */
#define PG19_TABLE2_VALIDATION_WORDS 3007061ull
#define PG19_TABLE2_TEST_WORDS 6966499ull

typedef struct pg_run_info {
    const pg_model_config *cfg;
    uint64_t params;
    uint8_t config_sha[32];
    int has_weights;           /* else random init */
    uint8_t weights_sha[32];
    int has_weights_vocab;     /* the weights name their vocabulary (metadata) */
    uint8_t weights_vocab_sha[32];
    uint64_t seed;
    const char *tokenizer_name;
    uint32_t vocab_size;
    uint8_t vocab_sha[32];
    const char *split;
    uint64_t split_books;      /* books in the split's shards (before --max-books) */
    pg19_classification books; /* the evaluated books against PG-19's file list */
    int window;
    uint64_t prefix_tokens;    /* 0: whole books */
    size_t n_shards;
    const char **shard_files;  /* base names */
    const uint8_t (*shard_sha)[32];
    int threads;
    const char *gpu;           /* hardware.gpu: the card and precision, or NULL (CPU) */
    int dct;                   /* a DCT: context.judge is written */
    const char *dct_policy;    /* greedy, sample, compress, discard */
    int dct_has_seed;
    uint64_t dct_seed, dct_decided, dct_kept; /* decided 0: not counted (MPI) */
    const char *nll_dump_file; /* base name, or NULL */
    uint8_t nll_dump_sha[32];
} pg_run_info;

/* 1 when the run scored every token of exactly PG-19's books of its split,
 * byte for byte (ri->books.kind official; see shards/pg19_official.h). */
int pg_run_is_official(const pg_run_info *ri, const pg_eval_result *res);
int pg_results_write_json(const char *path, const pg_run_info *ri, const pg_eval_result *res,
                          pg_error *err);
void pg_results_print_table(FILE *f, const pg_run_info *ri, const pg_eval_result *res);
/* "model name" of /proc/cpuinfo, or "unknown". */
void pg_cpu_name(char *buf, size_t cap);

#endif
