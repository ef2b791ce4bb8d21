/* backend.h - where the forward runs: the one boundary between the
 * evaluation loop (eval.c) and a device.
 *
 * A backend holds the model's weights in the form its device wants and the
 * state of n_slots independent token streams (books): their memories and
 * one window of activations. The evaluation loop feeds it windows and gets
 * back one NLL per token; words, buckets, totals and outputs stay in eval.c
 * whatever the device.
 *
 *   cpu   model.c's forward (OpenBLAS + OpenMP, fp32): the reference.
 *   cuda  harness/cuda/ (cuBLAS + fused kernels, bf16 or fp32), built when
 *         nvcc was found; otherwise opening it fails with "built without
 *         CUDA" and `--device auto` falls back to the CPU. The DCT's judge
 *         runs on the CPU backend only (`--device cuda` refuses a DCT).
 *
 * Contract of forward_nll: slot b gets lens[b] tokens (0 <= lens[b] <=
 * window, 0 leaves the slot untouched), tokens[] and targets[] hold them
 * slot after slot; nll[i] = -log softmax(logits_i)[targets[i]], computed on
 * the device (no [tokens x vocab] copy to the host). Results are a pure
 * function of a slot's own tokens for a fixed backend, precision and slot
 * count (the CPU backend: also for any slot count and thread count).
 */
#ifndef PG19_HARNESS_BACKEND_H
#define PG19_HARNESS_BACKEND_H

#include <stdint.h>

#include "common/error.h"
#include "harness/model.h"

#ifdef __cplusplus
extern "C" {
#endif

enum pg_device_kind { PG_DEVICE_CPU = 0, PG_DEVICE_CUDA, PG_DEVICE_AUTO };
enum pg_precision { PG_PRECISION_DEFAULT = 0, PG_PRECISION_FP32, PG_PRECISION_BF16 };

typedef struct pg_backend_config {
    int device;       /* enum pg_device_kind (0: CPU) */
    int device_index; /* cuda:N; -1: the node-local MPI rank modulo the GPU count */
    int precision;    /* enum pg_precision; DEFAULT: fp32 on the CPU, bf16 on CUDA */
    int dct_policy;   /* DCT models: enum pg_dct_policy of harness/dct.h (0: greedy) */
    uint64_t dct_seed;/* ... and the seed of PG_DCT_SAMPLE */
} pg_backend_config;

typedef struct pg_backend pg_backend;

typedef struct pg_backend_ops {
    void (*reset_slot)(pg_backend *be, int slot);
    int (*forward_nll)(pg_backend *be, const uint32_t *tokens, const int *lens,
                       const uint32_t *targets, float *nll, pg_error *err);
    /* logits [sum(lens), V] fp32, valid until the next call (parity checks) */
    int (*forward_logits)(pg_backend *be, const uint32_t *tokens, const int *lens,
                          const float **logits, pg_error *err);
    double (*flops)(const pg_backend *be);
    void (*free)(pg_backend *be);
} pg_backend_ops;

struct pg_backend {
    const pg_backend_ops *ops;
    int n_slots, window;
    int precision;          /* PG_PRECISION_FP32 or _BF16, never DEFAULT */
    int batch_invariant;    /* a slot's results do not depend on n_slots */
    char device[32];        /* "cpu", "cuda:0" */
    char gpu[200];          /* the card's name, "" on the CPU */
    void *impl;
};

/* Parses "cpu", "cuda", "cuda:N" or "auto"; -1 on anything else. */
int pg_backend_parse_device(const char *s, pg_backend_config *cfg);
/* Parses "fp32" or "bf16"; -1 on anything else. */
int pg_backend_parse_precision(const char *s, pg_backend_config *cfg);
const char *pg_precision_name(int precision);

/* Opens the backend cfg names for model m (which must outlive it) with
 * batch slots (0: the backend chooses: the CPU max(threads, 2), CUDA from
 * free device memory), at most max_slots (> 0) of them, windows of `window`
 * tokens. With PG_DEVICE_AUTO a CUDA failure falls back to the CPU and the
 * reason is written to note[note_cap] (else note is ""). */
int pg_backend_open(const pg_model *m, const pg_backend_config *cfg, int batch, int max_slots,
                    int window, pg_backend **out, char *note, size_t note_cap, pg_error *err);
void pg_backend_free(pg_backend *be);

/* The CPU backend (backend_cpu.c). */
int pg_backend_cpu_open(const pg_model *m, int n_slots, int window, pg_backend **out,
                        pg_error *err);
/* DCT models on the CPU backend: the judge's policy (the backend opens with
 * greedy); PG_EINVAL for other models or backends. */
int pg_backend_cpu_set_dct(pg_backend *be, int policy, uint64_t seed, pg_error *err);
/* 1 and the judge's counts when be runs a DCT, else 0. */
int pg_backend_dct_stats(const pg_backend *be, uint64_t *decided, uint64_t *kept);
/* The CUDA backend (harness/cuda/, or backend_nocuda.c when built without
 * nvcc). PG_ENOTFOUND when no usable GPU is present. */
int pg_backend_cuda_open(const pg_model *m, const pg_backend_config *cfg, int batch,
                         int max_slots, int window, pg_backend **out, pg_error *err);
/* 1 when this binary contains the CUDA backend. */
int pg_backend_cuda_built(void);

#ifdef __cplusplus
}
#endif

#endif
