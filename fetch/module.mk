# fetch/: getting PG-19. `fetch pg19` downloads the official release
# (gcs_listing + transfer + manifest); see fetch/README.md.
FETCH_CORE_SRCS := fetch/retry.c fetch/gcs_listing.c fetch/transfer.c fetch/manifest.c fetch/dir_lock.c
FETCH_CORE_LIBS := -lcurl -ljansson

# The Project Gutenberg subcommands (catalog, gutenberg, clean, split).
GUTENBERG_SRCS := fetch/gb_clean.c fetch/gb_clean_cmd.c fetch/gb_catalog.c fetch/gb_split.c \
                  fetch/gb_http.c fetch/gb_zip.c fetch/gb_download.c
GUTENBERG_LIBS := -licui18n -licuuc -licudata -lxml2 -larchive -lcurl -lpthread
CPPFLAGS += -I/usr/include/libxml2


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
	  fetch/gb_catalog.c fetch/gb_http.c fetch/retry.c $(COMMON_SRCS) \
	  -licui18n -licuuc -licudata -lxml2 -larchive -lcurl -lcrypto
	build/fuzz/fuzz_gb -max_total_time=$(FUZZ_SECONDS) -max_len=262144 -rss_limit_mb=4096 -dict=tests/fetch_gutenberg/fuzz_gb.dict build/fuzz/corpus

TOOLS += fetch
fetch_SRCS := fetch/main.c fetch/fetch_pg19.c $(FETCH_CORE_SRCS) $(GUTENBERG_SRCS)
fetch_LIBS := $(FETCH_CORE_LIBS) $(GUTENBERG_LIBS)

UNIT_TESTS += fetch_test
fetch_test_SRCS := tests/fetch/test_fetch_units.c $(FETCH_CORE_SRCS)
fetch_test_LIBS := $(FETCH_CORE_LIBS)

BENCHES += "$(PYTHON) tests/fetch/bench_fetch.py"
