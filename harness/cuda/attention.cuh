/* attention.cuh - fused relative-position attention of Transformer-XL /
 * Compressive Transformer over [compressed memory, memory, window].
 *
 * For slot b, head h and query row i of the window (L rows, M = cm + mm
 * memory rows before it; key j in [0, M + L)):
 *   key j:  j < cm: compressed memory row j; j < M: memory row j - cm;
 *           else window row j - M (this window's own keys and values)
 *   s_ij = ((q_i + u) . k_j + (q_i + v) . r_{M+i-j}) / sqrt(dh),  j <= M + i
 *   out_i = sum_j softmax_j(s_i) v_j
 * r_delta is the projected sinusoid of distance delta, row span-1-delta of
 * r [span, HD] (the CPU's relative shift, done as a gather). The softmax is
 * online (running max and sum per row): the [L, K] score matrix never goes
 * to global memory.
 *
 * Slots are compacted: the window rows of active slot a (of A) are rows
 * [a W, a W + lens[a]) of q, knew, vnew and out, and its memories are those
 * of physical slot slot_of[a]; per-slot counts are indexed by a.
 *
 * A block is ATT_ROWS query rows (one warp each) of one (slot, head); it
 * walks the keys in tiles of 32, staging K, V and the ATT_ROWS + 31 rows of
 * r the tile needs in shared memory (rows padded by one float: no bank
 * conflicts). Lane l scores key j0 + l; the value sum is then accumulated
 * by output dimension (lane l owns dims l, l + 32, ...). Every sum runs in
 * a fixed order: the same bits every run.
 */
#ifndef PG19_HARNESS_CUDA_ATTENTION_CUH
#define PG19_HARNESS_CUDA_ATTENTION_CUH

#include "harness/cuda/common.cuh"

#define ATT_ROWS 8
#define ATT_KEYS 32
#define ATT_MAX_DH 128

/* Dynamic shared memory of attention_kernel, in bytes. */
static inline size_t attention_smem(int dh)
{
    size_t dp = (size_t)dh + 1;
    return sizeof(float) * (2 * ATT_ROWS * (size_t)dh + 2 * ATT_KEYS * dp +
                            (ATT_ROWS + ATT_KEYS - 1) * dp);
}

/* grid (ceil(W / ATT_ROWS), H, A), block ATT_ROWS * 32.
 *   out, q, knew, vnew [A*W, HD]; kmem, vmem [B, nm, HD]; kcm, vcm [B, ncm, HD]
 *   r [span, HD]; u, vb [H, dh]; lens, cmlen, mlen, slot_of [A]
 *   row_m, row_l [A, H, W]: each row's softmax max and sum (NULL: not kept) */
