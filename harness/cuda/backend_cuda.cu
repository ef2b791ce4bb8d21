/* backend_cuda.cu - the CUDA backend of harness/backend.h.
 *
 * The forward of model.c, op by op, on one GPU for B slots (books) at once:
 *   x = E[tokens]                                     embed_kernel
 *   per layer: ln = LN1(x); q, k, v = ln Wq^T, ln Wk^T, ln Wv^T   cuBLAS
 *              att = relative attention over [cmem, mem, window] attention_kernel
 *              (most_used: usage += attention received)         usage_kernel
 *              memories: evict, f_c, LN1 + Wk/Wv of the compressed rows,
 *              FIFOs                                            memory.cuh + cuBLAS
 *              x += att Wo^T; x += W2 relu(W1 LN2(x) + b1) + b2  cuBLAS + kernels
 *   nll = -log softmax(LNf(x) E^T)[target], in row chunks   cuBLAS + classifier_kernel
 * The slots that have tokens in a window (A of the B) are packed: active
 * slot a owns rows [a W, (a+1) W) of every activation (a partial window
 * leaves padding rows that no output reads), so each product is one GEMM
 * over A*W rows, and idle slots (the long tail of a split, where a few long
 * books remain) cost nothing. Memories stay at their physical slot
 * (slot_of[a]). A slot's result depends only on its own tokens and the
 * GEMM shapes, which are a pure function of the book lengths and B: two
 * runs with the same batch give the same bits.
 *
 * Precision: bf16 (default) keeps a bf16 copy of the weights and bf16
 * activations at the GEMM inputs, fp32 accumulation (CUBLAS_COMPUTE_32F),
 * an fp32 residual stream, fp32 LayerNorm, softmax and compression
 * arithmetic; fp32 keeps everything fp32 with TF32 off (the parity mode).
 * No atomics in any sum: two runs give the same bits.
 *
 * Memory: one cudaMalloc carved by a size table (llm.c style); the batch,
 * unless given, is the largest that fits in 85% of the free memory.
 */
extern "C" {
#include "common/error.h"
#include "harness/model.h"
}
#include "harness/backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef PG19_CUDA_EMULATE
#include <cublasLt.h>
#endif

#include "harness/cuda/attention.cuh"
#include "harness/cuda/classifier.cuh"
#include "harness/cuda/common.cuh"
#include "harness/cuda/layernorm.cuh"
#include "harness/cuda/memory.cuh"

/* rows of logits per classifier chunk: [chunk, V] fp32 is the one logits buffer */
#define LOGIT_CHUNK_ROWS 4096

/* One cuBLASLt algorithm per GEMM shape class (N, K, output type, beta),
 * chosen once for the largest row count and used for every row count, with
 * split-K off: a row's result then depends on nothing but the row (not on
 * how many slots are active or which), so books give the same bits on one
 * process or spread over MPI ranks. */
typedef struct gemm_algo {
    int N, K, out_f32, accumulate;
    cublasLtMatmulAlgo_t algo;
} gemm_algo;

#define MAX_GEMM_ALGOS 32

typedef struct cuda_be {
    const pg_model *m;
    int B, W, d, H, dh, HD, dff, V, nl, nm, ncm, span, c, gmax, ev_rows;
    int comp;          /* enum pg_compression (NONE for Transformer-XL) */
    int bf16;          /* activations and weights at the GEMM inputs in bf16 */
    size_t asz;        /* bytes per activation element */
    int dev;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasLtHandle_t lt;
    gemm_algo algos[MAX_GEMM_ALGOS];
    int n_algos, lt_warned;
    /* device, one allocation */
    char *block;
    float *w32;        /* [n_params] fp32 weights (LayerNorm, biases, u/v, embedding) */
    void *wact;        /* the GEMM copy: w32 (fp32) or a bf16 copy */
    float *x;          /* [B*W, d] residual stream */
    void *ln, *q, *knew, *vnew, *att; /* [B*W, d] / [B*W, HD] */
    void *ff;          /* [B*W, dff] */
    void *pos;         /* [span, d] sinusoids, row t = distance span-1-t */
    void *r;           /* [nl, span, HD] projected positions */
    float *mem;        /* [nl, B, nm, d] */
    void *kmem, *vmem; /* [nl, B, nm, HD] */
    void *kcm, *vcm;   /* [nl, B, ncm, HD] */
    float *usage;      /* [nl, B, nm] */
    float *row_m, *row_l; /* [B, H, W] (most_used) */
    float *ev, *evu;   /* [B, ev_rows, d], [B, ev_rows] */
    void *G;           /* [B*gmax, d*c] (conv) */
    float *co;         /* [B*gmax, d] compressed rows */
    void *lnc, *kc, *vc; /* [B*gmax, d], [B*gmax, HD] x2 */
    int *sel;          /* [B, ev_rows] */
    void *fifo;        /* scratch of the largest FIFO of one layer */
    float *logits;     /* [chunk_rows, V] */
    int chunk_rows;
    float *nll_d;      /* [B*W] */
    uint32_t *tok_d, *tgt_d; /* [B*W] */
    unsigned char *valid_d;  /* [B*W] */
    int *ints_d;       /* [6B], per active slot: lens, cmem_len, mem_len, n_comp (g c), g,
                          physical slot */
    /* host (pinned) */
    uint32_t *tok_h, *tgt_h;
    unsigned char *valid_h;
    int *ints_h;
    float *nll_h;
    float *logits_h;   /* [B*W, V] pageable, for forward_logits only */
    int *mem_len, *cmem_len; /* [B] the same for every layer */
    int r_ready;
    double flops;
} cuda_be;

/* --------------------------------------------------------------- memory plan */

typedef struct plan_entry {
    void **ptr;
    size_t bytes;
} plan_entry;

