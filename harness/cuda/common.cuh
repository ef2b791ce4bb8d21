/* common.cuh - shared pieces of the CUDA backend: element types, loads and
 * stores that convert to fp32, block sizes, and the check macros that turn
 * a CUDA or cuBLAS status into a pg_fail (the library never exits).
 *
 * Activations and weights that feed matrix products are of type T: float
 * in the fp32 (parity) mode, __nv_bfloat16 in the bf16 mode. The residual
 * stream, LayerNorm statistics, softmax state and every sum are fp32 (the
 * classifier's sum of exponentials is double, as on the CPU).
 */
#ifndef PG19_HARNESS_CUDA_COMMON_CUH
#define PG19_HARNESS_CUDA_COMMON_CUH

#ifdef PG19_CUDA_EMULATE /* the kernels on the CPU: tests/harness/test_cuda_kernels.cc */
#include "tests/harness/cuda_emu.h"
#else
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#define SHARED_ARRAY(T, name, n) __shared__ T name[n]
#define DYNAMIC_SHARED(T, name) extern __shared__ T name[]
#endif
#include <math.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

#define CEIL_DIV(a, b) (((a) + (b) - 1) / (b))
#define WARP 32

/* kernel<<<grid, block, smem, stream>>>(args), or its CPU emulation */
#ifdef PG19_CUDA_EMULATE
#define LAUNCH(grid, block, smem, stream, kernel, ...)                                      \
    emu_launch_named(#kernel, grid, block, smem, [&] { kernel(__VA_ARGS__); })
#else
#define LAUNCH(grid, block, smem, stream, kernel, ...)                                      \
    kernel<<<grid, block, smem, stream>>>(__VA_ARGS__)
#endif

__device__ __forceinline__ float ldf(float x) { return x; }
__device__ __forceinline__ float ldf(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ void stf(float *p, float v) { *p = v; }
__device__ __forceinline__ void stf(bf16 *p, float v) { *p = __float2bfloat16(v); }

__device__ __forceinline__ float warp_sum(float v)
{
    for (int o = WARP / 2; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int o = WARP / 2; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Inside a host function that returns int and has `pg_error *err`. */
#define CUDA_CHECK(call)                                                                     \
    do {                                                                                     \
        cudaError_t e_ = (call);                                                             \
        if (e_ != cudaSuccess)                                                               \
            return pg_fail(err, PG_EIO, "cuda: %s (%s) at %s:%d", cudaGetErrorString(e_),    \
                           #call, __FILE__, __LINE__);                                       \
    } while (0)

#define CUBLAS_CHECK(call)                                                                   \
    do {                                                                                     \
        cublasStatus_t s_ = (call);                                                          \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                     \
            return pg_fail(err, PG_EIO, "cublas: %s (%s) at %s:%d", cublasGetStatusString(s_), \
                           #call, __FILE__, __LINE__);                                       \
    } while (0)

/* After a kernel launch: launch errors (bad configuration) surface here. */
#define LAUNCH_CHECK() CUDA_CHECK(cudaGetLastError())

#endif
