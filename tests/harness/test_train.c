/* Unit tests for harness/train_model.c and the optimizer of harness/train.c:
 * every backward against central finite differences of its forward (the
 * objective sum(out * R) for a random R, accumulated in float64), bitwise
 * identical gradients for 1 and 2 threads, and a tiny model that overfits a
 * short text to near-zero loss (fails with a wrong gradient). The whole
 * model's gradients are checked against PyTorch in test_train_grad.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/model.h"
#include "harness/train.h"
#include "harness/train_model.h"

static uint64_t rng_state = 12345;

static float frand(void) /* uniform in [-1, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float *rnd(size_t n, float scale)
{
    float *x = malloc(sizeof(float) * n);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = frand() * scale;
    return x;
}

static float *zeros(size_t n)
{
    float *x = calloc(n, sizeof(float));
    assert_non_null(x);
    return x;
}

static double dot(const float *a, const float *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* Checks grad[i] against (f(x + h e_i) - f(x - h e_i)) / 2h for the given
 * objective at a spread of indices. */
typedef double (*objective_fn)(void *ctx);

static void check_fd(const char *what, float *x, const float *grad, size_t n, objective_fn f,
                     void *ctx)
{
    const float h = 1e-2f;
    size_t stride = n > 40 ? n / 40 : 1;
    for (size_t i = 0; i < n; i += stride) {
        float keep = x[i];
        x[i] = keep + h;
        double fp = f(ctx);
        x[i] = keep - h;
        double fm = f(ctx);
        x[i] = keep;
        double num = (fp - fm) / (2.0 * (double)h);
        double tol = 2e-3 + 1e-2 * fabs(num);
        if (fabs(num - grad[i]) > tol)
            fail_msg("%s[%zu]: analytic %.6g, finite difference %.6g", what, i, (double)grad[i],
                     num);
    }
}

/* ------------------------------------------------------------- matmul */

typedef struct {
    int T, K, N;
    float *in, *w, *b, *out, *R;
} mm_ctx;

static double mm_obj(void *p)
{
    mm_ctx *c = p;
    pg_tm_matmul_forward(c->out, c->in, c->w, c->b, c->T, c->K, c->N);
    return dot(c->out, c->R, (size_t)c->T * c->N);
}

static void test_matmul_backward(void **state)
{
    (void)state;
    /* N > 128 spans two column chunks, K > 128 two input chunks */
    mm_ctx c = {5, 130, 140, NULL, NULL, NULL, NULL, NULL};
    c.in = rnd((size_t)c.T * c.K, 1);
    c.w = rnd((size_t)c.N * c.K, 0.1f);
    c.b = rnd((size_t)c.N, 1);
    c.out = zeros((size_t)c.T * c.N);
    c.R = rnd((size_t)c.T * c.N, 1);
    float *din = zeros((size_t)c.T * c.K), *dw = zeros((size_t)c.N * c.K), *db = zeros(c.N);
    pg_tm_matmul_backward(din, dw, db, c.R, c.in, c.w, c.T, c.K, c.N);
    check_fd("matmul din", c.in, din, (size_t)c.T * c.K, mm_obj, &c);
    check_fd("matmul dW", c.w, dw, (size_t)c.N * c.K, mm_obj, &c);
    check_fd("matmul db", c.b, db, (size_t)c.N, mm_obj, &c);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.R), free(din), free(dw), free(db);
}

/* ---------------------------------------------------------- layernorm */

typedef struct {
    int T, d;
    float *in, *w, *b, *out, *mean, *rstd, *R;
} ln_ctx;

static double ln_obj(void *p)
{
    ln_ctx *c = p;
    pg_tm_layernorm_forward(c->out, c->mean, c->rstd, c->in, c->w, c->b, c->T, c->d, 1e-5f);
    return dot(c->out, c->R, (size_t)c->T * c->d);
}

