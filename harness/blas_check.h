/* blas_check.h - a start-up self-check of OpenBLAS sgemm against a plain loop.
 *
 * The harness may switch OpenBLAS to kernels the library did not pick by
 * itself (SkylakeX on AVX-512 CPUs, see main.c), and some OpenBLAS builds
 * are known to compute wrong results with some kernels on some processors.
 * pg_sgemm_selfcheck runs cblas_sgemm on a few small shapes of the kinds the
 * model uses (row-major; A x B^T as in the projections and the attention
 * scores, A x B as in attention x values; beta 0 and 1; leading dimensions
 * wider than the matrices; one shape small enough for OpenBLAS's
 * small-matrix path and the others above it) and compares every element
 * with a float64 plain loop, within 1e-4 of sum_k |a_ik b_kj|. It also checks
 * that the padding around C is left untouched. About 0.55M multiply-adds,
 * 0.5 ms with the reference loops on the 2-vCPU Zen 5 build VM.
 */
#ifndef PG19_HARNESS_BLAS_CHECK_H
#define PG19_HARNESS_BLAS_CHECK_H

#include "common/error.h"

/* 0 if sgemm agrees with the plain loop on every shape; else PG_ECORRUPT
 * with the first disagreement (shape, element, both values) in err.
 * perturb != 0 (tests only) adds 1 to one element of the reference, so that
 * the check fails whatever the kernels: the way to test the fallback. */
int pg_sgemm_selfcheck(int perturb, pg_error *err);

#endif
