/* bench.c - `harness bench`: the forward against a replay of its own sgemm
 * calls (see bench.h). */
#include "harness/bench.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/progress.h"

#define BENCH_MIN_PAIRS 5
#define BENCH_STABLE_IQR 0.10
/* most windows one --serve request may ask for */
#define BENCH_SERVE_MAX 100000
/* the forward's output-column chunk (model.c MATMUL_CHUNK) */
#define REPLAY_CHUNK 256

/* One matrix product of a window, per slot: out[M, N] (+)= in[M, K] w[N, K]^T
 * cut into REPLAY_CHUNK-column tasks, or (w == NULL) the attention of H heads,
 * one task per head. */
typedef struct product {
    const float *w;
    int M, K, N, accumulate;
} product;

typedef struct replay {
    const pg_model_config *c;
    int B, W, span, nt, n_prod;
    product *prod;
    float *in, *out, *k, *v, *r; /* per slot (r shared) */
    float *qu, *ac;                   /* per thread */
    size_t in_n, out_n, kv_n;
    double flops; /* per round */
} replay;

static void replay_free(replay *r)
{
    if (!r)
        return;
    free(r->prod);
    free(r->in);
    free(r->out);
    free(r->k);
    free(r->v);
    free(r->r);
    free(r->qu);
    free(r->ac);
    free(r);
}

static int max_int(int a, int b)
{
    return a > b ? a : b;
}

static float *alloc_filled(size_t n)
{
    float *p = malloc(sizeof(float) * (n ? n : 1));
    if (p)
        for (size_t i = 0; i < n; i++)
            p[i] = 0.01f * (float)(i % 7) - 0.03f;
    return p;
}

/* The products of one steady-state window (memories full), in the
 * forward's order: per layer q, k, v, attention, compression (conv: one
 * product of W/c rows over K = d c, then the compressed rows' keys and
 * values), o, W1, W2; then the logits. */
static int replay_new(const pg_model *m, int B, int W, int nt, replay **out, pg_error *err)
{
    const pg_model_config *c = &m->cfg;
    replay *r = calloc(1, sizeof *r);
    if (!r)
        return pg_fail(err, PG_ENOMEM, "bench: out of memory");
    int d = c->d_model, HD = c->n_head * c->d_head, L = c->n_layer;
    int conv = c->compression == PG_COMPRESS_CONV || c->compression == PG_COMPRESS_DILATED_CONV;
    int compress = c->compressed_memory > 0 && W >= c->compression_rate;
    int g = compress ? W / c->compression_rate : 0;
    r->c = c;
    r->B = B;
    r->W = W;
    r->nt = nt;
    r->span = c->compressed_memory + c->memory + W;
    r->prod = calloc((size_t)L * 10 + 1, sizeof *r->prod);
    r->in_n = (size_t)W * max_int(max_int(d, HD), max_int(c->d_ff, d * c->compression_rate));
    r->out_n = (size_t)W * max_int(max_int(c->vocab_size, c->d_ff), max_int(d, HD));
    r->kv_n = (size_t)r->span * HD;
    r->in = alloc_filled(r->in_n * B);
    r->out = alloc_filled(r->out_n * B);
    r->k = alloc_filled(r->kv_n * B);
    r->v = alloc_filled(r->kv_n * B);
    r->r = alloc_filled(r->kv_n);
    r->qu = alloc_filled((size_t)nt * W * c->d_head);
    r->ac = alloc_filled((size_t)nt * 2 * W * r->span);
    if (!r->prod || !r->in || !r->out || !r->k || !r->v || !r->r || !r->qu ||
        !r->ac) {
        replay_free(r);
        return pg_fail(err, PG_ENOMEM, "bench: out of memory for the sgemm replay");
    }
    int n = 0;
    for (int l = 0; l < L; l++) {
        const pg_layer_params *lp = &m->layers[l];
        r->prod[n++] = (product){lp->wq, W, d, HD, 0};
        r->prod[n++] = (product){lp->wk, W, d, HD, 0};
        r->prod[n++] = (product){lp->wv, W, d, HD, 0};
        r->prod[n++] = (product){NULL, W, c->d_head, r->span, 0};
        if (compress && conv) /* one product over K = d c (model.c compress_block) */
            r->prod[n++] = (product){lp->cw, g, d * c->compression_rate, d, 0};
        if (compress) {
            r->prod[n++] = (product){lp->wk, g, d, HD, 0};
            r->prod[n++] = (product){lp->wv, g, d, HD, 0};
        }
        r->prod[n++] = (product){lp->wo, W, HD, d, 1};
        r->prod[n++] = (product){lp->w1, W, d, c->d_ff, 0};
        r->prod[n++] = (product){lp->w2, W, c->d_ff, d, 1};
    }
    r->prod[n++] = (product){m->tok_emb, W, d, c->vocab_size, 0};
    r->n_prod = n;
    for (int i = 0; i < n; i++) {
        const product *p = &r->prod[i];
        r->flops += p->w ? 2.0 * p->M * (double)p->K * p->N
                         : 3.0 * 2.0 * p->M * (double)p->N * p->K * c->n_head;
    }
    r->flops *= B;
    *out = r;
    return 0;
}