/* The size table: fills e[] (pointers into c) for batch B; returns the count. */
static int plan(cuda_be *c, int B, plan_entry *e, size_t *total)
{
    size_t a = c->asz, BW = (size_t)B * c->W, nl = c->nl, d = c->d, HD = c->HD;
    size_t nm = c->nm, ncm = c->ncm, gm = (size_t)B * c->gmax, evr = (size_t)B * c->ev_rows;
    size_t fifo = 0;
    size_t cand[] = {(size_t)B * nm * d * 4, (size_t)B * nm * HD * a, (size_t)B * ncm * HD * a,
                     (size_t)B * nm * 4};
    for (size_t i = 0; i < 4; i++)
        fifo = cand[i] > fifo ? cand[i] : fifo;
    int comp = c->ncm > 0,
        conv = c->comp == PG_COMPRESS_CONV || c->comp == PG_COMPRESS_DILATED_CONV;
    int chunk = BW < LOGIT_CHUNK_ROWS ? (int)BW : LOGIT_CHUNK_ROWS;
    c->chunk_rows = chunk;
    size_t np = c->m->n_params;
    int n = 0;
#define P(PTR, BYTES) (e[n].ptr = (void **)(PTR), e[n].bytes = (BYTES), n++)
    P(&c->w32, np * 4);
    P(&c->wact, c->bf16 ? np * 2 : 0);
    P(&c->x, BW * d * 4);
    P(&c->ln, BW * d * a);
    P(&c->q, BW * HD * a);
    P(&c->knew, BW * HD * a);
    P(&c->vnew, BW * HD * a);
    P(&c->att, BW * HD * a);
    P(&c->ff, BW * (size_t)c->dff * a);
    P(&c->pos, (size_t)c->span * d * a);
    P(&c->r, nl * c->span * HD * a);
    P(&c->mem, nl * B * nm * d * 4);
    P(&c->kmem, nl * B * nm * HD * a);
    P(&c->vmem, nl * B * nm * HD * a);
    P(&c->kcm, nl * B * ncm * HD * a);
    P(&c->vcm, nl * B * ncm * HD * a);
    P(&c->usage, nl * B * nm * 4);
    P(&c->row_m, c->comp == PG_COMPRESS_MOST_USED ? (size_t)B * c->H * c->W * 4 : 0);
    P(&c->row_l, c->comp == PG_COMPRESS_MOST_USED ? (size_t)B * c->H * c->W * 4 : 0);
    P(&c->ev, comp ? evr * d * 4 : 0);
    P(&c->evu, comp ? evr * 4 : 0);
    P(&c->G, comp && conv ? gm * d * c->c * a : 0);
    P(&c->co, comp ? gm * d * 4 : 0);
    P(&c->lnc, comp ? gm * d * a : 0);
    P(&c->kc, comp ? gm * HD * a : 0);
    P(&c->vc, comp ? gm * HD * a : 0);
    P(&c->sel, comp ? evr * 4 : 0);
    P(&c->fifo, fifo);
    P(&c->logits, (size_t)chunk * c->V * 4);
    P(&c->nll_d, BW * 4);
    P(&c->tok_d, BW * 4);
    P(&c->tgt_d, BW * 4);
    P(&c->valid_d, BW);
    P(&c->ints_d, (size_t)6 * B * 4);
#undef P
    size_t t = 0;
    for (int i = 0; i < n; i++)
        t += (e[i].bytes + 255) / 256 * 256;
    *total = t;
    return n;
}

/* ------------------------------------------------------------------ helpers */

static void *wptr(const cuda_be *c, const float *host_param)
{
    size_t off = (size_t)(host_param - c->m->mem);
    return (char *)c->wact + off * c->asz;
}

static const float *w32ptr(const cuda_be *c, const float *host_param)
{
    return c->w32 + (host_param - c->m->mem);
}

/* The cached algorithm of a shape class, found on first use (NULL: none). */
static const cublasLtMatmulAlgo_t *lt_algo(cuda_be *c, int out_f32, int K, int N, float beta)
{
    int acc = beta != 0.0f;
    for (int i = 0; i < c->n_algos; i++) {
        gemm_algo *g = &c->algos[i];
        if (g->N == N && g->K == K && g->out_f32 == out_f32 && g->accumulate == acc)
            return &g->algo;
    }
    if (c->n_algos == MAX_GEMM_ALGOS)
        return NULL;
    cudaDataType at = c->bf16 ? CUDA_R_16BF : CUDA_R_32F, ot = out_f32 ? CUDA_R_32F : at;
    int M = c->B * c->W; /* the largest row count of the window GEMMs */
    cublasLtMatmulDesc_t op = NULL;
    cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
    size_t ws = 0;
    cublasLtMatmulHeuristicResult_t res[8];
    int found = 0, ok = 0;
    if (cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA) == 0 &&
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB) == 0 &&
        cublasLtMatrixLayoutCreate(&la, at, K, N, K) == 0 &&
        cublasLtMatrixLayoutCreate(&lb, at, K, M, K) == 0 &&
        cublasLtMatrixLayoutCreate(&lc, ot, N, M, N) == 0 &&
        cublasLtMatmulPreferenceCreate(&pref) == 0 &&
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                             sizeof ws) == 0 &&
        cublasLtMatmulAlgoGetHeuristic(c->lt, op, la, lb, lc, lc, pref, 8, res, &found) == 0) {
        for (int i = 0; i < found && !ok; i++) {
            if (res[i].state != CUBLAS_STATUS_SUCCESS)
                continue;
            cublasLtMatmulAlgo_t algo = res[i].algo;
            int32_t one = 1;
            uint32_t none = CUBLASLT_REDUCTION_SCHEME_NONE;
            /* no split-K: each output element is one dot product in one order */
            cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &one,
                                                 sizeof one);
            cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                                 &none, sizeof none);
            cublasLtMatmulHeuristicResult_t chk;
            if (cublasLtMatmulAlgoCheck(c->lt, op, la, lb, lc, lc, &algo, &chk) ==
                    CUBLAS_STATUS_SUCCESS &&
                chk.workspaceSize == 0) {
                gemm_algo *g = &c->algos[c->n_algos++];
                g->N = N;
                g->K = K;
                g->out_f32 = out_f32;
                g->accumulate = acc;
                g->algo = algo;
                ok = 1;
            }
        }
    }
    if (pref)
        cublasLtMatmulPreferenceDestroy(pref);
    if (lc)
        cublasLtMatrixLayoutDestroy(lc);
    if (lb)
        cublasLtMatrixLayoutDestroy(lb);
    if (la)
        cublasLtMatrixLayoutDestroy(la);
    if (op)
        cublasLtMatmulDescDestroy(op);
    return ok ? &c->algos[c->n_algos - 1].algo : NULL;
}

