/* cuda_emu.h - just enough of CUDA to run the harness's kernels
 * (the .cuh files of harness/cuda/) on the CPU, for tests/harness/test_cuda_kernels.cc:
 * every thread of a block is a std::thread, __syncthreads a block barrier,
 * warp shuffles go through a per-warp exchange with barriers. Slow, but the
 * kernels' indexing, barriers and reductions run as written, on machines
 * without a GPU (CI). Built with -DPG19_CUDA_EMULATE, which makes
 * harness/cuda/common.cuh include this instead of the CUDA headers.
 */
#ifndef PG19_TESTS_HARNESS_CUDA_EMU_H
#define PG19_TESTS_HARNESS_CUDA_EMU_H

#include <barrier>
#include <condition_variable>
#include <mutex>
#include <cstdio>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};

namespace emu {
struct block_ctx {
    std::barrier<> *bar;
    std::vector<std::unique_ptr<std::barrier<>>> *warp_bars;
    float *xchg_f;  /* [threads] */
    double *xchg_d; /* [threads] */
    char *dyn_smem;
    char *static_smem;
    size_t static_used;
};
inline thread_local dim3 tl_block, tl_thread, tl_bdim, tl_gdim;
inline thread_local block_ctx *tl_ctx;
inline thread_local size_t tl_static_off;
inline void *static_alloc(size_t bytes)
{
    void *p = tl_ctx->static_smem + tl_static_off;
    tl_static_off += (bytes + 15) / 16 * 16;
    return p;
}
} // namespace emu

/* the kernels' shared memory (harness/cuda/common.cuh's macros) */
#define SHARED_ARRAY(T, name, n) T *name = (T *)emu::static_alloc(sizeof(T) * (n))
#define DYNAMIC_SHARED(T, name) T *name = (T *)emu::tl_ctx->dyn_smem

#define blockIdx (emu::tl_block)
#define threadIdx (emu::tl_thread)
#define blockDim (emu::tl_bdim)
#define gridDim (emu::tl_gdim)

inline void __syncthreads()
{
    if (!emu::tl_ctx->bar) { /* a kernel run serially must not wait for others */
        fprintf(stderr, "cuda_emu: __syncthreads in a kernel launched as barrier-free\n");
        abort();
    }
    emu::tl_ctx->bar->arrive_and_wait();
}

/* a warp's exchange: every lane writes, the warp waits, reads, waits */
inline float emu_warp_exchange(float v, int src_lane)
{
    if (!emu::tl_ctx->bar) {
        fprintf(stderr, "cuda_emu: a warp shuffle in a kernel launched as barrier-free\n");
        abort();
    }
    int t = (int)threadIdx.x, w = t / 32, lane = t % 32;
    auto &bar = *(*emu::tl_ctx->warp_bars)[w];
    emu::tl_ctx->xchg_f[t] = v;
    bar.arrive_and_wait();
    float r = emu::tl_ctx->xchg_f[w * 32 + src_lane];
    bar.arrive_and_wait();
    (void)lane;
    return r;
}
inline float __shfl_xor_sync(unsigned, float v, int o)
{
    return emu_warp_exchange(v, ((int)threadIdx.x % 32) ^ o);
}
inline float __shfl_sync(unsigned, float v, int src) { return emu_warp_exchange(v, src); }

/* bf16 as the bits of a float's top half, round to nearest even */
struct __nv_bfloat16 {
    uint16_t bits;
};
inline float __bfloat162float(__nv_bfloat16 b)
{
    uint32_t u = (uint32_t)b.bits << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline __nv_bfloat16 __float2bfloat16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fff + ((u >> 16) & 1);
    return __nv_bfloat16{(uint16_t)(u >> 16)};
}


/* ---- the runtime and cuBLAS, on host memory (for the backend driver,
 * harness/cuda/backend_cuda.cu, built as C++ with -DPG19_CUDA_EMULATE) */
