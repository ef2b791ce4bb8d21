/* train.c - see train.h. The training loop, its data streams, Adam, the run
 * directory (config, log, loss curve, checkpoints) and `train-grad`.
 *
 * Data (Rae et al. 2020): G = batch x ranks global slots, each a book stream
 * walking its book window by window (inputs BOS, t0, t1, ...; targets t0,
 * t1, ...) with its memories carried, no gradient through them. A slot whose
 * book ended resets its memories and takes the next book of a seeded
 * shuffle of the train split (a new shuffle, seed + epoch, when the order
 * runs out). Every rank simulates the cursors of all G slots (integers
 * only), so book assignment is a pure function of the seed, G and the book
 * lengths; rank r computes slots [r B, (r+1) B).
 *
 * Step: K windows (K = 1, or --update-freq after --update-freq-after steps,
 * the paper's knob that lowers the update frequency instead of decaying the
 * learning rate) accumulate the gradient of the summed objective; ranks sum
 * it (harness/dist.h); it is scaled by 1 / (global token count), clipped to
 * a global norm, and Adam (linear warm-up, then constant) updates the
 * weights, identically on every rank.
 */
#include "harness/train.h"

#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <omp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "common/progress.h"
#include "common/svg_plot.h"
#include "harness/bench.h"
#include "harness/dist.h"
#include "harness/eval.h"
#include "harness/dct.h"
#include "harness/safetensors.h"
#include "harness/shard_source.h"
#include "harness/train_model.h"

/* ---------------------------------------------------------- optimizer */

void pg_adam_update(float *w, const float *g, float *m, float *v, size_t n, const pg_adam *a,
                    long t, float lr)
{
    float b1 = a->beta1, b2 = a->beta2;
    float c1 = (float)(1.0 - pow(b1, (double)t)), c2 = (float)(1.0 - pow(b2, (double)t));
#pragma omp parallel for num_threads(pg_get_threads()) schedule(static)
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
        float mh = m[i] / c1, vh = v[i] / c2;
        w[i] -= lr * mh / (sqrtf(vh) + a->eps);
    }
}

double pg_grad_norm(const float *g, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)g[i] * g[i];
    return sqrt(s);
}

/* ------------------------------------------------------------ options */

typedef struct run_cfg {
    char model_path[PATH_MAX], shards[PATH_MAX], init_weights[PATH_MAX];
    int batch;          /* global slots G */
    long steps, warmup, update_freq_after, ckpt_every, eval_every, log_every;
    int update_freq, eval_books;
    long eval_tokens;
    double lr, clip, beta1, beta2, eps;
    uint64_t seed;
    /* DCT: the frozen evaluator whose NLL is the REINFORCE baseline, and the
     * entropy bonus alpha */
    char baseline_model[PATH_MAX], baseline_weights[PATH_MAX];
    double dct_alpha, dct_center; /* entropy bonus; advantage centring decay (0: off) */
} run_cfg;

typedef struct targs {
    const char *model, *shards, *out, *weights, *tokens, *grad_out, *init_weights;
    const char *baseline, *baseline_weights;
    int resume, threads, batch, serve, has[16];
    run_cfg rc;
    long steps;
} targs;

enum { H_STEPS, H_BATCH, H_LR, H_SEED, H_WARMUP, H_CLIP, H_UFA, H_UF, H_CKPT, H_EVAL, H_EB,
       H_ET, H_LOG };

static void train_usage(FILE *f)
{
    fprintf(f,
            "usage: harness train --model CONFIG --shards DIR --out RUN_DIR [--steps N] "
            "[--batch B] [--lr LR]\n"
            "                     [--seed S] [--warmup N] [--clip C] [--update-freq-after N "
            "--update-freq K]\n"
            "                     [--checkpoint-every N] [--eval-every K] [--eval-books N] "
            "[--eval-tokens N]\n"
            "                     [--log-every N] [--init-weights FILE] [--threads N] "
            "[--resume]\n"
            "                     DCT models: --baseline CONFIG --baseline-weights FILE "
            "[--dct-alpha A] [--dct-center DECAY]\n"
            "       harness train-grad --model CONFIG (--weights FILE | --seed S) --tokens "
            "FILE --out GRADS.safetensors [--batch B]\n"
            "       harness train-export --model CONFIG --weights F32.safetensors --out "
            "BF16.safetensors [--shards DIR]\n"
            "       harness train-bench --model CONFIG [--batch B] [--threads N] [--serve] "
            "(PG19_BENCH_SECONDS, default 20;\n"
            "                     --serve: steps on request, harness/bench.h)\n"
            "--batch is per process (under mpirun the global batch is B x ranks).\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || !*s || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !*s || !(v >= lo && v <= hi))
        return -1;
    *out = v;
    return 0;
}

static void default_cfg(run_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->batch = 4;
    c->steps = 1000;
    c->warmup = 100;
    c->update_freq_after = 0;
    c->update_freq = 1;
    c->ckpt_every = 200;
    c->eval_every = 0;
    c->eval_books = 2;
    c->eval_tokens = 4096;
    c->log_every = 10;
    c->lr = 5e-4;
    c->clip = 1.0;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->eps = 1e-8;
    c->seed = 1;
    c->dct_alpha = 0.01;
    c->dct_center = 0.95;
}

static int parse_targs(int argc, char **argv, targs *a)
{
    static const struct option lo[] = {
        {"model", 1, 0, 'm'}, {"shards", 1, 0, 'd'}, {"out", 1, 0, 'o'},
        {"steps", 1, 0, 'n'}, {"batch", 1, 0, 'b'}, {"lr", 1, 0, 'l'},
        {"seed", 1, 0, 's'}, {"warmup", 1, 0, 'u'}, {"clip", 1, 0, 'c'},
        {"update-freq-after", 1, 0, 'A'}, {"update-freq", 1, 0, 'F'},
        {"checkpoint-every", 1, 0, 'C'}, {"eval-every", 1, 0, 'E'}, {"eval-books", 1, 0, 'B'},
        {"eval-tokens", 1, 0, 'T'}, {"log-every", 1, 0, 'L'}, {"init-weights", 1, 0, 'i'},
        {"threads", 1, 0, 't'}, {"resume", 0, 0, 'r'}, {"weights", 1, 0, 'w'},
        {"tokens", 1, 0, 'k'}, {"help", 0, 0, 'h'}, {"baseline", 1, 0, 'Z'},
        {"baseline-weights", 1, 0, 'Y'}, {"dct-alpha", 1, 0, 'a'}, {"dct-center", 1, 0, 'Q'},
        {"serve", 0, 0, 'V'}, {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    default_cfg(&a->rc);
    optind = 2;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        long v = 0;
        int bad = 0;
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'd': a->shards = optarg; break;
        case 'o': a->out = optarg; break;
        case 'w': a->weights = optarg; break;
        case 'k': a->tokens = optarg; break;
        case 'i': a->init_weights = optarg; break;
        case 'Z': a->baseline = optarg; break;
        case 'Y': a->baseline_weights = optarg; break;
        case 'a': bad = parse_double(optarg, 0, 100, &a->rc.dct_alpha); break;
        case 'Q': bad = parse_double(optarg, 0, 0.999999, &a->rc.dct_center); break;
        case 'r': a->resume = 1; break;
        case 'V': a->serve = 1; break;
        case 't': bad = parse_long(optarg, 1, 1024, &v); a->threads = (int)v; break;
        case 'n': bad = parse_long(optarg, 1, 1L << 40, &a->rc.steps); a->has[H_STEPS] = 1; break;
        case 'b': bad = parse_long(optarg, 1, 4096, &v); a->batch = (int)v; a->has[H_BATCH] = 1;
            break;
        case 'l': bad = parse_double(optarg, 0, 10, &a->rc.lr); a->has[H_LR] = 1; break;
        case 's': bad = parse_long(optarg, 0, LONG_MAX, &v); a->rc.seed = (uint64_t)v;
            a->has[H_SEED] = 1; break;
        case 'u': bad = parse_long(optarg, 0, 1L << 40, &a->rc.warmup); break;
        case 'c': bad = parse_double(optarg, 0, 1e9, &a->rc.clip); break;
        case 'A': bad = parse_long(optarg, 0, 1L << 40, &a->rc.update_freq_after); break;
        case 'F': bad = parse_long(optarg, 1, 1 << 16, &v); a->rc.update_freq = (int)v; break;
        case 'C': bad = parse_long(optarg, 1, 1L << 40, &a->rc.ckpt_every); break;
        case 'E': bad = parse_long(optarg, 0, 1L << 40, &a->rc.eval_every); break;
        case 'B': bad = parse_long(optarg, 1, 1 << 20, &v); a->rc.eval_books = (int)v; break;
        case 'T': bad = parse_long(optarg, 0, 1L << 40, &a->rc.eval_tokens); break;
        case 'L': bad = parse_long(optarg, 1, 1L << 40, &a->rc.log_every); break;
        case 'h': train_usage(stdout); exit(0);
        default: return -1;
        }
        if (bad) {
            fprintf(stderr, "harness %s: bad value: %s\n", argv[1], optarg);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "harness %s: unexpected argument %s\n", argv[1], argv[optind]);
        return -1;
    }
    return 0;
}

/* --------------------------------------------------------- run config */

static int write_run_config(const char *path, const run_cfg *c, int world, pg_error *err)
{
    json_t *o = json_pack(
        "{s:s, s:s, s:s, s:i, s:i, s:I, s:f, s:I, s:f, s:I, s:i, s:f, s:f, s:f, s:I, s:I, "
        "s:I, s:i, s:I, s:I, s:s, s:s, s:s, s:f, s:f}",
        "model_config", c->model_path, "shards", c->shards, "init_weights", c->init_weights,
        "global_batch", c->batch, "ranks_at_start", world, "steps", (json_int_t)c->steps, "lr",
        c->lr, "warmup_steps", (json_int_t)c->warmup, "clip_norm", c->clip,
        "update_freq_after", (json_int_t)c->update_freq_after, "update_freq", c->update_freq,
        "adam_beta1", c->beta1, "adam_beta2", c->beta2, "adam_eps", c->eps, "seed",
        (json_int_t)c->seed, "checkpoint_every", (json_int_t)c->ckpt_every, "eval_every",
        (json_int_t)c->eval_every, "eval_books", c->eval_books, "eval_tokens",
        (json_int_t)c->eval_tokens, "log_every", (json_int_t)c->log_every, "objective",
        "mean token NLL + attention-reconstruction loss per token (compressor only)",
        "dct_baseline_model", c->baseline_model, "dct_baseline_weights", c->baseline_weights,
        "dct_entropy_alpha", c->dct_alpha, "dct_advantage_centering_decay", c->dct_center);
    if (!o)
        return pg_fail(err, PG_ENOMEM, "%s: out of memory", path);
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return pg_fail(err, PG_ENOMEM, "%s: out of memory", path);
    size_t n = strlen(s);
    s[n] = '\n';
    int rc = pg_write_file_atomic(path, s, n + 1, err);
    free(s);
    return rc;
}

static int jget_num(json_t *o, const char *k, double *out, const char *path, pg_error *err)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_number(v))
        return pg_fail(err, PG_ECORRUPT, "%s: \"%s\" missing or not a number", path, k);
    *out = json_number_value(v);
    return 0;
}

