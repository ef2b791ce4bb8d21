# harness/: Transformer-XL and Compressive Transformer on CPU (OpenBLAS +
# OpenMP), exact word-level perplexity over token shards.
# harness/ sorts before shards/, so the reader's variables are included here.
include shards/reader.mk
HARNESS_LIB_SRCS := harness/model.c harness/safetensors.c harness/eval.c harness/results.c \
                    harness/shard_source.c $(SHARD_READER_SRCS)
HARNESS_LIBS := -lopenblas -ljansson -lm -fopenmp $(SHARD_READER_LIBS)

TOOLS += harness
harness_SRCS := $(HARNESS_LIB_SRCS) harness/bench.c harness/main.c
harness_LIBS := $(HARNESS_LIBS)

UNIT_TESTS += harness_test
harness_test_SRCS := $(HARNESS_LIB_SRCS) $(SHARD_WRITER_SRCS) tests/harness/test_harness.c
harness_test_LIBS := $(HARNESS_LIBS)

BENCHES += "$(PYTHON) harness/bench.py"

# The harness objects use OpenMP pragmas.
$(BUILD)/obj/harness/%.o: CFLAGS += -fopenmp