#include <cstdlib>
typedef int cudaError_t;
enum { cudaSuccess = 0, cudaErrorMemoryAllocation = 2 };
typedef void *cudaStream_t;
enum { cudaStreamNonBlocking = 1 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize };
enum cudaDataType { CUDA_R_32F, CUDA_R_16BF };
struct cudaDeviceProp {
    char name[256];
    size_t sharedMemPerBlockOptin;
};
inline const char *cudaGetErrorString(cudaError_t e) { return e ? "emulated error" : "no error"; }
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaGetDeviceCount(int *n)
{
    *n = 1;
    return cudaSuccess;
}
inline cudaError_t cudaSetDevice(int) { return cudaSuccess; }
inline cudaError_t cudaGetDeviceProperties(cudaDeviceProp *p, int)
{
    snprintf(p->name, sizeof p->name, "CPU emulation");
    p->sharedMemPerBlockOptin = 227 * 1024;
    return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t *free_b, size_t *total)
{
    *free_b = *total = (size_t)2 << 30;
    return cudaSuccess;
}
template <typename F>
inline cudaError_t cudaFuncSetAttribute(F, cudaFuncAttribute, int) { return cudaSuccess; }
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, int)
{
    *s = (void *)1;
    return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaMalloc(void **p, size_t n)
{
    *p = calloc(1, n ? n : 1);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void *p)
{
    free(p);
    return cudaSuccess;
}
inline cudaError_t cudaMallocHost(void **p, size_t n) { return cudaMalloc(p, n); }
inline cudaError_t cudaFreeHost(void *p) { return cudaFree(p); }
inline cudaError_t cudaMemsetAsync(void *p, int v, size_t n, cudaStream_t)
{
    memset(p, v, n);
    return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, cudaMemcpyKind, cudaStream_t)
{
    memmove(d, s, n);
    return cudaSuccess;
}

typedef int cublasStatus_t;
enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_NOT_SUPPORTED = 15 };
typedef void *cublasHandle_t;
enum cublasOperation_t { CUBLAS_OP_N, CUBLAS_OP_T };
enum cublasComputeType_t { CUBLAS_COMPUTE_32F };
enum cublasGemmAlgo_t { CUBLAS_GEMM_DEFAULT };
enum cublasMath_t { CUBLAS_DEFAULT_MATH };
inline const char *cublasGetStatusString(cublasStatus_t) { return "emulated status"; }
inline cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = (void *)1;
    return 0;
}
inline cublasStatus_t cublasDestroy(cublasHandle_t) { return 0; }
inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return 0; }
inline cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return 0; }
inline float emu_ld(const void *p, cudaDataType t, size_t i)
{
    return t == CUDA_R_32F ? ((const float *)p)[i]
                           : __bfloat162float(((const __nv_bfloat16 *)p)[i]);
}
/* column-major C[m, n] = alpha op(A) op(B) + beta C, fp32 sums in k order */
inline cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb,
                                   int m, int n, int k, const float *alpha, const void *A,
                                   cudaDataType at, int lda, const void *B, cudaDataType bt,
                                   int ldb, const float *beta, void *C, cudaDataType ct, int ldc,
                                   cublasComputeType_t, cublasGemmAlgo_t)
{
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            float acc = 0.0f;
            for (int l = 0; l < k; l++) {
                float a =
                    emu_ld(A, at, ta == CUBLAS_OP_N ? (size_t)l * lda + i : (size_t)i * lda + l);
                float b =
                    emu_ld(B, bt, tb == CUBLAS_OP_N ? (size_t)j * ldb + l : (size_t)l * ldb + j);
                acc += a * b;
            }
            size_t at_ = (size_t)j * ldc + i;
            float v = *alpha * acc + (*beta != 0.0f ? *beta * emu_ld(C, ct, at_) : 0.0f);
            if (ct == CUDA_R_32F)
                ((float *)C)[at_] = v;
            else
                ((__nv_bfloat16 *)C)[at_] = __float2bfloat16(v);
        }
    return 0;
}
/* cuBLASLt: present but offering no algorithm, so gemm() takes cublasGemmEx */
typedef void *cublasLtHandle_t;
typedef void *cublasLtMatmulDesc_t;
typedef void *cublasLtMatrixLayout_t;
typedef void *cublasLtMatmulPreference_t;
struct cublasLtMatmulAlgo_t {
    uint64_t data[8];
};
struct cublasLtMatmulHeuristicResult_t {
    cublasLtMatmulAlgo_t algo;
    size_t workspaceSize;
    cublasStatus_t state;
};
enum { CUBLASLT_MATMUL_DESC_TRANSA, CUBLASLT_MATMUL_DESC_TRANSB,
       CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, CUBLASLT_REDUCTION_SCHEME_NONE,
       CUBLASLT_ALGO_CONFIG_SPLITK_NUM, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME };
inline cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    *h = (void *)1;
    return 0;
}
inline cublasStatus_t cublasLtDestroy(cublasLtHandle_t) { return 0; }
inline cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *, cublasComputeType_t,
                                               cudaDataType)
{
    return CUBLAS_STATUS_NOT_SUPPORTED;
}
inline cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t) { return 0; }
template <typename... A> inline cublasStatus_t cublasLtMatmulDescSetAttribute(A...) { return 15; }
template <typename... A> inline cublasStatus_t cublasLtMatrixLayoutCreate(A...) { return 15; }
inline cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t) { return 0; }
template <typename... A> inline cublasStatus_t cublasLtMatmulPreferenceCreate(A...) { return 15; }
inline cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t) { return 0; }
template <typename... A> inline cublasStatus_t cublasLtMatmulPreferenceSetAttribute(A...)
{
    return 15;
}
template <typename... A> inline cublasStatus_t cublasLtMatmulAlgoGetHeuristic(A...)
{
    return 15;
}
template <typename... A> inline cublasStatus_t cublasLtMatmulAlgoConfigSetAttribute(A...)
{
    return 15;
}
template <typename... A> inline cublasStatus_t cublasLtMatmulAlgoCheck(A...)
{
    return 15;
}
template <typename... A> inline cublasStatus_t cublasLtMatmul(A...)
{
    return 15;
}

