/* retry.h - when and how long to wait before trying a transfer again.
 *
 * Exponential backoff with full jitter (delay drawn uniformly from
 * [0, min(cap, base * 2^attempt)]), never less than a server's Retry-After.
 * Classification says which failures are worth another try: timeouts,
 * resets, truncated bodies, 408, 429 and 5xx are; 4xx and local errors are not.
 */
#ifndef PG19_FETCH_RETRY_H
#define PG19_FETCH_RETRY_H

#include <curl/curl.h>
#include <stddef.h>

typedef struct retry_policy {
    int max_attempts;      /* total tries per object, >= 1 */
    double base_delay_s;   /* first backoff ceiling */
    double max_delay_s;    /* backoff ceiling cap */
    double max_retry_after_s; /* longest Retry-After honoured */
} retry_policy;

void retry_policy_default(retry_policy *p);

/* Seconds to wait before attempt number `attempt` (1 = the first retry).
 * retry_after_s < 0 means the server sent none. */
double retry_delay(const retry_policy *p, int attempt, double retry_after_s, unsigned *seed);

typedef enum { FAIL_RETRY, FAIL_FATAL, FAIL_OFFLINE } failure_class;

/* Classifies a finished transfer: curl's result and the HTTP status. */
failure_class retry_classify(CURLcode cc, long http_status);

/* Parses a Retry-After header value (delta-seconds or an HTTP date);
 * returns seconds >= 0, or -1 if it cannot be parsed. */
double retry_parse_after(const char *value);

/* For a libcurl header callback: if the header line (len bytes, not
 * NUL-terminated) is Retry-After, sets *seconds (-1 if unparseable) and
 * returns 1; otherwise returns 0 and leaves *seconds alone. */
int retry_header_after(const char *line, size_t len, double *seconds);

/* When a transfer is too slow to wait for: less than min_rate bytes/s on
 * average over window_s seconds (a stall, or a server that trickles a few
 * bytes a second), or one attempt longer than deadline_s. Both fail with
 * CURLE_OPERATION_TIMEDOUT, which is retried (a download resumes). */
typedef struct speed_limits {
    long min_rate;   /* bytes per second, >= 1 */
    long window_s;   /* >= 1 */
    long deadline_s; /* 0: no deadline */
} speed_limits;

/* Sets CURLOPT_LOW_SPEED_LIMIT, CURLOPT_LOW_SPEED_TIME and CURLOPT_TIMEOUT. */
void speed_limits_apply(CURL *c, const speed_limits *s);

#endif