static void test_layernorm_backward(void **state)
{
    (void)state;
    ln_ctx c = {4, 24, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    size_t n = (size_t)c.T * c.d;
    c.in = rnd(n, 2);
    c.w = rnd((size_t)c.d, 1);
    c.b = rnd((size_t)c.d, 1);
    c.out = zeros(n);
    c.mean = zeros(c.T);
    c.rstd = zeros(c.T);
    c.R = rnd(n, 1);
    ln_obj(&c);
    float *din = zeros(n), *dw = zeros(c.d), *db = zeros(c.d);
    pg_tm_layernorm_backward(din, dw, db, c.R, c.in, c.w, c.mean, c.rstd, c.T, c.d);
    check_fd("layernorm din", c.in, din, n, ln_obj, &c);
    check_fd("layernorm dw", c.w, dw, (size_t)c.d, ln_obj, &c);
    check_fd("layernorm db", c.b, db, (size_t)c.d, ln_obj, &c);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.mean), free(c.rstd), free(c.R);
    free(din), free(dw), free(db);
}

/* ---------------------------------------------------------- attention */

typedef struct {
    int L, M, dh, ld;
    float *q, *k, *v, *r, *u, *vb, *out, *p, *R, *scratch;
} at_ctx;

static double at_obj(void *p)
{
    at_ctx *c = p;
    pg_tm_attention_forward(c->out, c->p, c->q, c->k, c->v, c->r, c->u, c->vb, c->L, c->M, c->dh,
                            c->ld, c->ld, c->scratch);
    double s = 0.0;
    for (int i = 0; i < c->L; i++)
        for (int e = 0; e < c->dh; e++)
            s += (double)c->out[(size_t)i * c->ld + e] * c->R[(size_t)i * c->ld + e];
    return s;
}

