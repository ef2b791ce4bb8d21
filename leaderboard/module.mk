# leaderboard/: validate, store, verify and publish PG-19 results
# (`leaderboard submit / check / verify / render`). Needs the shard reader.
include shards/reader.mk

LEADERBOARD_LIB_SRCS := leaderboard/results.c leaderboard/entries.c leaderboard/render.c \
                        leaderboard/nll_dump.c leaderboard/verify.c $(SHARD_READER_SRCS)
LEADERBOARD_LIBS := -ljansson -lm $(SHARD_READER_LIBS)

TOOLS += leaderboard
leaderboard_SRCS := leaderboard/leaderboard.c $(LEADERBOARD_LIB_SRCS)
leaderboard_LIBS := $(LEADERBOARD_LIBS)

# Unit tests: validation classes, fuzz-corpus replay, NLL dump reader and
# verification against shards written with the shard writer.
UNIT_TESTS += leaderboard_test
leaderboard_test_SRCS := tests/leaderboard/test_leaderboard.c $(LEADERBOARD_LIB_SRCS) \
                         $(SHARD_WRITER_SRCS)
leaderboard_test_LIBS := $(LEADERBOARD_LIBS)

# libFuzzer target for the JSON validation (clang): `make leaderboard-fuzz`
# builds build/fuzz/leaderboard_fuzz; run it on a copy of the seed corpus:
#   build/fuzz/leaderboard_fuzz -max_len=65536 CORPUS_DIR leaderboard/fuzz/corpus
LEADERBOARD_FUZZ_SRCS := leaderboard/fuzz/fuzz_validate.c leaderboard/results.c \
                         leaderboard/render.c common/error.c common/atomic_file.c common/hash.c
.PHONY: leaderboard-fuzz
leaderboard-fuzz: build/fuzz/leaderboard_fuzz
build/fuzz/leaderboard_fuzz: $(LEADERBOARD_FUZZ_SRCS) leaderboard/results.h leaderboard/render.h
	@mkdir -p $(@D)
	clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
	  -o $@ $(LEADERBOARD_FUZZ_SRCS) -ljansson -lm -lcrypto
