/* Unit tests for the backend boundary (harness/backend.h) and the book split
 * of `harness run` under MPI (harness/eval_dist.h): option parsing, --device
 * auto falling back to the CPU, the CPU backend's NLLs against its logits,
 * pg_evaluate through a caller's backend, and the contiguous, token-balanced
 * book ranges of pg_dist_first_book. Runs without a GPU (a CUDA build on a
 * machine without one must say so, not crash). */
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
#include "harness/eval.h"
#include "harness/eval_dist.h"
#include "harness/model.h"

static pg_model *tiny_model(int compression)
{
    pg_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "unit");
    snprintf(c.family, sizeof c.family, "%s",
             compression ? "compressive-transformer" : "transformer-xl");
    c.vocab_size = 40;
    c.d_model = 16;
    c.n_layer = 2;
    c.n_head = 2;
    c.d_head = 8;
    c.d_ff = 20;
    c.window = 4;
    c.memory = 4;
    c.compressed_memory = compression ? 4 : 0;
    c.compression_rate = 2;
    c.compression = compression;
    c.dilation = 2;
    c.ln_eps = 1e-5f;
    pg_model *m;
    assert_int_equal(pg_model_new(&c, &m, NULL), 0);
    assert_int_equal(pg_model_random_init(m, 7, NULL), 0);
    return m;
}

