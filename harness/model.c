/* model.c - see model.h. Layer functions read like the math; shapes in the
 * comments use T = rows of the window (all slots), K = rows attended over. */
#include "harness/model.h"

#include <cblas.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "common/huge_pages.h"
#include "harness/keep_mask.h"

/* ---------------------------------------------------------------- config */

static const char *const compression_names[] = {
    "none", "conv", "dilated_conv", "max_pool", "mean_pool", "most_used"};

const char *pg_compression_name(int c)
{
    if (c < 0 || c > PG_COMPRESS_MOST_USED)
        return "?";
    return compression_names[c];
}

static int get_int(json_t *root, const char *key, int required, int dflt, int lo, int hi,
                   const char *path, int *out, pg_error *err)
{
    json_t *v = json_object_get(root, key);
    if (!v) {
        if (required)
            return pg_fail(err, PG_EINVAL, "%s: missing \"%s\"", path, key);
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v))
        return pg_fail(err, PG_EINVAL, "%s: \"%s\" must be an integer", path, key);
    json_int_t x = json_integer_value(v);
    if (x < lo || x > hi)
        return pg_fail(err, PG_EINVAL, "%s: \"%s\" = %lld out of range [%d, %d]", path, key,
                       (long long)x, lo, hi);
    *out = (int)x;
    return 0;
}

