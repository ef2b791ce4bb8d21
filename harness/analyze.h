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
 *   attention: the average attention weight that queries give to each
 *         position of [compressed memory, memory, window] (Rae et al. 2020,
 *         Figure 2), per layer and averaged over layers, over a split. Keys
 *         are aligned to full memories: compressed-memory and memory rows
 *         are numbered from the newest (right-aligned), window keys from the
 *         window's start, so a position means the same age in every window.
 *         The average is over every (query, head) pair: a causal query gives
 *         0 to the window keys after it.
 *   distance: per window, the reading distance: how far back from the
 *         window's first token the oldest token still represented in the
 *         memories reaches (DCT paper, Figure 2): the first token of the
 *         oldest block in the compressed memory, else the oldest memory row
 *         (for a CT n_m + c n_cm for the lengths at that window; a DCT's kept
 *         blocks need not be contiguous, so the blocks are tracked); over a
 *         book and averaged over the books of a split by window index. For a
 *         DCT (greedy judge, as `harness run`) also the evicted blocks and
 *         the fraction kept.
 * Both run the training forward (harness/train_model.h) without gradients:
 * it keeps each window's attention probabilities.
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

typedef struct pg_memory_analysis {
    int n_layer, n_head, n_cm, n_m, window, rate, n_pos; /* n_pos = n_cm + n_m + window */
    double *attn_sum;        /* [n_layer][n_pos] weight summed over (query, head) pairs */
    uint64_t *attn_pairs;    /* [n_layer] (query, head) pairs */
    /* reading distance of every window, books in order */
    uint64_t n_windows;
    uint64_t *win_book;      /* [n_windows] book index */
    uint64_t *win_index;     /* [n_windows] window number within its book */
    uint64_t *win_distance;  /* [n_windows] tokens back to the oldest one represented */
    uint64_t *win_decided;   /* [n_windows] evicted blocks after the window (compressible) */
    uint64_t *win_kept;      /* [n_windows] of those, kept in the compressed memory */
    int is_dct;              /* the blocks kept were the greedy judge's choice */
} pg_memory_analysis;

/* Runs the model over the books of src (each from its first token, windows
 * of the config's size, memories reset per book; max_tokens_per_book 0 =
 * whole books) and fills out. m must have the training forward's shapes
 * (any harness model). */
int pg_analyze_memory(const pg_model *m, const pg_book_source *src, uint64_t max_tokens_per_book,
                      pg_memory_analysis *out, pg_error *err);
void pg_memory_analysis_free(pg_memory_analysis *a);
/* DIR/attention.{csv,svg} and DIR/distance.{csv,svg}. */
int pg_memory_analysis_write(const pg_memory_analysis *a, const char *model_name,
                             const char *out_dir, pg_error *err);

#endif
