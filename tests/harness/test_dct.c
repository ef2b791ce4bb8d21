/* Unit tests for the DCT around the forward (harness/dct.h, the keep masks of
 * harness/model.h and harness/train_model.h):
 *   - judge forced to "always compress": the DCT's logits are bitwise the
 *     Compressive Transformer's it came from (evaluation and training
 *     forward), over windows that fill, evict, compress and include partial
 *     windows; a greedy judge whose bias always says compress, likewise;
 *   - forced to "always discard": the logits equal a Transformer-XL's with
 *     the same weights and memory;
 *   - a mixed mask keeps exactly the chosen blocks (the compressed memory
 *     grows by the kept count) and a mask of the wrong size is refused;
 *   - sampling is seeded per book: the same book gives the same decisions
 *     whatever its batch neighbours;
 *   - the judge's saved slot state round-trips and corrupt values are refused;
 *   - pg_dct_reinforce moves p(action) the way the advantage says.
 * The judge's own gradients are checked in test_dct_judge.c and against
 * PyTorch in test_dct_judge_torch.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/backend.h"
#include "harness/dct.h"
#include "harness/dct_judge.h"
#include "harness/model.h"
#include "harness/train_model.h"

enum { B = 2, NWIN = 9 };

static pg_model_config config(const char *family, int compression, int cmem)
{
    pg_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "dct-unit");
    snprintf(c.family, sizeof c.family, "%s", family);
    c.vocab_size = 40;
    c.d_model = 16;
    c.n_layer = 2;
    c.n_head = 2;
    c.d_head = 8;
    c.d_ff = 20;
    c.window = 6;
    c.memory = 6;
    c.compressed_memory = cmem;
    c.compression_rate = 2;
    c.compression = compression;
    c.dilation = 2;
    c.ln_eps = 1e-5f;
    c.judge_hidden = strcmp(family, "dct") == 0 ? 5 : 0;
    return c;
}

/* dst's tensors that src has (by name) are copied from src. */
static void copy_weights(pg_model *dst, const pg_model *src)
{
    pg_tensor_info a[128], b[128];
    int na = pg_model_tensors(dst, a, 128), nb = pg_model_tensors(src, b, 128);
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (strcmp(a[i].name, b[j].name) == 0) {
                assert_int_equal(a[i].numel, b[j].numel);
                memcpy(a[i].data, b[j].data, sizeof(float) * a[i].numel);
            }
}

/* Window w's lengths: full windows with a partial one in the middle. */
static void window_lens(int w, int *lens)
{
    lens[0] = w == 4 ? 3 : 6;
    lens[1] = w == 2 ? 0 : w == 6 ? 5 : 6;
}

static void fill_tokens(uint64_t *st, uint32_t *tok, int n)
{
    for (int i = 0; i < n; i++) {
        *st = *st * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (uint32_t)((*st >> 33) % 40);
    }
}

/* Runs NWIN windows through a backend; logits of every window, appended. */
static size_t run_logits(pg_backend *be, int V, float *out)
{
    uint64_t st = 99;
    size_t n = 0;
    for (int w = 0; w < NWIN; w++) {
        int lens[B];
        uint32_t tok[2 * 6];
        window_lens(w, lens);
        fill_tokens(&st, tok, lens[0] + lens[1]);
        const float *lg;
        pg_error err;
        assert_int_equal(be->ops->forward_logits(be, tok, lens, &lg, &err), 0);
        memcpy(out + n, lg, sizeof(float) * (size_t)(lens[0] + lens[1]) * V);
        n += (size_t)(lens[0] + lens[1]) * V;
    }
    return n;
}

static void make_pair(int compression, pg_model **ct, pg_model **dct)
{
    pg_error err;
    pg_model_config cc = config("compressive-transformer", compression, 4);
    pg_model_config dc = config("dct", compression, 4);
    assert_int_equal(pg_model_new(&cc, ct, &err), 0);
    assert_int_equal(pg_model_new(&dc, dct, &err), 0);
    assert_int_equal(pg_model_random_init(*ct, 7, &err), 0);
    assert_int_equal(pg_model_random_init(*dct, 8, &err), 0); /* the judge's weights */
    copy_weights(*dct, *ct);
}

