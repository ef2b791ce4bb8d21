/* model.h - Transformer-XL and Compressive Transformer, CPU reference.
 *
 * One architecture covers both models (Dai et al. 2019; Rae et al. 2020):
 * a pre-LayerNorm Transformer-XL whose layers attend over
 *     concat(compressed memory, memory, current window)
 * with relative sinusoidal position encodings, the two global biases u
 * (r_w_bias) and v (r_r_bias) and the relative shift. A Transformer-XL is the
 * same model with compressed_memory = 0.
 *
 * Layer l, for a window h (L rows, the layer input) of one book:
 *     c   = concat(cmem_l, mem_l, h)                      [K, d]  K = n_cm + n_m + L
 *     q   = LN1(h) Wq^T, k = LN1(c) Wk^T, v = LN1(c) Wv^T [*, H, dh]
 *     r   = R Wr^T, R[t] = sinusoid(distance t)           [K, H, dh]
 *     s_ij = ((q_i + u) . k_j + (q_i + v) . r_{M+i-j}) / sqrt(dh),  j <= M+i
 *     h  += softmax_j(s) v Wo^T
 *     h  += W2 relu(W1 LN2(h) + b1) + b2
 * logits = LNf(h) E^T (input embedding E tied with the output).
 * Memories hold layer inputs h (no gradient); after each window the rows
 * that fall out of the n_m memory are compressed at rate c by f_c and pushed
 * into the n_cm compressed-memory FIFO (Rae et al. 2020, Algorithm 1).
 * The keys and values of memory rows are kept with them (a row's LN1 and
 * projections never change), so each window projects only its own rows and
 * the rows it compresses.
 *
 * The Dynamic Compressive Transformer ("family": "dct", harness/dct.h) is a
 * Compressive Transformer plus a judge (harness/dct_judge.h) that decides,
 * for each block of c evicted rows, whether its compressed row enters the
 * compressed memory or is discarded. The forward takes those decisions as a
 * per-slot keep mask (pg_state_set_keep); without one every block is kept,
 * which is the Compressive Transformer exactly.
 *
 * Weights are named and shaped like PyTorch modules (nn.Linear [out, in],
 * nn.Conv1d [out, in, kernel]); see models/README.md for the list.
 * All parameters live in one allocation carved into tensors (llm.c style).
 */
#ifndef PG19_HARNESS_MODEL_H
#define PG19_HARNESS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "harness/dct_judge.h"

enum pg_compression {
    PG_COMPRESS_NONE = 0,      /* Transformer-XL: evicted memories are dropped */
    PG_COMPRESS_CONV,          /* conv1d, kernel = stride = c */
    PG_COMPRESS_DILATED_CONV,  /* conv1d, kernel c, dilation, stride c, zero left pad */
    PG_COMPRESS_MAX_POOL,
    PG_COMPRESS_MEAN_POOL,
    PG_COMPRESS_MOST_USED      /* keep the 1/c most attended memories */
};

typedef struct pg_model_config {
    char name[101];
    char family[32];           /* "transformer-xl", "compressive-transformer" or "dct" */
    int vocab_size, d_model, n_layer, n_head, d_head, d_ff;
    int window;                /* n_s: tokens per window */
    int memory;                /* n_m */
    int compressed_memory;     /* n_cm (0 for Transformer-XL) */
    int compression_rate;      /* c */
    int compression;           /* enum pg_compression */
    int dilation;              /* for PG_COMPRESS_DILATED_CONV */
    float ln_eps;
    int judge_hidden;          /* DCT: the judge's LSTM hidden size per direction; 0 otherwise */
} pg_model_config;

/* 1 for the Dynamic Compressive Transformer family. */
int pg_model_is_dct(const pg_model_config *c);

/* Parses and validates a model config (JSON, see models/README.md). */
int pg_model_config_parse(const char *json, size_t len, const char *path, pg_model_config *out,
                          pg_error *err);
int pg_model_config_load(const char *path, pg_model_config *out, uint8_t sha256[32],
                         pg_error *err);
const char *pg_compression_name(int c);