static int read_run_config(const char *path, run_cfg *c, pg_error *err)
{
    char *buf;
    size_t len;
    int rc = pg_read_file(path, 1 << 20, &buf, &len, err);
    if (rc)
        return rc;
    json_error_t je;
    json_t *o = json_loadb(buf, len, 0, &je);
    free(buf);
    if (!json_is_object(o)) {
        json_decref(o);
        return pg_fail(err, PG_ECORRUPT, "%s: not a run config (%s)", path, je.text);
    }
    default_cfg(c);
    const char *mp = json_string_value(json_object_get(o, "model_config"));
    const char *sh = json_string_value(json_object_get(o, "shards"));
    const char *iw = json_string_value(json_object_get(o, "init_weights"));
    double v[18];
    static const char *const keys[] = {"global_batch", "steps", "lr", "warmup_steps",
                                       "clip_norm", "update_freq_after", "update_freq",
                                       "adam_beta1", "adam_beta2", "adam_eps", "seed",
                                       "checkpoint_every", "eval_every", "eval_books",
                                       "eval_tokens", "log_every"};
    rc = 0;
    if (!mp || !sh || !iw)
        rc = pg_fail(err, PG_ECORRUPT, "%s: model_config/shards/init_weights missing", path);
    for (int i = 0; !rc && i < 16; i++)
        rc = jget_num(o, keys[i], &v[i], path, err);
    if (!rc) {
        snprintf(c->model_path, sizeof c->model_path, "%s", mp);
        snprintf(c->shards, sizeof c->shards, "%s", sh);
        snprintf(c->init_weights, sizeof c->init_weights, "%s", iw);
        c->batch = (int)v[0];
        c->steps = (long)v[1];
        c->lr = v[2];
        c->warmup = (long)v[3];
        c->clip = v[4];
        c->update_freq_after = (long)v[5];
        c->update_freq = (int)v[6];
        c->beta1 = v[7];
        c->beta2 = v[8];
        c->eps = v[9];
        c->seed = (uint64_t)v[10];
        c->ckpt_every = (long)v[11];
        c->eval_every = (long)v[12];
        c->eval_books = (int)v[13];
        c->eval_tokens = (long)v[14];
        c->log_every = (long)v[15];
        /* DCT keys (absent from older run configs) */
        const char *bm = json_string_value(json_object_get(o, "dct_baseline_model"));
        const char *bw = json_string_value(json_object_get(o, "dct_baseline_weights"));
        json_t *al = json_object_get(o, "dct_entropy_alpha");
        snprintf(c->baseline_model, sizeof c->baseline_model, "%s", bm ? bm : "");
        snprintf(c->baseline_weights, sizeof c->baseline_weights, "%s", bw ? bw : "");
        if (json_is_number(al))
            c->dct_alpha = json_number_value(al);
        json_t *ce = json_object_get(o, "dct_advantage_centering_decay");
        c->dct_center = json_is_number(ce) ? json_number_value(ce) : 0.0; /* older runs: off */
        if (c->batch < 1 || c->batch > 1 << 20 || c->update_freq < 1 || c->ckpt_every < 1 ||
            c->log_every < 1 || c->steps < 1)
            rc = pg_fail(err, PG_ECORRUPT, "%s: values out of range", path);
    }
    json_decref(o);
    return rc;
}

/* --------------------------------------------------------------- data */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct stream {
    uint64_t book, pos, n; /* book index, next target index, targets in the book */
    int has_book;
} stream;

typedef struct data {
    const pg_book_source *src;
    uint64_t n_books, *order, epoch, cursor, seed;
    uint64_t *book_len;
    stream *st;            /* [G] */
    int G;
} data;

/* Fisher-Yates shuffle of the books for (seed, epoch). */
static void make_order(data *d)
{
    uint64_t x = d->seed * 0x9E3779B97F4A7C15ull + d->epoch * 0xD1B54A32D192ED03ull + 1;
    for (uint64_t i = 0; i < d->n_books; i++)
        d->order[i] = i;
    for (uint64_t i = d->n_books; i > 1; i--) {
        uint64_t j = splitmix64(&x) % i, t = d->order[i - 1];
        d->order[i - 1] = d->order[j];
        d->order[j] = t;
    }
}

static uint64_t next_book(data *d)
{
    for (;;) {
        if (d->cursor == d->n_books) {
            d->epoch++;
            d->cursor = 0;
            make_order(d);
        }
        uint64_t b = d->order[d->cursor++];
        if (d->book_len[b] > 0)
            return b;
    }
}

/* Window lengths of all G slots for the next window; reset[g] = 1 where a
 * slot starts a new book (its memories must be emptied). */
static void plan_window(data *d, int W, int *lens, int *reset)
{
    for (int g = 0; g < d->G; g++) {
        stream *s = &d->st[g];
        reset[g] = 0;
        if (!s->has_book || s->pos >= s->n) {
            s->book = next_book(d);
            s->n = d->book_len[s->book];
            s->pos = 0;
            s->has_book = 1;
            reset[g] = 1;
        }
        uint64_t left = s->n - s->pos;
        lens[g] = left < (uint64_t)W ? (int)left : W;
    }
}

