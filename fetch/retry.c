/* retry.c - see retry.h */
#include "fetch/retry.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void retry_policy_default(retry_policy *p)
{
    p->max_attempts = 8;
    p->base_delay_s = 0.5;
    p->max_delay_s = 60.0;
    p->max_retry_after_s = 300.0;
}

double retry_delay(const retry_policy *p, int attempt, double retry_after_s, unsigned *seed)
{
    double ceiling = p->base_delay_s;
    for (int i = 1; i < attempt && ceiling < p->max_delay_s; i++)
        ceiling *= 2.0;
    if (ceiling > p->max_delay_s)
        ceiling = p->max_delay_s;
    double jitter = (double)rand_r(seed) / ((double)RAND_MAX + 1.0);
    double d = ceiling * jitter;
    if (retry_after_s >= 0) {
        double ra = retry_after_s > p->max_retry_after_s ? p->max_retry_after_s : retry_after_s;
        if (d < ra)
            d = ra;
    }
    return d;
}

failure_class retry_classify(CURLcode cc, long http_status)
{
    switch (cc) {
    case CURLE_OK:
        break;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return FAIL_OFFLINE;
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_WRITE_ERROR: /* our own abort on bad data: try again from scratch */
        return FAIL_RETRY;
    default:
        return FAIL_FATAL;
    }
    if (http_status == 408 || http_status == 429 || (http_status >= 500 && http_status <= 599))
        return FAIL_RETRY;
    return FAIL_FATAL;
}

double retry_parse_after(const char *value)
{
    while (*value == ' ' || *value == '\t')
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        double s = strtod(value, &end);
        while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n')
            end++;
        return *end == '\0' && s >= 0 ? s : -1;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end)
        return -1;
    time_t when = timegm(&tm);
    double d = difftime(when, time(NULL));
    return d > 0 ? d : 0;
}

int retry_header_after(const char *line, size_t len, double *seconds)
{
    static const char name[] = "Retry-After:";
    size_t nl = sizeof name - 1;
    if (len <= nl || strncasecmp(line, name, nl) != 0)
        return 0;
    char v[64];
    size_t k = len - nl < sizeof v - 1 ? len - nl : sizeof v - 1;
    memcpy(v, line + nl, k);
    v[k] = '\0';
    *seconds = retry_parse_after(v);
    return 1;
}

void speed_limits_apply(CURL *c, const speed_limits *s)
{
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, s->min_rate);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s->window_s);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, s->deadline_s);
}