int pg_model_config_parse(const char *json, size_t len, const char *path, pg_model_config *out,
                          pg_error *err)
{
    static const char *const known[] = {
        "name", "family", "vocab_size", "d_model", "n_layer", "n_head", "d_head", "d_ff",
        "window", "memory", "compressed_memory", "compression_rate", "compression",
        "dilation", "layer_norm_eps", "comment", "judge_hidden", NULL};
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return pg_fail(err, PG_EINVAL, "%s: line %d: %s", path, jerr.line, jerr.text);
    int rc = PG_EINVAL;
    memset(out, 0, sizeof *out);
    if (!json_is_object(root)) {
        pg_fail(err, PG_EINVAL, "%s: not a JSON object", path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        int ok = 0;
        for (int i = 0; known[i]; i++)
            ok |= strcmp(key, known[i]) == 0;
        if (!ok) {
            pg_fail(err, PG_EINVAL, "%s: unknown key \"%s\"", path, key);
            goto done;
        }
    }
    json_t *name = json_object_get(root, "name"), *family = json_object_get(root, "family");
    if (!json_is_string(name) || json_string_length(name) == 0 ||
        json_string_length(name) > 100) {
        pg_fail(err, PG_EINVAL, "%s: \"name\" must be a string of 1-100 characters", path);
        goto done;
    }
    snprintf(out->name, sizeof out->name, "%s", json_string_value(name));
    if (!json_is_string(family) ||
        (strcmp(json_string_value(family), "transformer-xl") != 0 &&
         strcmp(json_string_value(family), "compressive-transformer") != 0 &&
         strcmp(json_string_value(family), "dct") != 0)) {
        pg_fail(err, PG_EINVAL, "%s: \"family\" must be \"transformer-xl\", "
                "\"compressive-transformer\" or \"dct\"", path);
        goto done;
    }
    snprintf(out->family, sizeof out->family, "%s", json_string_value(family));
    int is_dct = pg_model_is_dct(out);
    int is_ct = is_dct || strcmp(out->family, "compressive-transformer") == 0;
    if (get_int(root, "vocab_size", 1, 0, 1, 1 << 22, path, &out->vocab_size, err) ||
        get_int(root, "d_model", 1, 0, 2, 16384, path, &out->d_model, err) ||
        get_int(root, "n_layer", 1, 0, 1, 1024, path, &out->n_layer, err) ||
        get_int(root, "n_head", 1, 0, 1, 1024, path, &out->n_head, err) ||
        get_int(root, "d_head", 1, 0, 1, 4096, path, &out->d_head, err) ||
        get_int(root, "d_ff", 1, 0, 1, 1 << 17, path, &out->d_ff, err) ||
        get_int(root, "window", 1, 0, 1, 1 << 16, path, &out->window, err) ||
        get_int(root, "memory", 1, 0, 0, 1 << 20, path, &out->memory, err) ||
        get_int(root, "compressed_memory", 0, 0, 0, 1 << 20, path, &out->compressed_memory,
                err) ||
        get_int(root, "compression_rate", 0, 1, 1, 64, path, &out->compression_rate, err) ||
        get_int(root, "dilation", 0, 2, 1, 64, path, &out->dilation, err) ||
        get_int(root, "judge_hidden", is_dct, 0, is_dct ? 1 : 0, is_dct ? 4096 : 0, path,
                &out->judge_hidden, err))
        goto done;
    if (out->d_model % 2) {
        pg_fail(err, PG_EINVAL, "%s: d_model must be even (sinusoidal encodings)", path);
        goto done;
    }
    if ((int64_t)out->n_head * out->d_head > 65536) {
        pg_fail(err, PG_EINVAL, "%s: n_head * d_head too large", path);
        goto done;
    }
    json_t *eps = json_object_get(root, "layer_norm_eps");
    out->ln_eps = 1e-5f;
    if (eps) {
        /* a float, used as one: below FLT_MIN it is subnormal or rounds to 0 */
        if (!json_is_number(eps) || !(json_number_value(eps) >= FLT_MIN) ||
            !(json_number_value(eps) <= 1)) {
            pg_fail(err, PG_EINVAL, "%s: \"layer_norm_eps\" must be a number in [%g, 1] (the "
                    "normal range of a float)", path, (double)FLT_MIN);
            goto done;
        }
        out->ln_eps = (float)json_number_value(eps);
    }
    json_t *comp = json_object_get(root, "compression");
    out->compression = PG_COMPRESS_NONE;
    if (comp && !json_is_null(comp)) {
        if (!json_is_string(comp)) {
            pg_fail(err, PG_EINVAL, "%s: \"compression\" must be a string", path);
            goto done;
        }
        int found = -1;
        for (int i = 0; i <= PG_COMPRESS_MOST_USED; i++)
            if (strcmp(json_string_value(comp), compression_names[i]) == 0)
                found = i;
        if (found < 0) {
            pg_fail(err, PG_EINVAL,
                    "%s: unknown compression \"%s\" (conv, dilated_conv, max_pool, mean_pool, "
                    "most_used, none)", path, json_string_value(comp));
            goto done;
        }
        out->compression = found;
    }
    if (is_ct) {
        if (out->compression == PG_COMPRESS_NONE || out->compressed_memory <= 0) {
            pg_fail(err, PG_EINVAL,
                    "%s: a compressive transformer needs \"compression\" and "
                    "\"compressed_memory\" > 0", path);
            goto done;
        }
        int c = out->compression_rate;
        if (out->window % c || out->memory % c) {
            pg_fail(err, PG_EINVAL, "%s: window and memory must be multiples of the "
                    "compression rate %d", path, c);
            goto done;
        }
    } else if (out->compression != PG_COMPRESS_NONE || out->compressed_memory != 0) {
        pg_fail(err, PG_EINVAL, "%s: a transformer-xl has no compressed memory", path);
        goto done;
    }
    rc = 0;
done:
    json_decref(root);
    return rc;
}

int pg_model_config_load(const char *path, pg_model_config *out, uint8_t sha256[32],
                         pg_error *err)
{
    char *buf;
    size_t len;
    int rc = pg_read_file(path, 1 << 20, &buf, &len, err);
    if (rc)
        return rc;
    if (sha256)
        pg_sha256(buf, len, sha256);
    rc = pg_model_config_parse(buf, len, path, out, err);
    free(buf);
    return rc;
}

/* ---------------------------------------------------------------- layout */

int pg_model_is_dct(const pg_model_config *c)
{
    return strcmp(c->family, "dct") == 0;
}

static int has_conv(const pg_model_config *c)
{
    return c->compression == PG_COMPRESS_CONV || c->compression == PG_COMPRESS_DILATED_CONV;
}

/* Walks the tensor list in file order. With base != NULL the pointers are
 * set; returns the number of tensors and the total element count in *total. */
static int layout(const pg_model_config *c, pg_tensor_info *info, int cap, float *base,
                  size_t *total)
{
    int n = 0;
    size_t off = 0;
    int64_t d = c->d_model, hd = (int64_t)c->n_head * c->d_head;
    /* T(name, layer, ndim, shape...): the next tensor, "layers.<layer>.<name>"
     * (global tensors: layer -1, the name alone) */
#define T(NAME_FMT, L, ND, S0, S1, S2)                                           \
    do {                                                                         \
        int64_t sh_[3] = {(S0), (S1), (S2)};                                     \
        size_t ne_ = 1;                                                          \
        for (int k_ = 0; k_ < (ND); k_++)                                        \
            ne_ *= (size_t)sh_[k_];                                              \
        if (info && n < cap) {                                                   \
            if ((L) < 0)                                                         \
                snprintf(info[n].name, sizeof info[n].name, "%s", NAME_FMT);     \
            else                                                                 \
                snprintf(info[n].name, sizeof info[n].name, "layers.%d.%s", L,   \
                         NAME_FMT);                                              \
            info[n].ndim = (ND);                                                 \
            memcpy(info[n].shape, sh_, sizeof sh_);                              \
            info[n].numel = ne_;                                                 \
            info[n].data = base ? base + off : NULL;                             \
        }                                                                        \
        n++;                                                                     \
        off += ne_;                                                              \
    } while (0)
    T("tok_emb.weight", -1, 2, c->vocab_size, d, 0);
    for (int l = 0; l < c->n_layer; l++) {
        T("ln1.weight", l, 1, d, 0, 0);
        T("ln1.bias", l, 1, d, 0, 0);
        T("attn.q.weight", l, 2, hd, d, 0);
        T("attn.k.weight", l, 2, hd, d, 0);
        T("attn.v.weight", l, 2, hd, d, 0);
        T("attn.r.weight", l, 2, hd, d, 0);
        T("attn.r_w_bias", l, 2, c->n_head, c->d_head, 0);
        T("attn.r_r_bias", l, 2, c->n_head, c->d_head, 0);
        T("attn.o.weight", l, 2, d, hd, 0);
        T("ln2.weight", l, 1, d, 0, 0);
        T("ln2.bias", l, 1, d, 0, 0);
        T("ff.w1.weight", l, 2, c->d_ff, d, 0);
        T("ff.w1.bias", l, 1, c->d_ff, 0, 0);
        T("ff.w2.weight", l, 2, d, c->d_ff, 0);
        T("ff.w2.bias", l, 1, d, 0, 0);
        if (has_conv(c)) {
            T("compress.weight", l, 3, d, d, c->compression_rate);
            T("compress.bias", l, 1, d, 0, 0);
        }
    }
    T("ln_f.weight", -1, 1, d, 0, 0);
    T("ln_f.bias", -1, 1, d, 0, 0);
    if (pg_model_is_dct(c)) { /* the judge: nn.LSTM(d, H, bidirectional) + nn.Linear(2H, 2) */
        int64_t jh = c->judge_hidden;
        static const char *const dir[2] = {"", "_reverse"};
        char nm[64];
        for (int r = 0; r < 2; r++) {
            snprintf(nm, sizeof nm, "judge.lstm.weight_ih_l0%s", dir[r]);
            T(nm, -1, 2, 4 * jh, d, 0);
            snprintf(nm, sizeof nm, "judge.lstm.weight_hh_l0%s", dir[r]);
            T(nm, -1, 2, 4 * jh, jh, 0);
            snprintf(nm, sizeof nm, "judge.lstm.bias_ih_l0%s", dir[r]);
            T(nm, -1, 1, 4 * jh, 0, 0);
            snprintf(nm, sizeof nm, "judge.lstm.bias_hh_l0%s", dir[r]);
            T(nm, -1, 1, 4 * jh, 0, 0);
        }
        T("judge.fc.weight", -1, 2, 2, 2 * jh, 0);
        T("judge.fc.bias", -1, 1, 2, 0, 0);
    }
#undef T
    if (total)
        *total = off;
    return n;
}

size_t pg_model_param_count(const pg_model_config *cfg)
{
    size_t total;
    layout(cfg, NULL, 0, NULL, &total);
    return total;
}

int pg_model_tensors(const pg_model *m, pg_tensor_info *info, int cap)
{
    return layout(&m->cfg, info, cap, m->mem, NULL);
}

int pg_model_new(const pg_model_config *cfg, pg_model **out, pg_error *err)
{
    size_t total;
    int nt = layout(cfg, NULL, 0, NULL, &total);
    pg_model *m = calloc(1, sizeof *m);
    pg_tensor_info *info = calloc((size_t)nt, sizeof *info);
    if (m)
        m->layers = calloc((size_t)cfg->n_layer, sizeof *m->layers);
    if (m && total < ((size_t)1 << 40) / sizeof(float))
        m->mem = pg_calloc_huge(total, sizeof(float));
    if (!m || !info || !m->layers || !m->mem) {
        free(info);
        pg_model_free(m);
        return pg_fail(err, PG_ENOMEM, "model %s: cannot allocate %zu parameters", cfg->name,
                       total);
    }
    m->cfg = *cfg;
    m->n_params = total;
    layout(cfg, info, nt, m->mem, NULL);
    int i = 0;
    m->tok_emb = info[i++].data;
    for (int l = 0; l < cfg->n_layer; l++) {
        pg_layer_params *p = &m->layers[l];
        p->ln1_w = info[i++].data;
        p->ln1_b = info[i++].data;
        p->wq = info[i++].data;
        p->wk = info[i++].data;
        p->wv = info[i++].data;
        p->wr = info[i++].data;
        p->r_w_bias = info[i++].data;
        p->r_r_bias = info[i++].data;
        p->wo = info[i++].data;
        p->ln2_w = info[i++].data;
        p->ln2_b = info[i++].data;
        p->w1 = info[i++].data;
        p->b1 = info[i++].data;
        p->w2 = info[i++].data;
        p->b2 = info[i++].data;
        if (has_conv(cfg)) {
            p->cw = info[i++].data;
            p->cb = info[i++].data;
        }
    }
    m->lnf_w = info[i++].data;
    m->lnf_b = info[i++].data;
    if (pg_model_is_dct(cfg)) {
        for (int r = 0; r < 2; r++) {
            m->judge.w_ih[r] = info[i++].data;
            m->judge.w_hh[r] = info[i++].data;
            m->judge.b_ih[r] = info[i++].data;
            m->judge.b_hh[r] = info[i++].data;
        }
        m->judge.fc_w = info[i++].data;
        m->judge.fc_b = info[i++].data;
    }
    free(info);
    *out = m;
    return 0;
}

void pg_model_free(pg_model *m)
{
    if (!m)
        return;
    free(m->mem);
    free(m->layers);
    free(m);
}

/* splitmix64: a small, well-mixed generator; reproducible across platforms. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static float uniform_pm1(uint64_t *st)
{
    return (float)((double)(splitmix64(st) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

int pg_model_random_init(pg_model *m, uint64_t seed, pg_error *err)
{
    int nt = pg_model_tensors(m, NULL, 0);
    pg_tensor_info *info = calloc((size_t)nt, sizeof *info);
    if (!info)
        return pg_fail(err, PG_ENOMEM, "model %s: out of memory", m->cfg.name);
    pg_model_tensors(m, info, nt);
    uint64_t st = seed;
    for (int i = 0; i < nt; i++) {
        pg_tensor_info *t = &info[i];
        const char *nm = t->name;
        size_t len = strlen(nm);
        int is_ln_w = strstr(nm, "ln") && len > 7 && strcmp(nm + len - 7, ".weight") == 0 &&
                      (strstr(nm, "ln1.") || strstr(nm, "ln2.") || strstr(nm, "ln_f."));
        if (is_ln_w) {
            for (size_t j = 0; j < t->numel; j++)
                t->data[j] = 1.0f;
        } else if (t->ndim == 1) {
            for (size_t j = 0; j < t->numel; j++)
                t->data[j] = 0.0f;
        } else {
            /* fan_in: the last dimension (in, or in*kernel for conv); the
             * embedding is scaled like the output layer it is tied with. */
            double fan_in = (double)t->shape[t->ndim - 1];
            if (t->ndim == 3)
                fan_in = (double)t->shape[1] * (double)t->shape[2];
            float scale = (float)(1.0 / sqrt(fan_in));
            if (strstr(nm, "r_w_bias") || strstr(nm, "r_r_bias"))
                scale = 0.1f;
            for (size_t j = 0; j < t->numel; j++)
                t->data[j] = uniform_pm1(&st) * scale;
        }
    }
    free(info);
    return 0;
}