static void test_force_compress_is_the_ct_bitwise(void **state)
{
    (void)state;
    int comps[] = {PG_COMPRESS_CONV, PG_COMPRESS_DILATED_CONV, PG_COMPRESS_MAX_POOL,
                   PG_COMPRESS_MOST_USED};
    for (size_t k = 0; k < sizeof comps / sizeof comps[0]; k++) {
        pg_model *ct, *dct;
        make_pair(comps[k], &ct, &dct);
        pg_error err;
        pg_backend *bc, *bd;
        pg_backend_config cfg = {PG_DEVICE_CPU, 0, PG_PRECISION_DEFAULT, PG_DCT_FORCE_COMPRESS, 0};
        assert_int_equal(pg_backend_cpu_open(ct, B, 6, &bc, &err), 0);
        assert_int_equal(pg_backend_open(dct, &cfg, B, B, 6, &bd, NULL, 0, &err), 0);
        size_t cap = (size_t)NWIN * B * 6 * 40;
        float *a = malloc(sizeof(float) * cap), *b = malloc(sizeof(float) * cap);
        size_t n = run_logits(bc, 40, a);
        assert_int_equal(run_logits(bd, 40, b), n);
        assert_memory_equal(a, b, sizeof(float) * n);
        uint64_t decided = 0, kept = 0;
        assert_int_equal(pg_backend_dct_stats(bd, &decided, &kept), 1);
        assert_true(decided > 0);
        assert_int_equal(kept, decided);
        pg_backend_free(bd);
        /* a greedy judge whose output bias always says "compress" */
        dct->judge.fc_b[0] = -50.0f;
        dct->judge.fc_b[1] = 50.0f;
        assert_int_equal(pg_backend_cpu_open(dct, B, 6, &bd, &err), 0);
        assert_int_equal(run_logits(bd, 40, b), n);
        assert_memory_equal(a, b, sizeof(float) * n);
        pg_backend_free(bd);
        pg_backend_free(bc);
        free(a);
        free(b);
        pg_model_free(ct);
        pg_model_free(dct);
    }
}

static double max_rel_diff(const float *a, const float *b, size_t n)
{
    double worst = 0.0, scale = 1e-6;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)a[i]));
    for (size_t i = 0; i < n; i++)
        worst = fmax(worst, fabs((double)a[i] - (double)b[i]) / scale);
    return worst;
}

static void test_force_discard_is_a_transformer_xl(void **state)
{
    (void)state;
    pg_model *ct, *dct, *txl;
    make_pair(PG_COMPRESS_CONV, &ct, &dct);
    pg_error err;
    pg_model_config tc = config("transformer-xl", PG_COMPRESS_NONE, 0);
    assert_int_equal(pg_model_new(&tc, &txl, &err), 0);
    copy_weights(txl, ct);
    pg_backend *bt, *bd, *bc;
    pg_backend_config cfg = {PG_DEVICE_CPU, 0, PG_PRECISION_DEFAULT, PG_DCT_FORCE_DISCARD, 0};
    assert_int_equal(pg_backend_cpu_open(txl, B, 6, &bt, &err), 0);
    assert_int_equal(pg_backend_open(dct, &cfg, B, B, 6, &bd, NULL, 0, &err), 0);
    assert_int_equal(pg_backend_cpu_open(ct, B, 6, &bc, &err), 0);
    size_t cap = (size_t)NWIN * B * 6 * 40;
    float *a = malloc(sizeof(float) * cap), *b = malloc(sizeof(float) * cap);
    float *c = malloc(sizeof(float) * cap);
    size_t n = run_logits(bt, 40, a);
    assert_int_equal(run_logits(bd, 40, b), n);
    assert_int_equal(run_logits(bc, 40, c), n);
    /* the projected positions are one product over the span, which differs
     * (n_cm + n_m + W against n_m + W rows), so equality is to rounding */
    double d_txl = max_rel_diff(a, b, n), d_ct = max_rel_diff(c, b, n);
    print_message("discard vs TXL: max rel diff %.3g; vs the CT %.3g\n", d_txl, d_ct);
    assert_true(d_txl < 1e-5);
    assert_true(d_ct > 1e-3); /* the compressed memory matters: the test can tell */
    uint64_t decided = 0, kept = 1;
    pg_backend_dct_stats(bd, &decided, &kept);
    assert_true(decided > 0);
    assert_int_equal(kept, 0);
    free(a);
    free(b);
    free(c);
    pg_backend_free(bt);
    pg_backend_free(bd);
    pg_backend_free(bc);
    pg_model_free(ct);
    pg_model_free(dct);
    pg_model_free(txl);
}