/* Inputs and targets of slot g's window (lens[g] of each). seq = BOS, t0, ... */
static int fill_window(data *d, int g, int len, uint32_t *in, uint32_t *tg, pg_error *err)
{
    stream *s = &d->st[g];
    int rc = d->src->tokens(d->src->ctx, s->book, s->pos, (uint64_t)len, tg, err);
    if (rc)
        return rc;
    if (s->pos == 0) {
        in[0] = d->src->bos_id;
        memcpy(in + 1, tg, sizeof(uint32_t) * (size_t)(len - 1));
        return 0;
    }
    in[0] = 0;
    if ((rc = d->src->tokens(d->src->ctx, s->book, s->pos - 1, 1, in, err)))
        return rc;
    memcpy(in + 1, tg, sizeof(uint32_t) * (size_t)(len - 1));
    return 0;
}

/* ---------------------------------------------------------- checkpoint */

/* RUN_DIR/state.bin, the training state beside weights-<step>.safetensors:
 *   magic "PG19TRS1", u32 version 1, u32 byte-order mark 0x01020304
 *   u64 step, n_params, G, slot_floats, n_books, epoch, cursor, seed,
 *       tokens_seen
 *   char weights_file[64] (NUL-padded), u8 weights_sha256[32]
 *   f32 adam_m[n_params], f32 adam_v[n_params]
 *   per slot g < G: u64 book, pos, n, has_book; f32 memories[slot_floats]
 *   u8 sha256[32] of everything before.
 * Host byte order (little-endian on every supported machine; the mark
 * rejects the others). */
#define STATE_MAGIC "PG19TRS1"

typedef struct ckpt_hdr {
    char magic[8];
    uint32_t version, bom;
    uint64_t step, n_params, G, slot_floats, n_books, epoch, cursor, seed, tokens_seen;
    char weights_file[64];
    uint8_t weights_sha[32];
} ckpt_hdr;

static size_t state_size(uint64_t n_params, uint64_t G, uint64_t slot_floats)
{
    return sizeof(ckpt_hdr) + 8 * n_params + G * (32 + 4 * slot_floats) + 32;
}

/* ------------------------------------------------------------ the run */

typedef struct trainer {
    pg_dist dist;
    run_cfg rc;
    const char *out;
    pg_model *m, *grad, *am, *av;
    pg_tstate *ts;
    /* DCT: the frozen baseline model and its streams, the judge's driver,
     * per local slot NLL sums of the current window */
    pg_model *base;
    pg_tstate *bts;
    pg_dct *dct;
    double *slot_nll, *base_nll;
    pg_shard_source *train_src, *val_src;
    data d;
    int B, rank0_slot;     /* local slots, first global slot */
    uint64_t step, tokens_seen;
    size_t slot_floats;
    /* loss curve */
    double *c_step, *c_loss, *v_step, *v_nll;
    int nc, capc, nv, capv;
} trainer;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    g_stop = sig;
}

static int curve_add(double **xs, double **ys, int *n, int *cap, double x, double y)
{
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        double *a = realloc(*xs, sizeof(double) * nc);
        if (!a)
            return -1;
        *xs = a;
        double *b = realloc(*ys, sizeof(double) * nc);
        if (!b)
            return -1;
        *ys = b;
        *cap = nc;
    }
    (*xs)[*n] = x;
    (*ys)[*n] = y;
    (*n)++;
    return 0;
}

static int write_curve(trainer *t, pg_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/loss.svg", t->out);
    pg_plot_series s[2] = {{"train loss (nats/token)", t->c_step, t->c_loss, t->nc},
                           {"validation NLL (nats/token)", t->v_step, t->v_nll, t->nv}};
    pg_plot p = {.title = "harness train", .x_label = "step", .y_label = "nats per token"};
    return pg_svg_lines(path, &p, s, t->nv > 0 ? 2 : 1, err);
}

static int log_line(trainer *t, json_t *o, pg_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/log.jsonl", t->out);
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!s)
        return pg_fail(err, PG_ENOMEM, "log: out of memory");
    FILE *f = fopen(path, "a");
    int ok = f && fprintf(f, "%s\n", s) > 0;
    ok = f && fclose(f) == 0 && ok;
    free(s);
    return ok ? 0 : pg_fail(err, PG_EIO, "%s: %s", path, strerror(errno));
}

/* On resume: keeps the log lines of steps <= step (a crash may have logged
 * steps the checkpoint does not hold) and rebuilds the curve from them. */
static int trim_log(trainer *t, pg_error *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/log.jsonl", t->out);
    char *buf;
    size_t len;
    if (access(path, F_OK) != 0)
        return 0;
    int rc = pg_read_file(path, (size_t)1 << 30, &buf, &len, err);
    if (rc)
        return rc;
    char *outb = malloc(len + 1);
    if (!outb) {
        free(buf);
        return pg_fail(err, PG_ENOMEM, "log: out of memory");
    }
    size_t on = 0;
    for (char *line = buf; line < buf + len;) {
        char *nl = memchr(line, '\n', (size_t)(buf + len - line));
        size_t ll = nl ? (size_t)(nl - line) : (size_t)(buf + len - line);
        json_t *o = json_loadb(line, ll, 0, NULL);
        json_t *st = o ? json_object_get(o, "step") : NULL;
        if (json_is_integer(st) && (uint64_t)json_integer_value(st) <= t->step) {
            memcpy(outb + on, line, ll);
            on += ll;
            outb[on++] = '\n';
            json_t *l = json_object_get(o, "loss"), *v = json_object_get(o, "val_nll");
            if (json_is_number(l))
                curve_add(&t->c_step, &t->c_loss, &t->nc, &t->capc,
                          (double)json_integer_value(st), json_number_value(l));
            if (json_is_number(v))
                curve_add(&t->v_step, &t->v_nll, &t->nv, &t->capv,
                          (double)json_integer_value(st), json_number_value(v));
        }
        json_decref(o);
        line += ll + (nl ? 1 : 0);
    }
    rc = pg_write_file_atomic(path, outb, on, err);
    free(buf);
    free(outb);
    return rc;
}

/* Checkpoint: rank 0 writes weights-<step>.safetensors, then state.bin
 * naming it (with its SHA-256), then removes the previous weights file.
 * Every rank contributes its slots' memories (gathered on rank 0). */
/* A local slot's floats in a checkpoint: the model's memories, then for a
 * DCT the baseline's memories and the judge's view and records. */
static void slot_get(const trainer *t, int b, float *dst)
{
    pg_tstate_slot_get(t->ts, b, dst);
    if (!t->dct)
        return;
    dst += pg_tstate_slot_floats(t->ts);
    pg_tstate_slot_get(t->bts, b, dst);
    pg_dct_slot_get(t->dct, b, dst + pg_tstate_slot_floats(t->bts));
}

static int slot_put(trainer *t, int b, const float *src, pg_error *err)
{
    int rc = pg_tstate_slot_put(t->ts, b, src, err);
    if (rc || !t->dct)
        return rc;
    src += pg_tstate_slot_floats(t->ts);
    if ((rc = pg_tstate_slot_put(t->bts, b, src, err)))
        return rc;
    return pg_dct_slot_put(t->dct, b, src + pg_tstate_slot_floats(t->bts), err);
}