/* A pool of CPU threads that play the threads of one block; kept across
 * launches (creating a thread per CUDA thread per block was far too slow).
 * A launch runs the blocks one after another: every worker runs the kernel
 * as its thread of the block, then all meet at the block barrier. The
 * harness's kernels leave early only uniformly per block, or per warp in
 * kernels without __syncthreads, so one barrier object per block serves
 * both __syncthreads and the end of the block. */
namespace emu {
struct pool {
    std::vector<std::thread> workers;
    std::mutex mu;
    std::condition_variable cv, done_cv;
    std::function<void(unsigned)> job; /* the worker's part of a launch */
    unsigned nt = 0, generation = 0, finished = 0;
    bool stop = false;
    ~pool()
    {
        {
            std::lock_guard<std::mutex> l(mu);
            stop = true;
        }
        cv.notify_all();
        for (auto &t : workers)
            t.join();
    }
    void run(unsigned n, std::function<void(unsigned)> f)
    {
        std::unique_lock<std::mutex> l(mu);
        while (workers.size() < n) {
            unsigned id = (unsigned)workers.size();
            workers.emplace_back([this, id] { loop(id); });
        }
        job = std::move(f);
        nt = n;
        finished = 0;
        generation++;
        cv.notify_all();
        done_cv.wait(l, [&] { return finished == nt; });
    }
    void loop(unsigned id)
    {
        unsigned seen = 0;
        for (;;) {
            std::function<void(unsigned)> f;
            {
                std::unique_lock<std::mutex> l(mu);
                cv.wait(l, [&] { return stop || (generation != seen && id < nt); });
                if (stop)
                    return;
                seen = generation;
                f = job;
            }
            f(id);
            std::lock_guard<std::mutex> l(mu);
            if (++finished == nt)
                done_cv.notify_all();
        }
    }
};
inline pool &the_pool()
{
    static pool p;
    return p;
}
} // namespace emu

/* Runs kernel() over grid x block on the pool. */
template <typename F>
void emu_launch(dim3 grid, dim3 block, size_t dyn_smem, F kernel)
{
    unsigned nt = block.x * block.y * block.z;
    std::vector<char> smem(dyn_smem + 16), ssmem(1 << 16);
    std::vector<float> xf(nt + 32);
    std::vector<double> xd(nt + 32);
    std::barrier<> bar((std::ptrdiff_t)nt);
    std::vector<std::unique_ptr<std::barrier<>>> wb;
    for (unsigned w = 0; w < (nt + 31) / 32; w++)
        wb.push_back(std::make_unique<std::barrier<>>(
            (std::ptrdiff_t)(nt - w * 32 < 32 ? nt - w * 32 : 32)));
    emu::block_ctx ctx{&bar, &wb, xf.data(), xd.data(), smem.data(), ssmem.data(), 0};
    emu::the_pool().run(nt, [&](unsigned t) {
        for (unsigned bz = 0; bz < grid.z; bz++)
            for (unsigned by = 0; by < grid.y; by++)
                for (unsigned bx = 0; bx < grid.x; bx++) {
                    emu::tl_block = dim3(bx, by, bz);
                    emu::tl_thread = dim3(t, 0, 0);
                    emu::tl_bdim = block;
                    emu::tl_gdim = grid;
                    emu::tl_ctx = &ctx;
                    emu::tl_static_off = 0;
                    kernel();
                    bar.arrive_and_wait(); /* the block ends together */
                }
    });
}

/* The backend's launches (LAUNCH in harness/cuda/common.cuh): kernels that
 * use no barrier or shuffle run their threads one after another in the
 * calling thread (much faster); a wrong guess aborts, never hangs. */
template <typename F>
void emu_launch_named(const char *name, dim3 grid, dim3 block, size_t dyn_smem, F kernel)
{
    static const char *const concurrent[] = {"attention_kernel", "classifier_kernel",
                                             "most_used_kernel", "layernorm_kernel", NULL};
    for (int i = 0; concurrent[i]; i++)
        if (strstr(name, concurrent[i])) {
            emu_launch(grid, block, dyn_smem, kernel);
            return;
        }
    std::vector<char> smem(dyn_smem + 16), ssmem(1 << 16);
    emu::block_ctx ctx{nullptr, nullptr, nullptr, nullptr, smem.data(), ssmem.data(), 0};
    unsigned nt = block.x * block.y * block.z;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++)
                for (unsigned t = 0; t < nt; t++) {
                    emu::tl_block = dim3(bx, by, bz);
                    emu::tl_thread = dim3(t, 0, 0);
                    emu::tl_bdim = block;
                    emu::tl_gdim = grid;
                    emu::tl_ctx = &ctx;
                    emu::tl_static_off = 0;
                    kernel();
                }
}

#endif
