/* gb_http.c - see gb_http.h. */
#include "fetch/gb_http.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/atomic_file.h"
#include "fetch/retry.h"

void gb_http_opts_default(gb_http_opts *o)
{
    o->retries = 4;
    o->backoff_s = 1.0;
    o->connect_timeout_s = 30;
    o->low_speed_time_s = 60;
    o->max_bytes = (uint64_t)1 << 30;
    o->user_agent = "pg19-fetch/1 (+https://github.com/; polite bulk text fetch)";
}

typedef struct sink {
    FILE *fp;
    CURL *curl;
    uint64_t offset;    /* bytes already in the .part file */
    uint64_t written;   /* bytes written this attempt */
    uint64_t max_bytes;
    int checked;        /* status checked on the first body byte */
    int over_limit;
    int io_error;
    double retry_after; /* from a Retry-After header, -1 if none */
} sink;

static size_t on_header(char *line, size_t size, size_t nmemb, void *ctx)
{
    sink *s = ctx;
    size_t n = size * nmemb;
    retry_header_after(line, n, &s->retry_after);
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ctx)
{
    sink *s = ctx;
    size_t n = size * nmemb;
    if (!s->checked) {
        long status = 0;
        curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
        s->checked = 1;
        if (status == 200 && s->offset > 0) {
            /* The server ignored our Range: start the file over. */
            if (fflush(s->fp) != 0 || ftruncate(fileno(s->fp), 0) != 0 ||
                fseek(s->fp, 0, SEEK_SET) != 0) {
                s->io_error = errno ? errno : EIO;
                return 0;
            }
            s->offset = 0;
        }
        if (status >= 300)
            return n; /* error page: swallowed, not written (handled by status) */
    }
    long status = 0;
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 300)
        return n;
    if (s->offset + s->written + n > s->max_bytes) {
        s->over_limit = 1;
        return 0;
    }
    if (fwrite(data, 1, n, s->fp) != n) {
        s->io_error = errno ? errno : EIO;
        return 0;
    }
    s->written += n;
    return n;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

int gb_http_get_file(const char *url, const char *path, const gb_http_opts *o, long *http_status,
                     pg_error *err)
{
    char part[4096];
    if ((size_t)snprintf(part, sizeof part, "%s.part", path) >= sizeof part)
        return pg_fail(err, PG_EINVAL, "%s: path too long", path);
    CURL *curl = curl_easy_init();
    if (!curl)
        return pg_fail(err, PG_ENOMEM, "curl_easy_init failed");
    char curl_err[CURL_ERROR_SIZE];
    /* the same backoff (full jitter, Retry-After) as fetch pg19: retry.h */
    retry_policy rp;
    retry_policy_default(&rp);
    rp.max_attempts = o->retries + 1;
    rp.base_delay_s = o->backoff_s;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    double retry_after = -1;
    int rc = PG_ENET;
    long status = 0;
    for (int attempt = 0; attempt <= o->retries; attempt++) {
        if (attempt > 0)
            sleep_s(retry_delay(&rp, attempt, retry_after, &seed));
        struct stat st;
        uint64_t have = stat(part, &st) == 0 ? (uint64_t)st.st_size : 0;
        FILE *fp = fopen(part, have ? "r+b" : "wb");
        if (!fp) {
            rc = pg_fail(err, PG_EIO, "%s: open: %s", part, strerror(errno));
            break;
        }
        if (have && fseek(fp, 0, SEEK_END) != 0) {
            fclose(fp);
            rc = pg_fail(err, PG_EIO, "%s: seek: %s", part, strerror(errno));
            break;
        }
        sink s = {fp, curl, have, 0, o->max_bytes, 0, 0, 0, -1};
        curl_easy_reset(curl);
        curl_err[0] = '\0';
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, o->connect_timeout_s);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, o->low_speed_time_s);
        curl_easy_setopt(curl, CURLOPT_USERAGENT, o->user_agent);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &s);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &s);
        /* A plain Range header, not CURLOPT_RESUME_FROM: a server that ignores
         * it answers 200 with the whole body, and on_body starts over. */
        char range[48];
        if (have) {
            snprintf(range, sizeof range, "%llu-", (unsigned long long)have);
            curl_easy_setopt(curl, CURLOPT_RANGE, range);
        }
        CURLcode cc = curl_easy_perform(curl);
        retry_after = s.retry_after;
        status = 0;
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        int close_failed = fflush(fp) != 0 || fsync(fileno(fp)) != 0;
        close_failed |= fclose(fp) != 0;
        if (s.over_limit) {
            remove(part);
            rc = pg_fail(err, PG_ELIMIT, "%s: body over the %llu-byte cap", url,
                         (unsigned long long)o->max_bytes);
            break;
        }
        if (s.io_error || close_failed) {
            rc = pg_fail(err, PG_EIO, "%s: write: %s", part, strerror(s.io_error ? s.io_error : EIO));
            break;
        }
        if (cc == CURLE_OK && (status == 200 || status == 206)) {
            if (status == 200 && have > 0 && !s.checked && truncate(part, 0) != 0) {
                rc = pg_fail(err, PG_EIO, "%s: truncate: %s", part, strerror(errno));
                break;
            }
            if (rename(part, path) != 0) {
                rc = pg_fail(err, PG_EIO, "%s: rename: %s", path, strerror(errno));
                break;
            }
            rc = pg_fsync_parent_dir(path, err);
            break;
        }
        if (cc == CURLE_OK && (status == 404 || status == 410)) {
            remove(part);
            rc = pg_fail(err, PG_ENOTFOUND, "%s: HTTP %ld", url, status);
            break;
        }
        if (cc == CURLE_OK && status == 416) {
            remove(part); /* our .part is not a prefix of this body: start over */
            rc = pg_fail(err, PG_ENET, "%s: HTTP 416 on resume", url);
            continue;
        }
        failure_class fc = retry_classify(cc, status);
        if (fc != FAIL_RETRY) {
            if (cc == CURLE_OK)
                remove(part);
            rc = pg_fail(err, PG_ENET, "%s: %s", url,
                         cc != CURLE_OK ? (curl_err[0] ? curl_err : curl_easy_strerror(cc)) : "HTTP error");
            if (cc == CURLE_OK && err)
                snprintf(err->msg, sizeof err->msg, "%s: HTTP %ld", url, status);
            break;
        }
        rc = pg_fail(err, PG_ENET, "%s: %s (attempt %d of %d)", url,
                     cc != CURLE_OK ? (curl_err[0] ? curl_err : curl_easy_strerror(cc)) : "server error",
                     attempt + 1, o->retries + 1);
        if (cc == CURLE_OK && err)
            snprintf(err->msg, sizeof err->msg, "%s: HTTP %ld (attempt %d of %d)", url, status,
                     attempt + 1, o->retries + 1);
    }
    curl_easy_cleanup(curl);
    if (http_status)
        *http_status = status;
    return rc;
}