static int save_checkpoint(trainer *t, pg_error *err)
{
    size_t slot_bytes = 32 + 4 * t->slot_floats;
    uint8_t *mine = malloc(slot_bytes * (size_t)t->B), *all = NULL;
    if (!mine)
        return pg_fail(err, PG_ENOMEM, "checkpoint: out of memory");
    for (int b = 0; b < t->B; b++) {
        uint8_t *p = mine + slot_bytes * (size_t)b;
        const stream *s = &t->d.st[t->rank0_slot + b];
        uint64_t v[4] = {s->book, s->pos, s->n, (uint64_t)s->has_book};
        memcpy(p, v, 32);
        slot_get(t, b, (float *)(void *)(p + 32));
    }
    uint64_t *counts = calloc((size_t)t->dist.size, sizeof(uint64_t));
    if (!counts) {
        free(mine);
        return pg_fail(err, PG_ENOMEM, "checkpoint: out of memory");
    }
    int rc = pg_dist_gather_bytes(&t->dist, mine, slot_bytes * (size_t)t->B, &all, counts, err);
    free(mine);
    free(counts);
    if (rc || t->dist.rank != 0) {
        free(all);
        return rc;
    }
    ckpt_hdr h;
    memset(&h, 0, sizeof h);
    memcpy(h.magic, STATE_MAGIC, 8);
    h.version = 1;
    h.bom = 0x01020304u;
    h.step = t->step;
    h.n_params = t->m->n_params;
    h.G = (uint64_t)t->d.G;
    h.slot_floats = t->slot_floats;
    h.n_books = t->d.n_books;
    h.epoch = t->d.epoch;
    h.cursor = t->d.cursor;
    h.seed = t->d.seed;
    h.tokens_seen = t->tokens_seen;
    snprintf(h.weights_file, sizeof h.weights_file, "weights-%08llu.safetensors",
             (unsigned long long)t->step);
    char wpath[PATH_MAX], spath[PATH_MAX], old[64] = "";
    snprintf(wpath, sizeof wpath, "%s/%s", t->out, h.weights_file);
    snprintf(spath, sizeof spath, "%s/state.bin", t->out);
    /* the weights file the previous state names, to remove afterwards */
    FILE *pf = fopen(spath, "rb");
    if (pf) {
        ckpt_hdr ph;
        if (fread(&ph, sizeof ph, 1, pf) == 1 && memcmp(ph.magic, STATE_MAGIC, 8) == 0) {
            memcpy(old, ph.weights_file, sizeof old);
            old[63] = 0;
        }
        fclose(pf);
    }
    if ((rc = pg_safetensors_save_as(t->m, wpath, 0, pg_shard_source_vocab_sha256(t->train_src), err))) {
        free(all);
        return rc;
    }
    uint8_t md5[16];
    uint32_t crc;
    uint64_t fsize;
    if ((rc = pg_hash_file(wpath, md5, h.weights_sha, &crc, &fsize, err))) {
        free(all);
        return rc;
    }
    size_t total = state_size(h.n_params, h.G, h.slot_floats);
    uint8_t *buf = malloc(total);
    if (!buf) {
        free(all);
        return pg_fail(err, PG_ENOMEM, "checkpoint: out of memory");
    }
    uint8_t *p = buf;
    memcpy(p, &h, sizeof h);
    p += sizeof h;
    memcpy(p, t->am->mem, 4 * h.n_params);
    p += 4 * h.n_params;
    memcpy(p, t->av->mem, 4 * h.n_params);
    p += 4 * h.n_params;
    memcpy(p, all, slot_bytes * h.G);
    p += slot_bytes * h.G;
    pg_sha256(buf, (size_t)(p - buf), p);
    free(all);
    rc = pg_write_file_atomic(spath, buf, total, err);
    free(buf);
    if (!rc && old[0] && strcmp(old, h.weights_file) != 0 && strchr(old, '/') == NULL) {
        char opath[PATH_MAX];
        snprintf(opath, sizeof opath, "%s/%s", t->out, old);
        unlink(opath);
    }
    return rc;
}

/* Reads and checks state.bin and its weights; fills the trainer (every
 * rank reads the files; each keeps its own slots). */
static int load_checkpoint(trainer *t, pg_error *err)
{
    char spath[PATH_MAX];
    snprintf(spath, sizeof spath, "%s/state.bin", t->out);
    size_t want = state_size(t->m->n_params, (uint64_t)t->d.G, t->slot_floats);
    char *buf;
    size_t len;
    int rc = pg_read_file(spath, want + 1, &buf, &len, err);
    if (rc)
        return rc;
    ckpt_hdr h;
    rc = PG_ECORRUPT;
    if (len < sizeof h + 32) {
        pg_fail(err, rc, "%s: truncated (%zu bytes): refusing to resume", spath, len);
        goto done;
    }
    memcpy(&h, buf, sizeof h);
    uint8_t sha[32];
    if (memcmp(h.magic, STATE_MAGIC, 8) != 0 || h.version != 1 || h.bom != 0x01020304u) {
        pg_fail(err, rc, "%s: not a harness training state (magic/version/byte order)", spath);
        goto done;
    }
    if (len != want) {
        pg_fail(err, rc, "%s: %zu bytes, expected %zu for this model and a global batch of %d "
                "(size or batch mismatch, or a truncated file): refusing to resume", spath, len,
                want, t->d.G);
        goto done;
    }
    pg_sha256(buf, len - 32, sha);
    if (memcmp(sha, buf + len - 32, 32) != 0) {
        pg_fail(err, rc, "%s: checksum mismatch (corrupt checkpoint): refusing to resume", spath);
        goto done;
    }
    if (h.n_params != t->m->n_params || h.G != (uint64_t)t->d.G ||
        h.slot_floats != t->slot_floats || h.n_books != t->d.n_books ||
        h.cursor > h.n_books || h.seed != t->d.seed) {
        pg_fail(err, rc, "%s: does not match this run (parameters, batch, books or seed)",
                spath);
        goto done;
    }
    h.weights_file[63] = 0;
    if (strchr(h.weights_file, '/') || !h.weights_file[0]) {
        pg_fail(err, rc, "%s: bad weights file name", spath);
        goto done;
    }
    char wpath[PATH_MAX];
    snprintf(wpath, sizeof wpath, "%s/%s", t->out, h.weights_file);
    uint8_t md5[16], wsha[32];
    uint32_t crc;
    uint64_t fsize;
    if ((rc = pg_hash_file(wpath, md5, wsha, &crc, &fsize, err)))
        goto done;
    if (memcmp(wsha, h.weights_sha, 32) != 0) {
        rc = pg_fail(err, PG_ECORRUPT, "%s: SHA-256 differs from the one state.bin records "
                     "(corrupt checkpoint): refusing to resume", wpath);
        goto done;
    }
    if ((rc = pg_safetensors_load(t->m, wpath, NULL, NULL, err)))
        goto done;
    const uint8_t *p = (const uint8_t *)buf + sizeof h;
    memcpy(t->am->mem, p, 4 * h.n_params);
    p += 4 * h.n_params;
    memcpy(t->av->mem, p, 4 * h.n_params);
    p += 4 * h.n_params;
    size_t slot_bytes = 32 + 4 * t->slot_floats;
    float *tmp = malloc(4 * t->slot_floats + 4);
    if (!tmp) {
        rc = pg_fail(err, PG_ENOMEM, "resume: out of memory");
        goto done;
    }
    for (int g = 0; g < t->d.G && !rc; g++) {
        uint64_t v[4];
        memcpy(v, p + slot_bytes * (size_t)g, 32);
        if (v[3] > 1 || (v[3] && (v[0] >= h.n_books || v[2] != t->d.book_len[v[0]] ||
                                  v[1] > v[2]))) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: slot %d: bad book position", spath, g);
            break;
        }
        t->d.st[g] = (stream){v[0], v[1], v[2], (int)v[3]};
        if (g >= t->rank0_slot && g < t->rank0_slot + t->B) {
            memcpy(tmp, p + slot_bytes * (size_t)g + 32, 4 * t->slot_floats);
            rc = slot_put(t, g - t->rank0_slot, tmp, err);
        }
    }
    free(tmp);
    if (rc)
        goto done;
    t->step = h.step;
    t->tokens_seen = h.tokens_seen;
    t->d.epoch = h.epoch;
    make_order(&t->d);
    t->d.cursor = h.cursor;
    rc = 0;
done:
    free(buf);
    return rc;
}

static int validate(trainer *t, double *val_nll, double *word_ppl, pg_error *err)
{
    pg_eval_opts eo = {.batch = t->rc.eval_books < 4 ? t->rc.eval_books : 4,
                       .max_tokens_per_book = (uint64_t)t->rc.eval_tokens};
    pg_eval_result res;
    memset(&res, 0, sizeof res);
    int rc = pg_evaluate(t->m, pg_shard_source_books(t->val_src), &eo, &res, err);
    if (rc)
        return rc;
    *val_nll = res.tot.tokens ? res.tot.nll / (double)res.tot.tokens : NAN;
    *word_ppl = res.tot.words ? exp(res.tot.nll / (double)res.tot.words) : NAN;
    pg_eval_result_free(&res);
    return 0;
}

static void fmt_time(char *buf, size_t cap, double s)
{
    if (!(s >= 0) || s > 1e8)
        s = 0;
    long x = (long)s;
    snprintf(buf, cap, "%02ld:%02ld:%02ld", x / 3600, x / 60 % 60, x % 60);
}

static void trainer_free(trainer *t)
{
    pg_model_free(t->m);
    pg_model_free(t->grad);
    pg_model_free(t->am);
    pg_model_free(t->av);
    pg_tstate_free(t->ts);
    pg_model_free(t->base);
    pg_tstate_free(t->bts);
    pg_dct_free(t->dct);
    free(t->slot_nll);
    free(t->base_nll);
    pg_shard_source_close(t->train_src);
    pg_shard_source_close(t->val_src);
    free(t->d.order);
    free(t->d.book_len);
    free(t->d.st);
    free(t->c_step);
    free(t->c_loss);
    free(t->v_step);
    free(t->v_nll);
}