static void test_parse_options(void **state)
{
    (void)state;
    pg_backend_config c = {0};
    assert_int_equal(pg_backend_parse_device("cpu", &c), 0);
    assert_int_equal(c.device, PG_DEVICE_CPU);
    assert_int_equal(pg_backend_parse_device("cuda", &c), 0);
    assert_int_equal(c.device, PG_DEVICE_CUDA);
    assert_int_equal(c.device_index, -1);
    assert_int_equal(pg_backend_parse_device("cuda:3", &c), 0);
    assert_int_equal(c.device_index, 3);
    assert_int_equal(pg_backend_parse_device("auto", &c), 0);
    assert_int_equal(c.device, PG_DEVICE_AUTO);
    const char *bad[] = {"", "gpu", "cuda:", "cuda:x", "cuda:-1", "cuda:1x", "cuda:99999", NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(pg_backend_parse_device(bad[i], &c), -1);
    assert_int_equal(pg_backend_parse_precision("fp32", &c), 0);
    assert_int_equal(c.precision, PG_PRECISION_FP32);
    assert_int_equal(pg_backend_parse_precision("bf16", &c), 0);
    assert_int_equal(c.precision, PG_PRECISION_BF16);
    assert_int_equal(pg_backend_parse_precision("fp16", &c), -1);
}

/* Without a usable GPU: cuda fails with a message, auto falls back to the
 * CPU and says why, bf16 on the CPU is refused. */
static void test_open_without_gpu(void **state)
{
    (void)state;
    pg_model *m = tiny_model(PG_COMPRESS_NONE);
    pg_backend_config cuda = {PG_DEVICE_CUDA, -1, PG_PRECISION_DEFAULT, 0, 0};
    pg_backend *be = NULL;
    pg_error err = {0};
    char note[700];
    int rc = pg_backend_open(m, &cuda, 2, 4, 4, &be, note, sizeof note, &err);
    if (rc == 0) { /* a GPU is here: nothing to check on this path */
        pg_backend_free(be);
        pg_model_free(m);
        skip();
    }
    assert_non_null(strstr(err.msg, pg_backend_cuda_built() ? "CUDA device" : "without CUDA"));
    assert_null(be);
    pg_backend_config aut = {PG_DEVICE_AUTO, -1, PG_PRECISION_DEFAULT, 0, 0};
    assert_int_equal(pg_backend_open(m, &aut, 0, 3, 4, &be, note, sizeof note, &err), 0);
    assert_string_equal(be->device, "cpu");
    assert_string_equal(be->gpu, "");
    assert_non_null(strstr(note, "no usable GPU"));
    assert_true(be->n_slots >= 1 && be->n_slots <= 3);
    assert_int_equal(be->precision, PG_PRECISION_FP32);
    pg_backend_free(be);
    pg_backend_config bf = {PG_DEVICE_CPU, 0, PG_PRECISION_BF16, 0, 0};
    assert_int_equal(pg_backend_open(m, &bf, 1, 1, 4, &be, note, sizeof note, &err), PG_EINVAL);
    assert_non_null(strstr(err.msg, "fp32 only"));
    pg_model_free(m);
}

/* forward_nll = logsumexp(logits) - logits[target] of forward_logits, with
 * memories carried over several windows. */
static void test_cpu_nll_matches_logits(void **state)
{
    (void)state;
    for (int comp = PG_COMPRESS_NONE; comp <= PG_COMPRESS_MOST_USED; comp++) {
        pg_model *m = tiny_model(comp);
        pg_backend *a, *b;
        assert_int_equal(pg_backend_cpu_open(m, 2, 4, &a, NULL), 0);
        assert_int_equal(pg_backend_cpu_open(m, 2, 4, &b, NULL), 0);
        assert_int_equal(a->batch_invariant, 1);
        uint64_t x = 99;
        for (int w = 0; w < 5; w++) {
            uint32_t tok[8], tgt[8];
            int lens[2] = {4, w == 3 ? 2 : 4}; /* a partial window too */
            for (int i = 0; i < 8; i++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                tok[i] = (uint32_t)(x >> 33) % 40;
                tgt[i] = (uint32_t)(x >> 40) % 40;
            }
            float nll[8];
            const float *lg;
            assert_int_equal(a->ops->forward_nll(a, tok, lens, tgt, nll, NULL), 0);
            assert_int_equal(b->ops->forward_logits(b, tok, lens, &lg, NULL), 0);
            for (int i = 0; i < lens[0] + lens[1]; i++) {
                double mx = -INFINITY, s = 0;
                for (int j = 0; j < 40; j++)
                    mx = lg[i * 40 + j] > mx ? lg[i * 40 + j] : mx;
                for (int j = 0; j < 40; j++)
                    s += exp(lg[i * 40 + j] - mx);
                double want = log(s) + mx - lg[i * 40 + tgt[i]];
                assert_true(fabs(nll[i] - want) < 1e-5 * (1 + fabs(want)));
            }
        }
        uint32_t bad = 40;
        int l1[2] = {1, 0};
        pg_error err = {0};
        assert_int_equal(a->ops->forward_nll(a, &bad, l1, &bad, (float[1]){0}, &err), PG_EINVAL);
        assert_true(a->ops->flops(a) > 0);
        pg_backend_free(a);
        pg_backend_free(b);
        pg_model_free(m);
    }
}

/* ---- an in-memory book source */
typedef struct mem_books {
    uint64_t n;
    uint64_t len[5];
    uint32_t tok[5][40];
} mem_books;

static int mb_book(void *ctx, uint64_t i, pg_eval_book *out, pg_error *err)
{
    (void)err;
    mem_books *mb = ctx;
    *out = (pg_eval_book){100 + i, mb->len[i], mb->len[i], mb->len[i] * 4};
    return 0;
}

static int mb_tokens(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint32_t *dst,
                     pg_error *err)
{
    (void)err;
    mem_books *mb = ctx;
    memcpy(dst, mb->tok[i] + start, count * 4);
    return 0;
}

static int mb_ws(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint8_t *dst,
                 pg_error *err)
{
    (void)ctx, (void)i, (void)start, (void)err;
    memset(dst, 1, count); /* every token a word */
    return 0;
}

static int mb_freqs(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint64_t *dst,
                    pg_error *err)
{
    (void)ctx, (void)err;
    for (uint64_t k = 0; k < count; k++)
        dst[k] = (i * 31 + start + k) * 997 % 20000;
    return 0;
}

/* pg_evaluate through a caller's backend (3 slots) gives the NLLs and
 * totals of its own 1-slot CPU backend, bit for bit. */
static void test_evaluate_through_backend(void **state)
{
    (void)state;
    mem_books mb = {.n = 5, .len = {9, 17, 3, 40, 11}};
    for (int b = 0; b < 5; b++)
        for (int i = 0; i < 40; i++)
            mb.tok[b][i] = (uint32_t)(1 + (b * 13 + i * 7) % 38);
    pg_book_source src = {&mb, 5, 40, 0, mb_book, mb_tokens, mb_ws, mb_freqs};
    pg_model *m = tiny_model(PG_COMPRESS_CONV);
    pg_eval_opts o1 = {.batch = 1, .keep_nll = 1};
    pg_eval_result r1, r3;
    assert_int_equal(pg_evaluate(m, &src, &o1, &r1, NULL), 0);
    pg_backend *be;
    assert_int_equal(pg_backend_cpu_open(m, 3, 4, &be, NULL), 0);
    pg_eval_opts o3 = {.batch = 3, .keep_nll = 1, .backend = be};
    assert_int_equal(pg_evaluate(m, &src, &o3, &r3, NULL), 0);
    assert_int_equal(r1.tot.tokens, 80);
    assert_memory_equal(r1.nll, r3.nll, 80 * sizeof(float));
    assert_memory_equal(&r1.tot, &r3.tot, sizeof r1.tot);
    /* the per-book totals sum to the totals, in book order */
    pg_eval_totals keep = r3.tot;
    pg_eval_sum_books(&r3);
    assert_memory_equal(&keep, &r3.tot, sizeof keep);
    /* a backend with another window is refused */
    pg_eval_opts o5 = {.batch = 3, .window = 2, .backend = be};
    pg_eval_result r5;
    pg_error err = {0};
    assert_int_equal(pg_evaluate(m, &src, &o5, &r5, &err), PG_EINVAL);
    pg_backend_free(be);
    pg_eval_result_free(&r1);
    pg_eval_result_free(&r3);
    pg_model_free(m);
}

/* Ranges are contiguous, cover every book once, and balance tokens. */
static void test_first_book(void **state)
{
    (void)state;
    uint64_t sizes[7] = {100, 100, 100, 100, 100, 100, 100};
    for (int size = 1; size <= 9; size++) {
        assert_int_equal(pg_dist_first_book(sizes, 7, 0, size), 0);
        assert_int_equal(pg_dist_first_book(sizes, 7, size, size), 7);
        for (int r = 0; r < size; r++)
            assert_true(pg_dist_first_book(sizes, 7, r, size) <=
                        pg_dist_first_book(sizes, 7, r + 1, size));
    }
    assert_int_equal(pg_dist_first_book(sizes, 7, 1, 7), 1); /* one book each */
    /* one big book and small ones: the big one alone on a rank */
    uint64_t skew[5] = {1000, 10, 10, 10, 10};
    assert_int_equal(pg_dist_first_book(skew, 5, 1, 2), 1);
    /* all empty: still a split that covers everything */
    uint64_t zero[4] = {0, 0, 0, 0};
    assert_int_equal(pg_dist_first_book(zero, 4, 1, 2), 2);
    assert_int_equal(pg_dist_first_book(zero, 4, 2, 2), 4);
    assert_int_equal(pg_dist_first_book(NULL, 0, 1, 3), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_options),
        cmocka_unit_test(test_open_without_gpu),
        cmocka_unit_test(test_cpu_nll_matches_logits),
        cmocka_unit_test(test_evaluate_through_backend),
        cmocka_unit_test(test_first_book),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