static void test_attention_backward(void **state)
{
    (void)state;
    /* one head of width 4 inside rows of 8 (ld), memory 3, window 5 */
    at_ctx c = {5, 3, 4, 8, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    int K = c.L + c.M;
    c.q = rnd((size_t)c.L * c.ld, 1);
    c.k = rnd((size_t)K * c.ld, 1);
    c.v = rnd((size_t)K * c.ld, 1);
    c.r = rnd((size_t)K * c.ld, 1);
    c.u = rnd((size_t)c.dh, 0.5f);
    c.vb = rnd((size_t)c.dh, 0.5f);
    c.out = zeros((size_t)c.L * c.ld);
    c.p = zeros((size_t)c.L * K);
    c.R = rnd((size_t)c.L * c.ld, 1);
    c.scratch = zeros((size_t)2 * c.L * K + 4 * (size_t)c.L * c.dh);
    at_obj(&c);
    /* causal: query i sees keys 0 .. M + i */
    for (int i = 0; i < c.L; i++)
        for (int j = c.M + i + 1; j < K; j++)
            assert_true(c.p[(size_t)i * K + j] == 0.0f);
    float *dq = zeros((size_t)c.L * c.ld), *dk = zeros((size_t)K * c.ld);
    float *dv = zeros((size_t)K * c.ld), *dr = zeros((size_t)K * c.ld);
    float *du = zeros(c.dh), *dvb = zeros(c.dh);
    pg_tm_attention_backward(dq, dk, dv, dr, du, dvb, c.R, c.p, c.q, c.k, c.v, c.r, c.u, c.vb,
                             c.L, c.M, c.dh, c.ld, c.ld, c.scratch);
    /* columns outside the head get nothing */
    for (int i = 0; i < K; i++)
        for (int e = c.dh; e < c.ld; e++)
            assert_true(dk[(size_t)i * c.ld + e] == 0.0f && dr[(size_t)i * c.ld + e] == 0.0f);
    check_fd("attention dq", c.q, dq, (size_t)c.L * c.ld, at_obj, &c);
    check_fd("attention dk", c.k, dk, (size_t)K * c.ld, at_obj, &c);
    check_fd("attention dv", c.v, dv, (size_t)K * c.ld, at_obj, &c);
    check_fd("attention dr", c.r, dr, (size_t)K * c.ld, at_obj, &c);
    check_fd("attention du", c.u, du, (size_t)c.dh, at_obj, &c);
    check_fd("attention dvb", c.vb, dvb, (size_t)c.dh, at_obj, &c);
    free(c.q), free(c.k), free(c.v), free(c.r), free(c.u), free(c.vb), free(c.out), free(c.p);
    free(c.R), free(c.scratch), free(dq), free(dk), free(dv), free(dr), free(du), free(dvb);
}

/* ------------------------------------------------------ cross-entropy */

typedef struct {
    int T, V;
    float *logits, *nll;
    uint32_t *tg;
} ce_ctx;

static double ce_obj(void *p)
{
    ce_ctx *c = p;
    return pg_tm_crossentropy_forward_backward(NULL, c->nll, c->logits, c->tg, c->T, c->V);
}

static void test_crossentropy_backward(void **state)
{
    (void)state;
    uint32_t tg[3] = {0, 6, 3};
    ce_ctx c = {3, 7, NULL, NULL, tg};
    c.logits = rnd(21, 3);
    c.nll = zeros(3);
    float *g = zeros(21);
    double a = pg_tm_crossentropy_forward_backward(g, c.nll, c.logits, tg, 3, 7);
    assert_true(fabs(a - ce_obj(&c)) < 1e-9);
    check_fd("cross-entropy dlogits", c.logits, g, 21, ce_obj, &c);
    /* in place */
    float *x = malloc(sizeof(float) * 21);
    memcpy(x, c.logits, sizeof(float) * 21);
    pg_tm_crossentropy_forward_backward(x, c.nll, x, tg, 3, 7);
    assert_memory_equal(x, g, sizeof(float) * 21);
    free(x), free(c.logits), free(c.nll), free(g);
}

/* --------------------------------------------------------- compression */

typedef struct {
    int n, d, c, D;
    float *in, *w, *b, *out, *R;
} cv_ctx;

static double cv_obj(void *p)
{
    cv_ctx *c = p;
    pg_tm_conv_compress_forward(c->out, c->in, c->w, c->b, c->n, c->d, c->c, c->D);
    return dot(c->out, c->R, (size_t)(c->n / c->c) * c->d);
}

static void conv_case(int c_rate, int D)
{
    cv_ctx c = {12, 6, c_rate, D, NULL, NULL, NULL, NULL, NULL};
    size_t g = (size_t)(c.n / c.c);
    c.in = rnd((size_t)c.n * c.d, 1);
    c.w = rnd((size_t)c.d * c.d * c.c, 0.5f);
    c.b = rnd((size_t)c.d, 1);
    c.out = zeros(g * c.d);
    c.R = rnd(g * c.d, 1);
    float *dw = zeros((size_t)c.d * c.d * c.c), *db = zeros(c.d);
    pg_tm_conv_compress_backward(dw, db, c.R, c.in, c.n, c.d, c.c, c.D);
    check_fd("conv dW", c.w, dw, (size_t)c.d * c.d * c.c, cv_obj, &c);
    check_fd("conv db", c.b, db, (size_t)c.d, cv_obj, &c);
    free(c.in), free(c.w), free(c.b), free(c.out), free(c.R), free(dw), free(db);
}

static void test_conv_compress_backward(void **state)
{
    (void)state;
    conv_case(2, 1);
    conv_case(3, 1);
    conv_case(2, 2); /* dilated, with zero left padding */
    conv_case(3, 2);
}

/* The training forward's conv equals the model's (pg_compress). */
static void test_conv_matches_model(void **state)
{
    (void)state;
    pg_model_config cfg;
    memset(&cfg, 0, sizeof cfg);
    snprintf(cfg.name, sizeof cfg.name, "conv");
    snprintf(cfg.family, sizeof cfg.family, "compressive-transformer");
    cfg.vocab_size = 4, cfg.d_model = 6, cfg.n_layer = 1, cfg.n_head = 1, cfg.d_head = 6;
    cfg.d_ff = 4, cfg.window = 12, cfg.memory = 12, cfg.compressed_memory = 4;
    cfg.compression_rate = 3, cfg.compression = PG_COMPRESS_DILATED_CONV, cfg.dilation = 2;
    cfg.ln_eps = 1e-5f;
    pg_layer_params lp;
    memset(&lp, 0, sizeof lp);
    lp.cw = rnd(6 * 6 * 3, 0.5f);
    lp.cb = rnd(6, 1);
    float *in = rnd(12 * 6, 1), *a = zeros(4 * 6), *b = zeros(4 * 6);
    pg_error err = {0};
    assert_int_equal(pg_compress(&cfg, &lp, in, 12, NULL, a, &err), 0);
    pg_tm_conv_compress_forward(b, in, lp.cw, lp.cb, 12, 6, 3, 2);
    for (int i = 0; i < 24; i++)
        assert_true(fabsf(a[i] - b[i]) < 1e-5f);
    free(lp.cw), free(lp.cb), free(in), free(a), free(b);
}

/* ------------------------------------------------------- whole model */

static pg_model_config small_config(int compression)
{
    pg_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "unit");
    snprintf(c.family, sizeof c.family, compression ? "compressive-transformer"
                                                    : "transformer-xl");
    c.vocab_size = 24;
    c.d_model = 32;
    c.n_layer = 2;
    c.n_head = 2;
    c.d_head = 16;
    c.d_ff = 64;
    c.window = 8;
    c.memory = 8;
    c.compressed_memory = compression ? 4 : 0;
    c.compression_rate = 2;
    c.compression = compression;
    c.dilation = 2;
    c.ln_eps = 1e-5f;
    return c;
}