/* ------------------------------------------------------------- the DCT */

typedef struct dct_step {
    uint64_t decided, kept;   /* evicted blocks judged this step, and kept */
    double adv_sum, rewarded; /* advantage per token summed over rewarded slot windows */
    double ent_sum;           /* judge entropy summed over rewarded decisions */
    uint64_t n_dec;           /* rewarded decisions */
    double base_nll;          /* the baseline's NLL sum */
} dct_step;

/* The judge samples which evicted blocks this window compresses. */
static int dct_decide(trainer *t, const uint32_t *in, const int *lens, dct_step *ds,
                      pg_error *err)
{
    const uint8_t *keep[4096];
    int n[4096];
    if (t->B > 4096)
        return pg_fail(err, PG_EINVAL, "train: DCT: at most 4096 slots per process");
    pg_dct_stats before, after;
    pg_dct_stats_get(t->dct, &before);
    int rc = pg_dct_decide(t->dct, in, lens, keep, n, err);
    pg_dct_stats_get(t->dct, &after);
    ds->decided += after.decided - before.decided;
    ds->kept += after.kept - before.kept;
    for (int b = 0; b < t->B && !rc; b++)
        if (lens[b] > 0)
            rc = pg_tstate_set_keep(t->ts, b, keep[b], n[b], err);
    return rc;
}

/* After the window's forward: the baseline reads the same window; each
 * slot's decisions of one window ago get the advantage of this window,
 * (baseline NLL - DCT NLL) per token, and REINFORCE's gradient weighted by
 * the window's tokens (the trainer divides every gradient by the step's
 * tokens, so the judge's is a token-weighted mean over slots). */
static int dct_reward(trainer *t, const uint32_t *in, const uint32_t *tg, const int *lens,
                      dct_step *ds, pg_error *err)
{
    memset(t->base_nll, 0, sizeof(double) * (size_t)t->B);
    pg_window_stats bs = {.slot_nll = t->base_nll};
    int rc = pg_train_window(t->base, NULL, t->bts, in, tg, lens, &bs, err);
    if (rc)
        return rc;
    ds->base_nll += bs.nll_sum;
    for (int b = 0; b < t->B; b++) {
        if (!lens[b])
            continue;
        double adv = (t->base_nll[b] - t->slot_nll[b]) / (double)lens[b], ent = 0.0;
        int nd = 0;
        if (pg_dct_reinforce(t->dct, t->grad, b, adv, (double)lens[b], t->rc.dct_alpha, NULL,
                             &ent, &nd)) {
            ds->adv_sum += adv;
            ds->rewarded += 1.0;
            ds->ent_sum += ent;
            ds->n_dec += (uint64_t)nd;
        }
    }
    return 0;
}

