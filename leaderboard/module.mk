# leaderboard/: validate, store, verify and publish PG-19 results
# (`leaderboard submit / check / verify / render`). Needs the shard reader.
include shards/reader.mk

LEADERBOARD_LIB_SRCS := leaderboard/results.c leaderboard/entries.c leaderboard/render.c \
                        leaderboard/nll_dump.c leaderboard/verify.c leaderboard/plausible.c \
                        leaderboard/reproduce.c $(SHARD_READER_SRCS)
LEADERBOARD_LIBS := -ljansson -lm -licuuc $(SHARD_READER_LIBS)

TOOLS += leaderboard
leaderboard_SRCS := leaderboard/leaderboard.c $(LEADERBOARD_LIB_SRCS)
leaderboard_LIBS := $(LEADERBOARD_LIBS)

# Unit tests: validation classes, fuzz-corpus replay, NLL dump reader and
# verification against shards written with the shard writer.
UNIT_TESTS += leaderboard_test
leaderboard_test_SRCS := tests/leaderboard/test_leaderboard.c $(LEADERBOARD_LIB_SRCS) \
                         $(SHARD_WRITER_SRCS)
leaderboard_test_LIBS := $(LEADERBOARD_LIBS)

# libFuzzer targets (clang): `make leaderboard-fuzz` builds
# build/fuzz/leaderboard_fuzz (JSON validation and rendering) and
# build/fuzz/leaderboard_fuzz_nll (NLL dump reader); run each on a copy of its
# seed corpus (leaderboard/fuzz/corpus, leaderboard/fuzz/nll_corpus), see
# leaderboard/README.md.
LEADERBOARD_FUZZ_SRCS := leaderboard/fuzz/fuzz_validate.c leaderboard/results.c \
                         leaderboard/plausible.c leaderboard/render.c common/error.c \
                         common/atomic_file.c common/hash.c shards/pg19_official.c \
                         shards/shard_reader.c
LEADERBOARD_FUZZ_NLL_SRCS := leaderboard/fuzz/fuzz_nll.c leaderboard/nll_dump.c common/error.c \
                             common/hash.c
.PHONY: leaderboard-fuzz
leaderboard-fuzz: build/fuzz/leaderboard_fuzz build/fuzz/leaderboard_fuzz_nll
build/fuzz/leaderboard_fuzz_nll: $(LEADERBOARD_FUZZ_NLL_SRCS) leaderboard/nll_dump.h
	@mkdir -p $(@D)
	clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
	  -o $@ $(LEADERBOARD_FUZZ_NLL_SRCS) -lcrypto
build/fuzz/leaderboard_fuzz: $(LEADERBOARD_FUZZ_SRCS) leaderboard/results.h leaderboard/render.h
	@mkdir -p $(@D)
	clang -std=c11 -D_GNU_SOURCE -I. -g -O1 -fsanitize=fuzzer,address,undefined \
	  -o $@ $(LEADERBOARD_FUZZ_SRCS) -ljansson -lm -licuuc -lcrypto -lxxhash