/* The training forward takes the same masks: all-keep is bitwise no mask,
 * a mixed mask grows the compressed memory by the kept count only, and a
 * mask of the wrong size is refused. */
static void test_train_window_masks(void **state)
{
    (void)state;
    pg_model *ct, *dct;
    make_pair(PG_COMPRESS_CONV, &ct, &dct);
    pg_error err;
    pg_tstate *ta, *tb;
    assert_int_equal(pg_tstate_new(ct, B, &ta, &err), 0);
    assert_int_equal(pg_tstate_new(dct, B, &tb, &err), 0);
    size_t sf = pg_tstate_slot_floats(ta);
    float *sa = malloc(sizeof(float) * sf), *sb = malloc(sizeof(float) * sf);
    uint64_t st = 5;
    for (int w = 0; w < NWIN; w++) {
        int lens[B];
        uint32_t in[12], tg[12];
        window_lens(w, lens);
        fill_tokens(&st, in, lens[0] + lens[1]);
        fill_tokens(&st, tg, lens[0] + lens[1]);
        uint8_t ones[16];
        memset(ones, 1, sizeof ones);
        for (int b = 0; b < B; b++)
            if (lens[b])
                assert_int_equal(pg_tstate_set_keep(tb, b, ones,
                                                    pg_tstate_evicted_blocks(tb, b, lens[b]),
                                                    &err), 0);
        pg_window_stats wa = {0}, wb = {0};
        assert_int_equal(pg_train_window(ct, NULL, ta, in, tg, lens, &wa, &err), 0);
        assert_int_equal(pg_train_window(dct, NULL, tb, in, tg, lens, &wb, &err), 0);
        assert_true(wa.nll_sum == wb.nll_sum);
        for (int b = 0; b < B; b++) {
            pg_tstate_slot_get(ta, b, sa);
            pg_tstate_slot_get(tb, b, sb);
            assert_memory_equal(sa, sb, sizeof(float) * sf);
        }
    }
    /* the memories are full now: a window of 6 evicts 3 blocks; keep 1 of them */
    int lens[B] = {6, 6};
    uint32_t in[12] = {0}, tg[12] = {0};
    uint8_t mixed[3] = {0, 1, 0}, all[3] = {1, 1, 1};
    assert_int_equal(pg_tstate_evicted_blocks(tb, 0, 6), 3);
    /* slot 1's compressed memory is full (4 rows); slot 0's is full too,
     * so compare how many rows change instead: lengths through slot_get */
    pg_tstate_reset_slot(ta, 0);
    pg_tstate_reset_slot(tb, 0);
    for (int w = 0; w < 2; w++) { /* fill the memory of slot 0 only (6 rows) */
        int l1[B] = {6, 0};
        assert_int_equal(pg_train_window(dct, NULL, tb, in, tg, l1, NULL, &err), 0);
        if (w == 0)
            continue;
    }
    /* after 2 windows: memory 6 rows, compressed memory 3 rows (one window
     * of 3 blocks kept); now keep 1 of 3: compressed memory 3 + 1 = 4 */
    size_t off_len = sf - 2 * 2; /* per layer the two lengths, at the end */
    pg_tstate_slot_get(tb, 0, sb);
    assert_true(sb[off_len + 1] == 3.0f); /* layer 0: mem_len, cmem_len */
    int l1[B] = {6, 0};
    assert_int_equal(pg_tstate_set_keep(tb, 0, mixed, 3, &err), 0);
    assert_int_equal(pg_train_window(dct, NULL, tb, in, tg, l1, NULL, &err), 0);
    pg_tstate_slot_get(tb, 0, sb);
    assert_true(sb[off_len + 1] == 4.0f);
    /* wrong size: refused, and the refused mask is not left behind */
    assert_int_equal(pg_tstate_set_keep(tb, 0, all, 2, &err), 0);
    assert_int_equal(pg_train_window(dct, NULL, tb, in, tg, l1, NULL, &err), PG_EINVAL);
    assert_non_null(strstr(err.msg, "keep mask"));
    assert_int_equal(pg_train_window(dct, NULL, tb, in, tg, l1, NULL, &err), 0);
    (void)lens;
    free(sa);
    free(sb);
    pg_tstate_free(ta);
    pg_tstate_free(tb);
    pg_model_free(ct);
    pg_model_free(dct);
}