static int run_train(targs *a, pg_find_config_fn find_config, trainer *t, pg_error *err)
{
    int rc;
    int rank = t->dist.rank, world = t->dist.size;
    if (!a->out || (!a->resume && (!a->model || !a->shards))) {
        train_usage(stderr);
        return pg_fail(err, PG_EINVAL, "train: --out and (without --resume) --model and "
                       "--shards are required");
    }
    t->out = a->out;
    char cpath[PATH_MAX];
    snprintf(cpath, sizeof cpath, "%s/config.json", a->out);
    if (a->resume) {
        if ((rc = read_run_config(cpath, &t->rc, err)))
            return rc;
        if (a->has[H_STEPS])
            t->rc.steps = a->rc.steps;
    } else {
        t->rc = a->rc;
        char mp[PATH_MAX];
        if ((rc = find_config(a->model, mp, sizeof mp, err)))
            return rc;
        if (!realpath(mp, t->rc.model_path) || !realpath(a->shards, t->rc.shards))
            return pg_fail(err, PG_ENOTFOUND, "train: %s or %s: %s", mp, a->shards,
                           strerror(errno));
        if (a->init_weights && !realpath(a->init_weights, t->rc.init_weights))
            return pg_fail(err, PG_ENOTFOUND, "train: %s: %s", a->init_weights,
                           strerror(errno));
        if (a->baseline) {
            char bp[PATH_MAX];
            if ((rc = find_config(a->baseline, bp, sizeof bp, err)))
                return rc;
            if (!realpath(bp, t->rc.baseline_model))
                return pg_fail(err, PG_ENOTFOUND, "train: %s: %s", bp, strerror(errno));
        }
        if (a->baseline_weights && !realpath(a->baseline_weights, t->rc.baseline_weights))
            return pg_fail(err, PG_ENOTFOUND, "train: %s: %s", a->baseline_weights,
                           strerror(errno));
        t->rc.batch = (a->has[H_BATCH] ? a->batch : 4) * world;
        if (rank == 0) {
            if ((rc = pg_mkdirs(a->out, err)))
                return rc;
            char sp[PATH_MAX];
            snprintf(sp, sizeof sp, "%s/state.bin", a->out);
            if (access(sp, F_OK) == 0)
                return pg_fail(err, PG_EINVAL, "train: %s already holds a run (state.bin); "
                               "use --resume or another --out", a->out);
        }
    }
    run_cfg *c = &t->rc;
    if (c->batch % world)
        return pg_fail(err, PG_EINVAL, "train: global batch %d is not a multiple of %d ranks",
                       c->batch, world);
    if (a->resume && a->has[H_BATCH] && a->batch * world != c->batch)
        return pg_fail(err, PG_EINVAL, "train: --batch %d x %d ranks differs from the run's "
                       "global batch %d", a->batch, world, c->batch);
    t->B = c->batch / world;
    t->rank0_slot = rank * t->B;
    pg_model_config mc;
    if ((rc = pg_model_config_load(c->model_path, &mc, NULL, err)))
        return rc;
    if ((rc = pg_model_new(&mc, &t->m, err)) || (rc = pg_model_new(&mc, &t->grad, err)) ||
        (rc = pg_model_new(&mc, &t->am, err)) || (rc = pg_model_new(&mc, &t->av, err)) ||
        (rc = pg_tstate_new(t->m, t->B, &t->ts, err)))
        return rc;
    t->slot_floats = pg_tstate_slot_floats(t->ts);
    /* random weights, then the initial weights' tensors over them (a DCT
     * starting from a CT keeps its judge's random weights) */
    rc = pg_model_random_init(t->m, c->seed, err);
    if (!rc && c->init_weights[0])
        rc = pg_safetensors_load_init(t->m, c->init_weights, err);
    if (rc)
        return rc;
    if (pg_model_is_dct(&mc)) {
        if (world > 1)
            return pg_fail(err, PG_EINVAL, "train: DCT training runs in one process (the "
                           "judge's records are per slot); run it without mpirun");
        if (!c->baseline_model[0] || !c->baseline_weights[0])
            return pg_fail(err, PG_EINVAL, "train: model %s is a DCT: --baseline CONFIG and "
                           "--baseline-weights FILE name the frozen evaluator model whose NLL is "
                           "the judge's baseline (for example txl-small)", mc.name);
        pg_model_config bc;
        if ((rc = pg_model_config_load(c->baseline_model, &bc, NULL, err)))
            return rc;
        if (bc.vocab_size != mc.vocab_size || pg_model_is_dct(&bc))
            return pg_fail(err, PG_EINVAL, "train: baseline %s must be a TXL or CT with the "
                           "vocabulary of %s (%d pieces)", bc.name, mc.name, mc.vocab_size);
        if ((rc = pg_model_new(&bc, &t->base, err)) ||
            (rc = pg_safetensors_load(t->base, c->baseline_weights, NULL, NULL, err)) ||
            (rc = pg_tstate_new(t->base, t->B, &t->bts, err)) ||
            (rc = pg_dct_new(t->m, t->B, mc.window, PG_DCT_SAMPLE, c->seed, 1, &t->dct, err)))
            return rc;
        pg_dct_set_centering(t->dct, c->dct_center);
        t->slot_nll = calloc((size_t)t->B, sizeof(double));
        t->base_nll = calloc((size_t)t->B, sizeof(double));
        if (!t->slot_nll || !t->base_nll)
            return pg_fail(err, PG_ENOMEM, "train: out of memory");
        t->slot_floats += pg_tstate_slot_floats(t->bts) + pg_dct_slot_floats(t->dct);
    }
    if ((rc = pg_shard_source_open(c->shards, "train", 0, &t->train_src, err)))
        return rc;
    const pg_book_source *bs = pg_shard_source_books(t->train_src);
    if (bs->vocab_size != (uint32_t)mc.vocab_size)
        return pg_fail(err, PG_EINVAL, "train: shards have a vocabulary of %u, model %s has %d",
                       bs->vocab_size, mc.name, mc.vocab_size);
    if (c->eval_every > 0) {
        rc = pg_shard_source_open(c->shards, "validation", (uint64_t)c->eval_books,
                                  &t->val_src, err);
        if (rc) {
            if (rank == 0)
                fprintf(stderr, "harness train: no validation shards (%s): validation off\n",
                        err->msg);
            rc = 0;
            t->val_src = NULL;
        }
    }
    t->d.src = bs;
    t->d.n_books = bs->n_books;
    t->d.seed = c->seed;
    t->d.G = c->batch;
    t->d.order = calloc(bs->n_books + 1, sizeof(uint64_t));
    t->d.book_len = calloc(bs->n_books + 1, sizeof(uint64_t));
    t->d.st = calloc((size_t)c->batch, sizeof(stream));
    if (!t->d.order || !t->d.book_len || !t->d.st)
        return pg_fail(err, PG_ENOMEM, "train: out of memory");
    uint64_t any = 0;
    for (uint64_t i = 0; i < bs->n_books; i++) {
        pg_eval_book eb;
        if ((rc = bs->book(bs->ctx, i, &eb, err)))
            return rc;
        t->d.book_len[i] = eb.n_tokens;
        any += eb.n_tokens;
    }
    if (!any)
        return pg_fail(err, PG_EINVAL, "train: the train split of %s has no tokens", c->shards);
    make_order(&t->d);
    if (a->resume) {
        if ((rc = load_checkpoint(t, err)))
            return rc;
        if (rank == 0 && (rc = trim_log(t, err)))
            return rc;
        if (rank == 0)
            fprintf(stderr, "harness train: resumed %s at step %llu\n", a->out,
                    (unsigned long long)t->step);
    } else if (rank == 0) {
        if ((rc = write_run_config(cpath, c, world, err)))
            return rc;
        char *mj;
        size_t ml;
        if ((rc = pg_read_file(c->model_path, 1 << 20, &mj, &ml, err)))
            return rc;
        char mpath[PATH_MAX];
        snprintf(mpath, sizeof mpath, "%s/model.json", a->out);
        rc = pg_write_file_atomic(mpath, mj, ml, err);
        free(mj);
        if (rc)
            return rc;
        char lpath[PATH_MAX];
        snprintf(lpath, sizeof lpath, "%s/log.jsonl", a->out);
        if ((rc = pg_write_file_atomic(lpath, "", 0, err)))
            return rc;
    }
    if (!pg_dist_all_ok(&t->dist, 1))
        return pg_fail(err, PG_EIO, "train: another rank failed to start");

    int W = mc.window, G = c->batch;
    size_t n = t->m->n_params;
    uint32_t *in = malloc(sizeof(uint32_t) * (size_t)t->B * W);
    uint32_t *tg = malloc(sizeof(uint32_t) * (size_t)t->B * W);
    int *lens = malloc(sizeof(int) * (size_t)G * 2);
    if (!in || !tg || !lens) {
        free(in);
        free(tg);
        free(lens);
        return pg_fail(err, PG_ENOMEM, "train: out of memory");
    }
    int *reset = lens + G;
    pg_adam adam = {(float)c->lr, (float)c->beta1, (float)c->beta2, (float)c->eps};
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    int tty = isatty(2);
    double t_start = pg_now();
    uint64_t tok_start = t->tokens_seen, step0 = t->step;
    long last_ckpt = (long)t->step;
    while ((long)t->step < c->steps) {
        int K = (c->update_freq_after > 0 && (long)t->step >= c->update_freq_after)
                    ? c->update_freq : 1;
        memset(t->grad->mem, 0, sizeof(float) * n);
        pg_window_stats ws = {0};
        dct_step ds = {0};
        if (t->dct) {
            memset(t->slot_nll, 0, sizeof(double) * (size_t)t->B);
            ws.slot_nll = t->slot_nll;
        }
        uint64_t step_tokens = 0;
        for (int k = 0; k < K && !rc; k++) {
            plan_window(&t->d, W, lens, reset);
            uint32_t *pi = in, *pt = tg;
            for (int g = 0; g < G; g++) {
                step_tokens += (uint64_t)lens[g];
                if (g < t->rank0_slot || g >= t->rank0_slot + t->B)
                    continue;
                if (reset[g]) {
                    pg_tstate_reset_slot(t->ts, g - t->rank0_slot);
                    if (t->dct) {
                        pg_tstate_reset_slot(t->bts, g - t->rank0_slot);
                        pg_dct_reset_slot(t->dct, g - t->rank0_slot);
                    }
                }
                if ((rc = fill_window(&t->d, g, lens[g], pi, pt, err)))
                    break;
                pi += lens[g];
                pt += lens[g];
            }
            const int *ll = lens + t->rank0_slot;
            if (!rc && t->dct)
                rc = dct_decide(t, in, ll, &ds, err);
            if (!rc)
                rc = pg_train_window(t->m, t->grad, t->ts, in, tg, ll, &ws, err);
            if (!rc && t->dct)
                rc = dct_reward(t, in, tg, ll, &ds, err);
            for (int g = 0; g < G; g++)
                t->d.st[g].pos += (uint64_t)lens[g];
        }
        if (!pg_dist_all_ok(&t->dist, rc == 0)) {
            if (!rc)
                rc = pg_fail(err, PG_EIO, "train: step %llu failed on another rank",
                             (unsigned long long)t->step + 1);
            break;
        }
        double sums[2] = {ws.nll_sum, ws.recon_sum};
        if ((rc = pg_dist_allreduce_sum_f32(&t->dist, t->grad->mem, n, err)) ||
            (rc = pg_dist_allreduce_sum_f64(&t->dist, sums, 2, err)))
            break;
        double loss = sums[0] / (double)step_tokens, recon = sums[1] / (double)step_tokens;
        float inv = (float)(1.0 / (double)step_tokens);
        for (size_t i = 0; i < n; i++)
            t->grad->mem[i] *= inv;
        /* the language model's parameters, then (a DCT) the judge's, last in
         * the layout: each part is clipped by its own norm, so that the
         * judge's REINFORCE gradient does not scale the model's updates */
        size_t n_lm = t->dct ? (size_t)(t->m->judge.w_ih[0] - t->m->mem) : n;
        double gnorm = pg_grad_norm(t->grad->mem, n_lm);
        double jnorm = pg_grad_norm(t->grad->mem + n_lm, n - n_lm);
        long stepno = (long)t->step + 1;
        if (!isfinite(loss) || !isfinite(recon) || !isfinite(gnorm) || !isfinite(jnorm)) {
            rc = pg_fail(err, PG_EINVAL, "train: step %ld: loss %g, reconstruction %g, "
                         "gradient norm %g (judge %g) are not finite: stopping (the last good "
                         "checkpoint is step %ld in %s)", stepno, loss, recon, gnorm, jnorm,
                         last_ckpt, t->out);
            break;
        }
        if (c->clip > 0 && gnorm > c->clip) {
            float s = (float)(c->clip / gnorm);
            for (size_t i = 0; i < n_lm; i++)
                t->grad->mem[i] *= s;
        }
        if (c->clip > 0 && jnorm > c->clip) {
            float s = (float)(c->clip / jnorm);
            for (size_t i = n_lm; i < n; i++)
                t->grad->mem[i] *= s;
        }
        float lr = (float)(c->warmup > 0 && stepno <= c->warmup
                               ? c->lr * (double)stepno / (double)c->warmup
                               : c->lr);
        pg_adam_update(t->m->mem, t->grad->mem, t->am->mem, t->av->mem, n, &adam, stepno, lr);
        t->step = (uint64_t)stepno;
        t->tokens_seen += step_tokens;
        double now = pg_now();
        double tps = (double)(t->tokens_seen - tok_start) / (now - t_start + 1e-9);
        double eta = (double)(c->steps - stepno) * (now - t_start) /
                     (double)((uint64_t)stepno - step0);
        if (rank == 0) {
            json_t *o = json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:I}", "step",
                                  (json_int_t)stepno, "loss", loss, "recon", recon, "lr",
                                  (double)lr, "grad_norm", gnorm, "tokens_per_s", tps,
                                  "tokens", (json_int_t)t->tokens_seen);
            if (t->dct && o) { /* the judge: decisions, kept fraction, advantage, entropy */
                json_object_set_new(o, "dct_decisions", json_integer((json_int_t)ds.decided));
                json_object_set_new(o, "dct_kept", ds.decided ? json_real((double)ds.kept /
                                                                          (double)ds.decided)
                                                              : json_null());
                json_object_set_new(o, "dct_advantage",
                                    ds.rewarded ? json_real(ds.adv_sum / ds.rewarded)
                                                : json_null());
                json_object_set_new(o, "dct_entropy",
                                    ds.n_dec ? json_real(ds.ent_sum / (double)ds.n_dec)
                                             : json_null());
                json_object_set_new(o, "judge_grad_norm", json_real(jnorm));
                json_object_set_new(o, "baseline_loss",
                                    json_real(ds.base_nll / (double)step_tokens));
            }
            if ((rc = log_line(t, o, err)))
                break;
            curve_add(&t->c_step, &t->c_loss, &t->nc, &t->capc, (double)stepno, loss);
            if (tty || stepno % c->log_every == 0 || stepno == c->steps) {
                char e[32];
                fmt_time(e, sizeof e, eta);
                fprintf(stderr, "%sstep %ld/%ld  loss %.4f  recon %.3g  lr %.2e  |g| %.3f  "
                        "%.0f tok/s  ETA %s%s", tty ? "\r" : "", stepno, c->steps, loss,
                        recon, (double)lr, gnorm, tps, e, tty ? "   " : "\n");
            }
        }
        if (c->eval_every > 0 && t->val_src && stepno % c->eval_every == 0 && rank == 0) {
            double vn, wp;
            if ((rc = validate(t, &vn, &wp, err)))
                break;
            curve_add(&t->v_step, &t->v_nll, &t->nv, &t->capv, (double)stepno, vn);
            json_t *o = json_pack("{s:I, s:f, s:f}", "step", (json_int_t)stepno, "val_nll", vn,
                                  "val_word_ppl", wp);
            if ((rc = log_line(t, o, err)))
                break;
            fprintf(stderr, "%sstep %ld: validation NLL %.4f nats/token, word perplexity %.2f\n",
                    tty ? "\n" : "", stepno, vn, wp);
        }
        int stop = !pg_dist_all_ok(&t->dist, g_stop == 0);
        if (stepno % c->ckpt_every == 0 || stepno == c->steps || stop) {
            if ((rc = save_checkpoint(t, err)))
                break;
            last_ckpt = stepno;
            if (rank == 0 && (rc = write_curve(t, err)))
                break;
        }
        if (stop) {
            rc = pg_fail(err, PG_EINTR, "train: interrupted after step %ld; checkpoint "
                         "written; continue with --resume --out %s", stepno, t->out);
            break;
        }
    }
    if (rank == 0 && tty)
        fprintf(stderr, "\n");
    if (!rc && rank == 0)
        fprintf(stderr, "harness train: %s: step %llu, %llu tokens; weights in "
                "%s/weights-%08llu.safetensors\n", t->out, (unsigned long long)t->step,
                (unsigned long long)t->tokens_seen, t->out, (unsigned long long)t->step);
    free(in);
    free(tg);
    free(lens);
    return rc;
}

