# harness/: Transformer-XL and Compressive Transformer on CPU (OpenBLAS +
# OpenMP) and, when nvcc is found, on CUDA GPUs (harness/cuda/, cuBLAS);
# exact word-level perplexity over token shards.
# harness/ sorts before shards/, so the reader's variables are included here.
include shards/reader.mk

# The CUDA backend is built when nvcc is found (CUDA=0 forces a CPU-only
# harness): sm_90a machine code for Hopper plus compute_90 PTX that newer
# GPUs compile at load; warnings are errors on the host and device side.
ifneq ($(CUDA),0)
HARNESS_NVCC := $(shell command -v $(NVCC) 2>/dev/null)
endif
# nvcc may be a wrapper script outside the toolkit (CI has /usr/local/bin/nvcc
# that execs /usr/local/cuda-13.0/bin/nvcc), so the toolkit's location comes
# from nvcc itself: its dry run prints TOP=<toolkit>/bin/.. . The runtime
# libraries live in lib64/ or targets/<arch>/lib/; without them the CUDA
# backend cannot link and the harness is built CPU-only, saying why.
ifneq ($(HARNESS_NVCC),)
HARNESS_CUDA_HOME := $(realpath $(shell $(HARNESS_NVCC) -dryrun -c -x cu /dev/null -o /dev/null 2>&1 | \
                       sed -n 's/^#\$$ TOP=//p' | head -n 1))
HARNESS_CUDA_LIBDIR := $(firstword $(foreach d,lib64 targets/$(shell uname -m)-linux/lib,\
                         $(if $(wildcard $(HARNESS_CUDA_HOME)/$(d)/libcudart.so),$(HARNESS_CUDA_HOME)/$(d))))
ifeq ($(HARNESS_CUDA_LIBDIR),)
$(info harness: nvcc at $(HARNESS_NVCC) but no libcudart.so under '$(HARNESS_CUDA_HOME)'; building CPU-only)
HARNESS_NVCC :=
endif
endif
ifneq ($(HARNESS_NVCC),)
HARNESS_BACKEND_SRCS := harness/cuda/backend_cuda.cu
HARNESS_BACKEND_LIBS := -L$(HARNESS_CUDA_LIBDIR) -Wl,-rpath,$(HARNESS_CUDA_LIBDIR) \
                        -lcublasLt -lcublas -lcudart -lstdc++
NVCC_FLAGS := -std=c++17 -O2 -g -lineinfo -I. -MMD -MP \
              -gencode=arch=compute_90a,code=sm_90a -gencode=arch=compute_90,code=compute_90 \
              -Werror all-warnings -Xcompiler -Wall,-Wextra,-Werror,-Wno-format-truncation
$(info harness: building with the CUDA backend ($(HARNESS_NVCC), toolkit $(HARNESS_CUDA_HOME), sm_90a + compute_90 PTX))
$(BUILD)/obj/harness/cuda/%.o: harness/cuda/%.cu
	@mkdir -p $(@D)
	$(HARNESS_NVCC) $(NVCC_FLAGS) -c -o $@ $<
else
HARNESS_BACKEND_SRCS := harness/backend_nocuda.c
HARNESS_BACKEND_LIBS :=
$(info harness: building the CPU-only harness (no usable nvcc; --device cuda will say so))
endif

HARNESS_LIB_SRCS := harness/model.c harness/train_model.c harness/train.c harness/safetensors.c \
                    harness/eval.c harness/results.c harness/backend.c harness/backend_cpu.c \
                    $(HARNESS_BACKEND_SRCS) harness/shard_source.c harness/dist.c \
                    harness/eval_dist.c harness/analyze.c $(SHARD_READER_SRCS)
# bench.c: `harness bench` and the --serve protocol train-bench speaks too (harness/bench.h)
HARNESS_LIB_SRCS += harness/blas_check.c harness/bench.c
# The DCT: the judge (harness/dct_judge.h) and its driver around the forward (harness/dct.h).
HARNESS_DCT_SRCS := harness/dct.c harness/dct_judge.c harness/keep_mask.c
HARNESS_LIB_SRCS += $(HARNESS_DCT_SRCS)
# Open MPI (scale-out, harness/dist.h): flags from its pkg-config file.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || echo -lmpi)
HARNESS_LIBS := -lopenblas -ljansson -lm -fopenmp $(SHARD_READER_LIBS) $(MPI_LIBS) \
                $(HARNESS_BACKEND_LIBS)

