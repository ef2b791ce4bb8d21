/* memory.cuh - the memories on the GPU: FIFO updates and the compression
 * functions f_c (Rae et al. 2020, Algorithm 1), for all slots at once.
 *
 * Per (layer, slot) the memory holds mem_len rows (oldest first) of the
 * layer input h with their keys and values; the compressed memory cmem_len
 * rows of keys and values. After layer l attends, with m = mem_len,
 * L = the window's rows, n_evict = max(0, m + L - n_m):
 *   evicted = concat(mem, h)[:n_evict]; g = n_evict / c (when n_evict >= c);
 *   cmem    = concat(cmem, f_c(evicted[:g c]))[-n_cm:]
 *   mem     = concat(mem, h)[n_evict:]
 * exactly as model.c's update_memory. The lengths are the same for every
 * layer, so the host tracks them and passes per-slot counts. Only the A
 * active slots of a window are touched: a indexes them (their window rows,
 * counts and scratch), slot_of[a] is the physical slot of their memories.
 */
#ifndef PG19_HARNESS_CUDA_MEMORY_CUH
#define PG19_HARNESS_CUDA_MEMORY_CUH

#include "harness/cuda/common.cuh"

/* dst[a, r, :] = concat(old[p, :old_len[a]], rows of a [:n_new[a]])[drop:][r]
 * for r < new_len, p = slot_of[a], drop = max(0, old_len + n_new - cap);
 * rows NULL appends zeros. dst is [A, cap, width] scratch, old [B, cap,
 * width]; a's new rows start at rows + a * rows_stride, rows_ld apart. The
 * caller then copies dst over old (fifo_commit_kernel): a FIFO shift in place
 * would read rows it already overwrote. grid (cap, A), block 128. */
template <typename T, typename S>
__global__ void fifo_kernel(T *dst, const T *old, const int *old_len, const S *rows,
                            size_t rows_stride, int rows_ld, const int *n_new,
                            const int *slot_of, int cap, int width)
{
    int b = blockIdx.y, r = blockIdx.x, phys = slot_of[b];
    int ol = old_len[b], n = n_new[b];
    int drop = ol + n - cap > 0 ? ol + n - cap : 0;
    if (r >= ol + n - drop)
        return;
    int s = drop + r;
    T *d = dst + ((size_t)b * cap + r) * width;
    if (s < ol) {
        const T *src = old + ((size_t)phys * cap + s) * width;
        for (int k = threadIdx.x; k < width; k += blockDim.x)
            d[k] = src[k];
    } else if (rows) {
        const S *src = rows + (size_t)b * rows_stride + (size_t)(s - ol) * rows_ld;
        for (int k = threadIdx.x; k < width; k += blockDim.x)
            stf(&d[k], ldf(src[k]));
    } else {
        for (int k = threadIdx.x; k < width; k += blockDim.x)
            stf(&d[k], 0.0f);
    }
}

/* buf[slot_of[a], r, :] = dst[a, r, :] for every r < cap: the FIFO update
 * of the active slots becomes visible. grid (cap, A), block 128. */
template <typename T>
__global__ void fifo_commit_kernel(T *buf, const T *dst, const int *slot_of, int cap, int width)
{
    int b = blockIdx.y, r = blockIdx.x;
    const T *src = dst + ((size_t)b * cap + r) * width;
    T *d = buf + ((size_t)slot_of[b] * cap + r) * width;
    for (int k = threadIdx.x; k < width; k += blockDim.x)
        d[k] = src[k];
}

/* ev[a, r, :] = concat(mem[p, :m], the window rows of a)[r], evu[a, r] = its
 * usage (window rows: 0), for r < n_comp[a] (= g c, the rows compressed),
 * p = slot_of[a]. ev [A, ev_rows, d], mem [B, nm, d], x [A*W, d].
 * grid (ev_rows, A). */
