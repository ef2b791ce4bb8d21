# fetch/gutenberg.mk: the Project Gutenberg subcommands (catalog, gutenberg,
# clean, split). Until they are wired into bin/fetch they build into the
# temporary tool `fetch-gutenberg` (fetch/gutenberg_main.c dispatches).
GUTENBERG_SRCS := fetch/gb_clean.c fetch/gb_clean_cmd.c fetch/gb_catalog.c fetch/gb_split.c \
                  fetch/gb_http.c fetch/gb_zip.c fetch/gb_download.c
GUTENBERG_LIBS := -licui18n -licuuc -licudata -lxml2 -larchive -lcurl -lpthread
CPPFLAGS += -I/usr/include/libxml2

TOOLS += fetch-gutenberg
fetch-gutenberg_SRCS := fetch/gutenberg_main.c $(GUTENBERG_SRCS)
fetch-gutenberg_LIBS := $(GUTENBERG_LIBS)

UNIT_TESTS += gb_clean_test
gb_clean_test_SRCS := tests/fetch_gutenberg/test_gb_clean.c fetch/gb_clean.c fetch/gb_zip.c
gb_clean_test_LIBS := -licui18n -licuuc -licudata -larchive

BENCHES += "$(PYTHON) fetch/bench_clean.py"

# libFuzzer run over gb_clean, the zip guard and the RDF parser (not part of
# `make test`): make fuzz-gutenberg FUZZ_SECONDS=60
FUZZ_SECONDS ?= 60
.PHONY: fuzz-gutenberg
fuzz-gutenberg:
	@mkdir -p build/fuzz/corpus
	clang -std=c11 -D_GNU_SOURCE -g -O1 -I. -I/usr/include/libxml2 \
	  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	  -o build/fuzz/fuzz_gb tests/fetch_gutenberg/fuzz_gb.c fetch/gb_clean.c fetch/gb_zip.c \
	  fetch/gb_catalog.c fetch/gb_http.c $(COMMON_SRCS) \
	  -licui18n -licuuc -licudata -lxml2 -larchive -lcurl -lcrypto
	build/fuzz/fuzz_gb -max_total_time=$(FUZZ_SECONDS) -max_len=262144 -rss_limit_mb=4096 -dict=tests/fetch_gutenberg/fuzz_gb.dict build/fuzz/corpus