/* ---------------------------------------------------------------- threads */

static int g_threads = 0;

void pg_set_threads(int n)
{
    g_threads = n > 0 ? n : 1;
}

int pg_get_threads(void)
{
    if (g_threads <= 0)
        g_threads = omp_get_max_threads();
    return g_threads;
}

/* ---------------------------------------------------------------- state */

struct pg_state {
    int n_slots, window, n_mem, n_cmem, span; /* span = n_cm + n_m + window */
    int d, hd, n_threads, n_layer;
    int *mem_len, *cmem_len;  /* [n_layer][n_slots] */
    float *mem;               /* [n_layer][n_slots][n_m][d] */
    float *kmem, *vmem;       /* [n_layer][n_slots][n_m][HD] keys, values of the memory */
    float *kcm, *vcm;         /* [n_layer][n_slots][n_cm][HD] ... of the compressed memory */
    float *usage;             /* [n_layer][n_slots][n_m] attention received (most_used) */
    float *x;                 /* [B*W, d] residual stream */
    float *ln;                /* [B*W, d] */
    float *q;                 /* [B*W, HD] */
    float *att;               /* [B*W, HD] */
    float *ff;                /* [B*W, d_ff] */
    float *k, *v;             /* [B, span, HD] keys, values of concat(cmem, mem, h) */
    float *pos;               /* [span, d] row t: sinusoid of distance span-1-t */
    float *r;                 /* [n_layer, span, HD] projected positions */
    float *usage_part;        /* [B, H, n_m] */
    float *scratch;           /* per thread: qu, qv [W, dh]; ac, bd [W, span] */
    size_t scratch_per_thread;
    /* per thread, for compression: [n_m+W, d] x3, [n_m+W], [n_m+W, HD] x2 */
    float *comp_in, *comp_out, *comp_gather, *comp_usage, *comp_k, *comp_v;
    int *comp_idx;            /* per thread [n_m+W] */
    float *logits;            /* [B*W, V] */
    /* per slot: first row in x, first row in k/v, rows in k/v, first new row in k/v */
    int *row0, *cat0, *catlen, *new0;
    pg_keep_masks keep;       /* DCT keep masks for the next forward */
    int rate;                 /* the compression rate c */
    int r_ready;              /* r computed (first forward) */
    double flops;
    float *block;             /* the one allocation */
};

