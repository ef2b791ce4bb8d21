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
