/* dct.c - see dct.h. */
#include "harness/dct.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/dct_judge.h"

/* One recorded set of decisions: the judge's input and what it chose. */
typedef struct record {
    int pending;       /* not yet rewarded */
    int N, pos0, g;    /* blocks in s, first decided position, decided blocks */
    float *x;          /* [n_max, d] */
    uint8_t *act;      /* [g_max] */
} record;

typedef struct slot {
    int mem_n, cm_n;   /* tokens in memory, blocks in compressed memory */
    uint32_t *mem_tok; /* [n_m] the inputs whose layer-0 rows the memory holds */
    uint32_t *cm_tok;  /* [n_cm, c] the tokens of the kept blocks */
    uint64_t rng;
    int fresh;         /* no window since the reset: seed rng from the first */
    float adv_mean;    /* running mean of this stream's advantage (kept across books) */
    int adv_seen;      /* adv_mean holds a value */
    record old, cur;   /* decisions one window ago, and the latest */
} slot;

struct pg_dct {
    const pg_model *m;
    int B, W, d, nm, ncm, c, H, policy, record;
    float adv_decay;   /* advantage centring: 0 off, else the running mean's decay */
    int n_max, g_max;  /* blocks in s, blocks decided, at most */
    uint64_t seed;
    slot *slots;
    float *logits, *dlogits, *act, *scratch, *xbuf;
    int *pos;
    uint8_t *keep;     /* [B, g_max] */
    pg_dct_stats stats;
    void *block;       /* the one allocation behind every buffer */
};

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

