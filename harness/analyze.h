/* analyze.h - `harness analyze`: the analyses that make long-memory models
 * understandable, written as CSV, Markdown and SVG (common/svg_plot.h).
 *
 *   rare: word perplexity per rare-word bucket (harness/RESULTS.md) of
 *         several results JSONs side by side (for example ct-small against
 *         txl-small), as a table and a grouped bar chart. Runs are compared
 *         only over the same words: every run must have the same split,
 *         total word count and per-bucket word counts, else the comparison
 *         is refused (a perplexity over other words is not comparable).
 *   sweep: word perplexity against the memory sizes used at evaluation
 *         (`harness run --memory N --compressed-memory N` over a grid; the
 *         paper tunes the compressed memory at evaluation), plotted against
 *         the temporal range of the memories in tokens, n_m + c * n_cm.
 */
#ifndef PG19_HARNESS_ANALYZE_H
#define PG19_HARNESS_ANALYZE_H

#include <stdint.h>

#include "common/error.h"
#include "harness/eval.h"

/* What the rare-word comparison reads from one results JSON. */
typedef struct pg_results_summary {
    char path[512];
    char label[128];  /* the model name unless the caller sets another */
    char split[16];
    uint64_t words;   /* word_ppl_exact.words */
    double nll, word_ppl_exact;
    uint64_t bucket_words[PG_N_BUCKETS];
    double bucket_nll[PG_N_BUCKETS];
    int window, memory, compressed_memory, compression_rate; /* "context"; rate 1 for a TXL */
} pg_results_summary;

/* Reads and checks the fields above (bucket names in RESULTS.md order, word
 * counts and NLLs consistent with the totals). */
int pg_results_summary_load(const char *path, pg_results_summary *out, pg_error *err);

/* Writes DIR/rare-words.csv, DIR/rare-words.md and DIR/rare-words.svg. */
int pg_analyze_rare(const pg_results_summary *runs, int n_runs, const char *out_dir,
                    pg_error *err);

/* Tokens of the past the memories can represent: n_m + c * n_cm. */
long pg_results_memory_range(const pg_results_summary *r);

/* Writes DIR/sweep.csv and DIR/sweep.svg from the runs of one grid (same
 * model and words; each run's context gives its sizes). */
int pg_analyze_sweep(const pg_results_summary *runs, int n_runs, const char *out_dir,
                     pg_error *err);

#endif