__global__ void evict_kernel(float *ev, float *evu, const float *mem, const float *usage,
                             const float *x, const int *mlen, const int *n_comp,
                             const int *slot_of, int nm, int W, int d, int ev_rows)
{
    int b = blockIdx.y, r = blockIdx.x, m = mlen[b], phys = slot_of[b];
    if (r >= n_comp[b])
        return;
    const float *src = r < m ? mem + ((size_t)phys * nm + r) * d : x + ((size_t)b * W + r - m) * d;
    float *dst = ev + ((size_t)b * ev_rows + r) * d;
    for (int k = threadIdx.x; k < d; k += blockDim.x)
        dst[k] = src[k];
    if (threadIdx.x == 0)
        evu[(size_t)b * ev_rows + r] = r < m ? usage[(size_t)phys * nm + r] : 0.0f;
}

/* conv / dilated conv as one matrix product: G[(b, j), i c + t] = x[p_t(j)][i]
 * with p_t(j) = j c + t (conv) or j c + c-1 - (c-1-t) D (dilated; zero where
 * p < 0), so that f_c(x)[j] = cb + G[j] . cw[o]^T with cw [d, d c] (PyTorch's
 * Conv1d weight [out, in, kernel] read row-major). Rows j >= g[b]: zero.
 * G [B*gmax, d c]; grid (gmax, B). */
template <typename T>
__global__ void im2col_kernel(T *G, const float *ev, const int *g, int gmax, int c, int D,
                              int dilated, int d, int ev_rows)
{
    int b = blockIdx.y, j = blockIdx.x;
    T *row = G + ((size_t)b * gmax + j) * (size_t)d * c;
    for (int k = threadIdx.x; k < d * c; k += blockDim.x) {
        int i = k / c, t = k % c;
        long p = dilated ? (long)j * c + (c - 1) - (long)(c - 1 - t) * D : (long)j * c + t;
        float v = 0.0f;
        if (j < g[b] && p >= 0)
            v = ev[((size_t)b * ev_rows + p) * d + i];
        stf(&row[k], v);
    }
}

/* max_pool / mean_pool: co[(b, j), i] over ev rows j c .. j c + c-1, in the
 * CPU's order (the same bits). grid (gmax, B). */
__global__ void pool_kernel(float *co, const float *ev, const int *g, int gmax, int c, int is_max,
                            int d, int ev_rows)
{
    int b = blockIdx.y, j = blockIdx.x;
    if (j >= g[b])
        return;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        const float *x = ev + ((size_t)b * ev_rows + (size_t)j * c) * d + i;
        float acc = x[0];
        for (int t = 1; t < c; t++) {
            float v = x[(size_t)t * d];
            acc = is_max ? (v > acc ? v : acc) : acc + v;
        }
        co[((size_t)b * gmax + j) * d + i] = is_max ? acc : acc / (float)c;
    }
}

/* most_used: keep the g rows of the n = g c evicted rows that received the
 * most attention, in their order; ties go to the older row. Row i is kept
 * iff fewer than g rows beat it (higher usage, or equal usage and older):
 * the CPU's repeated arg-max selects the same set. sel [B, ev_rows] is
 * scratch. One block per slot. */
__global__ void most_used_kernel(float *co, int *sel, const float *ev, const float *evu,
                                 const int *g, int gmax, int c, int d, int ev_rows)
{
    int b = blockIdx.x, gb = g[b], n = gb * c;
    const float *us = evu + (size_t)b * ev_rows;
    int *fl = sel + (size_t)b * ev_rows;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        int beaten = 0;
        for (int k = 0; k < n; k++)
            beaten += us[k] > us[i] || (us[k] == us[i] && k < i);
        fl[i] = beaten < gb;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        if (!fl[i])
            continue;
        int pos = 0;
        for (int k = 0; k < i; k++)
            pos += fl[k];
        const float *src = ev + ((size_t)b * ev_rows + i) * d;
        float *dst = co + ((size_t)b * gmax + pos) * d;
        for (int k = 0; k < d; k++)
            dst[k] = src[k];
    }
}

#endif
