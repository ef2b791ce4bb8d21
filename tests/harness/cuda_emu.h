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

inline void __syncthreads() { emu::tl_ctx->bar->arrive_and_wait(); }

/* a warp's exchange: every lane writes, the warp waits, reads, waits */
inline float emu_warp_exchange(float v, int src_lane)
{
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

/* Runs kernel(args...) over grid x block, blocks one after another, the
 * threads of a block concurrently. */
template <typename F>
void emu_launch(dim3 grid, dim3 block, size_t dyn_smem, F kernel)
{
    unsigned nt = block.x * block.y * block.z;
    std::vector<char> smem(dyn_smem + 16), ssmem(1 << 16);
    std::vector<float> xf(nt + 32);
    std::vector<double> xd(nt + 32);
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                std::barrier<> bar((std::ptrdiff_t)nt);
                std::vector<std::unique_ptr<std::barrier<>>> wb;
                for (unsigned w = 0; w < (nt + 31) / 32; w++)
                    wb.push_back(std::make_unique<std::barrier<>>(
                        (std::ptrdiff_t)(nt - w * 32 < 32 ? nt - w * 32 : 32)));
                emu::block_ctx ctx{&bar, &wb, xf.data(), xd.data(), smem.data(), ssmem.data(), 0};
                std::vector<std::thread> th;
                for (unsigned t = 0; t < nt; t++)
                    th.emplace_back([&, t] {
                        emu::tl_block = dim3(bx, by, bz);
                        emu::tl_thread = dim3(t, 0, 0);
                        emu::tl_bdim = block;
                        emu::tl_gdim = grid;
                        emu::tl_ctx = &ctx;
                        emu::tl_static_off = 0;
                        kernel();
                        /* a thread that returned early must not leave the
                         * others waiting: the kernels return block- or
                         * warp-uniformly before barriers, so dropping out
                         * of the barriers is what CUDA does too */
                    });
                for (auto &x : th)
                    x.join();
            }
}

#endif