int pg_state_new(const pg_model *m, int n_slots, int window, pg_state **out, pg_error *err)
{
    const pg_model_config *c = &m->cfg;
    if (n_slots < 1 || n_slots > 4096 || window < 1 || window > (1 << 16))
        return pg_fail(err, PG_EINVAL, "state: bad batch %d or window %d", n_slots, window);
    if (c->compressed_memory > 0 && window % c->compression_rate)
        return pg_fail(err, PG_EINVAL, "model %s: the window (%d) must be a multiple of the "
                       "compression rate %d", c->name, window, c->compression_rate);
    pg_state *s = calloc(1, sizeof *s);
    if (!s)
        return pg_fail(err, PG_ENOMEM, "state: out of memory");
    size_t B = (size_t)n_slots, W = (size_t)window, L = (size_t)c->n_layer;
    size_t d = (size_t)c->d_model, hd = (size_t)c->n_head * c->d_head, dh = (size_t)c->d_head;
    size_t nm = (size_t)c->memory, ncm = (size_t)c->compressed_memory;
    size_t span = ncm + nm + W, nt;
    s->n_slots = n_slots;
    s->window = window;
    s->n_mem = (int)nm;
    s->n_cmem = (int)ncm;
    s->span = (int)span;
    s->d = (int)d;
    s->n_layer = (int)L;
    s->hd = (int)hd;
    s->n_threads = pg_get_threads();
    if (omp_get_max_threads() > s->n_threads)
        s->n_threads = omp_get_max_threads();
    nt = (size_t)s->n_threads;
    s->scratch_per_thread = 2 * W * dh + 2 * W * span;
    size_t sizes[] = {
        L * B * nm * d, L * B * nm * hd, L * B * nm * hd, L * B * ncm * hd, L * B * ncm * hd,
        L * B * nm,
        B * W * d, B * W * d, B * W * hd, B * W * hd, B * W * (size_t)c->d_ff,
        B * span * hd, B * span * hd, span * d, L * span * hd,
        B * (size_t)c->n_head * nm, nt * s->scratch_per_thread,
        nt * (nm + W) * d, nt * (nm + W) * d, nt * (nm + W) * d, nt * (nm + W),
        nt * (nm + W) * hd, nt * (nm + W) * hd,
        B * W * (size_t)c->vocab_size};
    float **ptrs[] = {&s->mem, &s->kmem, &s->vmem, &s->kcm, &s->vcm, &s->usage, &s->x, &s->ln,
                      &s->q, &s->att, &s->ff, &s->k, &s->v, &s->pos, &s->r, &s->usage_part,
                      &s->scratch, &s->comp_in, &s->comp_out, &s->comp_gather,
                      &s->comp_usage, &s->comp_k, &s->comp_v, &s->logits};
    size_t n = sizeof sizes / sizeof sizes[0], total = 0;
    for (size_t i = 0; i < n; i++)
        total += sizes[i];
    s->mem_len = calloc(L * B, sizeof(int));
    s->cmem_len = calloc(L * B, sizeof(int));
    s->comp_idx = calloc(nt * (nm + W), sizeof(int));
    s->row0 = calloc(4 * B, sizeof(int));
    s->rate = c->compression_rate;
    s->block = total < ((size_t)1 << 40) ? pg_calloc_huge(total, sizeof(float)) : NULL;
    if (!s->mem_len || !s->cmem_len || !s->comp_idx || !s->row0 || !s->block ||
        pg_keep_masks_init(&s->keep, n_slots, (int)((nm + W) / (size_t)c->compression_rate + 1),
                           err)) {
        pg_state_free(s);
        return pg_fail(err, PG_ENOMEM, "state: cannot allocate %zu floats for %d slots", total,
                       n_slots);
    }
    s->cat0 = s->row0 + B;
    s->catlen = s->cat0 + B;
    s->new0 = s->catlen + B;
    float *p = s->block;
    for (size_t i = 0; i < n; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    for (size_t b = 0; b < B; b++)
        s->cat0[b] = (int)(b * span);
    /* Sinusoid of distance p: [sin(p f_0) .. sin(p f_{d/2-1}), cos(p f_0) ..],
     * f_k = 10000^(-2k/d), in decreasing distance as in Transformer-XL: row t
     * is distance span-1-t, so the K keys of a window use the last K rows. */
    for (size_t t = 0; t < span; t++)
        for (size_t k = 0; k < d / 2; k++) {
            double f = pow(10000.0, -(double)(2 * k) / (double)d), p = (double)(span - 1 - t);
            s->pos[t * d + k] = (float)sin(p * f);
            s->pos[t * d + d / 2 + k] = (float)cos(p * f);
        }
    *out = s;
    return 0;
}

void pg_state_free(pg_state *s)
{
    if (!s)
        return;
    free(s->mem_len);
    free(s->cmem_len);
    free(s->comp_idx);
    free(s->row0);
    pg_keep_masks_free(&s->keep);
    free(s->block);
    free(s);
}

void pg_state_reset_slot(pg_state *s, int slot)
{
    for (int l = 0; l < s->n_layer; l++) {
        size_t i = (size_t)l * s->n_slots + (size_t)slot;
        s->mem_len[i] = 0;
        s->cmem_len[i] = 0;
        memset(s->usage + i * s->n_mem, 0, sizeof(float) * (size_t)s->n_mem);
    }
}

/* Evicted rows when a window of len rows arrives: the memory overflows by
 * m + len - n_m; whole blocks of c are compressed (a remainder, only after a
 * partial window, is dropped as in update_memory). */
int pg_state_evicted_blocks(const pg_state *s, int slot, int len)
{
    if (slot < 0 || slot >= s->n_slots)
        return 0;
    /* layer 0 (li = slot); every layer's memory has the same length */
    return pg_keep_evicted_blocks(s->mem_len[slot], len, s->n_mem, s->n_cmem, s->rate);
}

int pg_state_set_keep(pg_state *s, int slot, const uint8_t *keep, int n, pg_error *err)
{
    return pg_keep_masks_set(&s->keep, slot, keep, n, err);
}

void pg_state_lengths(const pg_state *s, int slot, int *n_m, int *n_cm)
{
    *n_m = s->mem_len[slot];
    *n_cm = s->cmem_len[slot];
}

double pg_state_flops(const pg_state *s)
{
    return s->flops;
}

/* ---------------------------------------------------------------- layers */

/* The forward of one call is split into jobs: either one job per slot, run
 * side by side (enough slots for the threads), or one job for all slots
 * whose matrix products use the threads. Either way every matrix product is
 * cut into the same tasks: one per (slot, chunk of MATMUL_CHUNK output
 * columns), each a single-threaded sgemm over that slot's rows. OpenBLAS
 * results for a row change with the row count M of the call, so a book's
 * numbers would otherwise depend on the books sharing its batch; this way
 * they depend on neither the batch nor the number of threads (bitwise). */
#define MATMUL_CHUNK 256

typedef struct job {
    const pg_model *m;
    pg_state *s;
    int b0, n;   /* slots [b0, b0 + n) */
    const int *lens;
    int nt;      /* threads inside the job */
    int tid;     /* scratch index when nt == 1 */
    double flops;
} job;

static int job_tid(const job *j)
{
    return j->nt > 1 ? omp_get_thread_num() : j->tid;
}

typedef struct segs {
    int n;
    const int *row0, *len; /* input rows [row0[i], row0[i] + len[i]) */
    const int *out0;       /* first output row of each segment; NULL: row0 */
} segs;

/* y[n] += b[n], then max(y, 0) when relu: one vectorised pass over a row
 * chunk while it is in cache (the W1 product's bias and ReLU). */
static void add_bias_row(float *restrict y, const float *restrict b, int n, int relu)
{
    if (relu) {
#pragma omp simd
        for (int i = 0; i < n; i++) {
            float v = y[i] + b[i];
            y[i] = v > 0.0f ? v : 0.0f;
        }
    } else {
#pragma omp simd
        for (int i = 0; i < n; i++)
            y[i] += b[i];
    }
}

/* out[r, N] (+)= in[r, K] W[N, K]^T (+ bias[N]) for the rows r of every
 * segment; accumulate adds to out. */
static void matmul_segs_act(job *j, float *out, int ldo, const float *in, int ldi,
                            const float *w, const float *bias, segs sg, int K, int N,
                            int accumulate, int relu)
{
    int nchunks = (N + MATMUL_CHUNK - 1) / MATMUL_CHUNK, ntask = sg.n * nchunks;
    for (int i = 0; i < sg.n; i++)
        j->flops += 2.0 * sg.len[i] * (double)K * N;
#pragma omp parallel for num_threads(j->nt) if (j->nt > 1) schedule(dynamic, 1)
    for (int task = 0; task < ntask; task++) {
        int seg = task / nchunks, ch = task % nchunks, T = sg.len[seg];
        if (T == 0)
            continue;
        int n0 = ch * MATMUL_CHUNK, n1 = n0 + MATMUL_CHUNK < N ? n0 + MATMUL_CHUNK : N;
        float *o = out + (size_t)(sg.out0 ? sg.out0[seg] : sg.row0[seg]) * ldo;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n1 - n0, K, 1.0f,
                    in + (size_t)sg.row0[seg] * ldi, ldi, w + (size_t)n0 * K, K,
                    accumulate ? 1.0f : 0.0f, o + n0, ldo);
        if (bias)
            for (int t = 0; t < T; t++)
                add_bias_row(o + (size_t)t * ldo + n0, bias + n0, n1 - n0, relu);
    }
}