int pg_dct_parse_policy(const char *s)
{
    static const char *const names[] = {"greedy", "sample", "compress", "discard"};
    for (int i = 0; s && i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

const char *pg_dct_policy_name(int policy)
{
    static const char *const names[] = {"greedy", "sample", "compress", "discard"};
    return policy >= 0 && policy < 4 ? names[policy] : "?";
}

int pg_dct_new(const pg_model *m, int n_slots, int window, int policy, uint64_t seed,
               int record_on, pg_dct **out, pg_error *err)
{
    const pg_model_config *c = &m->cfg;
    if (!pg_model_is_dct(c) || !m->judge.fc_w)
        return pg_fail(err, PG_EINVAL, "model %s is not a DCT (family \"dct\")", c->name);
    if (n_slots < 1 || window < 1 || policy < 0 || policy > PG_DCT_FORCE_DISCARD)
        return pg_fail(err, PG_EINVAL, "dct: bad slots %d, window %d or policy %d", n_slots,
                       window, policy);
    pg_dct *d = calloc(1, sizeof *d);
    if (!d)
        return pg_fail(err, PG_ENOMEM, "dct: out of memory");
    d->m = m;
    d->B = n_slots;
    d->W = window;
    d->d = c->d_model;
    d->nm = c->memory;
    d->ncm = c->compressed_memory;
    d->c = c->compression_rate;
    d->H = c->judge_hidden;
    d->policy = policy;
    d->seed = seed;
    d->record = record_on;
    d->g_max = (d->nm + d->W) / d->c;
    d->n_max = d->ncm + (d->nm + d->W + d->c - 1) / d->c;
    size_t B = (size_t)n_slots, nx = (size_t)d->n_max * d->d;
    size_t per_slot = sizeof(uint32_t) * ((size_t)d->nm + (size_t)d->ncm * d->c) +
                      (record_on ? 2 * (sizeof(float) * nx + (size_t)d->g_max) : 0);
    size_t shared = sizeof(float) * (4 * (size_t)d->n_max + nx + pg_judge_act_floats(d->n_max, d->H) +
                                     pg_judge_scratch_floats(d->n_max, d->d, d->H)) +
                    sizeof(int) * (size_t)d->g_max + B * (size_t)d->g_max;
    d->slots = calloc(B, sizeof(slot));
    d->block = calloc(1, shared + B * per_slot + 64);
    if (!d->slots || !d->block) {
        pg_dct_free(d);
        return pg_fail(err, PG_ENOMEM, "dct: cannot allocate the judge's buffers (%d slots)",
                       n_slots);
    }
    /* floats first, then 4-byte ints and tokens, then bytes: alignment holds */
    float *f = d->block;
    d->logits = f, f += 2 * (size_t)d->n_max;
    d->dlogits = f, f += 2 * (size_t)d->n_max;
    d->act = f, f += pg_judge_act_floats(d->n_max, d->H);
    d->scratch = f, f += pg_judge_scratch_floats(d->n_max, d->d, d->H);
    d->xbuf = f, f += nx;
    for (size_t b = 0; b < B && record_on; b++) {
        d->slots[b].old.x = f, f += nx;
        d->slots[b].cur.x = f, f += nx;
    }
    uint32_t *u = (uint32_t *)f;
    for (size_t b = 0; b < B; b++) {
        d->slots[b].mem_tok = u, u += d->nm;
        d->slots[b].cm_tok = u, u += (size_t)d->ncm * d->c;
    }
    d->pos = (int *)u;
    uint8_t *p8 = (uint8_t *)(d->pos + d->g_max);
    d->keep = p8, p8 += B * (size_t)d->g_max;
    for (size_t b = 0; b < B && record_on; b++) {
        d->slots[b].old.act = p8, p8 += d->g_max;
        d->slots[b].cur.act = p8, p8 += d->g_max;
    }
    for (int b = 0; b < n_slots; b++)
        pg_dct_reset_slot(d, b);
    *out = d;
    return 0;
}

void pg_dct_free(pg_dct *d)
{
    if (!d)
        return;
    free(d->slots);
    free(d->block);
    free(d);
}

void pg_dct_reset_slot(pg_dct *d, int b)
{
    slot *s = &d->slots[b];
    s->mem_n = s->cm_n = 0;
    s->fresh = 1;
    s->rng = 0;
    s->old.pending = s->cur.pending = 0;
}

void pg_dct_stats_get(const pg_dct *d, pg_dct_stats *st)
{
    *st = d->stats;
}

/* x[N, d] = block means of layer-0 rows of [compressed memory, memory, window]:
 * compressed block i: its c tokens; then the memory tokens followed by the
 * window's, cut into blocks of c from the oldest (the last may be short). */
static int build_input(const pg_dct *d, const slot *s, const uint32_t *win, int L, float *x)
{
    const float *E = d->m->tok_emb;
    int dd = d->d, c = d->c, n = 0;
    for (int i = 0; i < s->cm_n; i++, n++) {
        float *row = x + (size_t)n * dd;
        memset(row, 0, sizeof(float) * dd);
        for (int t = 0; t < c; t++) {
            const float *e = E + (size_t)s->cm_tok[(size_t)i * c + t] * dd;
            for (int k = 0; k < dd; k++)
                row[k] += e[k];
        }
        for (int k = 0; k < dd; k++)
            row[k] /= (float)c;
    }
    int rows = s->mem_n + L;
    for (int r0 = 0; r0 < rows; r0 += c, n++) {
        float *row = x + (size_t)n * dd;
        int r1 = r0 + c < rows ? r0 + c : rows;
        memset(row, 0, sizeof(float) * dd);
        for (int r = r0; r < r1; r++) {
            uint32_t t = r < s->mem_n ? s->mem_tok[r] : win[r - s->mem_n];
            const float *e = E + (size_t)t * dd;
            for (int k = 0; k < dd; k++)
                row[k] += e[k];
        }
        for (int k = 0; k < dd; k++)
            row[k] /= (float)(r1 - r0);
    }
    return n;
}

/* The judge's view moves with the decisions: kept blocks join the
 * compressed-memory FIFO, the memory keeps the last n_m tokens. */
static void advance(pg_dct *d, slot *s, const uint32_t *win, int L, int g, const uint8_t *keep)
{
    int c = d->c, m = s->mem_n;
    for (int j = 0; j < g; j++) {
        if (!keep[j])
            continue;
        if (s->cm_n == d->ncm) { /* FIFO full: drop the oldest block */
            memmove(s->cm_tok, s->cm_tok + c, sizeof(uint32_t) * (size_t)(d->ncm - 1) * c);
            s->cm_n--;
        }
        uint32_t *dst = s->cm_tok + (size_t)s->cm_n * c;
        for (int t = 0; t < c; t++) {
            int r = j * c + t;
            dst[t] = r < m ? s->mem_tok[r] : win[r - m];
        }
        s->cm_n++;
    }
    if (d->nm == 0)
        return;
    int total = m + L, drop = total > d->nm ? total - d->nm : 0;
    /* mem = concat(mem, win)[drop:] */
    if (drop < m) {
        memmove(s->mem_tok, s->mem_tok + drop, sizeof(uint32_t) * (size_t)(m - drop));
        memcpy(s->mem_tok + (m - drop), win, sizeof(uint32_t) * (size_t)L);
    } else {
        memcpy(s->mem_tok, win + (drop - m), sizeof(uint32_t) * (size_t)(total - drop));
    }
    s->mem_n = total - drop;
}

int pg_dct_decide(pg_dct *d, const uint32_t *tokens, const int *lens, const uint8_t **keep_out,
                  int *n_out, pg_error *err)
{
    int V = d->m->cfg.vocab_size, off = 0;
    for (int b = 0; b < d->B; b++) {
        if (lens[b] < 0 || lens[b] > d->W)
            return pg_fail(err, PG_EINVAL, "dct: slot %d: %d tokens, window is %d", b, lens[b],
                           d->W);
        for (int t = 0; t < lens[b]; t++)
            if (tokens[off + t] >= (uint32_t)V)
                return pg_fail(err, PG_EINVAL, "dct: token id %u >= vocabulary size %d",
                               tokens[off + t], V);
        off += lens[b];
    }
    off = 0;
    for (int b = 0; b < d->B; b++) {
        slot *s = &d->slots[b];
        int L = lens[b];
        const uint32_t *win = tokens + off;
        uint8_t *keep = d->keep + (size_t)b * d->g_max;
        keep_out[b] = keep;
        n_out[b] = 0;
        off += L;
        if (!L)
            continue;
        if (s->fresh) { /* the book's generator: (seed, its first window) */
            uint64_t h = 0xcbf29ce484222325ull ^ d->seed;
            for (int t = 0; t < L; t++)
                h = (h ^ win[t]) * 0x100000001b3ull;
            s->rng = splitmix64(&h);
            s->fresh = 0;
        }
        int ev = s->mem_n + L - d->nm;
        int g = d->ncm > 0 && ev > 0 ? ev / d->c : 0;
        n_out[b] = g;
        if (d->record) { /* the latest decisions become the ones a window ago */
            record t = s->old;
            s->old = s->cur;
            s->cur = t;
            s->cur.pending = 0;
        }
        if (g > 0) {
            if (d->policy == PG_DCT_FORCE_COMPRESS || d->policy == PG_DCT_FORCE_DISCARD) {
                memset(keep, d->policy == PG_DCT_FORCE_COMPRESS, (size_t)g);
            } else {
                record *r = &s->cur;
                float *x = d->record ? r->x : d->xbuf;
                int N = build_input(d, s, win, L, x);
                pg_judge_forward(&d->m->judge, d->d, d->H, x, N, d->logits, NULL);
                for (int j = 0; j < g; j++) {
                    float p = pg_judge_p_compress(d->logits + 2 * (size_t)(s->cm_n + j));
                    if (d->policy == PG_DCT_GREEDY)
                        keep[j] = p >= 0.5f;
                    else
                        keep[j] = (float)((double)(splitmix64(&s->rng) >> 40) *
                                          (1.0 / 16777216.0)) < p;
                }
                if (d->record) {
                    r->pending = 1;
                    r->N = N;
                    r->pos0 = s->cm_n;
                    r->g = g;
                    memcpy(r->act, keep, (size_t)g);
                }
            }
            d->stats.decided += (uint64_t)g;
            for (int j = 0; j < g; j++)
                d->stats.kept += keep[j] != 0;
        }
        advance(d, s, win, L, g, keep);
    }
    return 0;
}

void pg_dct_set_centering(pg_dct *d, double decay)
{
    d->adv_decay = decay > 0 && decay < 1 ? (float)decay : 0.0f;
}

int pg_dct_reinforce(pg_dct *d, pg_model *grad, int b, double advantage, double weight,
                     double alpha, double *logp, double *entropy, int *n_decided)
{
    if (logp)
        *logp = 0.0;
    if (entropy)
        *entropy = 0.0;
    if (n_decided)
        *n_decided = 0;
    if (!d->record || b < 0 || b >= d->B || !d->slots[b].old.pending)
        return 0;
    slot *s = &d->slots[b];
    record *r = &s->old;
    r->pending = 0;
    if (d->adv_decay > 0.0f) { /* centre by the stream's running mean, then update it */
        float a = (float)advantage;
        float mean = s->adv_seen ? s->adv_mean : a;
        advantage = (double)(a - mean);
        s->adv_mean = mean + (1.0f - d->adv_decay) * (a - mean);
        s->adv_seen = 1;
    }
    pg_judge_forward(&d->m->judge, d->d, d->H, r->x, r->N, d->logits, d->act);
    for (int j = 0; j < r->g; j++)
        d->pos[j] = r->pos0 + j;
    pg_judge_reinforce_dlogits(d->logits, r->N, d->pos, r->act, r->g, advantage * weight,
                               alpha * weight, d->dlogits, logp, entropy);
    pg_judge_backward(&d->m->judge, &grad->judge, d->d, d->H, r->x, r->N, d->act, d->dlogits,
                      d->scratch);
    if (n_decided)
        *n_decided = r->g;
    return 1;
}

/* ------------------------------------------------------------ checkpoint */

/* Layout: mem_n, cm_n, fresh, rng as 4 x 16 bits, adv_mean, adv_seen, mem_tok[n_m],
 * cm_tok[n_cm c], then (when recording) old and cur: pending, N, pos0, g,
 * x[n_max d], act[g_max]. */
size_t pg_dct_slot_floats(const pg_dct *d)
{
    size_t rec = 4 + (size_t)d->n_max * d->d + (size_t)d->g_max;
    return 9 + (size_t)d->nm + (size_t)d->ncm * d->c + (d->record ? 2 * rec : 0);
}

static float *put_record(const pg_dct *d, const record *r, float *f)
{
    f[0] = (float)r->pending;
    f[1] = (float)r->N;
    f[2] = (float)r->pos0;
    f[3] = (float)r->g;
    f += 4;
    memcpy(f, r->x, sizeof(float) * (size_t)d->n_max * d->d);
    f += (size_t)d->n_max * d->d;
    for (int j = 0; j < d->g_max; j++)
        f[j] = j < r->g ? (float)r->act[j] : 0.0f;
    return f + d->g_max;
}

void pg_dct_slot_get(const pg_dct *d, int b, float *f)
{
    const slot *s = &d->slots[b];
    f[0] = (float)s->mem_n;
    f[1] = (float)s->cm_n;
    f[2] = (float)s->fresh;
    for (int k = 0; k < 4; k++)
        f[3 + k] = (float)((s->rng >> (16 * k)) & 0xffff);
    f[7] = s->adv_mean;
    f[8] = (float)s->adv_seen;
    f += 9;
    for (int i = 0; i < d->nm; i++)
        f[i] = i < s->mem_n ? (float)s->mem_tok[i] : 0.0f;
    f += d->nm;
    for (int i = 0; i < d->ncm * d->c; i++)
        f[i] = i < s->cm_n * d->c ? (float)s->cm_tok[i] : 0.0f;
    f += (size_t)d->ncm * d->c;
    if (d->record) {
        f = put_record(d, &s->old, f);
        put_record(d, &s->cur, f);
    }
}

/* an integer-valued float in [lo, hi] */
static int int_in(float v, long lo, long hi, long *out)
{
    if (!(v >= (float)lo && v <= (float)hi) || v != floorf(v))
        return 0;
    *out = (long)v;
    return 1;
}

static const float *get_record(const pg_dct *d, record *r, const float *f, int *ok)
{
    long v[4] = {0, 0, 0, 0};
    *ok = int_in(f[0], 0, 1, &v[0]) && int_in(f[1], 0, d->n_max, &v[1]) &&
          int_in(f[2], 0, d->n_max, &v[2]) && int_in(f[3], 0, d->g_max, &v[3]) &&
          v[2] + v[3] <= v[1];
    if (!*ok)
        return f;
    r->pending = (int)v[0];
    r->N = (int)v[1];
    r->pos0 = (int)v[2];
    r->g = (int)v[3];
    f += 4;
    for (size_t i = 0; i < (size_t)d->n_max * d->d; i++)
        if (!isfinite(f[i]))
            *ok = 0;
    memcpy(r->x, f, sizeof(float) * (size_t)d->n_max * d->d);
    f += (size_t)d->n_max * d->d;
    for (int j = 0; j < d->g_max; j++) {
        long a = 0;
        if (!int_in(f[j], 0, 1, &a))
            *ok = 0;
        else
            r->act[j] = (uint8_t)a;
    }
    return f + d->g_max;
}

int pg_dct_slot_put(pg_dct *d, int b, const float *f, pg_error *err)
{
    slot *s = &d->slots[b];
    long mem_n = 0, cm_n = 0, fresh = 1, piece = 0;
    uint64_t rng = 0;
    int ok = int_in(f[0], 0, d->nm, &mem_n) && int_in(f[1], 0, d->ncm, &cm_n) &&
             int_in(f[2], 0, 1, &fresh);
    for (int k = 0; k < 4 && ok; k++) {
        ok = int_in(f[3 + k], 0, 0xffff, &piece);
        rng |= (uint64_t)piece << (16 * k);
    }
    long seen = 0;
    ok = ok && isfinite(f[7]) && int_in(f[8], 0, 1, &seen);
    long V = d->m->cfg.vocab_size;
    const float *p = f + 9;
    for (int i = 0; i < d->nm + d->ncm * d->c && ok; i++) {
        long t = 0;
        ok = int_in(p[i], 0, V - 1, &t);
        if (ok && i < d->nm)
            s->mem_tok[i] = (uint32_t)t;
        else if (ok)
            s->cm_tok[i - d->nm] = (uint32_t)t;
    }
    p += d->nm + (size_t)d->ncm * d->c;
    if (ok && d->record) {
        p = get_record(d, &s->old, p, &ok);
        if (ok)
            get_record(d, &s->cur, p, &ok);
    }
    if (!ok) {
        pg_dct_reset_slot(d, b);
        return pg_fail(err, PG_ECORRUPT, "dct: slot %d: the judge's saved state is out of range",
                       b);
    }
    s->mem_n = (int)mem_n;
    s->cm_n = (int)cm_n;
    s->fresh = (int)fresh;
    s->rng = rng;
    s->adv_mean = f[7];
    s->adv_seen = (int)seen;
    return 0;
}