/* Gradients of three windows of two slots (memories filling, compression)
 * with the given thread count. */
static float *grads_with_threads(const pg_model *m, int threads)
{
    pg_set_threads(threads);
    pg_error err = {0};
    pg_model *g;
    pg_tstate *ts;
    assert_int_equal(pg_model_new(&m->cfg, &g, &err), 0);
    assert_int_equal(pg_tstate_new(m, 2, &ts, &err), 0);
    uint32_t in[16], tg[16];
    int lens[2] = {8, 5};
    for (int w = 0; w < 3; w++) {
        for (int i = 0; i < 16; i++) {
            in[i] = (uint32_t)((i * 7 + w * 3) % 24);
            tg[i] = (uint32_t)((i * 5 + w) % 24);
        }
        assert_int_equal(pg_train_window(m, g, ts, in, tg, lens, NULL, &err), 0);
    }
    float *out = malloc(sizeof(float) * m->n_params);
    memcpy(out, g->mem, sizeof(float) * m->n_params);
    pg_tstate_free(ts);
    pg_model_free(g);
    return out;
}

static void test_thread_invariance(void **state)
{
    (void)state;
    pg_model_config c = small_config(PG_COMPRESS_CONV);
    pg_model *m;
    pg_error err = {0};
    assert_int_equal(pg_model_new(&c, &m, &err), 0);
    assert_int_equal(pg_model_random_init(m, 7, &err), 0);
    float *a = grads_with_threads(m, 1), *b = grads_with_threads(m, 2);
    assert_memory_equal(a, b, sizeof(float) * m->n_params);
    free(a), free(b);
    pg_model_free(m);
}