/* out[M, N] = in[M, K] W[N, K]^T + beta out (row-major, dense: ldi = K,
 * ldo = N; W is a weight of the GEMM copy). Column-major cuBLAS sees
 * out^T = W in^T. cuBLASLt with the shape class's fixed algorithm; where
 * cuBLASLt offers none, cublasGemmEx (deterministic for a fixed shape, but a
 * row's bits may then depend on the row count: said once on stderr). */
static int gemm(cuda_be *c, void *out, int out_f32, int ldo, const void *in, int ldi,
                const void *w, int M, int K, int N, float beta, pg_error *err)
{
    if (M == 0)
        return 0;
    cudaDataType at = c->bf16 ? CUDA_R_16BF : CUDA_R_32F;
    cudaDataType ot = out_f32 ? CUDA_R_32F : at;
    float alpha = 1.0f;
    const cublasLtMatmulAlgo_t *algo =
        ldi == K && ldo == N && getenv("PG19_CUDA_GEMMEX") == NULL
            ? lt_algo(c, out_f32, K, N, beta)
            : NULL;
    if (algo) {
        cublasLtMatmulDesc_t op = NULL;
        cublasLtMatrixLayout_t la = NULL, lb = NULL, lc = NULL;
        cublasOperation_t tA = CUBLAS_OP_T, tB = CUBLAS_OP_N;
        cublasStatus_t st = cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F);
        if (st == 0)
            st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &tA, sizeof tA);
        if (st == 0)
            st = cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &tB, sizeof tB);
        if (st == 0)
            st = cublasLtMatrixLayoutCreate(&la, at, K, N, K);
        if (st == 0)
            st = cublasLtMatrixLayoutCreate(&lb, at, K, M, K);
        if (st == 0)
            st = cublasLtMatrixLayoutCreate(&lc, ot, N, M, N);
        if (st == 0)
            st = cublasLtMatmul(c->lt, op, &alpha, w, la, in, lb, &beta, out, lc, out, lc, algo,
                                NULL, 0, c->stream);
        if (lc)
            cublasLtMatrixLayoutDestroy(lc);
        if (lb)
            cublasLtMatrixLayoutDestroy(lb);
        if (la)
            cublasLtMatrixLayoutDestroy(la);
        if (op)
            cublasLtMatmulDescDestroy(op);
        if (st == CUBLAS_STATUS_SUCCESS)
            return 0;
        if (!c->lt_warned) /* fall through to cublasGemmEx */
            fprintf(stderr, "harness: cuda: cuBLASLt refused a %d x %d x %d product (%s); "
                    "using cublasGemmEx\n", M, N, K, cublasGetStatusString(st));
        c->lt_warned = 1;
    }
    CUBLAS_CHECK(cublasGemmEx(c->blas, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, w, at, K, in,
                              at, ldi, &beta, out, ot, ldo, CUBLAS_COMPUTE_32F,
                              CUBLAS_GEMM_DEFAULT));
    return 0;
}

template <typename T>
static int layernorm(cuda_be *c, void *out, const float *in, const float *w, const float *b,
                     int rows, pg_error *err)
{
    int per = 256 / WARP;
    LAUNCH(CEIL_DIV(rows, per), 256, 0, c->stream, layernorm_kernel<T>, (T *)out, in, w32ptr(c, w),
           w32ptr(c, b), rows, c->d, c->m->cfg.ln_eps);
    LAUNCH_CHECK();
    return 0;
}

/* The FIFO scratch of the A active slots over the layer's buffer [B, cap, width]. */
template <typename T>
static int fifo_commit(cuda_be *c, void *buf, int A, int cap, int width, pg_error *err)
{
    const int *slot_of = c->ints_d + 5 * c->B;
    LAUNCH(dim3(cap, A), 128, 0, c->stream, fifo_commit_kernel<T>, (T *)buf, (const T *)c->fifo,
                                                                slot_of, cap, width);
    LAUNCH_CHECK();
    return 0;
}

/* ------------------------------------------------------------------ forward */

/* The memories of layer l after it attended, for the A active slots (see
 * memory.cuh). */