static void matmul_segs(job *j, float *out, int ldo, const float *in, int ldi, const float *w,
                        const float *bias, segs sg, int K, int N, int accumulate)
{
    matmul_segs_act(j, out, ldo, in, ldi, w, bias, sg, K, N, accumulate, 0);
}

/* One segment of T rows starting at row 0. */
static void matmul(job *j, float *out, int ldo, const float *in, int ldi, const float *w,
                   const float *bias, int T, int K, int N, int accumulate)
{
    int row0 = 0;
    segs sg = {1, &row0, &T, NULL};
    matmul_segs(j, out, ldo, in, ldi, w, bias, sg, K, N, accumulate);
}

/* out[T, d] = LayerNorm(in[T, d]) * w + b */
static void layernorm(const job *j, float *out, const float *in, const float *w,
                      const float *b, int T, int d, float eps)
{
#pragma omp parallel for num_threads(j->nt) if (j->nt > 1) schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = in + (size_t)t * d;
        float *y = out + (size_t)t * d;
        float mean = 0.0f, var = 0.0f;
#pragma omp simd reduction(+ : mean)
        for (int i = 0; i < d; i++)
            mean += x[i];
        mean /= (float)d;
#pragma omp simd reduction(+ : var)
        for (int i = 0; i < d; i++)
            var += (x[i] - mean) * (x[i] - mean);
        var /= (float)d;
        float rstd = 1.0f / sqrtf(var + eps);
#pragma omp simd
        for (int i = 0; i < d; i++)
            y[i] = (x[i] - mean) * rstd * w[i] + b[i];
    }
}

/* exp(x) for x <= 0 (softmax after subtracting the row maximum), written so
 * that the compiler vectorises it (libm's expf is a call per element):
 * x = n ln2 + r, |r| <= ln2/2, exp(r) by Cephes' degree-6 polynomial
 * (about 1 ulp), times 2^n built in the exponent bits; below -87.3 (where
 * expf underflows to denormals) it returns 0. */
static inline float exp_nonpos(float x)
{
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float xc = x < -87.3f ? -87.3f : x;
    float t = xc * 1.44269504f + magic;
    float n = t - magic;
    float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union { float f; uint32_t u; } tb = {t}, sc;
    /* 2^n, n >= -126 (unsigned: a NaN input must not be a signed overflow) */
    sc.u = (tb.u - 0x4B400000u + 127u) << 23;
    return x < -87.3f ? 0.0f : p * sc.f;
}

/* One attention row in place: s_j = (ac_j + bd_j) * scale for j <= last,
 * then softmax over them; entries after `last` (masked) become 0.
 * Vectorised (OpenMP simd) with versions for AVX-512, AVX2 and the base
 * ISA; the result depends on the version the CPU runs, never on threads or
 * batching. */
__attribute__((target_clones("avx512f", "avx2", "default")))
static void softmax_row(float *restrict row, const float *restrict bd, int last, int K,
                        float scale)
{
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j <= last; j++) {
        float v = (row[j] + bd[j]) * scale;
        row[j] = v;
        mx = v > mx ? v : mx;
    }
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j <= last; j++) {
        float e = exp_nonpos(row[j] - mx);
        row[j] = e;
        sum += e;
    }
    float inv = 1.0f / sum;
#pragma omp simd
    for (int j = 0; j <= last; j++)
        row[j] *= inv;
    for (int j = last + 1; j < K; j++)
        row[j] = 0.0f;
}

/* Relative multi-head attention of one slot and one head.
 *   q   [L, HD] (this slot's rows), k, v [K, HD] (K = M + L)
 *   r   [K, HD] projected positions, row m = distance K-1-m
 *   out [L, HD] (columns of head h)
 *   ac[i, j] = (q_i + u) . k_j          bd[i, m] = (q_i + v) . r_m
 *   s[i, j]  = (ac[i, j] + bd[i, j + L-1-i]) / sqrt(dh)   for j <= M + i
 * Row m = j + L-1-i of r is distance M + i - j: this is the relative shift
 * of Transformer-XL (its pad-and-reshape trick computes the same gather). */
