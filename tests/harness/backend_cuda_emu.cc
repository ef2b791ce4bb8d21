/* The CUDA backend's driver built for the CPU (tests/harness/cuda_emu.h), so
 * that test_cuda_emulated.c can run the whole GPU forward without a GPU. */
#include "harness/cuda/backend_cuda.cu"
