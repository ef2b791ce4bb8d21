# harness/: Transformer-XL and Compressive Transformer on CPU (OpenBLAS +
# OpenMP), exact word-level perplexity over token shards.
# harness/ sorts before shards/, so the reader's variables are included here.
include shards/reader.mk
HARNESS_LIB_SRCS := harness/model.c harness/train_model.c harness/train.c harness/safetensors.c harness/eval.c harness/results.c \
                    harness/shard_source.c harness/dist.c harness/analyze.c $(SHARD_READER_SRCS)
HARNESS_LIB_SRCS += harness/blas_check.c
# Open MPI (scale-out, harness/dist.h): flags from its pkg-config file.
MPI_CFLAGS := $(shell pkg-config --cflags ompi-c 2>/dev/null)
MPI_LIBS   := $(shell pkg-config --libs ompi-c 2>/dev/null || echo -lmpi)
HARNESS_LIBS := -lopenblas -ljansson -lm -fopenmp $(SHARD_READER_LIBS) $(MPI_LIBS)

TOOLS += harness
harness_SRCS := $(HARNESS_LIB_SRCS) harness/analyze_cmd.c harness/bench.c harness/main.c
harness_LIBS := $(HARNESS_LIBS)

UNIT_TESTS += harness_test
harness_test_SRCS := $(HARNESS_LIB_SRCS) $(SHARD_WRITER_SRCS) tests/harness/test_harness.c
harness_test_LIBS := $(HARNESS_LIBS)

# harness/dist.c alone: run directly (one process) and by test_dist.py under mpirun.
UNIT_TESTS += harness_dist_test
harness_dist_test_SRCS := harness/dist.c tests/harness/test_dist.c
harness_dist_test_LIBS := $(MPI_LIBS)

BENCHES += "$(PYTHON) harness/bench.py" "harness/bench_train.sh"

# The harness objects use OpenMP pragmas.
$(BUILD)/obj/harness/%.o: CFLAGS += -fopenmp
$(BUILD)/obj/harness/dist.o $(BUILD)/obj/tests/harness/test_dist.o: CFLAGS += $(MPI_CFLAGS)

# harness/train_model.c: finite-difference checks of every backward, thread invariance, overfit.
UNIT_TESTS += harness_train_test
harness_train_test_SRCS := $(HARNESS_LIB_SRCS) tests/harness/test_train.c
harness_train_test_LIBS := $(HARNESS_LIBS)
