/* error.c - see error.h */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int pg_fail(pg_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
        err->code = code;
    }
    return code;
}

int pg_wrap(pg_error *err, const char *fmt, ...)
{
    if (!err)
        return PG_EINVAL;
    char prefix[512], old[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
    return err->code;
}

const char *pg_strcode(int code)
{
    switch (code) {
    case PG_OK: return "ok";
    case PG_EINVAL: return "invalid input";
    case PG_EIO: return "I/O error";
    case PG_ENOMEM: return "out of memory";
    case PG_ECORRUPT: return "corrupt data";
    case PG_ENET: return "network error";
    case PG_ENOTFOUND: return "not found";
    case PG_ELIMIT: return "limit exceeded";
    case PG_EINTR: return "interrupted";
    }
    return "unknown error";
}