template <typename T>
static int update_memory(cuda_be *c, int l, const pg_layer_params *lp, int A, pg_error *err)
{
    int B = c->B, d = c->d, HD = c->HD, nm = c->nm, ncm = c->ncm, W = c->W;
    const int *lens = c->ints_d, *cml = lens + B, *ml = cml + B, *ncomp = ml + B, *g = ncomp + B,
              *slot_of = g + B;
    size_t a = c->asz, li = (size_t)l * B;
    float *mem = c->mem + li * nm * d, *usage = c->usage + li * nm;
    char *kmem = (char *)c->kmem + li * nm * HD * a, *vmem = (char *)c->vmem + li * nm * HD * a;
    int rc;
    /* the two FIFO instances (a template's comma would split the launch macro) */
    auto fifo_tt = &fifo_kernel<T, T>;
    auto fifo_ff = &fifo_kernel<float, float>;
    if (ncm > 0) {
        char *kcm = (char *)c->kcm + li * ncm * HD * a, *vcm = (char *)c->vcm + li * ncm * HD * a;
        int gm = A * c->gmax, cr = c->c;
        LAUNCH(dim3(c->ev_rows, A), 128, 0, c->stream, evict_kernel, c->ev, c->evu, mem, usage,
               c->x, ml, ncomp, slot_of, nm, W, d, c->ev_rows);
        LAUNCH_CHECK();
        switch (c->comp) {
        case PG_COMPRESS_CONV:
        case PG_COMPRESS_DILATED_CONV:
            LAUNCH(dim3(c->gmax, A), 256, 0, c->stream, im2col_kernel<T>, (T *)c->G, c->ev, g,
                   c->gmax, cr, c->m->cfg.dilation, c->comp == PG_COMPRESS_DILATED_CONV, d,
                   c->ev_rows);
            LAUNCH_CHECK();
            if ((rc =
                     gemm(c, c->co, 1, d, c->G, d * cr, wptr(c, lp->cw), gm, d * cr, d, 0.0f, err)))
                return rc;
            LAUNCH(CEIL_DIV((size_t)gm * d, 256), 256, 0, c->stream, add_bias_kernel, c->co,
                   w32ptr(c, lp->cb), gm, d);
            LAUNCH_CHECK();
            break;
        case PG_COMPRESS_MAX_POOL:
        case PG_COMPRESS_MEAN_POOL:
            LAUNCH(dim3(c->gmax, A), 128, 0, c->stream, pool_kernel, c->co, c->ev, g, c->gmax, cr,
                   c->comp == PG_COMPRESS_MAX_POOL, d, c->ev_rows);
            LAUNCH_CHECK();
            break;
        case PG_COMPRESS_MOST_USED:
            LAUNCH(A, 256, 0, c->stream, most_used_kernel, c->co, c->sel, c->ev, c->evu, g, c->gmax,
                                                       cr, d, c->ev_rows);
            LAUNCH_CHECK();
            break;
        default:
            return pg_fail(err, PG_EINVAL, "cuda: unknown compression %d", c->comp);
        }
        /* keys and values of the compressed rows: LN1(co) Wk^T, LN1(co) Wv^T.
         * Rows past g[a] hold stale numbers that no FIFO reads. */
        if ((rc = layernorm<T>(c, c->lnc, c->co, lp->ln1_w, lp->ln1_b, gm, err)) ||
            (rc = gemm(c, c->kc, 0, HD, c->lnc, d, wptr(c, lp->wk), gm, d, HD, 0.0f, err)) ||
            (rc = gemm(c, c->vc, 0, HD, c->lnc, d, wptr(c, lp->wv), gm, d, HD, 0.0f, err)))
            return rc;
        size_t st = (size_t)c->gmax * HD;
        LAUNCH(dim3(ncm, A), 128, 0, c->stream, fifo_tt, (T *)c->fifo, (const T *)kcm, cml,
               (const T *)c->kc, st, HD, g, slot_of, ncm, HD);
        LAUNCH_CHECK();
        if ((rc = fifo_commit<T>(c, kcm, A, ncm, HD, err)))
            return rc;
        LAUNCH(dim3(ncm, A), 128, 0, c->stream, fifo_tt, (T *)c->fifo, (const T *)vcm, cml,
               (const T *)c->vc, st, HD, g, slot_of, ncm, HD);
        LAUNCH_CHECK();
        if ((rc = fifo_commit<T>(c, vcm, A, ncm, HD, err)))
            return rc;
    }
    if (nm == 0)
        return 0;
    /* mem = concat(mem, h)[n_evict:] with keys, values and usage (new rows 0) */
    LAUNCH(dim3(nm, A), 128, 0, c->stream, fifo_ff, (float *)c->fifo, mem, ml, c->x, (size_t)W * d,
           d, lens, slot_of, nm, d);
    LAUNCH_CHECK();
    if ((rc = fifo_commit<float>(c, mem, A, nm, d, err)))
        return rc;
    LAUNCH(dim3(nm, A), 128, 0, c->stream, fifo_tt, (T *)c->fifo, (const T *)kmem, ml,
                                                         (const T *)c->knew, (size_t)W * HD, HD,
                                                         lens, slot_of, nm, HD);
    LAUNCH_CHECK();
    if ((rc = fifo_commit<T>(c, kmem, A, nm, HD, err)))
        return rc;
    LAUNCH(dim3(nm, A), 128, 0, c->stream, fifo_tt, (T *)c->fifo, (const T *)vmem, ml,
                                                         (const T *)c->vnew, (size_t)W * HD, HD,
                                                         lens, slot_of, nm, HD);
    LAUNCH_CHECK();
    if ((rc = fifo_commit<T>(c, vmem, A, nm, HD, err)))
        return rc;
    LAUNCH(dim3(nm, A), 128, 0, c->stream, fifo_ff, (float *)c->fifo, usage, ml,
           (const float *)NULL, 0, 1, lens, slot_of, nm, 1);
    LAUNCH_CHECK();
    return fifo_commit<float>(c, usage, A, nm, 1, err);
}

/* One window for all slots. With targets: nll_out[sum(lens)] (slot order);
 * with logits_out: the fp32 logits of every scored row copied to the host. */
