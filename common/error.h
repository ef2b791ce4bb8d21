/* error.h - error codes with a message, the one convention of every library.
 *
 * Library functions return 0 on success or a negative PG_E* code, and fill a
 * caller-owned pg_error with a message that names the file and the problem.
 * Only main() prints and exits.
 */
#ifndef PG19_ERROR_H
#define PG19_ERROR_H

#include <stddef.h>

enum {
    PG_OK = 0,
    PG_EINVAL = -1,   /* bad argument or malformed input */
    PG_EIO = -2,      /* read/write/fsync/rename failed */
    PG_ENOMEM = -3,
    PG_ECORRUPT = -4, /* checksum, size or structure mismatch */
    PG_ENET = -5,     /* network failure that retries did not cure */
    PG_ENOTFOUND = -6,
    PG_ELIMIT = -7,   /* a size, count or ratio over its cap */
    PG_EINTR = -8     /* interrupted by a signal */
};

typedef struct pg_error {
    int code;
    char msg[1024];
} pg_error;

/* Sets err (if non-NULL) and returns code, so callers can write
 * `return pg_fail(err, PG_EIO, "%s: write: %s", path, strerror(errno));` */
int pg_fail(pg_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes the existing message with more context ("while X: ..."). */
int pg_wrap(pg_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

const char *pg_strcode(int code);

#endif
