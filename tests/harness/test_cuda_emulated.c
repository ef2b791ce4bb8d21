/* The whole CUDA backend (harness/cuda/backend_cuda.cu: memory plan, packed
 * slots, FIFOs, compression, classifier), built for the CPU through
 * tests/harness/cuda_emu.h (kernels on CPU threads, cuBLAS as plain loops),
 * against the CPU backend: fp32 logits within 1e-4 relative for every
 * compression function over windows that compress many times, per-token
 * NLLs of several slots with idle ones and partial windows, bf16 NLLs
 * within 0.1 nats, the batch chosen from (emulated) free memory. */
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
#include "harness/model.h"

static pg_model *tiny_model(int compression)
{
    pg_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "emu");
    snprintf(c.family, sizeof c.family, "%s",
             compression ? "compressive-transformer" : "transformer-xl");
    c.vocab_size = 60;
    c.d_model = 24;
    c.n_layer = 2;
    c.n_head = 2;
    c.d_head = 12;
    c.d_ff = 30;
    c.window = 6;
    c.memory = 8;
    c.compressed_memory = compression ? 5 : 0;
    c.compression_rate = 2;
    c.compression = compression;
    c.dilation = 2;
    c.ln_eps = 1e-5f;
    pg_model *m;
    assert_int_equal(pg_model_new(&c, &m, NULL), 0);
    assert_int_equal(pg_model_random_init(m, 11, NULL), 0);
    return m;
}

static uint32_t next_tok(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*x >> 33) % 60;
}

/* one slot, 5 windows (the last partial; the compressed memory overflows in
 * the 4th): logits against the CPU's */
static void test_fp32_logits_every_compression(void **state)
{
    (void)state;
    for (int comp = PG_COMPRESS_NONE; comp <= PG_COMPRESS_MOST_USED; comp++) {
        pg_model *m = tiny_model(comp);
        pg_backend_config cfg = {PG_DEVICE_CUDA, 0, PG_PRECISION_FP32, 0, 0};
        pg_backend *gpu, *cpu;
        pg_error err = {0};
        int rc = pg_backend_cuda_open(m, &cfg, 1, 1, 6, &gpu, &err);
        if (rc)
            fprintf(stderr, "%s\n", err.msg);
        assert_int_equal(rc, 0);
        assert_int_equal(gpu->precision, PG_PRECISION_FP32);
        assert_string_equal(gpu->gpu, "CPU emulation");
        assert_int_equal(pg_backend_cpu_open(m, 1, 6, &cpu, NULL), 0);
        uint64_t x = 5;
        double worst = 0;
        for (int w = 0; w < 5; w++) {
            int L = w == 4 ? 3 : 6;
            uint32_t tok[6];
            for (int i = 0; i < L; i++)
                tok[i] = next_tok(&x);
            const float *a, *b;
            assert_int_equal(gpu->ops->forward_logits(gpu, tok, &L, &a, NULL), 0);
            float *keep = malloc(sizeof(float) * (size_t)L * 60);
            memcpy(keep, a, sizeof(float) * (size_t)L * 60);
            assert_int_equal(cpu->ops->forward_logits(cpu, tok, &L, &b, NULL), 0);
            double mx = 0, md = 0;
            for (int i = 0; i < L * 60; i++) {
                mx = fabs(b[i]) > mx ? fabs(b[i]) : mx;
                md = fabs(keep[i] - b[i]) > md ? fabs(keep[i] - b[i]) : md;
            }
            worst = md / mx > worst ? md / mx : worst;
            free(keep);
        }
        if (worst >= 1e-4)
            fprintf(stderr, "compression %s: relative error %.3g\n", pg_compression_name(comp),
                    worst);
        assert_true(worst < 1e-4);
        pg_backend_free(gpu);
        pg_backend_free(cpu);
        pg_model_free(m);
    }
}

/* 3 slots, some idle, partial windows, a slot reset mid-way: NLLs of the
 * packed GPU forward against the CPU backend's; then bf16 */