TOOLS += harness
harness_SRCS := $(HARNESS_LIB_SRCS) harness/analyze_cmd.c harness/main.c
harness_LIBS := $(HARNESS_LIBS)

UNIT_TESTS += harness_test
harness_test_SRCS := $(HARNESS_LIB_SRCS) $(SHARD_WRITER_SRCS) tests/harness/test_harness.c
harness_test_LIBS := $(HARNESS_LIBS)

# harness/train_model.c: finite-difference checks of every backward, thread invariance, overfit.
UNIT_TESTS += harness_dct_test
harness_dct_test_SRCS := $(HARNESS_LIB_SRCS) tests/harness/test_dct.c
harness_dct_test_LIBS := $(HARNESS_LIBS)

UNIT_TESTS += harness_train_test
harness_train_test_SRCS := $(HARNESS_LIB_SRCS) tests/harness/test_train.c
harness_train_test_LIBS := $(HARNESS_LIBS)

# harness/dct_judge.c: finite differences, toy bandits that REINFORCE must solve; also the
# driver (--dump IN OUT) that tests/harness/test_dct_judge_torch.py checks against PyTorch.
UNIT_TESTS += harness_dct_judge_test
harness_dct_judge_test_SRCS := $(HARNESS_LIB_SRCS) tests/harness/test_dct_judge.c
harness_dct_judge_test_LIBS := $(HARNESS_LIBS)

# harness/dist.c alone: run directly (one process) and by test_dist.py under mpirun.
UNIT_TESTS += harness_dist_test
harness_dist_test_SRCS := harness/dist.c tests/harness/test_dist.c
harness_dist_test_LIBS := $(MPI_LIBS)

# each CPU entry twice: on every CPU, and on one (both sides pinned to the same CPU)
BENCHES += "$(PYTHON) harness/bench.py" "PG19_BENCH_THREADS=1 $(PYTHON) harness/bench.py" \
           "$(PYTHON) harness/bench_train.py" "PG19_BENCH_THREADS=1 $(PYTHON) harness/bench_train.py" \
           "harness/bench_gpu.sh"

# The harness objects use OpenMP pragmas.
$(BUILD)/obj/harness/%.o: CFLAGS += -fopenmp
$(BUILD)/obj/harness/dist.o $(BUILD)/obj/tests/harness/test_dist.o: CFLAGS += $(MPI_CFLAGS)

# synth-shards: random-token splits shaped like real ones (benchmarks, GPU/MPI checks)
TOOLS += synth-shards
synth-shards_SRCS := harness/synth_shards.c $(SHARD_WRITER_SRCS) $(SHARD_READER_SRCS)
synth-shards_LIBS := $(SHARD_READER_LIBS) -lm

UNIT_TESTS += harness_backend_test
harness_backend_test_SRCS := $(HARNESS_LIB_SRCS) tests/harness/test_backend.c
harness_backend_test_LIBS := $(HARNESS_LIBS)

# The CUDA kernels on the CPU (tests/harness/cuda_emu.h): no GPU, no nvcc needed.
UNIT_TESTS += harness_cuda_kernels_test
harness_cuda_kernels_test_SRCS := tests/harness/test_cuda_kernels.cc
harness_cuda_kernels_test_LIBS := -pthread -lm
$(BUILD)/obj/tests/harness/test_cuda_kernels.o: CXXFLAGS += -std=c++20 -DPG19_CUDA_EMULATE -pthread \
                                                    -Wno-unknown-pragmas

# The whole CUDA backend on the CPU against the CPU backend (no GPU, no nvcc).
UNIT_TESTS += harness_cuda_emulated_test
harness_cuda_emulated_test_SRCS := harness/model.c harness/backend.c harness/backend_cpu.c $(HARNESS_DCT_SRCS) \
                                   tests/harness/backend_cuda_emu.cc tests/harness/test_cuda_emulated.c
harness_cuda_emulated_test_LIBS := -lopenblas -ljansson -lm -fopenmp -pthread
$(BUILD)/obj/tests/harness/backend_cuda_emu.o: CXXFLAGS += -std=c++20 -DPG19_CUDA_EMULATE \
                                                          -pthread -Wno-unknown-pragmas
