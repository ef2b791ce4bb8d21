/* train_model.h - forward with saved activations and backward of the harness
 * models (Transformer-XL, Compressive Transformer) on the CPU, fp32.
 *
 * llm.c organisation: one forward/backward function pair per operation
 * (train_model.c), activations of one window in one allocation, parameter
 * gradients in a pg_model of the same config (the same layout as the
 * parameters, so the optimizer and the all-reduce see one flat vector).
 * Gradients always accumulate (+=); the caller zeroes them once per step.
 *
 * Objective of a window, per target token i of every slot:
 *     nll_i + sum_l recon_{l,i}
 * nll_i = -log softmax(logits_i)[target_i]. recon_{l,i} is the
 * Compressive Transformer's attention-reconstruction loss (Rae et al. 2020,
 * Algorithm 2) of layer l for window row i, when that layer compressed rows
 * in this window: || attn(q_i, old) - attn(q_i, f_c(old)) ||^2 / (H dh),
 * attn a content-only multi-head softmax attention with the layer's LN1, Wq,
 * Wk, Wv, old = the memory rows evicted in this window. All of it is under a
 * stopped gradient except f_c, so that loss trains only the compression
 * weights (conv, dilated conv); pools and most-used have no weights and no
 * reconstruction loss. The LM loss reaches every other weight; memories
 * (layer inputs) and compressed memories carry no gradient, but their keys
 * and values are re-projected every window with the current weights (their
 * LN1 and Wk, Wv get gradient from them), as in Transformer-XL training code.
 *
 * Gradients are of the window's *sum* over tokens (dloss = 1 per token); the
 * trainer scales by 1 / (global token count) before the optimizer step, so
 * data-parallel ranks only sum.
 */
#ifndef PG19_HARNESS_TRAIN_MODEL_H
#define PG19_HARNESS_TRAIN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "harness/model.h"

typedef struct pg_tstate pg_tstate;

typedef struct pg_window_stats {
    double nll_sum;      /* sum of token NLLs */
    double recon_sum;    /* sum of reconstruction losses (all layers) */
    uint64_t n_tokens;   /* targets scored */
    double *slot_nll;    /* optional [n_slots]: += each slot's NLL sum */
} pg_window_stats;

/* Training state of n_slots book streams: their memories (per layer: memory
 * rows, compressed memory rows, usage) and the activations of one window. */
int pg_tstate_new(const pg_model *m, int n_slots, pg_tstate **out, pg_error *err);
void pg_tstate_free(pg_tstate *s);
void pg_tstate_reset_slot(pg_tstate *s, int slot);

/* DCT keep masks, as pg_state_evicted_blocks / pg_state_set_keep of
 * harness/model.h: one-shot, checked by pg_train_window. The
 * reconstruction loss still covers every evicted row (it trains the
 * compressor, whatever the judge keeps). */
int pg_tstate_evicted_blocks(const pg_tstate *s, int slot, int len);
int pg_tstate_set_keep(pg_tstate *s, int slot, const uint8_t *keep, int n, pg_error *err);

/* Forward and backward of one window. Slot b has lens[b] (0..window) inputs
 * and as many targets, slot after slot in inputs/targets. Accumulates the
 * gradients of the summed objective into grad (a model of the same config),
 * advances the memories, adds to *st. grad NULL: forward only (memories
 * still advance; used for validation-style checks). */
int pg_train_window(const pg_model *m, pg_model *grad, pg_tstate *s, const uint32_t *inputs,
                    const uint32_t *targets, const int *lens, pg_window_stats *st,
                    pg_error *err);

/* After pg_train_window: the attention probabilities that the window's
 * queries of slot b gave in layer l, head h. *p is [rows, K] row-major,
 * K = *n_cm + *n_m + rows keys ordered [compressed memory, memory, window]
 * (the memory lengths before this window's update). Returns rows (0 when
 * the slot had no tokens in the window; *p is then NULL). For the analyses
 * of harness/analyze.h. */
int pg_tstate_attention(const pg_tstate *s, int l, int b, int h, const float **p, int *n_cm,
                        int *n_m);

/* The memories of one slot as a flat float vector (for checkpoints): per
 * layer mem [n_m, d], cmem [n_cm, d], usage [n_m], then per layer the two
 * lengths as floats. */
size_t pg_tstate_slot_floats(const pg_tstate *s);
void pg_tstate_slot_get(const pg_tstate *s, int slot, float *dst);
/* Returns PG_EINVAL if the stored lengths are out of range. */
int pg_tstate_slot_put(pg_tstate *s, int slot, const float *src, pg_error *err);

/* ---- the layer operations, exposed for the finite-difference tests ---- */

/* out[T, N] = in[T, K] W[N, K]^T (+ bias[N]) */
void pg_tm_matmul_forward(float *out, const float *in, const float *w, const float *bias, int T,
                          int K, int N);
/* din[T, K] += dout W; dW[N, K] += dout^T in; dbias[N] += colsum(dout) (each may be NULL) */
void pg_tm_matmul_backward(float *din, float *dw, float *dbias, const float *dout,
                           const float *in, const float *w, int T, int K, int N);
/* out = LN(in) w + b over rows of d; saves mean, rstd [T] */
void pg_tm_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                             const float *w, const float *b, int T, int d, float eps);
/* din += ...; dw, db += ... (dw/db may be NULL: input gradient only) */
void pg_tm_layernorm_backward(float *din, float *dw, float *db, const float *dout,
                              const float *in, const float *w, const float *mean,
                              const float *rstd, int T, int d);
/* Relative attention of one head (the math of harness/model.h):
 * q [L, ldq], k, v [K, ldk] (K = M + L), r [K, ldk] (row m = distance K-1-m),
 * u, vb [dh]; out [L, ldq]; p [L, K] probabilities saved. */
void pg_tm_attention_forward(float *out, float *p, const float *q, const float *k,
                             const float *v, const float *r, const float *u, const float *vb,
                             int L, int M, int dh, int ldq, int ldk, float *scratch);
/* dq [L, ldq], dk, dv, dr [K, ldk] +=; du, dvb [dh] +=. scratch: 2 L K + 4 L dh floats
 * (the forward uses the same amount). */
void pg_tm_attention_backward(float *dq, float *dk, float *dv, float *dr, float *du, float *dvb,
                              const float *dout, const float *p, const float *q,
                              const float *k, const float *v, const float *r, const float *u,
                              const float *vb, int L, int M, int dh, int ldq, int ldk,
                              float *scratch);
/* Negative log-likelihood of each row into nll[T]; dlogits = softmax - onehot
 * (in place over the logits when dlogits == logits; NULL: loss only).
 * Returns the sum over rows in row order (double). */
double pg_tm_crossentropy_forward_backward(float *dlogits, float *nll, const float *logits,
                                           const uint32_t *targets, int T, int V);
/* Convolutional compression (conv, or dilated conv with dilation D > 1):
 * in [n, d] -> out [n/c, d]; weight [d, d, c], bias [d] (see model.h). */
void pg_tm_conv_compress_forward(float *out, const float *in, const float *w, const float *b,
                                 int n, int d, int c, int D);
void pg_tm_conv_compress_backward(float *dw, float *db, const float *dout, const float *in,
                                  int n, int d, int c, int D);

#endif