/* Sampled decisions of a book depend on the seed and the book, not on the
 * slot it runs in or on its neighbours. */
static void test_sampling_is_seeded_per_book(void **state)
{
    (void)state;
    pg_model *ct, *dct;
    make_pair(PG_COMPRESS_CONV, &ct, &dct);
    pg_error err;
    pg_dct *one, *two;
    assert_int_equal(pg_dct_new(dct, 1, 6, PG_DCT_SAMPLE, 3, 0, &one, &err), 0);
    assert_int_equal(pg_dct_new(dct, 2, 6, PG_DCT_SAMPLE, 3, 0, &two, &err), 0);
    uint64_t sa = 11, sb = 12;
    uint8_t got1[64], got2[64];
    int n1 = 0, n2 = 0;
    for (int w = 0; w < 12; w++) {
        uint32_t book[6], other[6], both[12];
        fill_tokens(&sa, book, 6);
        fill_tokens(&sb, other, 6);
        memcpy(both, other, sizeof other); /* the book runs in slot 1 here */
        memcpy(both + 6, book, sizeof book);
        const uint8_t *k1[1], *k2[2];
        int c1[1], c2[2], l1[1] = {6}, l2[2] = {6, 6};
        assert_int_equal(pg_dct_decide(one, book, l1, k1, c1, &err), 0);
        assert_int_equal(pg_dct_decide(two, both, l2, k2, c2, &err), 0);
        assert_int_equal(c1[0], c2[1]);
        for (int j = 0; j < c1[0]; j++) {
            got1[n1++] = k1[0][j];
            got2[n2++] = k2[1][j];
        }
    }
    assert_int_equal(n1, n2);
    assert_true(n1 > 20);
    assert_memory_equal(got1, got2, (size_t)n1);
    int ones = 0;
    for (int i = 0; i < n1; i++)
        ones += got1[i];
    assert_true(ones > 0 && ones < n1); /* a random judge samples both actions */
    /* bad token ids are refused */
    uint32_t bad[6] = {1, 2, 3, 40, 0, 0};
    const uint8_t *k1[1];
    int c1[1], l1[1] = {6};
    assert_int_equal(pg_dct_decide(one, bad, l1, k1, c1, &err), PG_EINVAL);
    pg_dct_free(one);
    pg_dct_free(two);
    pg_model_free(ct);
    pg_model_free(dct);
}