static int n_tasks(const replay *r, const product *p)
{
    return p->w ? (p->N + REPLAY_CHUNK - 1) / REPLAY_CHUNK : r->c->n_head;
}

/* Task `task` of product p for slot b, on scratch of thread tid: the same
 * cblas_sgemm calls as model.c's matmul_segs and attention_head. */
static void exec(replay *r, const product *p, int b, int task, int tid)
{
    float *in = r->in + (size_t)b * r->in_n, *out = r->out + (size_t)b * r->out_n;
    if (p->w) {
        int n0 = task * REPLAY_CHUNK, n1 = n0 + REPLAY_CHUNK < p->N ? n0 + REPLAY_CHUNK : p->N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, p->M, n1 - n0, p->K, 1.0f, in, p->K,
                    p->w + (size_t)n0 * p->K, p->K, p->accumulate ? 1.0f : 0.0f, out + n0, p->N);
        return;
    }
    int HD = r->c->n_head * r->c->d_head, dh = p->K, K = p->N, L = p->M, h = task;
    float *qu = r->qu + (size_t)tid * r->W * dh, *ac = r->ac + (size_t)tid * 2 * r->W * r->span;
    float *bd = ac + (size_t)r->W * r->span;
    const float *k = r->k + (size_t)b * r->kv_n + h * dh, *v = r->v + (size_t)b * r->kv_n + h * dh;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, K, dh, 1.0f, qu, dh, k, HD, 0.0f, ac,
                K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, K, dh, 1.0f, qu, dh, r->r + h * dh,
                HD, 0.0f, bd, K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, dh, K, 1.0f, ac, K, v, HD, 0.0f,
                out + h * dh, HD);
}

/* One window's products for all slots, threaded as pg_forward threads
 * them: a slot per thread when there are enough slots, else the threads
 * share each product's (slot, task) list. */