template <typename T>
static int forward_window(pg_backend *be, const uint32_t *tokens, const int *lens,
                          const uint32_t *targets, float *nll_out, const float **logits_out,
                          pg_error *err)
{
    cuda_be *c = (cuda_be *)be->impl;
    const pg_model *m = c->m;
    const pg_model_config *cfg = &m->cfg;
    int B = c->B, W = c->W, d = c->d, HD = c->HD, H = c->H, dh = c->dh, V = c->V;
    int rc, total = 0, A = 0;
    for (int b = 0; b < B; b++) {
        if (lens[b] < 0 || lens[b] > W)
            return pg_fail(err, PG_EINVAL, "forward: slot %d: %d tokens, window is %d", b,
                           lens[b], W);
        total += lens[b];
    }
    for (int t = 0; t < total; t++)
        if (tokens[t] >= (uint32_t)V || (targets && targets[t] >= (uint32_t)V))
            return pg_fail(err, PG_EINVAL, "forward: token id %u >= vocabulary size %d",
                           targets && targets[t] >= (uint32_t)V ? targets[t] : tokens[t], V);
    /* host side: the active slots packed, padded rows, per-slot counts (the
     * memory lengths before this window) */
    int *h_lens = c->ints_h, *h_cm = h_lens + B, *h_mm = h_cm + B, *h_nc = h_mm + B,
        *h_g = h_nc + B, *h_slot = h_g + B;
    double fl = 0.0;
    for (int b = 0, row = 0; b < B; b++) {
        int L = lens[b], mlen = c->mem_len[b];
        if (L == 0)
            continue;
        int nev = mlen + L - c->nm > 0 ? mlen + L - c->nm : 0;
        int g = c->ncm > 0 && nev >= c->c ? nev / c->c : 0;
        h_lens[A] = L;
        h_cm[A] = c->cmem_len[b];
        h_mm[A] = mlen;
        h_nc[A] = g * c->c;
        h_g[A] = g;
        h_slot[A] = b;
        for (int i = 0; i < W; i++) {
            size_t at = (size_t)A * W + i;
            c->tok_h[at] = i < L ? tokens[row + i] : 0;
            c->tgt_h[at] = i < L && targets ? targets[row + i] : 0;
            c->valid_h[at] = i < L;
        }
        row += L;
        /* floating-point operations as the CPU counts them */
        double K = (double)(h_cm[A] + mlen + L), nl = c->nl;
        fl += nl * (2.0 * L * d * HD * 3 + 3.0 * 2.0 * L * K * dh * H + 2.0 * L * HD * d +
                    2.0 * 2.0 * L * d * c->dff);
        if (g) {
            double conv = (c->comp == PG_COMPRESS_CONV || c->comp == PG_COMPRESS_DILATED_CONV)
                              ? 2.0 * g * d * d * c->c
                              : 0.0;
            fl += nl * (conv + 2.0 * 2.0 * g * d * HD);
        }
        fl += 2.0 * L * d * V;
        A++;
    }
    if (A == 0) { /* no slot has tokens: nothing to compute */
        if (logits_out)
            *logits_out = c->logits_h;
        return 0;
    }
    int BW = A * W; /* rows of this window's activations */
    CUDA_CHECK(cudaMemcpyAsync(c->tok_d, c->tok_h, (size_t)BW * 4, cudaMemcpyHostToDevice,
                               c->stream));
    CUDA_CHECK(cudaMemcpyAsync(c->tgt_d, c->tgt_h, (size_t)BW * 4, cudaMemcpyHostToDevice,
                               c->stream));
    CUDA_CHECK(cudaMemcpyAsync(c->valid_d, c->valid_h, (size_t)BW, cudaMemcpyHostToDevice,
                               c->stream));
    CUDA_CHECK(cudaMemcpyAsync(c->ints_d, c->ints_h, (size_t)6 * B * 4, cudaMemcpyHostToDevice,
                               c->stream));
    const int *d_lens = c->ints_d, *d_cm = d_lens + B, *d_mm = d_cm + B, *d_slot = d_mm + 3 * B;
    size_t a = c->asz;
    /* r_l[span, HD] = pos Wr_l^T, once (the weights do not change under a backend) */
    if (!c->r_ready) {
        for (int l = 0; l < c->nl; l++) {
            if ((rc = gemm(c, (char *)c->r + (size_t)l * c->span * HD * a, 0, HD, c->pos, d,
                           wptr(c, m->layers[l].wr), c->span, d, HD, 0.0f, err)))
                return rc;
            c->flops += 2.0 * c->span * d * HD;
        }
        c->r_ready = 1;
    }
    LAUNCH(CEIL_DIV((size_t)BW * d, 256), 256, 0, c->stream, embed_kernel, c->x,
           w32ptr(c, m->tok_emb), c->tok_d, BW, d);
    LAUNCH_CHECK();
    float scale = 1.0f / sqrtf((float)dh);
    int most_used = c->comp == PG_COMPRESS_MOST_USED;
    size_t smem = attention_smem(dh);
    for (int l = 0; l < c->nl; l++) {
        const pg_layer_params *lp = &m->layers[l];
        size_t li = (size_t)l * B;
        /* ln = LN1(x); q, k, v of the window rows */
        if ((rc = layernorm<T>(c, c->ln, c->x, lp->ln1_w, lp->ln1_b, BW, err)) ||
            (rc = gemm(c, c->q, 0, HD, c->ln, d, wptr(c, lp->wq), BW, d, HD, 0.0f, err)) ||
            (rc = gemm(c, c->knew, 0, HD, c->ln, d, wptr(c, lp->wk), BW, d, HD, 0.0f, err)) ||
            (rc = gemm(c, c->vnew, 0, HD, c->ln, d, wptr(c, lp->wv), BW, d, HD, 0.0f, err)))
            return rc;
        const T *kmem = (const T *)((char *)c->kmem + li * c->nm * HD * a);
        const T *vmem = (const T *)((char *)c->vmem + li * c->nm * HD * a);
        const T *kcm = (const T *)((char *)c->kcm + li * c->ncm * HD * a);
        const T *vcm = (const T *)((char *)c->vcm + li * c->ncm * HD * a);
        const T *r = (const T *)((char *)c->r + (size_t)l * c->span * HD * a);
        LAUNCH(dim3(CEIL_DIV(W, ATT_ROWS), H, A), ATT_ROWS * WARP, smem, c->stream,
               attention_kernel<T>, (T *)c->att, (const T *)c->q, (const T *)c->knew,
               (const T *)c->vnew, kmem, vmem, kcm, vcm, r, w32ptr(c, lp->r_w_bias),
               w32ptr(c, lp->r_r_bias), d_lens, d_cm, d_mm, d_slot, W, HD, dh, c->nm, c->ncm,
               c->span, scale, most_used ? c->row_m : NULL, most_used ? c->row_l : NULL);
        LAUNCH_CHECK();
        if (most_used && c->nm > 0) {
            LAUNCH(dim3(CEIL_DIV(c->nm, 128), A), 128, 0, c->stream, usage_kernel<T>,
                   c->usage + li * c->nm, (const T *)c->q, kmem, r, w32ptr(c, lp->r_w_bias),
                   w32ptr(c, lp->r_r_bias), d_lens, d_cm, d_mm, d_slot, c->row_m, c->row_l, W, H,
                   HD, dh, c->nm, c->span, scale);
            LAUNCH_CHECK();
        }
        /* memories take this layer's input, before the residual updates */
        if ((rc = update_memory<T>(c, l, lp, A, err)))
            return rc;
        /* x += att Wo^T; x += W2 relu(W1 LN2(x) + b1) + b2 */
        if ((rc = gemm(c, c->x, 1, d, c->att, HD, wptr(c, lp->wo), BW, HD, d, 1.0f, err)) ||
            (rc = layernorm<T>(c, c->ln, c->x, lp->ln2_w, lp->ln2_b, BW, err)) ||
            (rc = gemm(c, c->ff, 0, c->dff, c->ln, d, wptr(c, lp->w1), BW, d, c->dff, 0.0f, err)))
            return rc;
        LAUNCH(CEIL_DIV((size_t)BW * c->dff, 256), 256, 0, c->stream, bias_relu_kernel<T>,
               (T *)c->ff, w32ptr(c, lp->b1), BW, c->dff);
        LAUNCH_CHECK();
        if ((rc = gemm(c, c->x, 1, d, c->ff, c->dff, wptr(c, lp->w2), BW, c->dff, d, 1.0f, err)))
            return rc;
        LAUNCH(CEIL_DIV((size_t)BW * d, 256), 256, 0, c->stream, add_bias_kernel, c->x,
               w32ptr(c, lp->b2), BW, d);
        LAUNCH_CHECK();
    }
    /* logits = LNf(x) E^T in row chunks; the classifier turns each into NLLs */
    if ((rc = layernorm<T>(c, c->ln, c->x, m->lnf_w, m->lnf_b, BW, err)))
        return rc;
    if (logits_out && !c->logits_h) {
        c->logits_h = (float *)malloc((size_t)B * W * V * sizeof(float));
        if (!c->logits_h)
            return pg_fail(err, PG_ENOMEM, "cuda: host logits of %d rows: out of memory", B * W);
    }
    size_t out_row = 0;
    for (int r0 = 0; r0 < BW; r0 += c->chunk_rows) {
        int n = BW - r0 < c->chunk_rows ? BW - r0 : c->chunk_rows;
        /* skip chunks without a scored row (idle slots, padding) */
        int any = 0;
        for (int i = r0; i < r0 + n && !any; i++)
            any = c->valid_h[i];
        if (!any)
            continue;
        if ((rc = gemm(c, c->logits, 1, V, (char *)c->ln + (size_t)r0 * d * a, d,
                       wptr(c, m->tok_emb), n, d, V, 0.0f, err)))
            return rc;
        if (targets) {
            LAUNCH(n, CLS_THREADS, 0, c->stream, classifier_kernel, c->nll_d + r0, c->logits, V,
                   c->tgt_d + r0, c->valid_d + r0, V);
            LAUNCH_CHECK();
        }
        if (logits_out) /* parity path: copy the scored rows of this chunk */
            for (int i = r0; i < r0 + n;) {
                if (!c->valid_h[i]) {
                    i++;
                    continue;
                }
                int k = i;
                while (k < r0 + n && c->valid_h[k])
                    k++;
                CUDA_CHECK(cudaMemcpyAsync(c->logits_h + out_row * V,
                                           c->logits + (size_t)(i - r0) * V,
                                           (size_t)(k - i) * V * sizeof(float),
                                           cudaMemcpyDeviceToHost, c->stream));
                out_row += (size_t)(k - i);
                i = k;
            }
        if (logits_out) /* the chunk buffer is reused by the next GEMM */
            CUDA_CHECK(cudaStreamSynchronize(c->stream));
    }
    if (targets)
        CUDA_CHECK(cudaMemcpyAsync(c->nll_h, c->nll_d, (size_t)BW * 4, cudaMemcpyDeviceToHost,
                                   c->stream));
    CUDA_CHECK(cudaStreamSynchronize(c->stream));
    /* the memories now hold this window */
    for (int k = 0; k < A; k++) {
        int b = h_slot[k], L = h_lens[k];
        c->mem_len[b] = c->mem_len[b] + L < c->nm ? c->mem_len[b] + L : c->nm;
        c->cmem_len[b] = c->cmem_len[b] + h_g[k] < c->ncm ? c->cmem_len[b] + h_g[k] : c->ncm;
    }
    if (targets && nll_out) /* active slots are in slot order: rows in the caller's order */
        for (int k = 0, row = 0; k < A; k++) {
            memcpy(nll_out + row, c->nll_h + (size_t)k * W, sizeof(float) * (size_t)h_lens[k]);
            row += h_lens[k];
        }
    if (logits_out)
        *logits_out = c->logits_h;
    c->flops += fl;
    (void)cfg;
    return 0;
}

