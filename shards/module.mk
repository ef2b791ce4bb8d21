# shards/: the PG19SHRD shard format (FORMAT.md), its reader and writer, and
# the `shards` tool. reader.mk defines SHARD_READER_SRCS/LIBS for others.
include shards/reader.mk

UNIT_TESTS += shards_test
shards_test_SRCS := tests/shards/test_shards.c $(SHARD_READER_SRCS) $(SHARD_WRITER_SRCS)
shards_test_LIBS := $(SHARD_READER_LIBS)

# The tool encodes while it builds, so it links the tokenize library
# (defined in tokenize/module.mk, included later: hence the lazy `=`).
TOOLS += shards
shards_SRCS = shards/main.c $(SHARD_READER_SRCS) $(SHARD_WRITER_SRCS) $(TOKENIZE_LIB_SRCS)
shards_LIBS = $(SHARD_READER_LIBS) $(TOKENIZE_LIB_LIBS) -fopenmp
$(BUILD)/obj/shards/main.o: CFLAGS += -fopenmp

# PG-19's file list and the official / pg19-subset / custom decision.
UNIT_TESTS += pg19_official_test
pg19_official_test_SRCS := tests/shards/test_pg19_official.c $(SHARD_READER_SRCS)
pg19_official_test_LIBS := $(SHARD_READER_LIBS)