template <typename T>
__global__ void __launch_bounds__(ATT_ROWS *WARP)
    attention_kernel(T *out, const T *q, const T *knew, const T *vnew, const T *kmem,
                     const T *vmem, const T *kcm, const T *vcm, const T *r, const float *u,
                     const float *vb, const int *lens, const int *cmlen, const int *mlen,
                     const int *slot_of, int W, int HD, int dh, int nm, int ncm, int span,
                     float scale, float *row_m, float *row_l)
{
    int b = blockIdx.z, h = blockIdx.y, i0 = blockIdx.x * ATT_ROWS, phys = slot_of[b];
    int L = lens[b];
    if (i0 >= L) /* the whole block: no barrier is skipped by only some threads */
        return;
    int cm = cmlen[b], mm = mlen[b], M = cm + mm;
    int warp = threadIdx.x / WARP, lane = threadIdx.x % WARP, i = i0 + warp;
    bool row_ok = i < L;
    DYNAMIC_SHARED(float, sm);
    int dp = dh + 1;
    float *QU = sm, *QV = QU + ATT_ROWS * dh, *Ks = QV + ATT_ROWS * dh, *Vs = Ks + ATT_KEYS * dp,
          *Rs = Vs + ATT_KEYS * dp;
    for (int e = lane; e < dh; e += WARP) {
        float qe = row_ok ? ldf(q[((size_t)b * W + i) * HD + (size_t)h * dh + e]) : 0.0f;
        QU[warp * dh + e] = qe + u[h * dh + e];
        QV[warp * dh + e] = qe + vb[h * dh + e];
    }
    int i_last = (i0 + ATT_ROWS < L ? i0 + ATT_ROWS : L) - 1;
    int jend = M + i_last + 1; /* keys [0, jend) are seen by some row of the block */
    float m_run = -INFINITY, l_run = 0.0f;
    float o[ATT_MAX_DH / WARP];
#pragma unroll
    for (int t = 0; t < ATT_MAX_DH / WARP; t++)
        o[t] = 0.0f;
    for (int j0 = 0; j0 < jend; j0 += ATT_KEYS) {
        __syncthreads(); /* the previous tile is consumed (and QU/QV written) */
        for (int idx = threadIdx.x; idx < ATT_KEYS * dh; idx += blockDim.x) {
            int kk = idx / dh, e = idx % dh, j = j0 + kk;
            float kv = 0.0f, vv = 0.0f;
            if (j < jend) {
                const T *kp, *vp;
                size_t off;
                if (j < cm) {
                    off = ((size_t)phys * ncm + j) * HD;
                    kp = kcm;
                    vp = vcm;
                } else if (j < M) {
                    off = ((size_t)phys * nm + (j - cm)) * HD;
                    kp = kmem;
                    vp = vmem;
                } else {
                    off = ((size_t)b * W + (j - M)) * HD;
                    kp = knew;
                    vp = vnew;
                }
                kv = ldf(kp[off + (size_t)h * dh + e]);
                vv = ldf(vp[off + (size_t)h * dh + e]);
            }
            Ks[kk * dp + e] = kv;
            Vs[kk * dp + e] = vv;
        }
        /* distances of this tile: M + i - j for i in [i0, i0 + ATT_ROWS), j in
         * [j0, j0 + 32): Rs row rr holds distance dmin + rr */
        int dmin = M + i0 - j0 - (ATT_KEYS - 1);
        for (int idx = threadIdx.x; idx < (ATT_ROWS + ATT_KEYS - 1) * dh; idx += blockDim.x) {
            int rr = idx / dh, e = idx % dh, delta = dmin + rr;
            float rv = 0.0f;
            if (delta >= 0 && delta < span)
                rv = ldf(r[(size_t)(span - 1 - delta) * HD + (size_t)h * dh + e]);
            Rs[rr * dp + e] = rv;
        }
        __syncthreads();
        if (!row_ok || j0 > M + i) /* this row sees none of the tile's keys */
            continue;
        int j = j0 + lane;
        bool valid = j <= M + i;
        float s = -INFINITY;
        if (valid) {
            const float *kr = Ks + lane * dp, *rrow = Rs + (M + i - j - dmin) * dp;
            const float *qu = QU + warp * dh, *qv = QV + warp * dh;
            float ac = 0.0f, bd = 0.0f;
            for (int e = 0; e < dh; e++) {
                ac += qu[e] * kr[e];
                bd += qv[e] * rrow[e];
            }
            s = (ac + bd) * scale;
        }
        float m_new = fmaxf(m_run, warp_max(s)); /* finite: key j0 is valid */
        float corr = expf(m_run - m_new);          /* 0 on the first tile */
        float p = valid ? expf(s - m_new) : 0.0f;
        l_run = l_run * corr + warp_sum(p);
#pragma unroll
        for (int t = 0; t < ATT_MAX_DH / WARP; t++)
            o[t] *= corr;
        for (int kk = 0; kk < ATT_KEYS; kk++) {
            float pk = __shfl_sync(0xffffffffu, p, kk);
#pragma unroll
            for (int t = 0; t < ATT_MAX_DH / WARP; t++) {
                int e = lane + WARP * t;
                if (e < dh)
                    o[t] += pk * Vs[kk * dp + e];
            }
        }
        m_run = m_new;
    }
    if (!row_ok)
        return;
    float inv = 1.0f / l_run;
#pragma unroll
    for (int t = 0; t < ATT_MAX_DH / WARP; t++) {
        int e = lane + WARP * t;
        if (e < dh)
            stf(&out[((size_t)b * W + i) * HD + (size_t)h * dh + e], o[t] * inv);
    }
    if (row_m && lane == 0) {
        size_t at = ((size_t)b * gridDim.y + h) * W + i;
        row_m[at] = m_run;
        row_l[at] = l_run;
    }
}

/* most_used: usage[b, t] += attention that memory row t received from every
 * query row of the window, heads in order, rows in order (the CPU's order):
 * the probabilities are recomputed from the rows' softmax max and sum.
 * grid (ceil(nm / 128), A), block 128; usage [B, nm] by physical slot. */
template <typename T>
__global__ void usage_kernel(float *usage, const T *q, const T *kmem, const T *r, const float *u,
                             const float *vb, const int *lens, const int *cmlen, const int *mlen,
                             const int *slot_of, const float *row_m, const float *row_l, int W,
                             int H, int HD, int dh, int nm, int span, float scale)
{
    int b = blockIdx.y, t = blockIdx.x * blockDim.x + threadIdx.x, phys = slot_of[b];
    int L = lens[b], cm = cmlen[b], mm = mlen[b], M = cm + mm;
    if (L == 0 || t >= mm)
        return;
    int j = cm + t;
    const T *k = kmem + ((size_t)phys * nm + t) * HD;
    float acc = usage[(size_t)phys * nm + t];
    for (int h = 0; h < H; h++) {
        float part = 0.0f;
        for (int i = 0; i < L; i++) {
            const T *qi = q + ((size_t)b * W + i) * HD + (size_t)h * dh;
            const T *rr = r + (size_t)(span - 1 - (M + i - j)) * HD + (size_t)h * dh;
            float ac = 0.0f, bd = 0.0f;
            for (int e = 0; e < dh; e++) {
                float qe = ldf(qi[e]);
                ac += (qe + u[h * dh + e]) * ldf(k[(size_t)h * dh + e]);
                bd += (qe + vb[h * dh + e]) * ldf(rr[e]);
            }
            size_t at = ((size_t)b * H + h) * W + i;
            part += expf((ac + bd) * scale - row_m[at]) * (1.0f / row_l[at]);
        }
        acc += part;
    }
    usage[(size_t)phys * nm + t] = acc;
}

#endif