/* ------------------------------------------------------------------- the ops */

static void cuda_reset_slot(pg_backend *be, int slot)
{
    cuda_be *c = (cuda_be *)be->impl;
    /* lengths 0: no kernel reads rows past them; usage of new rows starts at 0 */
    c->mem_len[slot] = 0;
    c->cmem_len[slot] = 0;
}

static int cuda_forward_nll(pg_backend *be, const uint32_t *tokens, const int *lens,
                            const uint32_t *targets, float *nll, pg_error *err)
{
    cuda_be *c = (cuda_be *)be->impl;
    return c->bf16 ? forward_window<bf16>(be, tokens, lens, targets, nll, NULL, err)
                   : forward_window<float>(be, tokens, lens, targets, nll, NULL, err);
}

static int cuda_forward_logits(pg_backend *be, const uint32_t *tokens, const int *lens,
                               const float **logits, pg_error *err)
{
    cuda_be *c = (cuda_be *)be->impl;
    return c->bf16 ? forward_window<bf16>(be, tokens, lens, NULL, NULL, logits, err)
                   : forward_window<float>(be, tokens, lens, NULL, NULL, logits, err);
}

static double cuda_flops(const pg_backend *be)
{
    return ((const cuda_be *)be->impl)->flops;
}

static void cuda_release(cuda_be *c)
{
    if (!c)
        return;
    if (c->blas)
        cublasDestroy(c->blas);
    if (c->lt)
        cublasLtDestroy(c->lt);
    if (c->block)
        cudaFree(c->block);
    if (c->stream)
        cudaStreamDestroy(c->stream);
    cudaFreeHost(c->tok_h);
    cudaFreeHost(c->tgt_h);
    cudaFreeHost(c->valid_h);
    cudaFreeHost(c->ints_h);
    cudaFreeHost(c->nll_h);
    free(c->logits_h);
    free(c->mem_len);
    free(c->cmem_len);
    free(c);
}

