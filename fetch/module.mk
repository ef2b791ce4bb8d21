# fetch/: getting PG-19. `fetch pg19` downloads the official release
# (gcs_listing + transfer + manifest); see fetch/README.md.
FETCH_CORE_SRCS := fetch/retry.c fetch/gcs_listing.c fetch/transfer.c fetch/manifest.c
FETCH_CORE_LIBS := -lcurl -ljansson

TOOLS += fetch
fetch_SRCS := fetch/main.c fetch/fetch_pg19.c $(FETCH_CORE_SRCS)
fetch_LIBS := $(FETCH_CORE_LIBS)

UNIT_TESTS += fetch_test
fetch_test_SRCS := tests/fetch/test_fetch_units.c $(FETCH_CORE_SRCS)
fetch_test_LIBS := $(FETCH_CORE_LIBS)

BENCHES += "$(PYTHON) tests/fetch/bench_fetch.py"