/* Per-layer parameters: pointers into the one allocation. */
typedef struct pg_layer_params {
    float *ln1_w, *ln1_b;     /* [d] */
    float *wq, *wk, *wv, *wr; /* [H*dh, d] */
    float *r_w_bias, *r_r_bias; /* [H, dh] (u, v) */
    float *wo;                /* [d, H*dh] */
    float *ln2_w, *ln2_b;     /* [d] */
    float *w1, *b1;           /* [d_ff, d], [d_ff] */
    float *w2, *b2;           /* [d, d_ff], [d] */
    float *cw, *cb;           /* compression conv [d, d, c], [d]; NULL without */
} pg_layer_params;

typedef struct pg_model {
    pg_model_config cfg;
    float *tok_emb;           /* [V, d] */
    float *lnf_w, *lnf_b;     /* [d] */
    pg_layer_params *layers;  /* [n_layer] */
    pg_judge_params judge;    /* DCT only (all NULL otherwise): "judge.*" tensors */
    float *mem;               /* the one parameter allocation */
    size_t n_params;
} pg_model;

/* Name, shape and location of every tensor, in a fixed order. */
typedef struct pg_tensor_info {
    char name[64];
    int ndim;
    int64_t shape[3];
    size_t numel;
    float *data;
} pg_tensor_info;

int pg_model_new(const pg_model_config *cfg, pg_model **out, pg_error *err);
void pg_model_free(pg_model *m);
/* Number of tensors; fills info[i] for i < n (info may be NULL to count). */
int pg_model_tensors(const pg_model *m, pg_tensor_info *info, int cap);
/* Deterministic random weights (xoshiro-style generator from seed):
 * matrices uniform in +-1/sqrt(fan_in), LayerNorm 1/0, biases 0, u/v small. */
int pg_model_random_init(pg_model *m, uint64_t seed, pg_error *err);
/* Parameter count implied by a config (without allocating). */
size_t pg_model_param_count(const pg_model_config *cfg);

/* Evaluation state: memories of n_slots independent sequences (books) and
 * the activation buffers of one window for all of them, one allocation.
 * It keeps values derived from the weights (the projected positions), so
 * the model's weights must not change while a state is in use. */
typedef struct pg_state pg_state;

int pg_state_new(const pg_model *m, int n_slots, int window, pg_state **out, pg_error *err);
void pg_state_free(pg_state *s);
/* Empties the memories of one slot (start of a book). */
void pg_state_reset_slot(pg_state *s, int slot);
/* Blocks of c rows that slot b's memory evicts when the next window brings
 * len rows (the compressed rows the window would push in a CT). */
int pg_state_evicted_blocks(const pg_state *s, int slot, int len);
/* One-shot keep mask for the next pg_forward of slot b: keep[j] != 0 pushes
 * the compressed row of evicted block j into the compressed memory, 0 drops
 * it (in every layer). n must equal pg_state_evicted_blocks for that
 * window's length (checked by pg_forward: PG_EINVAL). Without a mask every
 * block is kept. The mask is copied. */
int pg_state_set_keep(pg_state *s, int slot, const uint8_t *keep, int n, pg_error *err);
/* Rows in slot b's memory and compressed memory (layer 0; all layers agree). */
void pg_state_lengths(const pg_state *s, int slot, int *n_m, int *n_cm);

/* Forward of one window. Slot b gets lens[b] input tokens (0 <= lens[b] <=
 * window; 0 leaves the slot untouched); tokens holds them slot after slot.
 * Returns logits [sum(lens), V] valid until the next call. Token ids must be
 * < vocab_size (checked: PG_EINVAL). */
int pg_forward(const pg_model *m, pg_state *s, const uint32_t *tokens, const int *lens,
               const float **logits, pg_error *err);
/* Floating-point operations counted so far (2 per multiply-add of every
 * matrix product; elementwise work not counted). */
double pg_state_flops(const pg_state *s);

/* Compression functions on one block: in [n, d] -> out [n/c, d]. usage[n]
 * is only read by MOST_USED. Exposed for tests. */
int pg_compress(const pg_model_config *cfg, const pg_layer_params *lp, const float *in, int n,
                const float *usage, float *out, pg_error *err);

/* Sets the number of threads of the forward (OpenMP); OpenBLAS itself runs
 * single-threaded inside it so that results do not depend on the count. */
void pg_set_threads(int n);
int pg_get_threads(void);

#endif