static void test_rejects_bad_input(void **state)
{
    (void)state;
    pg_model_config c = small_config(PG_COMPRESS_NONE);
    pg_model *m, *g;
    pg_tstate *ts;
    pg_error err = {0};
    assert_int_equal(pg_model_new(&c, &m, &err), 0);
    assert_int_equal(pg_model_new(&c, &g, &err), 0);
    assert_int_equal(pg_tstate_new(m, 1, &ts, &err), 0);
    uint32_t in[9] = {0}, tg[9] = {0};
    int len = 9;
    assert_int_equal(pg_train_window(m, g, ts, in, tg, &len, NULL, &err), PG_EINVAL);
    len = 2;
    tg[1] = 24;
    assert_int_equal(pg_train_window(m, g, ts, in, tg, &len, NULL, &err), PG_EINVAL);
    assert_non_null(strstr(err.msg, "vocabulary"));
    /* a corrupt memory snapshot is refused */
    float *snap = zeros(pg_tstate_slot_floats(ts));
    snap[pg_tstate_slot_floats(ts) - 2] = 99.0f; /* compressed length > capacity */
    assert_int_equal(pg_tstate_slot_put(ts, 0, snap, &err), PG_EINVAL);
    free(snap);
    pg_tstate_free(ts);
    pg_model_free(m);
    pg_model_free(g);
}

/* A tiny CT (conv compressor) overfits a short text read window by window
 * with memories carried: the mean NLL of the last pass falls below 0.05
 * nats/token from about log(24) = 3.2. */
static void test_overfit(void **state)
{
    (void)state;
    pg_set_threads(2);
    pg_model_config c = small_config(PG_COMPRESS_CONV);
    pg_model *m, *g, *am, *av;
    pg_tstate *ts;
    pg_error err = {0};
    assert_int_equal(pg_model_new(&c, &m, &err), 0);
    assert_int_equal(pg_model_new(&c, &g, &err), 0);
    assert_int_equal(pg_model_new(&c, &am, &err), 0);
    assert_int_equal(pg_model_new(&c, &av, &err), 0);
    assert_int_equal(pg_model_random_init(m, 3, &err), 0);
    assert_int_equal(pg_tstate_new(m, 1, &ts, &err), 0);
    enum { N = 40 };
    uint32_t text[N + 1];
    uint64_t x = 99;
    for (int i = 0; i <= N; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        text[i] = (uint32_t)((x >> 33) % 24);
    }
    pg_adam adam = {3e-3f, 0.9f, 0.999f, 1e-8f};
    double first = 0, last = 0;
    long t = 0;
    for (int pass = 0; pass < 100; pass++) {
        pg_tstate_reset_slot(ts, 0);
        pg_window_stats st = {0};
        for (int pos = 0; pos < N; pos += c.window) {
            int len = N - pos < c.window ? N - pos : c.window;
            memset(g->mem, 0, sizeof(float) * m->n_params);
            pg_window_stats ws = {0};
            assert_int_equal(pg_train_window(m, g, ts, text + pos, text + pos + 1, &len, &ws,
                                             &err), 0);
            st.nll_sum += ws.nll_sum;
            st.n_tokens += ws.n_tokens;
            for (size_t i = 0; i < m->n_params; i++)
                g->mem[i] /= (float)len;
            pg_adam_update(m->mem, g->mem, am->mem, av->mem, m->n_params, &adam, ++t, adam.lr);
        }
        double loss = st.nll_sum / (double)st.n_tokens;
        if (pass == 0)
            first = loss;
        last = loss;
    }
    printf("# overfit: loss %.3f -> %.4f nats/token\n", first, last);
    assert_true(first > 2.5);
    assert_true(last < 0.05);
    pg_tstate_free(ts);
    pg_model_free(m), pg_model_free(g), pg_model_free(am), pg_model_free(av);
}

int main(void)
{
    openblas_set_num_threads(1);
    pg_set_threads(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_backward),
        cmocka_unit_test(test_layernorm_backward),
        cmocka_unit_test(test_attention_backward),
        cmocka_unit_test(test_crossentropy_backward),
        cmocka_unit_test(test_conv_compress_backward),
        cmocka_unit_test(test_conv_matches_model),
        cmocka_unit_test(test_thread_invariance),
        cmocka_unit_test(test_rejects_bad_input),
        cmocka_unit_test(test_overfit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