static void cuda_free_backend(pg_backend *be)
{
    cuda_release((cuda_be *)be->impl);
    free(be);
}

static const pg_backend_ops cuda_ops = {cuda_reset_slot, cuda_forward_nll, cuda_forward_logits,
                                        cuda_flops, cuda_free_backend};

/* ---------------------------------------------------------------------- open */

/* The GPU of this process: cuda:N, or the node-local MPI rank (Open MPI,
 * MPICH and Slurm name it in the environment) modulo the GPU count. */
static int pick_device(const pg_backend_config *cfg, int count)
{
    if (cfg->device_index >= 0)
        return cfg->device_index;
    const char *vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"};
    for (int i = 0; i < 3; i++) {
        const char *v = getenv(vars[i]);
        if (v && *v >= '0' && *v <= '9')
            return atoi(v) % count;
    }
    return 0;
}

static int open_impl(const pg_model *m, const pg_backend_config *cfg, int batch, int max_slots,
                     int window, cuda_be *c, char *gpu_name, size_t name_cap, int *dev_out,
                     pg_error *err)
{
    const pg_model_config *mc = &m->cfg;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0)
        return pg_fail(err, PG_ENOTFOUND, "no CUDA device (%s)",
                       e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    int dev = pick_device(cfg, count);
    if (dev >= count)
        return pg_fail(err, PG_EINVAL, "cuda:%d: this machine has %d CUDA device(s)", dev, count);
    CUDA_CHECK(cudaSetDevice(dev));
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    snprintf(gpu_name, name_cap, "%s", prop.name);
    *dev_out = dev;
    if (mc->d_head > ATT_MAX_DH)
        return pg_fail(err, PG_EINVAL, "model %s: d_head %d: the CUDA attention kernel takes at "
                       "most %d", mc->name, mc->d_head, ATT_MAX_DH);
    if (mc->compressed_memory > 0 && window % mc->compression_rate)
        return pg_fail(err, PG_EINVAL, "model %s: the window (%d) must be a multiple of the "
                       "compression rate %d", mc->name, window, mc->compression_rate);
    c->m = m;
    c->W = window;
    c->d = mc->d_model;
    c->H = mc->n_head;
    c->dh = mc->d_head;
    c->HD = c->H * c->dh;
    c->dff = mc->d_ff;
    c->V = mc->vocab_size;
    c->nl = mc->n_layer;
    c->nm = mc->memory;
    c->ncm = mc->compressed_memory;
    c->span = c->ncm + c->nm + window;
    c->c = mc->compression_rate;
    c->comp = c->ncm > 0 ? mc->compression : PG_COMPRESS_NONE;
    c->ev_rows = c->nm + window;
    c->gmax = c->ncm > 0 ? c->ev_rows / c->c : 0;
    c->bf16 = cfg->precision != PG_PRECISION_FP32;
    c->asz = c->bf16 ? 2 : 4;
    c->dev = dev;
    size_t smem = attention_smem(c->dh);
    if (smem > (size_t)prop.sharedMemPerBlockOptin)
        return pg_fail(err, PG_EINVAL, "cuda: attention needs %zu bytes of shared memory, the "
                       "device allows %zu", smem, (size_t)prop.sharedMemPerBlockOptin);
    if (c->bf16)
        CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<bf16>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    else
        CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<float>,
                                        cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    /* the batch: given, or the largest whose plan fits 85% of free memory */
    plan_entry e_[40];
    size_t total, free_b = 0, all_b = 0;
    CUDA_CHECK(cudaMemGetInfo(&free_b, &all_b));
    int cap = max_slots < 1024 ? max_slots : 1024;
    int B = batch > 0 ? batch : cap;
    if (batch <= 0) {
        size_t budget = (size_t)(0.85 * (double)free_b);
        while (B > 1) {
            c->B = B;
            plan(c, B, e_, &total);
            if (total <= budget)
                break;
            B = B > 8 ? B * 7 / 8 : B - 1;
        }
    }
    c->B = B;
    int n = plan(c, B, e_, &total);
    if (total > free_b)
        return pg_fail(err, PG_ENOMEM, "cuda: batch %d of %s needs %.2f GiB, %.2f GiB free on %s",
                       B, mc->name, total / 1073741824.0, free_b / 1073741824.0, prop.name);
    CUDA_CHECK(cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&c->blas));
    CUBLAS_CHECK(cublasSetStream(c->blas, c->stream));
    /* fp32: no TF32 (CUBLAS_COMPUTE_32F with the default math mode is plain fp32) */
    CUBLAS_CHECK(cublasSetMathMode(c->blas, CUBLAS_DEFAULT_MATH));
    CUBLAS_CHECK(cublasLtCreate(&c->lt));
    CUDA_CHECK(cudaMalloc((void **)&c->block, total));
    CUDA_CHECK(cudaMemsetAsync(c->block, 0, total, c->stream));
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        *e_[i].ptr = e_[i].bytes ? c->block + off : NULL;
        off += (e_[i].bytes + 255) / 256 * 256;
    }
    if (!c->bf16)
        c->wact = c->w32;
    size_t BW = (size_t)B * window;
    CUDA_CHECK(cudaMallocHost((void **)&c->tok_h, BW * 4));
    CUDA_CHECK(cudaMallocHost((void **)&c->tgt_h, BW * 4));
    CUDA_CHECK(cudaMallocHost((void **)&c->valid_h, BW));
    CUDA_CHECK(cudaMallocHost((void **)&c->ints_h, (size_t)6 * B * 4));
    CUDA_CHECK(cudaMallocHost((void **)&c->nll_h, BW * 4));
    c->mem_len = (int *)calloc((size_t)B, sizeof(int));
    c->cmem_len = (int *)calloc((size_t)B, sizeof(int));
    if (!c->mem_len || !c->cmem_len)
        return pg_fail(err, PG_ENOMEM, "cuda: out of memory");
    /* weights once: fp32, then the bf16 GEMM copy */
    /* on c->stream, after the memset of the block (a non-blocking stream does
     * not order itself after the legacy default stream) */
    CUDA_CHECK(cudaMemcpyAsync(c->w32, m->mem, m->n_params * 4, cudaMemcpyHostToDevice,
                               c->stream));
    if (c->bf16) {
        LAUNCH(CEIL_DIV(m->n_params, 256), 256, 0, c->stream, convert_kernel<bf16>, (bf16 *)c->wact,
               c->w32, m->n_params);
        LAUNCH_CHECK();
    }
    /* sinusoids of distance span-1-t, as model.c computes them */
    float *pos = (float *)malloc((size_t)c->span * c->d * sizeof(float));
    if (!pos)
        return pg_fail(err, PG_ENOMEM, "cuda: out of memory");
    for (size_t t = 0; t < (size_t)c->span; t++)
        for (size_t k = 0; k < (size_t)c->d / 2; k++) {
            double f = pow(10000.0, -(double)(2 * k) / (double)c->d),
                   p = (double)(c->span - 1 - (int)t);
            pos[t * c->d + k] = (float)sin(p * f);
            pos[t * c->d + c->d / 2 + k] = (float)cos(p * f);
        }
    /* fp32 sinusoids staged on the device, converted to the GEMM type */
    size_t pos_n = (size_t)c->span * c->d;
    float *stage = NULL;
    cudaError_t me = cudaMalloc((void **)&stage, pos_n * 4);
    if (me != cudaSuccess) {
        free(pos);
        return pg_fail(err, PG_ENOMEM, "cuda: %s", cudaGetErrorString(me));
    }
    me = cudaMemcpyAsync(stage, pos, pos_n * 4, cudaMemcpyHostToDevice, c->stream);
    if (me == cudaSuccess)
        me = cudaStreamSynchronize(c->stream); /* pos (pageable) is freed next */
    free(pos);
    if (me == cudaSuccess) {
        if (c->bf16)
            LAUNCH(CEIL_DIV(pos_n, 256), 256, 0, c->stream, convert_kernel<bf16>, (bf16 *)c->pos,
                                                                              stage, pos_n);
        else
            LAUNCH(CEIL_DIV(pos_n, 256), 256, 0, c->stream, convert_kernel<float>, (float *)c->pos,
                                                                               stage, pos_n);
        me = cudaGetLastError();
        if (me == cudaSuccess)
            me = cudaStreamSynchronize(c->stream);
    }
    cudaFree(stage);
    if (me != cudaSuccess)
        return pg_fail(err, PG_EIO, "cuda: positions: %s", cudaGetErrorString(me));
    return 0;
}

extern "C" int pg_backend_cuda_open(const pg_model *m, const pg_backend_config *cfg, int batch,
                                    int max_slots, int window, pg_backend **out, pg_error *err)
{
    *out = NULL;
    pg_backend *be = (pg_backend *)calloc(1, sizeof *be);
    cuda_be *c = (cuda_be *)calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return pg_fail(err, PG_ENOMEM, "cuda backend: out of memory");
    }
    char name[200] = "";
    int dev = 0;
    int rc = open_impl(m, cfg, batch, max_slots, window, c, name, sizeof name, &dev, err);
    if (rc) {
        cuda_release(c);
        free(be);
        return rc;
    }
    be->ops = &cuda_ops;
    be->n_slots = c->B;
    be->window = window;
    be->precision = c->bf16 ? PG_PRECISION_BF16 : PG_PRECISION_FP32;
    be->batch_invariant = 0;
    snprintf(be->device, sizeof be->device, "cuda:%d", dev);
    snprintf(be->gpu, sizeof be->gpu, "%s", name);
    be->impl = c;
    *out = be;
    return 0;
}

extern "C" int pg_backend_cuda_built(void)
{
    return 1;
}