static void attention_head(const float *q, const float *k, const float *v, const float *r,
                           const float *u_bias, const float *v_bias, float *out, int L, int M,
                           int HD, int dh, float *scratch, int window, int span,
                           float *usage_out, int n_usage_from, int n_usage)
{
    int K = M + L;
    float *qu = scratch, *qv = qu + (size_t)window * dh;
    float *ac = qv + (size_t)window * dh, *bd = ac + (size_t)window * span;
    for (int i = 0; i < L; i++)
        for (int e = 0; e < dh; e++) {
            qu[(size_t)i * dh + e] = q[(size_t)i * HD + e] + u_bias[e];
            qv[(size_t)i * dh + e] = q[(size_t)i * HD + e] + v_bias[e];
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, K, dh, 1.0f, qu, dh, k, HD, 0.0f,
                ac, K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, K, dh, 1.0f, qv, dh, r, HD, 0.0f,
                bd, K);
    float scale = 1.0f / sqrtf((float)dh);
    for (int i = 0; i < L; i++) {
        /* causal: keys 0..M+i; row L-1-i of bd is the relative shift */
        softmax_row(ac + (size_t)i * K, bd + (size_t)i * K + (L - 1 - i), M + i, K, scale);
    }
    /* out[L, dh] = p[L, K] v[K, dh] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, dh, K, 1.0f, ac, K, v, HD, 0.0f,
                out, HD);
    if (usage_out)
        for (int t = 0; t < n_usage; t++) {
            float u = 0.0f;
            for (int i = 0; i < L; i++)
                u += ac[(size_t)i * K + n_usage_from + t];
            usage_out[t] = u;
        }
}

/* The compression function f_c on one block in [n, d] -> out [n/c, d]. */
static void compress_block(job *j, const pg_model_config *cfg, const pg_layer_params *lp,
                           const float *in, int n, const float *usage, float *out)
{
    pg_state *s = j->s;
    int c = cfg->compression_rate, d = cfg->d_model, g = n / c, tid = job_tid(j);
    size_t rows = (size_t)s->n_mem + (size_t)s->window;
    switch (cfg->compression) {
    case PG_COMPRESS_CONV:
    case PG_COMPRESS_DILATED_CONV: {
        /* out[j] = b + sum_t W[:, :, t] x[p_t(j)]; plain conv: p_t(j) = j c + t;
         * dilated: p_t(j) = j c + c-1 - (c-1-t) D, zero where p < 0 (that is a
         * conv1d with stride c, dilation D and (c-1)(D-1) zeros of left
         * padding). As one product over K = d c with the weights as stored
         * ([d, d, c] is [d, d c] with column i c + t): out = X W^T + b where
         * X[j, i c + t] = x[p_t(j), i]. */
        int D = cfg->compression == PG_COMPRESS_CONV ? 1 : cfg->dilation;
        float *X = s->comp_gather + (size_t)tid * rows * d; /* [g, d c] */
        for (int jj = 0; jj < g; jj++)
            for (int t = 0; t < c; t++) {
                long p = cfg->compression == PG_COMPRESS_CONV
                             ? (long)jj * c + t
                             : (long)jj * c + (c - 1) - (long)(c - 1 - t) * D;
                float *x = X + (size_t)jj * d * c + t;
                const float *src = in + (size_t)(p >= 0 ? p : 0) * d;
                for (int i = 0; i < d; i++)
                    x[(size_t)i * c] = p >= 0 ? src[i] : 0.0f;
            }
        matmul(j, out, d, X, d * c, lp->cw, lp->cb, g, d * c, d, 0);
        break;
    }
    case PG_COMPRESS_MAX_POOL:
    case PG_COMPRESS_MEAN_POOL:
        for (int jj = 0; jj < g; jj++)
            for (int i = 0; i < d; i++) {
                float acc = in[(size_t)jj * c * d + i];
                for (int t = 1; t < c; t++) {
                    float x = in[((size_t)jj * c + t) * d + i];
                    if (cfg->compression == PG_COMPRESS_MAX_POOL)
                        acc = x > acc ? x : acc;
                    else
                        acc += x;
                }
                out[(size_t)jj * d + i] =
                    cfg->compression == PG_COMPRESS_MAX_POOL ? acc : acc / (float)c;
            }
        break;
    case PG_COMPRESS_MOST_USED: {
        /* Keep the g rows that received the most attention, in their order;
         * ties go to the older row. Selection by repeated arg-max (n is a few
         * hundred, once per window). */
        int *taken = s->comp_idx + (size_t)tid * rows;
        for (int i = 0; i < n; i++)
            taken[i] = 0;
        for (int sel = 0; sel < g; sel++) {
            int best = -1;
            for (int i = 0; i < n; i++)
                if (!taken[i] && (best < 0 || usage[i] > usage[best]))
                    best = i;
            taken[best] = 1;
        }
        int k = 0;
        for (int i = 0; i < n; i++)
            if (taken[i])
                memcpy(out + (size_t)(k++) * d, in + (size_t)i * d, sizeof(float) * d);
        break;
    }
    default:
        break;
    }
}

int pg_compress(const pg_model_config *cfg, const pg_layer_params *lp, const float *in, int n,
                const float *usage, float *out, pg_error *err)
{
    /* A throwaway state carries the scratch buffers for the test entry point. */
    pg_model fake = {0};
    fake.cfg = *cfg;
    fake.cfg.n_layer = 1;
    fake.cfg.window = n;
    fake.cfg.memory = 0;
    fake.cfg.compressed_memory = 0;
    fake.cfg.vocab_size = 1;
    pg_state *s;
    int rc = pg_state_new(&fake, 1, n, &s, err);
    if (rc)
        return rc;
    job j = {.m = &fake, .s = s, .nt = 1, .tid = 0};
    compress_block(&j, cfg, lp, in, n, usage, out);
    pg_state_free(s);
    return 0;
}

/* buf[0, len) = concat(buf[0, len), rows[0, n))[-cap:] for rows of width
 * floats; rows NULL appends zeros. Returns the new length. */
static int fifo_append(float *buf, int len, int cap, const float *rows, int n, size_t width)
{
    if (n >= cap) {
        if (rows)
            memcpy(buf, rows + (size_t)(n - cap) * width, sizeof(float) * (size_t)cap * width);
        else
            memset(buf, 0, sizeof(float) * (size_t)cap * width);
        return cap;
    }
    int drop = len + n - cap > 0 ? len + n - cap : 0;
    memmove(buf, buf + (size_t)drop * width, sizeof(float) * (size_t)(len - drop) * width);
    len -= drop;
    if (rows)
        memcpy(buf + (size_t)len * width, rows, sizeof(float) * (size_t)n * width);
    else
        memset(buf + (size_t)len * width, 0, sizeof(float) * (size_t)n * width);
    return len + n;
}

/* After layer l has attended: slide the layer input h (L rows), with its
 * keys and values knew, vnew [L, HD], into the memory of slot b; the rows
 * that fall out are compressed, and the compressed rows (with their keys and
 * values, computed once here) pushed into the compressed memory. */
static void update_memory(job *j, const pg_model_config *cfg, const pg_layer_params *lp, int l,
                          int b, const float *h, const float *knew, const float *vnew, int L)
{
    pg_state *s = j->s;
    size_t li = (size_t)l * s->n_slots + (size_t)b;
    int d = s->d, HD = s->hd, nm = s->n_mem, ncm = s->n_cmem, tid = job_tid(j);
    size_t rows = (size_t)nm + (size_t)s->window;
    float *mem = s->mem + li * (size_t)nm * d;
    float *usage = s->usage + li * (size_t)nm;
    int m = s->mem_len[li];
    int n_evict = m + L - nm > 0 ? m + L - nm : 0;
    if (ncm > 0 && n_evict >= cfg->compression_rate) {
        /* evicted = concat(mem, h)[:n_evict], with its usage (window rows: 0) */
        float *ev = s->comp_in + (size_t)tid * rows * d;
        float *evu = s->comp_usage + (size_t)tid * rows;
        int from_mem = n_evict < m ? n_evict : m;
        memcpy(ev, mem, sizeof(float) * (size_t)from_mem * d);
        memcpy(ev + (size_t)from_mem * d, h, sizeof(float) * (size_t)(n_evict - from_mem) * d);
        for (int i = 0; i < n_evict; i++)
            evu[i] = i < from_mem ? usage[i] : 0.0f;
        /* a remainder of fewer than c rows (only after a partial window) is dropped */
        int g = n_evict / cfg->compression_rate;
        float *co = s->comp_out + (size_t)tid * rows * d;
        compress_block(j, cfg, lp, ev, g * cfg->compression_rate, evu, co);
        /* keys and values of the compressed rows: k = LN1(co) Wk^T, v = LN1(co) Wv^T */
        float *lnc = s->comp_gather + (size_t)tid * rows * d;
        float *kc = s->comp_k + (size_t)tid * rows * HD, *vc = s->comp_v + (size_t)tid * rows * HD;
        layernorm(j, lnc, co, lp->ln1_w, lp->ln1_b, g, d, cfg->ln_eps);
        matmul(j, kc, HD, lnc, d, lp->wk, NULL, g, d, HD, 0);
        matmul(j, vc, HD, lnc, d, lp->wv, NULL, g, d, HD, 0);
        /* DCT: only the blocks the judge keeps enter the compressed memory
         * (keys and values computed for all g first, so that kept rows are
         * bitwise the CT's whatever the mask) */
        pg_keep_masks_compact(&s->keep, b, kc, g, (size_t)HD);
        g = pg_keep_masks_compact(&s->keep, b, vc, g, (size_t)HD);
        /* cmem = concat(cmem, compressed)[-n_cm:] */
        int cm = s->cmem_len[li];
        fifo_append(s->kcm + li * (size_t)ncm * HD, cm, ncm, kc, g, (size_t)HD);
        s->cmem_len[li] = fifo_append(s->vcm + li * (size_t)ncm * HD, cm, ncm, vc, g, (size_t)HD);
    }
    /* mem = concat(mem, h)[n_evict:], with keys, values and usage (new rows: 0) */
    if (nm == 0)
        return;
    fifo_append(mem, m, nm, h, L, (size_t)d);
    fifo_append(s->kmem + li * (size_t)nm * HD, m, nm, knew, L, (size_t)HD);
    fifo_append(s->vmem + li * (size_t)nm * HD, m, nm, vnew, L, (size_t)HD);
    s->mem_len[li] = fifo_append(usage, m, nm, NULL, L, 1);
}

/* All layers and the output for slots [b0, b0 + n) of one window. */
static void forward_job(job *j)
{
    const pg_model *m = j->m;
    pg_state *s = j->s;
    const pg_model_config *c = &m->cfg;
    const int *lens = j->lens;
    int B = s->n_slots, b0 = j->b0, b1 = j->b0 + j->n;
    int d = c->d_model, H = c->n_head, dh = c->d_head, HD = H * dh, nm = s->n_mem;
    int T = 0; /* rows of this job: [row0[b0], row0[b0] + T) */
    for (int b = b0; b < b1; b++)
        T += lens[b];
    if (T == 0)
        return;
    size_t r0 = (size_t)s->row0[b0];
    segs rows = {j->n, s->row0 + b0, lens + b0, NULL};
    segs news = {j->n, s->row0 + b0, lens + b0, s->new0 + b0}; /* window rows -> k, v */
    float *x = s->x + r0 * d, *ln = s->ln + r0 * d;

    for (int l = 0; l < c->n_layer; l++) {
        const pg_layer_params *lp = &m->layers[l];
        /* ln = LN1(x); q[T, HD] = ln Wq^T */
        layernorm(j, ln, x, lp->ln1_w, lp->ln1_b, T, d, c->ln_eps);
        matmul_segs(j, s->q, HD, s->ln, d, lp->wq, NULL, rows, d, HD, 0);
        /* k, v [K_b, HD] per slot = concat(cmem, mem, window) rows: the cached
         * keys and values of the memories, then LN1(h) Wk^T, LN1(h) Wv^T */
        size_t hdb = sizeof(float) * (size_t)HD;
        for (int b = b0; b < b1; b++) {
            s->catlen[b] = 0;
            if (!lens[b])
                continue;
            size_t li = (size_t)l * B + b;
            int cm = s->cmem_len[li], mm = s->mem_len[li];
            size_t at = (size_t)s->cat0[b] * HD;
            memcpy(s->k + at, s->kcm + li * (size_t)s->n_cmem * HD, hdb * (size_t)cm);
            memcpy(s->v + at, s->vcm + li * (size_t)s->n_cmem * HD, hdb * (size_t)cm);
            memcpy(s->k + at + (size_t)cm * HD, s->kmem + li * (size_t)nm * HD, hdb * (size_t)mm);
            memcpy(s->v + at + (size_t)cm * HD, s->vmem + li * (size_t)nm * HD, hdb * (size_t)mm);
            s->new0[b] = s->cat0[b] + cm + mm;
            s->catlen[b] = cm + mm + lens[b];
        }
        matmul_segs(j, s->k, HD, s->ln, d, lp->wk, NULL, news, d, HD, 0);
        matmul_segs(j, s->v, HD, s->ln, d, lp->wv, NULL, news, d, HD, 0);
        /* attention, one task per (slot, head) */
        const float *r = s->r + (size_t)l * s->span * HD;
        int want_usage = c->compression == PG_COMPRESS_MOST_USED;
        int ntask = j->n * H;
#pragma omp parallel for num_threads(j->nt) if (j->nt > 1) schedule(dynamic, 1)
        for (int task = 0; task < ntask; task++) {
            int b = b0 + task / H, h = task % H;
            if (!lens[b])
                continue;
            size_t li = (size_t)l * B + b;
            int cm = s->cmem_len[li], mm = s->mem_len[li];
            float *scr = s->scratch + (size_t)job_tid(j) * s->scratch_per_thread;
            /* distances K-1 .. 0 are the last K rows of r */
            attention_head(s->q + (size_t)s->row0[b] * HD + h * dh,
                           s->k + (size_t)s->cat0[b] * HD + h * dh,
                           s->v + (size_t)s->cat0[b] * HD + h * dh,
                           r + (size_t)(s->span - s->catlen[b]) * HD + h * dh,
                           lp->r_w_bias + h * dh, lp->r_r_bias + h * dh,
                           s->att + (size_t)s->row0[b] * HD + h * dh, lens[b], cm + mm, HD, dh,
                           scr, s->window, s->span,
                           want_usage ? s->usage_part + ((size_t)b * H + h) * nm : NULL, cm,
                           mm);
        }
        for (int b = b0; b < b1; b++) {
            if (!lens[b])
                continue;
            size_t li = (size_t)l * B + b;
            j->flops += 3.0 * 2.0 * lens[b] * (double)s->catlen[b] * dh * H;
            if (want_usage) /* usage of memory rows += attention received, all heads */
                for (int h = 0; h < H; h++)
                    for (int t = 0; t < s->mem_len[li]; t++)
                        s->usage[li * nm + t] += s->usage_part[((size_t)b * H + h) * nm + t];
        }
        /* memories take this layer's input, before the residual updates */
        for (int b = b0; b < b1; b++)
            if (lens[b])
                update_memory(j, c, lp, l, b, s->x + (size_t)s->row0[b] * d,
                              s->k + (size_t)s->new0[b] * HD, s->v + (size_t)s->new0[b] * HD,
                              lens[b]);
        /* x += att Wo^T */
        matmul_segs(j, s->x, d, s->att, HD, lp->wo, NULL, rows, HD, d, 1);
        /* x += W2 relu(W1 LN2(x) + b1) + b2 */
        layernorm(j, ln, x, lp->ln2_w, lp->ln2_b, T, d, c->ln_eps);
        matmul_segs_act(j, s->ff, c->d_ff, s->ln, d, lp->w1, lp->b1, rows, d, c->d_ff, 0, 1);
        matmul_segs(j, s->x, d, s->ff, c->d_ff, lp->w2, lp->b2, rows, c->d_ff, d, 1);
    }
    /* logits[T, V] = LNf(x) E^T */
    layernorm(j, ln, x, m->lnf_w, m->lnf_b, T, d, c->ln_eps);
    matmul_segs(j, s->logits, c->vocab_size, s->ln, d, m->tok_emb, NULL, rows, d,
                c->vocab_size, 0);
}

int pg_forward(const pg_model *m, pg_state *s, const uint32_t *tokens, const int *lens,
               const float **logits, pg_error *err)
{
    const pg_model_config *c = &m->cfg;
    int B = s->n_slots, d = c->d_model, HD = c->n_head * c->d_head, V = c->vocab_size;
    int T = 0, active = 0;
    for (int b = 0; b < B; b++) {
        if (lens[b] < 0 || lens[b] > s->window)
            return pg_fail(err, PG_EINVAL, "forward: slot %d: %d tokens, window is %d", b,
                           lens[b], s->window);
        s->row0[b] = T;
        T += lens[b];
        active += lens[b] > 0;
    }
    for (int t = 0; t < T; t++)
        if (tokens[t] >= (uint32_t)V)
            return pg_fail(err, PG_EINVAL, "forward: token id %u >= vocabulary size %d",
                           tokens[t], V);
    for (int b = 0; b < B; b++) {
        int rc = lens[b] > 0 ? pg_keep_masks_check(&s->keep, b,
                                                   pg_state_evicted_blocks(s, b, lens[b]),
                                                   "forward", err)
                             : 0;
        if (rc)
            return rc;
    }
    /* x[T, d] = E[tokens] */
    for (int t = 0; t < T; t++)
        memcpy(s->x + (size_t)t * d, m->tok_emb + (size_t)tokens[t] * d, sizeof(float) * d);
    int nt = pg_get_threads();
    if (nt > s->n_threads)
        nt = s->n_threads;
    /* r_l[span, HD] = pos Wr_l^T for every layer, once per state (weights do
     * not change under a state): all span rows, whatever the memories hold,
     * so that the row count is fixed (see MATMUL_CHUNK) */
    job all = {.m = m, .s = s, .b0 = 0, .n = B, .lens = lens, .nt = nt, .tid = 0};
    if (!s->r_ready) {
        for (int l = 0; l < c->n_layer; l++)
            matmul(&all, s->r + (size_t)l * s->span * HD, HD, s->pos, d, m->layers[l].wr, NULL,
                   s->span, d, HD, 0);
        s->r_ready = 1;
    }
    if (nt > 1 && active >= nt) {
        /* enough books: one job per slot, side by side */
        double flops = 0.0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(+ : flops)
        for (int b = 0; b < B; b++) {
            job jb = {.m = m, .s = s, .b0 = b, .n = 1, .lens = lens, .nt = 1,
                      .tid = omp_get_thread_num()};
            forward_job(&jb);
            flops += jb.flops;
        }
        all.flops += flops;
    } else {
        forward_job(&all);
    }
    s->flops += all.flops;
    pg_keep_masks_consume(&s->keep, lens); /* a slot without tokens keeps its mask */
    *logits = s->logits;
    return 0;
}
