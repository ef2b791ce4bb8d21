# common/: small shared pieces every tool links (errors, crash-safe writes,
# checksums, progress). Each is one .c/.h pair with its doc in the header.
COMMON_SRCS += common/error.c common/atomic_file.c common/hash.c common/progress.c common/svg_plot.c \
               common/huge_pages.c
COMMON_LIBS += -lcrypto -lm

UNIT_TESTS += common_test
common_test_SRCS := tests/common/test_common.c
