/* gb_http.h - a small, self-contained libcurl downloader for Gutenberg mirrors.
 *
 * One URL to one file: the body goes to "<path>.part" (resumed with a Range
 * request when a .part is already there; restarted if the server ignores the
 * range), is fsynced and renamed onto <path>, so <path> only ever holds a
 * complete body. Network errors, 408, 429 and 5xx are retried with the same
 * policy as `fetch pg19` (retry.h: exponential backoff with full jitter,
 * never sooner than a Retry-After); other 4xx and 404/410 fail at once with PG_ENOTFOUND; a body over max_bytes
 * fails with PG_ELIMIT. Call curl_global_init() once before any thread uses it.
 */
#ifndef PG19_GB_HTTP_H
#define PG19_GB_HTTP_H

#include <stdint.h>

#include "common/error.h"

typedef struct gb_http_opts {
    int retries;            /* extra attempts after the first */
    double backoff_s;       /* first backoff ceiling; doubles each retry (capped at 60 s) */
    long connect_timeout_s;
    long low_speed_time_s;  /* abort if under 1 KB/s for this long */
    uint64_t max_bytes;     /* body cap */
    const char *user_agent;
} gb_http_opts;

void gb_http_opts_default(gb_http_opts *o);

/* Downloads url to path. *http_status (may be NULL) gets the last status. */
int gb_http_get_file(const char *url, const char *path, const gb_http_opts *o, long *http_status,
                     pg_error *err);

#endif
