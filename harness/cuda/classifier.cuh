/* classifier.cuh - the NLL of each token from its logits row, on the device:
 *   nll = log(sum_j exp(z_j - max)) + max - z[target]
 * fp32 exponentials summed in double, as the CPU's row_nll. The logits come
 * in row chunks (the caller's GEMM of LNf(x) with the tied embedding writes
 * one chunk at a time), so no [tokens x vocab] fp32 matrix of the whole
 * window exists; only T floats go back to the host. One block per row; the
 * block reductions use a fixed tree: the same bits every run. */
#ifndef PG19_HARNESS_CUDA_CLASSIFIER_CUH
#define PG19_HARNESS_CUDA_CLASSIFIER_CUH

#include "harness/cuda/common.cuh"

#define CLS_THREADS 512

/* grid (rows), block CLS_THREADS; logits [rows, ld]; valid[row] = 0 skips */
__global__ void __launch_bounds__(CLS_THREADS)
    classifier_kernel(float *nll, const float *logits, int ld, const uint32_t *targets,
                      const unsigned char *valid, int V)
{
    SHARED_ARRAY(float, smax, CLS_THREADS);
    SHARED_ARRAY(double, ssum, CLS_THREADS);
    int row = blockIdx.x, tid = threadIdx.x;
    if (!valid[row])
        return;
    const float *z = logits + (size_t)row * ld;
    float mx = -INFINITY;
    for (int j = tid; j < V; j += CLS_THREADS)
        mx = fmaxf(mx, z[j]);
    smax[tid] = mx;
    __syncthreads();
    for (int s = CLS_THREADS / 2; s > 0; s >>= 1) {
        if (tid < s)
            smax[tid] = fmaxf(smax[tid], smax[tid + s]);
        __syncthreads();
    }
    mx = smax[0];
    double sum = 0.0;
    for (int j = tid; j < V; j += CLS_THREADS)
        sum += (double)expf(z[j] - mx);
    ssum[tid] = sum;
    __syncthreads();
    for (int s = CLS_THREADS / 2; s > 0; s >>= 1) {
        if (tid < s)
            ssum[tid] += ssum[tid + s];
        __syncthreads();
    }
    if (tid == 0)
        nll[row] = (float)(log(ssum[0]) + (double)mx - (double)z[targets[row]]);
}

#endif