static void test_slot_state_round_trip(void **state)
{
    (void)state;
    pg_model *ct, *dct;
    make_pair(PG_COMPRESS_CONV, &ct, &dct);
    pg_error err;
    pg_dct *a, *b;
    assert_int_equal(pg_dct_new(dct, 1, 6, PG_DCT_SAMPLE, 9, 1, &a, &err), 0);
    assert_int_equal(pg_dct_new(dct, 1, 6, PG_DCT_SAMPLE, 9, 1, &b, &err), 0);
    uint64_t st = 4;
    const uint8_t *k[1];
    int c[1], l[1] = {6};
    uint32_t tok[6];
    for (int w = 0; w < 5; w++) {
        fill_tokens(&st, tok, 6);
        assert_int_equal(pg_dct_decide(a, tok, l, k, c, &err), 0);
    }
    size_t n = pg_dct_slot_floats(a);
    float *f = malloc(sizeof(float) * n), *g = malloc(sizeof(float) * n);
    pg_dct_slot_get(a, 0, f);
    assert_int_equal(pg_dct_slot_put(b, 0, f, &err), 0);
    pg_dct_slot_get(b, 0, g);
    assert_memory_equal(f, g, sizeof(float) * n);
    /* the restored driver decides exactly as the original */
    for (int w = 0; w < 4; w++) {
        fill_tokens(&st, tok, 6);
        const uint8_t *ka[1], *kb[1];
        int ca[1], cb[1];
        assert_int_equal(pg_dct_decide(a, tok, l, ka, ca, &err), 0);
        assert_int_equal(pg_dct_decide(b, tok, l, kb, cb, &err), 0);
        assert_int_equal(ca[0], cb[0]);
        assert_memory_equal(ka[0], kb[0], (size_t)ca[0]);
    }
    /* corrupt values: a token id past the vocabulary, a fractional length */
    pg_dct_slot_get(a, 0, f);
    memcpy(g, f, sizeof(float) * n);
    g[9] = 40.0f;
    assert_int_equal(pg_dct_slot_put(b, 0, g, &err), PG_ECORRUPT);
    memcpy(g, f, sizeof(float) * n);
    g[8] = 0.5f; /* adv_seen */
    assert_int_equal(pg_dct_slot_put(b, 0, g, &err), PG_ECORRUPT);
    memcpy(g, f, sizeof(float) * n);
    g[0] = 2.5f;
    assert_int_equal(pg_dct_slot_put(b, 0, g, &err), PG_ECORRUPT);
    memcpy(g, f, sizeof(float) * n);
    g[1] = 99.0f;
    assert_int_equal(pg_dct_slot_put(b, 0, g, &err), PG_ECORRUPT);
    free(f);
    free(g);
    pg_dct_free(a);
    pg_dct_free(b);
    pg_model_free(ct);
    pg_model_free(dct);
}

/* One REINFORCE step with a positive advantage raises p(chosen action) of
 * the decided blocks; a negative one lowers it. */
