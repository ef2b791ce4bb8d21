/* blas_check.c - see blas_check.h */
#include "harness/blas_check.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct gemm_shape {
    int m, n, k;   /* C[m, n] = alpha A[m, k] op(B) + beta C */
    int trans_b;   /* 1: B is [n, k] and used transposed (weights, keys); 0: B is [k, n] */
    int pad;       /* extra columns in every leading dimension */
    float beta;
} gemm_shape;

/* The kinds of products in model.c, at small sizes. */
static const gemm_shape shapes[] = {
    {16, 160, 128, 1, 0, 0.0f}, /* projection: T rows x a chunk of output columns */
    {7, 256, 64, 1, 3, 1.0f},   /* projection accumulated into a wider output */
    {32, 96, 16, 1, 48, 0.0f},  /* attention scores: q [L, dh] x k^T, rows of stride HD */
    {32, 16, 96, 0, 48, 0.0f},  /* attention x values */
    {5, 33, 17, 1, 1, 1.0f},    /* odd sizes: every kernel edge case */
    {8, 16, 8, 0, 0, 0.0f},     /* small enough for the small-matrix kernels */
};

static float next_value(uint64_t *x)
{
    *x = *x * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((double)(*x >> 40) / (double)(1ull << 24) * 2.0 - 1.0); /* [-1, 1) */
}

static int check_shape(const gemm_shape *s, int perturb, pg_error *err)
{
    int lda = s->k + s->pad, ldb = (s->trans_b ? s->k : s->n) + s->pad, ldc = s->n + s->pad;
    int brows = s->trans_b ? s->n : s->k;
    size_t na = (size_t)s->m * lda, nb = (size_t)brows * ldb, nc = (size_t)s->m * ldc;
    float *a = malloc(sizeof(float) * (na + nb + 2 * nc));
    if (!a)
        return pg_fail(err, PG_ENOMEM, "sgemm self-check: out of memory");
    float *b = a + na, *c = b + nb, *c0 = c + nc;
    uint64_t x = (uint64_t)s->m * 1000003u + (uint64_t)s->n * 1009u + (uint64_t)s->k;
    for (size_t i = 0; i < na; i++)
        a[i] = next_value(&x);
    for (size_t i = 0; i < nb; i++)
        b[i] = next_value(&x);
    for (size_t i = 0; i < nc; i++)
        c0[i] = c[i] = next_value(&x);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, s->trans_b ? CblasTrans : CblasNoTrans, s->m, s->n,
                s->k, 1.0f, a, lda, b, ldb, s->beta, c, ldc);
    int rc = 0;
    for (int i = 0; i < s->m && !rc; i++) {
        for (int j = 0; j < ldc && !rc; j++) {
            size_t at = (size_t)i * ldc + j;
            double want, bound;
            if (j >= s->n) { /* padding: never written */
                want = c0[at];
                bound = 0.0;
            } else {
                double sum = 0.0, mag = 0.0;
                for (int p = 0; p < s->k; p++) {
                    double av = a[(size_t)i * lda + p],
                           bv = s->trans_b ? b[(size_t)j * ldb + p] : b[(size_t)p * ldb + j];
                    sum += av * bv;
                    mag += fabs(av * bv);
                }
                want = sum + (double)s->beta * c0[at];
                bound = 1e-4 * (mag + fabs((double)s->beta * c0[at])) + 1e-30;
                if (perturb && i == 0 && j == 0)
                    want += 1.0;
            }
            double got = c[at];
            if (!(fabs(got - want) <= bound))
                rc = pg_fail(err, PG_ECORRUPT,
                             "sgemm %dx%dx%d (B %s, beta %g, leading dimensions +%d): C[%d][%d] "
                             "= %.9g, a plain loop gives %.9g", s->m, s->n, s->k,
                             s->trans_b ? "transposed" : "as is", (double)s->beta, s->pad, i, j,
                             got, want);
        }
    }
    free(a);
    return rc;
}

int pg_sgemm_selfcheck(int perturb, pg_error *err)
{
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        int rc = check_shape(&shapes[i], perturb && i == 0, err);
        if (rc)
            return rc;
    }
    return 0;
}