/* ---------------------------------------------------------- train-grad */

/* Gradients of the summed objective over the windows of B equal streams cut
 * from a token file (inputs tokens[i], targets tokens[i+1]), written as
 * safetensors with the parameter names; prints the loss sums as JSON. */
static int run_train_grad(targs *a, pg_find_config_fn find_config, pg_error *err)
{
    if (!a->model || !a->tokens || !a->out || (!a->weights && !a->has[H_SEED])) {
        train_usage(stderr);
        return pg_fail(err, PG_EINVAL, "train-grad: --model, --tokens, --out and --weights "
                       "or --seed are required");
    }
    char mp[PATH_MAX];
    pg_model_config mc;
    pg_model *m = NULL, *g = NULL;
    pg_tstate *ts = NULL;
    char *buf = NULL;
    size_t len;
    uint32_t *in = NULL, *tg = NULL;
    int *lens = NULL;
    int rc = find_config(a->model, mp, sizeof mp, err);
    if (!rc)
        rc = pg_model_config_load(mp, &mc, NULL, err);
    if (!rc)
        rc = pg_model_new(&mc, &m, err);
    if (!rc)
        rc = pg_model_new(&mc, &g, err);
    if (rc)
        goto done;
    rc = a->weights ? pg_safetensors_load(m, a->weights, NULL, NULL, err)
                    : pg_model_random_init(m, a->rc.seed, err);
    if (rc || (rc = pg_read_file(a->tokens, (size_t)1 << 30, &buf, &len, err)))
        goto done;
    int B = a->has[H_BATCH] ? a->batch : 1, W = mc.window;
    size_t ntok = len / 4;
    if (len % 4 || ntok < (size_t)B * 2) {
        rc = pg_fail(err, PG_EINVAL, "%s: need u32 tokens, at least 2 per stream", a->tokens);
        goto done;
    }
    size_t per = ntok / (size_t)B; /* tokens per stream; targets per - 1 */
    if ((rc = pg_tstate_new(m, B, &ts, err)))
        goto done;
    in = malloc(sizeof(uint32_t) * (size_t)B * W);
    tg = malloc(sizeof(uint32_t) * (size_t)B * W);
    lens = malloc(sizeof(int) * (size_t)B);
    if (!in || !tg || !lens) {
        rc = pg_fail(err, PG_ENOMEM, "train-grad: out of memory");
        goto done;
    }
    const uint32_t *tok = (const uint32_t *)(const void *)buf;
    pg_window_stats ws = {0};
    for (size_t pos = 0; pos < per - 1; pos += (size_t)W) {
        size_t l = per - 1 - pos < (size_t)W ? per - 1 - pos : (size_t)W;
        for (int b = 0; b < B; b++) {
            lens[b] = (int)l;
            for (size_t i = 0; i < l; i++) {
                in[(size_t)b * l + i] = tok[(size_t)b * per + pos + i];
                tg[(size_t)b * l + i] = tok[(size_t)b * per + pos + i + 1];
            }
        }
        if ((rc = pg_train_window(m, g, ts, in, tg, lens, &ws, err)))
            goto done;
    }
    if ((rc = pg_safetensors_save(g, a->out, err)))
        goto done;
    printf("{\"nll_sum\": %.17g, \"recon_sum\": %.17g, \"tokens\": %llu}\n", ws.nll_sum,
           ws.recon_sum, (unsigned long long)ws.n_tokens);
done:
    free(buf);
    free(in);
    free(tg);
    free(lens);
    pg_tstate_free(ts);
    pg_model_free(m);
    pg_model_free(g);
    return rc;
}

/* ---------------------------------------------------------- train-bench */

/* Matrix-product FLOPs of one training window with full memories: 3x the
 * forward (the backward's two products per forward product), the
 * re-projection of the memories included, elementwise work not counted. */