static void test_reinforce_moves_the_policy(void **state)
{
    (void)state;
    for (int sign = -1; sign <= 1; sign += 2) {
        pg_model *ct, *dct, *grad;
        make_pair(PG_COMPRESS_CONV, &ct, &dct);
        pg_error err;
        assert_int_equal(pg_model_new(&dct->cfg, &grad, &err), 0);
        pg_dct *d;
        assert_int_equal(pg_dct_new(dct, 1, 6, PG_DCT_SAMPLE, 1, 1, &d, &err), 0);
        uint64_t st = 21;
        const uint8_t *k[1];
        int c[1], l[1] = {6};
        uint32_t tok[6];
        /* decisions need a full memory: windows 2.. evict */
        for (int w = 0; w < 3; w++) {
            fill_tokens(&st, tok, 6);
            assert_int_equal(pg_dct_decide(d, tok, l, k, c, &err), 0);
        }
        /* window 3's decisions are "one window ago" after window 4's decide */
        fill_tokens(&st, tok, 6);
        assert_int_equal(pg_dct_decide(d, tok, l, k, c, &err), 0);
        double lp0, ent;
        int nd;
        memset(grad->mem, 0, sizeof(float) * grad->n_params);
        assert_int_equal(pg_dct_reinforce(d, grad, 0, sign * 1.0, 1.0, 0.0, &lp0, &ent, &nd), 1);
        assert_true(nd > 0);
        assert_true(lp0 < 0.0 && ent > 0.0);
        /* the decisions are consumed */
        assert_int_equal(pg_dct_reinforce(d, grad, 0, 1.0, 1.0, 0.0, NULL, NULL, NULL), 0);
        /* gradient descent on the judge's weights only */
        pg_tensor_info ti[128];
        int nt = pg_model_tensors(dct, ti, 128);
        pg_tensor_info gi[128];
        pg_model_tensors(grad, gi, 128);
        for (int i = 0; i < nt; i++)
            if (strncmp(ti[i].name, "judge.", 6) == 0)
                for (size_t j = 0; j < ti[i].numel; j++)
                    ti[i].data[j] -= 0.05f * gi[i].data[j];
        /* re-score the same decisions at the new weights: d's saved state
         * (its decisions a window ago, marked pending again) in a new driver */
        pg_dct *e;
        assert_int_equal(pg_dct_new(dct, 1, 6, PG_DCT_SAMPLE, 1, 1, &e, &err), 0);
        size_t n = pg_dct_slot_floats(d);
        float *f = malloc(sizeof(float) * n);
        pg_dct_slot_get(d, 0, f);
        f[9 + 6 + 4 * 2] = 1.0f; /* header, memory tokens, compressed tokens: old.pending */
        assert_int_equal(pg_dct_slot_put(e, 0, f, &err), 0);
        double lp1;
        memset(grad->mem, 0, sizeof(float) * grad->n_params);
        assert_int_equal(pg_dct_reinforce(e, grad, 0, 1.0, 1.0, 0.0, &lp1, NULL, NULL), 1);
        print_message("advantage %+d: sum log p %.4f -> %.4f\n", sign, lp0, lp1);
        if (sign > 0)
            assert_true(lp1 > lp0);
        else
            assert_true(lp1 < lp0);
        free(f);
        pg_dct_free(d);
        pg_dct_free(e);
        pg_model_free(grad);
        pg_model_free(ct);
        pg_model_free(dct);
    }
}

/* Centring: the first advantage of a stream is its own mean (no gradient
 * without the entropy bonus); a later one is measured from the mean. */
static void test_advantage_centring(void **state)
{
    (void)state;
    pg_model *ct, *dct, *grad;
    make_pair(PG_COMPRESS_CONV, &ct, &dct);
    pg_error err;
    assert_int_equal(pg_model_new(&dct->cfg, &grad, &err), 0);
    pg_dct *d;
    assert_int_equal(pg_dct_new(dct, 1, 6, PG_DCT_SAMPLE, 1, 1, &d, &err), 0);
    pg_dct_set_centering(d, 0.5);
    uint64_t st = 3;
    const uint8_t *k[1];
    int c[1], l[1] = {6};
    uint32_t tok[6];
    double norm[3];
    const double adv[3] = {2.0, 2.0, 5.0};
    for (int w = 0; w < 6; w++) {
        fill_tokens(&st, tok, 6);
        assert_int_equal(pg_dct_decide(d, tok, l, k, c, &err), 0);
        if (w < 3)
            continue;
        memset(grad->mem, 0, sizeof(float) * grad->n_params);
        assert_int_equal(pg_dct_reinforce(d, grad, 0, adv[w - 3], 1.0, 0.0, NULL, NULL, NULL), 1);
        double s2 = 0.0;
        for (size_t i = 0; i < grad->n_params; i++)
            s2 += (double)grad->mem[i] * grad->mem[i];
        norm[w - 3] = sqrt(s2);
    }
    /* 2 (mean 2: centred 0), 2 (mean still 2: 0), 5 (centred +3) */
    assert_true(norm[0] == 0.0 && norm[1] == 0.0);
    assert_true(norm[2] > 0.0);
    pg_dct_free(d);
    pg_model_free(grad);
    pg_model_free(ct);
    pg_model_free(dct);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_force_compress_is_the_ct_bitwise),
        cmocka_unit_test(test_force_discard_is_a_transformer_xl),
        cmocka_unit_test(test_train_window_masks),
        cmocka_unit_test(test_sampling_is_seeded_per_book),
        cmocka_unit_test(test_slot_state_round_trip),
        cmocka_unit_test(test_reinforce_moves_the_policy),
        cmocka_unit_test(test_advantage_centring),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
