/* analyze.c - see analyze.h. */
#include "harness/analyze.h"

#include "harness/dct.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/svg_plot.h"
#include "harness/train_model.h"

enum { MAX_RESULTS_BYTES = 1 << 20 }; /* the leaderboard's cap on a results JSON */

static int get_u64(json_t *obj, const char *key, uint64_t *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_num(json_t *obj, const char *key, double *out)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_number(v) || !isfinite(json_number_value(v)))
        return -1;
    *out = json_number_value(v);
    return 0;
}

int pg_results_summary_load(const char *path, pg_results_summary *out, pg_error *err)
{
    memset(out, 0, sizeof *out);
    snprintf(out->path, sizeof out->path, "%s", path);
    char *text;
    size_t len;
    int rc = pg_read_file(path, MAX_RESULTS_BYTES, &text, &len, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    free(text);
    if (!root)
        return pg_fail(err, PG_EINVAL, "%s: not JSON (line %d: %s)", path, je.line, je.text);
    rc = PG_EINVAL;
    json_t *model = json_object_get(root, "model"), *ev = json_object_get(root, "eval");
    json_t *name = json_object_get(model, "name"), *split = json_object_get(ev, "split");
    json_t *exact = json_object_get(root, "word_ppl_exact");
    json_t *totals = json_object_get(root, "totals");
    json_t *buckets = json_object_get(root, "buckets");
    if (!json_is_string(name) || !json_is_string(split)) {
        pg_fail(err, rc, "%s: model.name or eval.split missing", path);
        goto out;
    }
    snprintf(out->label, sizeof out->label, "%s", json_string_value(name));
    snprintf(out->split, sizeof out->split, "%s", json_string_value(split));
    if (get_u64(exact, "words", &out->words) || get_num(totals, "nll", &out->nll) ||
        out->nll < 0) {
        pg_fail(err, rc, "%s: word_ppl_exact.words or totals.nll missing or invalid", path);
        goto out;
    }
    out->word_ppl_exact = out->words ? exp(out->nll / (double)out->words) : NAN;
    json_t *ctx = json_object_get(root, "context");
    uint64_t w, m, cm, rate = 1;
    json_t *jr = json_object_get(ctx, "compression_rate");
    if (get_u64(ctx, "window", &w) || get_u64(ctx, "memory", &m) ||
        get_u64(ctx, "compressed_memory", &cm) || (!json_is_null(jr) && get_u64(ctx,
        "compression_rate", &rate)) || w > (1 << 20) || m > (1 << 20) || cm > (1 << 20) ||
        rate < 1 || rate > 64) {
        pg_fail(err, rc, "%s: context (window, memory, compressed_memory, compression_rate) "
                "missing or out of range", path);
        goto out;
    }
    out->window = (int)w;
    out->memory = (int)m;
    out->compressed_memory = (int)cm;
    out->compression_rate = (int)rate;
    if (!json_is_array(buckets) || json_array_size(buckets) != PG_N_BUCKETS) {
        pg_fail(err, rc, "%s: buckets must be an array of %d", path, PG_N_BUCKETS);
        goto out;
    }
    uint64_t words = 0;
    double nll = 0.0;
    for (int k = 0; k < PG_N_BUCKETS; k++) {
        json_t *b = json_array_get(buckets, (size_t)k);
        json_t *bn = json_object_get(b, "name");
        if (!json_is_string(bn) || strcmp(json_string_value(bn), pg_bucket_names[k]) != 0) {
            pg_fail(err, rc, "%s: bucket %d must be \"%s\"", path, k, pg_bucket_names[k]);
            goto out;
        }
        if (get_u64(b, "words", &out->bucket_words[k]) ||
            get_num(b, "nll", &out->bucket_nll[k]) || out->bucket_nll[k] < 0 ||
            out->bucket_words[k] > out->words) {
            pg_fail(err, rc, "%s: bucket %s: words or nll missing or invalid", path,
                    pg_bucket_names[k]);
            goto out;
        }
        words += out->bucket_words[k];
        nll += out->bucket_nll[k];
    }
    if (words != out->words || fabs(nll - out->nll) > 1e-6 * fmax(1.0, out->nll)) {
        pg_fail(err, rc, "%s: the buckets do not sum to the totals (words %llu vs %llu)", path,
                (unsigned long long)words, (unsigned long long)out->words);
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    return rc;
}

static double bucket_ppl(const pg_results_summary *r, int k)
{
    return r->bucket_words[k] ? exp(r->bucket_nll[k] / (double)r->bucket_words[k]) : NAN;
}

/* Label text for a table cell or CSV field: no separators or newlines. */
static void clean_label(char *dst, size_t cap, const char *src)
{
    size_t n = 0;
    for (; *src && n + 1 < cap; src++)
        dst[n++] = (*src == '|' || *src == ',' || *src == '\n' || *src == '\r' ||
                    *src == '"') ? ' ' : *src;
    dst[n] = 0;
}

/* Closes a memory stream (which sets *buf and *len) and writes DIR/NAME
 * crash-safe; frees the buffer either way. */
static int write_memstream(const char *dir, const char *name, FILE *f, char **buf, size_t *len,
                           pg_error *err)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (fclose(f) != 0 || !*buf) {
        free(*buf);
        return pg_fail(err, PG_ENOMEM, "%s: out of memory", path);
    }
    int rc = pg_write_file_atomic(path, *buf, *len, err);
    free(*buf);
    return rc;
}

int pg_analyze_rare(const pg_results_summary *runs, int n_runs, const char *out_dir,
                    pg_error *err)
{
    if (n_runs < 1 || n_runs > 16)
        return pg_fail(err, PG_EINVAL, "analyze rare: 1 to 16 results files, not %d", n_runs);
    for (int i = 1; i < n_runs; i++) {
        const pg_results_summary *a = &runs[0], *b = &runs[i];
        int same = strcmp(a->split, b->split) == 0 && a->words == b->words;
        for (int k = 0; k < PG_N_BUCKETS; k++)
            same = same && a->bucket_words[k] == b->bucket_words[k];
        if (!same)
            return pg_fail(err, PG_EINVAL,
                           "analyze rare: %s and %s were not scored over the same words "
                           "(split %s/%s, %llu/%llu words, or other bucket counts): "
                           "their perplexities are not comparable",
                           a->path, b->path, a->split, b->split, (unsigned long long)a->words,
                           (unsigned long long)b->words);
    }
    int rc = pg_mkdirs(out_dir, err);
    if (rc)
        return rc;
    char labels[16][128];
    for (int i = 0; i < n_runs; i++)
        clean_label(labels[i], sizeof labels[i], runs[i].label);

    /* CSV: one row per (run, bucket), then the overall row */
    char *csv = NULL, *md = NULL;
    size_t csv_len = 0, md_len = 0;
    FILE *fc = open_memstream(&csv, &csv_len), *fm = open_memstream(&md, &md_len);
    if (!fc || !fm) {
        if (fc)
            fclose(fc);
        if (fm)
            fclose(fm);
        free(csv);
        free(md);
        return pg_fail(err, PG_ENOMEM, "analyze rare: out of memory");
    }
    fputs("model,bucket,words,nll,word_ppl\n", fc);
    for (int i = 0; i < n_runs; i++) {
        for (int k = 0; k < PG_N_BUCKETS; k++)
            fprintf(fc, "%s,%s,%llu,%.17g,%.17g\n", labels[i], pg_bucket_names[k],
                    (unsigned long long)runs[i].bucket_words[k], runs[i].bucket_nll[k],
                    bucket_ppl(&runs[i], k));
        fprintf(fc, "%s,all,%llu,%.17g,%.17g\n", labels[i], (unsigned long long)runs[i].words,
                runs[i].nll, runs[i].word_ppl_exact);
    }
    /* Markdown: buckets as rows, runs as columns, and the ratio to the first run */
    fprintf(fm, "Word perplexity by training-set frequency of the word (split %s, %llu words; "
                "exact normaliser).\n\n| bucket | words |",
            runs[0].split, (unsigned long long)runs[0].words);
    for (int i = 0; i < n_runs; i++)
        fprintf(fm, " %s |", labels[i]);
    for (int i = 1; i < n_runs; i++)
        fprintf(fm, " %s / %s |", labels[i], labels[0]);
    fputs("\n|---|--:|", fm);
    for (int i = 0; i < 2 * n_runs - 1; i++)
        fputs("--:|", fm);
    fputc('\n', fm);
    for (int k = 0; k <= PG_N_BUCKETS; k++) {
        int all = k == PG_N_BUCKETS;
        fprintf(fm, "| %s | %llu |", all ? "**all**" : pg_bucket_names[k],
                (unsigned long long)(all ? runs[0].words : runs[0].bucket_words[k]));
        for (int i = 0; i < n_runs; i++) {
            double v = all ? runs[i].word_ppl_exact : bucket_ppl(&runs[i], k);
            if (isfinite(v))
                fprintf(fm, v < 1e5 ? " %.2f |" : " %.4g |", v);
            else
                fputs(" — |", fm);
        }
        for (int i = 1; i < n_runs; i++) {
            double a = all ? runs[0].word_ppl_exact : bucket_ppl(&runs[0], k);
            double b = all ? runs[i].word_ppl_exact : bucket_ppl(&runs[i], k);
            if (isfinite(a) && isfinite(b) && a > 0)
                fprintf(fm, " %.3f |", b / a);
            else
                fputs(" — |", fm);
        }
        fputc('\n', fm);
    }
    if ((rc = write_memstream(out_dir, "rare-words.csv", fc, &csv, &csv_len, err))) {
        fclose(fm);
        free(md);
        return rc;
    }
    if ((rc = write_memstream(out_dir, "rare-words.md", fm, &md, &md_len, err)))
        return rc;
    char path[1024];

    /* the chart: one group per bucket and one for all words, a bar per run */
    double y[16][PG_N_BUCKETS + 1];
    pg_plot_series s[16];
    const char *groups[PG_N_BUCKETS + 1];
    for (int k = 0; k < PG_N_BUCKETS; k++)
        groups[k] = pg_bucket_names[k];
    groups[PG_N_BUCKETS] = "all words";
    for (int i = 0; i < n_runs; i++) {
        for (int k = 0; k < PG_N_BUCKETS; k++)
            y[i][k] = bucket_ppl(&runs[i], k);
        y[i][PG_N_BUCKETS] = runs[i].word_ppl_exact;
        s[i] = (pg_plot_series){labels[i], NULL, y[i], PG_N_BUCKETS + 1};
    }
    char title[256];
    snprintf(title, sizeof title, "Word perplexity by word frequency (%s split)", runs[0].split);
    pg_plot p = {.title = title,
                 .x_label = "training-set frequency bucket of the word",
                 .y_label = "word perplexity (log scale)",
                 .log_y = 1};
    snprintf(path, sizeof path, "%s/rare-words.svg", out_dir);
    return pg_svg_bars(path, &p, groups, PG_N_BUCKETS + 1, s, n_runs, err);
}

long pg_results_memory_range(const pg_results_summary *r)
{
    return (long)r->memory + (long)r->compression_rate * r->compressed_memory;
}

static int cmp_range(const void *a, const void *b)
{
    const pg_results_summary *x = *(const pg_results_summary *const *)a;
    const pg_results_summary *y = *(const pg_results_summary *const *)b;
    long rx = pg_results_memory_range(x), ry = pg_results_memory_range(y);
    if (x->memory != y->memory)
        return x->memory < y->memory ? -1 : 1;
    return rx < ry ? -1 : rx > ry;
}

int pg_analyze_sweep(const pg_results_summary *runs, int n_runs, const char *out_dir,
                     pg_error *err)
{
    enum { MAX_RUNS = 256, MAX_LINES = 8 };
    if (n_runs < 1 || n_runs > MAX_RUNS)
        return pg_fail(err, PG_EINVAL, "analyze sweep: 1 to %d runs, not %d", MAX_RUNS, n_runs);
    for (int i = 1; i < n_runs; i++)
        if (strcmp(runs[i].split, runs[0].split) || runs[i].words != runs[0].words)
            return pg_fail(err, PG_EINVAL, "analyze sweep: %s and %s were not scored over the "
                           "same words: not comparable", runs[0].path, runs[i].path);
    const pg_results_summary *sorted[MAX_RUNS];
    for (int i = 0; i < n_runs; i++)
        sorted[i] = &runs[i];
    qsort(sorted, (size_t)n_runs, sizeof sorted[0], cmp_range);
    int rc = pg_mkdirs(out_dir, err);
    if (rc)
        return rc;
    char *csv = NULL;
    size_t csv_len = 0;
    FILE *f = open_memstream(&csv, &csv_len);
    if (!f)
        return pg_fail(err, PG_ENOMEM, "analyze sweep: out of memory");
    fputs("memory,compressed_memory,compression_rate,window,memory_range_tokens,words,nll,"
          "word_ppl\n", f);
    for (int i = 0; i < n_runs; i++) {
        const pg_results_summary *r = sorted[i];
        fprintf(f, "%d,%d,%d,%d,%ld,%llu,%.17g,%.17g\n", r->memory, r->compressed_memory,
                r->compression_rate, r->window, pg_results_memory_range(r),
                (unsigned long long)r->words, r->nll, r->word_ppl_exact);
    }
    if ((rc = write_memstream(out_dir, "sweep.csv", f, &csv, &csv_len, err)))
        return rc;
    char path[1024];
    /* one line per memory size, over the compressed-memory sizes */
    static double xs[MAX_RUNS], ys[MAX_RUNS];
    pg_plot_series s[MAX_LINES];
    char labels[MAX_LINES][64];
    int ns = 0;
    for (int i = 0; i < n_runs && ns < MAX_LINES;) {
        int j = i;
        for (; j < n_runs && sorted[j]->memory == sorted[i]->memory; j++) {
            xs[j] = (double)pg_results_memory_range(sorted[j]);
            ys[j] = sorted[j]->word_ppl_exact;
        }
        snprintf(labels[ns], sizeof labels[ns], "memory %d", sorted[i]->memory);
        s[ns] = (pg_plot_series){labels[ns], xs + i, ys + i, j - i};
        ns++;
        i = j;
    }
    char title[256];
    snprintf(title, sizeof title, "Word perplexity against memory range (%s split, %s)",
             runs[0].split, runs[0].label);
    pg_plot p = {.title = title,
                 .x_label = "tokens the memories represent: memory + rate x compressed memory",
                 .y_label = "word perplexity"};
    snprintf(path, sizeof path, "%s/sweep.svg", out_dir);
    return pg_svg_lines(path, &p, s, ns, err);
}

void pg_memory_analysis_free(pg_memory_analysis *a)
{
    free(a->attn_sum);
    free(a->attn_pairs);
    free(a->win_book);
    free(a->win_index);
    free(a->win_distance);
    free(a->win_decided);
    memset(a, 0, sizeof *a);
}

/* Appends one window's reading distance and the window's eviction decisions
 * (arrays grow by doubling). */
static int push_window(pg_memory_analysis *a, uint64_t *cap, uint64_t book, uint64_t index,
                       uint64_t distance, uint64_t decided, uint64_t kept, pg_error *err)
{
    if (a->n_windows == *cap) {
        uint64_t nc = *cap ? 2 * *cap : 1024;
        uint64_t *b = realloc(a->win_book, nc * sizeof *b);
        if (b)
            a->win_book = b;
        uint64_t *i = b ? realloc(a->win_index, nc * sizeof *i) : NULL;
        if (i)
            a->win_index = i;
        uint64_t *d = i ? realloc(a->win_distance, nc * sizeof *d) : NULL;
        if (d)
            a->win_distance = d;
        uint64_t *k = d ? realloc(a->win_decided, 2 * nc * sizeof *k) : NULL;
        if (!k)
            return pg_fail(err, PG_ENOMEM, "analysis: out of memory for %llu windows",
                           (unsigned long long)nc);
        /* win_decided holds [cap] decided, then [cap] kept: move the kept half */
        if (*cap)
            memmove(k + nc, k + *cap, *cap * sizeof *k);
        a->win_decided = k;
        a->win_kept = k + nc;
        *cap = nc;
    }
    a->win_decided[a->n_windows] = decided;
    a->win_kept[a->n_windows] = kept;
    a->win_book[a->n_windows] = book;
    a->win_index[a->n_windows] = index;
    a->win_distance[a->n_windows] = distance;
    a->n_windows++;
    return 0;
}

int pg_analyze_memory(const pg_model *m, const pg_book_source *src, uint64_t max_tokens_per_book,
                      pg_memory_analysis *out, pg_error *err)
{
    const pg_model_config *c = &m->cfg;
    memset(out, 0, sizeof *out);
    if (src->vocab_size > (uint32_t)c->vocab_size || src->bos_id >= (uint32_t)c->vocab_size)
        return pg_fail(err, PG_EINVAL, "the shards' vocabulary (%u ids) does not fit model %s "
                       "(vocab_size %d)", src->vocab_size, c->name, c->vocab_size);
    out->n_layer = c->n_layer;
    out->n_head = c->n_head;
    out->n_cm = c->compressed_memory;
    out->n_m = c->memory;
    out->window = c->window;
    out->rate = c->compressed_memory > 0 ? c->compression_rate : 1;
    out->n_pos = out->n_cm + out->n_m + out->window;
    size_t W = (size_t)c->window;
    out->attn_sum = calloc((size_t)c->n_layer * (size_t)out->n_pos, sizeof(double));
    out->attn_pairs = calloc((size_t)c->n_layer, sizeof(uint64_t));
    uint32_t *in = malloc((W + 1) * sizeof *in), *tgt = in ? in + 1 : NULL;
    /* start token of each block in the compressed memory, oldest first (a
     * DCT's kept blocks need not be contiguous, so the reading distance is
     * measured from the oldest one, not computed from lengths) */
    int n_cm = out->n_cm, fifo_n = 0;
    uint64_t *fifo = calloc((size_t)n_cm + 1, sizeof *fifo);
    uint8_t *all = malloc(W / (size_t)out->rate + (size_t)c->memory / (size_t)out->rate + 1);
    pg_tstate *s = NULL;
    pg_dct *judge = NULL;
    int rc = 0;
    if (!out->attn_sum || !out->attn_pairs || !in || !fifo || !all) {
        rc = pg_fail(err, PG_ENOMEM, "analysis: out of memory");
        goto done;
    }
    memset(all, 1, W / (size_t)out->rate + (size_t)c->memory / (size_t)out->rate + 1);
    out->is_dct = pg_model_is_dct(c);
    if ((rc = pg_tstate_new(m, 1, &s, err)) ||
        (out->is_dct && (rc = pg_dct_new(m, 1, c->window, PG_DCT_GREEDY, 0, 0, &judge, err))))
        goto done;
    uint64_t cap = 0;
    for (uint64_t bi = 0; bi < src->n_books; bi++) {
        pg_eval_book book;
        if ((rc = src->book(src->ctx, bi, &book, err)))
            goto done;
        uint64_t n = book.n_tokens;
        if (max_tokens_per_book && n > max_tokens_per_book)
            n = max_tokens_per_book;
        pg_tstate_reset_slot(s, 0);
        if (judge)
            pg_dct_reset_slot(judge, 0);
        fifo_n = 0;
        /* the model sees BOS, then token t-1 to predict token t: in[0] is
         * the token before the window (BOS at the book's start), tgt the
         * window's tokens, so the window's inputs are in[0 .. len-1] */
        in[0] = src->bos_id;
        for (uint64_t t0 = 0, wi = 0; t0 < n; t0 += W, wi++) {
            int len = (int)(n - t0 < W ? n - t0 : W);
            if ((rc = src->tokens(src->ctx, bi, t0, (uint64_t)len, tgt, err)))
                goto done;
            int cm = 0, mm = 0;
            const float *p;
            pg_window_stats st = {0};
            uint32_t last = tgt[len - 1];
            /* the blocks this window evicts, and which of them enter the
             * compressed memory: all for a CT, the greedy judge's for a DCT */
            int g = pg_tstate_evicted_blocks(s, 0, len);
            const uint8_t *keep = all;
            if (judge) {
                int ng;
                if ((rc = pg_dct_decide(judge, in, &len, &keep, &ng, err)) ||
                    (rc = pg_tstate_set_keep(s, 0, keep, ng, err)))
                    goto done;
                g = ng;
            }
            if ((rc = pg_train_window(m, NULL, s, in, tgt, &len, &st, err)))
                goto done;
            /* the memories' lengths this window attended over (before its update) */
            for (int l = 0; l < c->n_layer; l++)
                for (int h = 0; h < c->n_head; h++) {
                    int lcm, lmm;
                    int rows = pg_tstate_attention(s, l, 0, h, &p, &lcm, &lmm);
                    int K = lcm + lmm + rows;
                    double *sum = out->attn_sum + (size_t)l * out->n_pos;
                    for (int i = 0; i < rows; i++)
                        for (int j = 0; j < K; j++) {
                            int pos = j < lcm        ? out->n_cm - lcm + j
                                      : j < lcm + lmm ? out->n_cm + out->n_m - lmm + (j - lcm)
                                                     : out->n_cm + out->n_m + (j - lcm - lmm);
                            sum[pos] += p[(size_t)i * K + j];
                        }
                    out->attn_pairs[l] += (uint64_t)rows;
                    if (l == 0 && h == 0) {
                        cm = lcm;
                        mm = lmm;
                    }
                }
            /* reading distance: back from the window's first token to the
             * oldest token represented, the first token of the oldest
             * compressed block or else the oldest memory row */
            uint64_t oldest = fifo_n ? fifo[0] : t0 - (uint64_t)mm;
            uint64_t kept = 0;
            for (int j = 0; j < g; j++) {
                if (!keep[j])
                    continue;
                kept++;
                if (fifo_n == n_cm) {
                    memmove(fifo, fifo + 1, sizeof *fifo * (size_t)(n_cm - 1));
                    fifo_n--;
                }
                fifo[fifo_n++] = t0 - (uint64_t)mm + (uint64_t)j * (uint64_t)out->rate;
            }
            (void)cm;
            if ((rc = push_window(out, &cap, bi, wi, t0 - oldest, (uint64_t)g, kept, err)))
                goto done;
            in[0] = last;
            /* in[1..] (= tgt) is overwritten by the next window's tokens */
        }
    }
done:
    pg_tstate_free(s);
    pg_dct_free(judge);
    free(fifo);
    free(all);
    free(in);
    if (rc)
        pg_memory_analysis_free(out);
    return rc;
}

static const char *region_of(const pg_memory_analysis *a, int pos, int *offset)
{
    if (pos < a->n_cm) {
        *offset = pos - a->n_cm; /* -1 = the newest compressed row */
        return "compressed_memory";
    }
    if (pos < a->n_cm + a->n_m) {
        *offset = pos - a->n_cm - a->n_m;
        return "memory";
    }
    *offset = pos - a->n_cm - a->n_m;
    return "window";
}

int pg_memory_analysis_write(const pg_memory_analysis *a, const char *model_name,
                             const char *out_dir, pg_error *err)
{
    int rc = pg_mkdirs(out_dir, err);
    if (rc)
        return rc;
    int L = a->n_layer, P = a->n_pos;
    double *mean = calloc((size_t)(L + 1) * (size_t)P, sizeof *mean), *xs = calloc((size_t)P, sizeof *xs);
    if (!mean || !xs) {
        free(mean);
        free(xs);
        return pg_fail(err, PG_ENOMEM, "analysis: out of memory");
    }
    /* per layer: sum / pairs; the last row: the mean over layers */
    for (int l = 0; l < L; l++)
        for (int pos = 0; pos < P; pos++) {
            double v = a->attn_pairs[l] ? a->attn_sum[(size_t)l * P + pos] / (double)a->attn_pairs[l]
                                        : NAN;
            mean[(size_t)l * P + pos] = v;
            mean[(size_t)L * P + pos] += v / L;
        }
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f) {
        free(mean);
        free(xs);
        return pg_fail(err, PG_ENOMEM, "analysis: out of memory");
    }
    fputs("layer,position,region,offset,mean_attention\n", f);
    for (int l = 0; l <= L; l++)
        for (int pos = 0; pos < P; pos++) {
            int off;
            const char *reg = region_of(a, pos, &off);
            if (l < L)
                fprintf(f, "%d,%d,%s,%d,%.9g\n", l, pos, reg, off, mean[(size_t)l * P + pos]);
            else
                fprintf(f, "mean,%d,%s,%d,%.9g\n", pos, reg, off, mean[(size_t)l * P + pos]);
        }
    rc = write_memstream(out_dir, "attention.csv", f, &buf, &len, err);
    if (!rc) {
        enum { MAX_LINES = 8 };
        pg_plot_series s[MAX_LINES + 1];
        char labels[MAX_LINES + 1][32];
        int ns = 0;
        for (int pos = 0; pos < P; pos++)
            xs[pos] = pos;
        for (int l = 0; l < L && ns < MAX_LINES; l++) {
            snprintf(labels[ns], sizeof labels[ns], "layer %d", l);
            s[ns] = (pg_plot_series){labels[ns], xs, mean + (size_t)l * P, P};
            ns++;
        }
        snprintf(labels[ns], sizeof labels[ns], "mean over %d layers", L);
        s[ns] = (pg_plot_series){labels[ns], xs, mean + (size_t)L * P, P};
        ns++;
        double b0[3] = {0, a->n_cm, a->n_cm + a->n_m}, b1[3] = {a->n_cm, a->n_cm + a->n_m, P - 1};
        const char *bl[3] = {"compressed memory", "memory", "window"};
        int first = a->n_cm > 0 ? 0 : a->n_m > 0 ? 1 : 2;
        char title[256];
        snprintf(title, sizeof title, "Average attention by memory position (%s)", model_name);
        pg_plot p = {.title = title,
                     .x_label = "key position: compressed memory | memory | window (oldest left)",
                     .y_label = "mean attention weight (log scale)",
                     .log_y = 1,
                     .n_bands = 3 - first,
                     .band_x0 = b0 + first,
                     .band_x1 = b1 + first,
                     .band_label = bl + first};
        char path[1024];
        snprintf(path, sizeof path, "%s/attention.svg", out_dir);
        rc = pg_svg_lines(path, &p, s, ns, err);
    }
    free(mean);
    free(xs);
    if (rc)
        return rc;

    /* reading distance: every window, then the first book and the split's mean by window */
    buf = NULL;
    len = 0;
    if (!(f = open_memstream(&buf, &len)))
        return pg_fail(err, PG_ENOMEM, "analysis: out of memory");
    fputs("book,window,start_token,reading_distance,blocks_evicted,blocks_kept\n", f);
    uint64_t max_w = 0, decided = 0, kept = 0;
    for (uint64_t i = 0; i < a->n_windows; i++) {
        fprintf(f, "%llu,%llu,%llu,%llu,%llu,%llu\n", (unsigned long long)a->win_book[i],
                (unsigned long long)a->win_index[i],
                (unsigned long long)(a->win_index[i] * (uint64_t)a->window),
                (unsigned long long)a->win_distance[i], (unsigned long long)a->win_decided[i],
                (unsigned long long)a->win_kept[i]);
        decided += a->win_decided[i];
        kept += a->win_kept[i];
        if (a->win_index[i] + 1 > max_w)
            max_w = a->win_index[i] + 1;
    }
    if ((rc = write_memstream(out_dir, "distance.csv", f, &buf, &len, err)))
        return rc;
    if (max_w == 0)
        return 0;
    double *first = calloc(max_w, sizeof *first), *avg = calloc(max_w, sizeof *avg);
    double *cnt = calloc(max_w, sizeof *cnt), *wx = calloc(max_w, sizeof *wx);
    if (!first || !avg || !cnt || !wx) {
        rc = pg_fail(err, PG_ENOMEM, "analysis: out of memory");
        goto free_d;
    }
    for (uint64_t w = 0; w < max_w; w++) {
        first[w] = NAN;
        wx[w] = (double)(w * (uint64_t)a->window);
    }
    for (uint64_t i = 0; i < a->n_windows; i++) {
        uint64_t w = a->win_index[i];
        if (a->win_book[i] == a->win_book[0])
            first[w] = (double)a->win_distance[i];
        avg[w] += (double)a->win_distance[i];
        cnt[w] += 1.0;
    }
    for (uint64_t w = 0; w < max_w; w++)
        avg[w] = cnt[w] > 0 ? avg[w] / cnt[w] : NAN;
    {
        pg_plot_series s[2] = {{"first book", wx, first, (int)max_w},
                               {"mean over the split's books", wx, avg, (int)max_w}};
        char title[256], path[1024];
        if (a->is_dct && decided)
            snprintf(title, sizeof title, "Reading distance (%s; the judge kept %.1f%% of %llu "
                     "evicted blocks)", model_name, 100.0 * (double)kept / (double)decided,
                     (unsigned long long)decided);
        else
            snprintf(title, sizeof title, "Reading distance (%s)", model_name);
        pg_plot p = {.title = title,
                     .x_label = "position of the window in its book (tokens)",
                     .y_label = "tokens back to the oldest one in memory"};
        snprintf(path, sizeof path, "%s/distance.svg", out_dir);
        rc = pg_svg_lines(path, &p, s, 2, err);
    }
free_d:
    free(first);
    free(avg);
    free(cnt);
    free(wx);
    return rc;
}