static double train_flops_per_window(const pg_model_config *c, int B)
{
    double d = c->d_model, HD = (double)c->n_head * c->d_head, L = c->window;
    double K = (double)c->window + c->memory + c->compressed_memory;
    double per_layer = 2 * L * d * HD + 2 * 2 * K * d * HD + 2 * K * d * HD +
                       3 * 2 * L * K * HD + 2 * L * HD * d + 2 * 2 * L * d * c->d_ff;
    return 3.0 * B * (c->n_layer * per_layer + 2 * L * d * c->vocab_size);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* What one training step works on: the model, its gradient and Adam
 * moments, the state, one window of tokens, and the step count. */
typedef struct train_bench_ctx {
    pg_model *m, *g, *am, *av;
    pg_tstate *ts;
    const uint32_t *in, *tg;
    const int *lens;
    pg_adam adam;
    long t;
} train_bench_ctx;

/* One training step: zeroed gradient, window, Adam update (step ++t). */
static int train_bench_step(train_bench_ctx *x, pg_error *err)
{
    memset(x->g->mem, 0, sizeof(float) * x->m->n_params);
    int rc = pg_train_window(x->m, x->g, x->ts, x->in, x->tg, x->lens, NULL, err);
    if (!rc)
        pg_adam_update(x->m->mem, x->g->mem, x->am->mem, x->av->mem, x->m->n_params, &x->adam,
                       ++x->t, x->adam.lr);
    return rc;
}

/* A --serve unit of train-bench: one step, its seconds. */
static int train_bench_unit(void *ctx, FILE *out, pg_error *err)
{
    double s0 = pg_now();
    int rc = train_bench_step(ctx, err);
    if (!rc)
        fprintf(out, "%.9f\n", pg_now() - s0);
    return rc;
}

/* Steady-state training throughput on random tokens: windows of B slots
 * with full memories, gradient, Adam update. Each step is timed on its own;
 * the report gives the mean over the run and the median step (what
 * harness/bench_train.py compares, like its PyTorch step's median). At
 * least TRAIN_BENCH_MIN_STEPS steps, then until `seconds` have passed. */
#define TRAIN_BENCH_MIN_STEPS 3
static int run_train_bench(targs *a, pg_find_config_fn find_config, double seconds,
                           pg_error *err)
{
    char mp[PATH_MAX];
    pg_model_config mc;
    pg_model *m = NULL, *g = NULL, *am = NULL, *av = NULL;
    pg_tstate *ts = NULL;
    uint32_t *in = NULL, *tg = NULL;
    int *lens = NULL;
    double *step_s = NULL;
    long cap = 0;
    int B = a->has[H_BATCH] ? a->batch : 2;
    int rc = find_config(a->model ? a->model : "ct-tiny", mp, sizeof mp, err);
    if (!rc)
        rc = pg_model_config_load(mp, &mc, NULL, err);
    if (!rc && !(rc = pg_model_new(&mc, &m, err)) && !(rc = pg_model_new(&mc, &g, err)) &&
        !(rc = pg_model_new(&mc, &am, err)) && !(rc = pg_model_new(&mc, &av, err)) &&
        !(rc = pg_model_random_init(m, 1, err)))
        rc = pg_tstate_new(m, B, &ts, err);
    if (rc)
        goto done;
    int W = mc.window;
    in = malloc(sizeof(uint32_t) * (size_t)B * W);
    tg = malloc(sizeof(uint32_t) * (size_t)B * W);
    lens = malloc(sizeof(int) * (size_t)B);
    if (!in || !tg || !lens) {
        rc = pg_fail(err, PG_ENOMEM, "train-bench: out of memory");
        goto done;
    }
    uint64_t x = 12345;
    for (size_t i = 0; i < (size_t)B * W; i++) {
        in[i] = (uint32_t)(splitmix64(&x) % (uint64_t)mc.vocab_size);
        tg[i] = (uint32_t)(splitmix64(&x) % (uint64_t)mc.vocab_size);
    }
    for (int b = 0; b < B; b++)
        lens[b] = W;
    train_bench_ctx step = {m, g, am, av, ts, in, tg, lens, {1e-4f, 0.9f, 0.999f, 1e-8f}, 0};
    /* warm-up windows fill the memories (and compressed memories) */
    int warm = 1 + (mc.memory + mc.compressed_memory * mc.compression_rate) / W;
    double fw = train_flops_per_window(&mc, B);
    if (a->serve) {
        for (long i = 0; i < warm && !rc; i++)
            rc = train_bench_step(&step, err);
        if (rc)
            goto done;
        printf("ready %d %.0f\n", B * W, fw);
        fflush(stdout);
        rc = pg_bench_serve_loop(stdin, stdout, "train-bench --serve", train_bench_unit, &step,
                                 err);
        goto done;
    }
    double t0 = 0, t = 0;
    long steps = 0;
    for (long i = 0;; i++) {
        if (i == warm)
            t0 = pg_now();
        double s0 = pg_now();
        if ((rc = train_bench_step(&step, err)))
            goto done;
        if (i >= warm) {
            if (steps == cap) {
                long nc = cap ? 2 * cap : 64;
                double *p = realloc(step_s, sizeof(double) * (size_t)nc);
                if (!p) {
                    rc = pg_fail(err, PG_ENOMEM, "train-bench: out of memory");
                    goto done;
                }
                step_s = p;
                cap = nc;
            }
            step_s[steps++] = pg_now() - s0;
            t = pg_now() - t0;
            if (t >= seconds && steps >= TRAIN_BENCH_MIN_STEPS)
                break;
        }
    }
    double tps = (double)steps * B * W / t, gf = fw * (double)steps / t / 1e9;
    qsort(step_s, (size_t)steps, sizeof(double), cmp_double);
    double med = steps % 2 ? step_s[steps / 2] : 0.5 * (step_s[steps / 2 - 1] + step_s[steps / 2]);
    printf("harness train: %s (%.2fM params), batch %d x window %d, %d threads, %ld steps: "
           "%.1f tokens/s, %.1f GFLOP/s; median step %.1f ms: %.1f tokens/s, %.1f GFLOP/s\n",
           mc.name, m->n_params / 1e6, B, W, pg_get_threads(), steps, tps, gf, 1e3 * med,
           (double)B * W / med, fw / med / 1e9);
done:
    free(step_s);
    free(in);
    free(tg);
    free(lens);
    pg_tstate_free(ts);
    pg_model_free(m);
    pg_model_free(g);
    pg_model_free(am);
    pg_model_free(av);
    return rc;
}

/* ---------------------------------------------------------- train-export */

/* f32 -> bf16, round to nearest even; NaN stays NaN */
/* harness train-export --model NAME --weights IN --out OUT [--shards DIR]:
 * the weights as BF16 (half the size: what models/ bundles), naming the
 * vocabulary of DIR's train shards. */
static int run_train_export(targs *a, pg_find_config_fn find_config, pg_error *err)
{
    if (!a->model || !a->weights || !a->out)
        return pg_fail(err, PG_EINVAL, "train-export: --model, --weights and --out are "
                       "required");
    char mp[PATH_MAX];
    pg_model_config mc;
    pg_model *m = NULL;
    pg_shard_source *src = NULL;
    int rc = find_config(a->model, mp, sizeof mp, err);
    if (!rc)
        rc = pg_model_config_load(mp, &mc, NULL, err);
    if (!rc)
        rc = pg_model_new(&mc, &m, err);
    if (!rc)
        rc = pg_safetensors_load(m, a->weights, NULL, NULL, err);
    if (!rc && a->shards)
        rc = pg_shard_source_open(a->shards, "train", 0, &src, err);
    if (!rc)
        rc = pg_safetensors_save_as(m, a->out, 1, src ? pg_shard_source_vocab_sha256(src) : NULL, err);
    pg_shard_source_close(src);
    pg_model_free(m);
    return rc;
}

int pg_train_main(int argc, char **argv, pg_find_config_fn find_config)
{
    targs a;
    if (parse_targs(argc, argv, &a)) {
        train_usage(stderr);
        return 2;
    }
    openblas_set_num_threads(1);
    pg_set_threads(a.threads ? a.threads : omp_get_max_threads());
    pg_error err = {0};
    int rc;
    if (strcmp(argv[1], "train-bench") == 0) {
        const char *sec = getenv("PG19_BENCH_SECONDS");
        rc = run_train_bench(&a, find_config, sec ? atof(sec) > 0 ? atof(sec) : 20 : 20, &err);
        if (rc)
            fprintf(stderr, "harness: %s\n", err.msg);
        return rc ? 1 : 0;
    }
    if (strcmp(argv[1], "train-export") == 0) {
        rc = run_train_export(&a, find_config, &err);
        if (rc)
            fprintf(stderr, "harness: %s\n", err.msg);
        return rc ? 1 : 0;
    }
    if (strcmp(argv[1], "train-grad") == 0) {
        rc = run_train_grad(&a, find_config, &err);
        if (rc)
            fprintf(stderr, "harness: %s\n", err.msg);
        return rc ? 1 : 0;
    }
    trainer t;
    memset(&t, 0, sizeof t);
    if ((rc = pg_dist_init(&argc, &argv, &t.dist, &err))) {
        fprintf(stderr, "harness: %s\n", err.msg);
        return 1;
    }
    rc = run_train(&a, find_config, &t, &err);
    if (rc)
        fprintf(stderr, "harness train%s: %s\n", t.dist.size > 1 ? " (a rank)" : "", err.msg);
    trainer_free(&t);
    if (rc && t.dist.size > 1 && rc != PG_EINTR)
        pg_dist_abort(&t.dist, 1);
    pg_dist_finalize(&t.dist);
    return rc == PG_EINTR ? 130 : rc ? 1 : 0;
}