static void check_nll(int comp, int precision, double tol)
{
    pg_model *m = tiny_model(comp);
    pg_backend_config cfg = {PG_DEVICE_CUDA, 0, precision, 0, 0};
    pg_backend *gpu, *cpu;
    assert_int_equal(pg_backend_cuda_open(m, &cfg, 3, 3, 6, &gpu, NULL), 0);
    assert_int_equal(gpu->n_slots, 3);
    assert_int_equal(pg_backend_cpu_open(m, 3, 6, &cpu, NULL), 0);
    static const int pattern[7][3] = {{6, 6, 6}, {6, 0, 4}, {0, 6, 6}, {2, 6, 0},
                                      {6, 6, 6}, {0, 0, 5}, {6, 3, 6}};
    uint64_t x = 9;
    double worst = 0;
    for (int w = 0; w < 7; w++) {
        if (w == 4) { /* slot 1 starts a new book */
            gpu->ops->reset_slot(gpu, 1);
            cpu->ops->reset_slot(cpu, 1);
        }
        int lens[3] = {pattern[w][0], pattern[w][1], pattern[w][2]};
        int T = lens[0] + lens[1] + lens[2];
        uint32_t tok[18], tgt[18];
        for (int i = 0; i < T; i++) {
            tok[i] = next_tok(&x);
            tgt[i] = next_tok(&x);
        }
        float a[18], b[18];
        assert_int_equal(gpu->ops->forward_nll(gpu, tok, lens, tgt, a, NULL), 0);
        assert_int_equal(cpu->ops->forward_nll(cpu, tok, lens, tgt, b, NULL), 0);
        for (int i = 0; i < T; i++)
            worst = fabs(a[i] - b[i]) > worst ? fabs(a[i] - b[i]) : worst;
    }
    if (worst >= tol)
        fprintf(stderr, "compression %s, %s: max |dNLL| %.3g\n", pg_compression_name(comp),
                pg_precision_name(precision), worst);
    assert_true(worst < tol);
    assert_true(gpu->ops->flops(gpu) > 0);
    pg_backend_free(gpu);
    pg_backend_free(cpu);
    pg_model_free(m);
}

static void test_nll_packed_slots(void **state)
{
    (void)state;
    check_nll(PG_COMPRESS_CONV, PG_PRECISION_FP32, 1e-4);
    check_nll(PG_COMPRESS_MOST_USED, PG_PRECISION_FP32, 1e-4);
    check_nll(PG_COMPRESS_CONV, PG_PRECISION_BF16, 0.1);
}

static void test_batch_from_memory_and_errors(void **state)
{
    (void)state;
    pg_model *m = tiny_model(PG_COMPRESS_CONV);
    pg_backend_config cfg = {PG_DEVICE_CUDA, 0, PG_PRECISION_DEFAULT, 0, 0};
    pg_backend *gpu;
    pg_error err = {0};
    assert_int_equal(pg_backend_cuda_open(m, &cfg, 0, 7, 6, &gpu, &err), 0);
    assert_int_equal(gpu->n_slots, 7); /* capped by the books, not memory */
    assert_int_equal(gpu->precision, PG_PRECISION_BF16);
    int lens[7] = {7, 0, 0, 0, 0, 0, 0};
    uint32_t tok[7] = {0};
    float nll[7];
    assert_int_equal(gpu->ops->forward_nll(gpu, tok, lens, tok, nll, &err), PG_EINVAL);
    lens[0] = 1;
    tok[0] = 60;
    assert_int_equal(gpu->ops->forward_nll(gpu, tok, lens, tok, nll, &err), PG_EINVAL);
    pg_backend_free(gpu);
    pg_backend_config bad = {PG_DEVICE_CUDA, 3, PG_PRECISION_DEFAULT, 0, 0};
    assert_int_equal(pg_backend_cuda_open(m, &bad, 1, 1, 6, &gpu, &err), PG_EINVAL);
    assert_non_null(strstr(err.msg, "cuda:3"));
    assert_int_equal(pg_backend_cuda_open(m, &cfg, 1, 1, 5, &gpu, &err), PG_EINVAL);
    pg_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp32_logits_every_compression),
        cmocka_unit_test(test_nll_packed_slots),
        cmocka_unit_test(test_batch_from_memory_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