static void replay_round(replay *r)
{
    if (r->nt > 1 && r->B >= r->nt) {
#pragma omp parallel for num_threads(r->nt) schedule(dynamic, 1)
        for (int b = 0; b < r->B; b++)
            for (int i = 0; i < r->n_prod; i++)
                for (int t = 0; t < n_tasks(r, &r->prod[i]); t++)
                    exec(r, &r->prod[i], b, t, omp_get_thread_num());
        return;
    }
    for (int i = 0; i < r->n_prod; i++) {
        const product *p = &r->prod[i];
        int nt = n_tasks(r, p), total = r->B * nt;
#pragma omp parallel for num_threads(r->nt) if (r->nt > 1) schedule(dynamic, 1)
        for (int x = 0; x < total; x++)
            exec(r, p, x / nt, x % nt, omp_get_thread_num());
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Quantile q of v[0, n) (sorted copy, linear interpolation). */
static double quantile(const double *v, int n, double q, double *tmp)
{
    memcpy(tmp, v, sizeof(double) * (size_t)n);
    qsort(tmp, (size_t)n, sizeof(double), cmp_double);
    double pos = q * (n - 1);
    int i = (int)pos;
    return i + 1 < n ? tmp[i] + (pos - i) * (tmp[i + 1] - tmp[i]) : tmp[n - 1];
}

static void print_stat(FILE *f, const double *v, int n, double *tmp, const char *unit)
{
    fprintf(f, "median %.1f %s (min %.1f, max %.1f)", quantile(v, n, 0.5, tmp), unit,
            quantile(v, n, 0.0, tmp), quantile(v, n, 1.0, tmp));
}

/* A steady-state forward with its replay: the state, the replay, and one
 * window of pseudo-random tokens that every window reuses. */
typedef struct bench_run {
    const pg_model *m;
    pg_state *st;
    replay *rp;
    uint32_t *tok;
    int *lens;
    int B, W;
} bench_run;

static void bench_run_free(bench_run *r)
{
    free(r->tok);
    free(r->lens);
    replay_free(r->rp);
    pg_state_free(r->st);
    memset(r, 0, sizeof *r);
}

/* Builds the run and warms it up: memory and compressed memory filled (the
 * steady state the replay's shapes assume), replay buffers and OpenBLAS
 * touched. */
static int bench_run_new(const pg_model *m, int B, int W, bench_run *r, pg_error *err)
{
    const pg_model_config *c = &m->cfg;
    memset(r, 0, sizeof *r);
    r->m = m;
    r->B = B;
    r->W = W;
    int rc = pg_state_new(m, B, W, &r->st, err);
    if (!rc)
        rc = replay_new(m, B, W, pg_get_threads(), &r->rp, err);
    if (rc) {
        bench_run_free(r);
        return rc;
    }
    r->tok = malloc(sizeof *r->tok * (size_t)B * W);
    r->lens = malloc(sizeof *r->lens * (size_t)B);
    if (!r->tok || !r->lens) {
        bench_run_free(r);
        return pg_fail(err, PG_ENOMEM, "bench: out of memory");
    }
    uint64_t x = 12345;
    for (size_t i = 0; i < (size_t)B * W; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        r->tok[i] = (uint32_t)((x >> 33) % (uint64_t)c->vocab_size);
    }
    for (int b = 0; b < B; b++)
        r->lens[b] = W;
    const float *lg;
    int warm = 1 + (c->memory + W - 1) / W;
    if (c->compressed_memory > 0)
        warm += (c->compressed_memory * c->compression_rate + W - 1) / W;
    for (int i = 0; i < warm; i++)
        if ((rc = pg_forward(m, r->st, r->tok, r->lens, &lg, err))) {
            bench_run_free(r);
            return rc;
        }
    replay_round(r->rp);
    return 0;
}

/* One forward window, then one replay round: their seconds and the
 * window's FLOPs. */
static int bench_run_pair(bench_run *r, double *fwd_s, double *fwd_flop, double *replay_s,
                          pg_error *err)
{
    const float *lg;
    double f0 = pg_state_flops(r->st), t0 = pg_now();
    int rc = pg_forward(r->m, r->st, r->tok, r->lens, &lg, err);
    if (rc)
        return rc;
    double t1 = pg_now();
    replay_round(r->rp);
    double t2 = pg_now();
    *fwd_s = t1 - t0;
    *fwd_flop = pg_state_flops(r->st) - f0;
    *replay_s = t2 - t1;
    return 0;
}

int pg_bench_forward(const pg_model *m, int B, int W, double seconds, FILE *f, pg_error *err)
{
    const pg_model_config *c = &m->cfg;
    bench_run r;
    int rc = bench_run_new(m, B, W, &r, err);
    if (rc)
        return rc;
    int cap = 64, nt = pg_get_threads();
    double *tps = malloc(sizeof(double) * 4 * cap), *gf = NULL, *peak = NULL, *ratio = NULL;
    double *tmp = malloc(sizeof(double) * cap);
    if (!tps || !tmp) {
        rc = pg_fail(err, PG_ENOMEM, "bench: out of memory");
        goto done;
    }
    gf = tps + cap;
    peak = gf + cap;
    ratio = peak + cap;
    int n = 0;
    double t_start = pg_now(), fw = 0.0;
    while (n < cap && (n < BENCH_MIN_PAIRS || pg_now() - t_start < seconds)) {
        double fs, rs;
        if ((rc = bench_run_pair(&r, &fs, &fw, &rs, err)))
            goto done;
        tps[n] = (double)B * W / fs;
        gf[n] = fw / fs / 1e9;
        peak[n] = r.rp->flops / rs / 1e9;
        ratio[n] = gf[n] / peak[n];
        n++;
    }
    fprintf(f, "harness forward: %s, batch %d x window %d, %d threads, %d windows: ", c->name, B,
            W, nt, n);
    print_stat(f, tps, n, tmp, "tokens/s");
    fprintf(f, ", ");
    print_stat(f, gf, n, tmp, "GFLOP/s");
    fprintf(f, "; %.0f FLOP per window\n", fw);
    fprintf(f, "sgemm replay (baseline: the window's %d products as the same cblas_sgemm "
               "calls, same threads, nothing else; %.0f FLOP per window): ",
            r.rp->n_prod, r.rp->flops);
    print_stat(f, peak, n, tmp, "GFLOP/s");
    double med = quantile(peak, n, 0.5, tmp);
    double iqr = (quantile(peak, n, 0.75, tmp) - quantile(peak, n, 0.25, tmp)) / med;
    int stable = iqr <= BENCH_STABLE_IQR;
    fprintf(f, ", interquartile range %.0f%% of the median: %s\n", 100.0 * iqr,
            stable ? "stable" : "unstable");
    if (stable) {
        fprintf(f, "ratio harness / sgemm replay: %.2f (min %.2f, max %.2f; median of %d "
                   "alternating pairs)\n",
                quantile(ratio, n, 0.5, tmp), quantile(ratio, n, 0.0, tmp),
                quantile(ratio, n, 1.0, tmp), n);
    } else {
        fprintf(f, "ratio harness / sgemm replay: not reported, the replay's rate is unstable "
                   "(interquartile range above %.0f%% of the median: the machine is busy)\n",
                100.0 * BENCH_STABLE_IQR);
    }
done:
    free(tps);
    free(tmp);
    bench_run_free(&r);
    return rc;
}

/* Reads one request line: a count from 1 to BENCH_SERVE_MAX. Returns 0 with
 * *count set, 1 at the end of input, or an error naming `who` and the line. */
static int read_count(FILE *in, const char *who, long line_no, long *count, pg_error *err)
{
    char line[32];
    if (!fgets(line, sizeof line, in))
        return ferror(in) ? pg_fail(err, PG_EIO, "%s: cannot read standard input", who) : 1;
    size_t len = strlen(line);
    if (len && line[len - 1] == '\n')
        line[--len] = '\0';
    else if (!feof(in))
        return pg_fail(err, PG_EINVAL, "%s: standard input line %ld is too long (a count "
                       "is at most %zu characters)", who, line_no, sizeof line - 2);
    char *end;
    errno = 0;
    long v = strtol(line, &end, 10);
    if (!len || errno || *end || v < 1 || v > BENCH_SERVE_MAX)
        return pg_fail(err, PG_EINVAL, "%s: standard input line %ld: expected a count from 1 "
                       "to %ld, got \"%s\"", who, line_no, (long)BENCH_SERVE_MAX, line);
    *count = v;
    return 0;
}

int pg_bench_serve_loop(FILE *in, FILE *out, const char *who, pg_bench_unit_fn unit, void *ctx,
                        pg_error *err)
{
    int rc = 0;
    for (long line_no = 1; !rc; line_no++) {
        long k = 0;
        if ((rc = read_count(in, who, line_no, &k, err)))
            break;
        for (long i = 0; i < k && !rc; i++)
            rc = unit(ctx, out, err);
        fflush(out);
    }
    return rc > 0 ? 0 : rc; /* 1: end of input */
}

/* A --serve unit of the forward: one window and one replay round. */
static int forward_unit(void *ctx, FILE *out, pg_error *err)
{
    double fs, ff, rs;
    int rc = bench_run_pair(ctx, &fs, &ff, &rs, err);
    if (!rc)
        fprintf(out, "%.9f %.0f %.9f\n", fs, ff, rs);
    return rc;
}

int pg_bench_serve(const pg_model *m, int B, int W, FILE *in, FILE *out, pg_error *err)
{
    bench_run r;
    int rc = bench_run_new(m, B, W, &r, err);
    if (rc)
        return rc;
    fprintf(out, "ready %d %.0f\n", B * W, r.rp->flops);
    fflush(out);
    rc = pg_bench_serve_loop(in, out, "bench --serve", forward_unit, &r, err);
    bench_run_free(&r);
    return rc;
}
