/* gcs_listing.c - see gcs_listing.h */
#include "fetch/gcs_listing.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"

void gcs_object_list_free(gcs_object_list *l)
{
    free(l->items);
    memset(l, 0, sizeof *l);
}

static int list_push(gcs_object_list *l, const gcs_object *o)
{
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 1024;
        gcs_object *ni = realloc(l->items, ncap * sizeof *ni);
        if (!ni)
            return PG_ENOMEM;
        l->items = ni;
        l->cap = ncap;
    }
    l->items[l->n++] = *o;
    return PG_OK;
}

/* GCS sends int64 fields as decimal strings; accept a plain integer too. */
static int parse_size(json_t *v, uint64_t *out)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return -1;
        *out = (uint64_t)i;
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    if (!*s || strlen(s) > 20)
        return -1;
    uint64_t x = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9' || x > (UINT64_MAX - 9) / 10)
            return -1;
        x = x * 10 + (uint64_t)(*p - '0');
    }
    *out = x;
    return 0;
}

/* An upper bound on the number of JSON values in the text: separators and
 * openers outside strings, plus one. Cheap, and done before parsing. */
static size_t count_json_values(const char *json, size_t len)
{
    size_t n = 1;
    int in_string = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = json[i];
        if (in_string) {
            if (ch == '\\')
                i++;
            else if (ch == '"')
                in_string = 0;
        } else if (ch == '"') {
            in_string = 1;
        } else if (ch == ',' || ch == '[' || ch == '{') {
            n++;
        }
    }
    return n;
}

int gcs_parse_listing_page(const char *json, size_t len, const char *source, gcs_object_list *out,
                           char **next_token, pg_error *err)
{
    *next_token = NULL;
    if (count_json_values(json, len) > GCS_MAX_PAGE_VALUES)
        return pg_fail(err, PG_ELIMIT,
                       "%s: listing page has more than %d JSON values (a page of 1,000 objects "
                       "has about 20,000): refusing it as hostile",
                       source, GCS_MAX_PAGE_VALUES);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return pg_fail(err, PG_ECORRUPT, "%s: listing is not valid JSON (line %d: %s)", source,
                       jerr.line, jerr.text);
    int rc = PG_OK;
    if (!json_is_object(root)) {
        rc = pg_fail(err, PG_ECORRUPT, "%s: listing is not a JSON object", source);
        goto out;
    }
    json_t *items = json_object_get(root, "items");
    if (items && !json_is_array(items)) {
        rc = pg_fail(err, PG_ECORRUPT, "%s: \"items\" is not an array", source);
        goto out;
    }
    if (out->n + json_array_size(items) > GCS_MAX_ITEMS) {
        rc = pg_fail(err, PG_ELIMIT,
                     "%s: listing has more than %d objects (PG-19 has 28,753): refusing it as "
                     "hostile or not PG-19's",
                     source, GCS_MAX_ITEMS);
        goto out;
    }
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it) {
        gcs_object o;
        memset(&o, 0, sizeof o);
        const char *name = json_string_value(json_object_get(it, "name"));
        if (!json_is_object(it) || !name) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: item %zu has no \"name\"", source, i);
            goto out;
        }
        if (strlen(name) >= GCS_MAX_NAME) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: item %zu: name longer than %d bytes", source, i,
                         GCS_MAX_NAME - 1);
            goto out;
        }
        strcpy(o.name, name);
        if (parse_size(json_object_get(it, "size"), &o.size) != 0) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: %s: missing or malformed \"size\"", source, name);
            goto out;
        }
        if (o.size > GCS_MAX_OBJECT_BYTES) {
            rc = pg_fail(err, PG_ELIMIT, "%s: %s: size %llu is over the %llu-byte cap", source,
                         name, (unsigned long long)o.size, (unsigned long long)GCS_MAX_OBJECT_BYTES);
            goto out;
        }
        const char *md5 = json_string_value(json_object_get(it, "md5Hash"));
        const char *crc = json_string_value(json_object_get(it, "crc32c"));
        if (md5) {
            if (pg_base64_decode_exact(md5, o.md5, 16) != 0) {
                rc = pg_fail(err, PG_ECORRUPT, "%s: %s: md5Hash \"%.40s\" is not 16 bytes of base64",
                             source, name, md5);
                goto out;
            }
            o.has_md5 = 1;
        }
        if (crc) {
            uint8_t b[4];
            if (pg_base64_decode_exact(crc, b, 4) != 0) {
                rc = pg_fail(err, PG_ECORRUPT, "%s: %s: crc32c \"%.40s\" is not 4 bytes of base64",
                             source, name, crc);
                goto out;
            }
            o.crc32c = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
            o.has_crc32c = 1;
        }
        if (list_push(out, &o) != PG_OK) {
            rc = pg_fail(err, PG_ENOMEM, "%s: out of memory", source);
            goto out;
        }
    }
    json_t *tok = json_object_get(root, "nextPageToken");
    if (tok) {
        const char *t = json_string_value(tok);
        if (!t || !*t || strlen(t) > 4096) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: malformed \"nextPageToken\"", source);
            goto out;
        }
        if (!(*next_token = strdup(t)))
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
    }
out:
    json_decref(root);
    return rc;
}

/* ---- fetching pages ---- */

typedef struct page_buf {
    char *data;
    size_t len, cap;
    int too_big;
} page_buf;

static size_t page_write(char *ptr, size_t size, size_t nmemb, void *ud)
{
    page_buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > GCS_MAX_PAGE_BYTES) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 65536;
        while (ncap < b->len + n + 1)
            ncap *= 2;
        char *nd = realloc(b->data, ncap);
        if (!nd)
            return 0;
        b->data = nd;
        b->cap = ncap;
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

static size_t page_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    double *retry_after = ud;
    size_t n = size * nmemb;
    retry_header_after(ptr, n, retry_after);
    return n;
}

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int gcs_list(const char *base_url, const char *bucket, const char *prefix, const retry_policy *rp,
             const speed_limits *speed, gcs_object_list *out, pg_error *err)
{
    CURL *c = curl_easy_init();
    if (!c)
        return pg_fail(err, PG_ENOMEM, "curl_easy_init failed");
    char *token = NULL;
    int rc = PG_OK;
    unsigned seed = (unsigned)time(NULL);
    char *eprefix = curl_easy_escape(c, prefix, 0);
    for (int page = 0; page < GCS_MAX_PAGES; page++) {
        char *etok = token ? curl_easy_escape(c, token, 0) : NULL;
        size_t ulen = strlen(base_url) + strlen(bucket) + strlen(eprefix) + (etok ? strlen(etok) : 0) + 64;
        char *url = malloc(ulen);
        if (!url) {
            curl_free(etok);
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
        snprintf(url, ulen, "%s/storage/v1/b/%s/o?prefix=%s%s%s", base_url, bucket, eprefix,
                 etok ? "&pageToken=" : "", etok ? etok : "");
        curl_free(etok);
        page_buf b = {0};
        for (int attempt = 1;; attempt++) {
            b.len = 0;
            b.too_big = 0;
            double retry_after = -1;
            char ebuf[CURL_ERROR_SIZE] = "";
            curl_easy_reset(c);
            curl_easy_setopt(c, CURLOPT_URL, url);
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, page_write);
            curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
            curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, page_header);
            curl_easy_setopt(c, CURLOPT_HEADERDATA, &retry_after);
            curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
            curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
            speed_limits_apply(c, speed);
            curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
            CURLcode cc = curl_easy_perform(c);
            long status = 0;
            curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
            if (b.too_big) {
                rc = pg_fail(err, PG_ELIMIT, "%s: listing page larger than %u bytes", url,
                             GCS_MAX_PAGE_BYTES);
                break;
            }
            if (cc == CURLE_OK && status == 200)
                break;
            failure_class fc = retry_classify(cc, status);
            const char *why = cc != CURLE_OK ? (ebuf[0] ? ebuf : curl_easy_strerror(cc)) : "HTTP error";
            if (fc == FAIL_OFFLINE) {
                rc = pg_fail(err, PG_ENET,
                             "%s: cannot resolve the host (%s): this machine seems to have no "
                             "internet access; fetch needs to reach the bucket (or use --base-url "
                             "with a reachable mirror)",
                             url, why);
                break;
            }
            if (fc == FAIL_FATAL || attempt >= rp->max_attempts ||
                (cc == CURLE_COULDNT_CONNECT && attempt >= 3)) {
                rc = pg_fail(err, PG_ENET, "%s: listing failed after %d attempt(s): %s (HTTP %ld)",
                             url, attempt, why, status);
                break;
            }
            sleep_s(retry_delay(rp, attempt, retry_after, &seed));
        }
        char *prev = token;
        token = NULL;
        if (rc == PG_OK)
            rc = gcs_parse_listing_page(b.data ? b.data : "", b.len, url, out, &token, err);
        free(b.data);
        free(url);
        if (rc == PG_OK && token && prev && strcmp(token, prev) == 0)
            rc = pg_fail(err, PG_ECORRUPT, "listing of prefix %s: page %d names itself as the next page",
                         prefix, page + 1);
        free(prev);
        if (rc != PG_OK || !token)
            break;
        if (page + 1 == GCS_MAX_PAGES)
            rc = pg_fail(err, PG_ELIMIT,
                         "listing of prefix %s: more than %d listing pages (PG-19 needs about 30): "
                         "refusing an endless listing",
                         prefix, GCS_MAX_PAGES);
    }
    free(token);
    curl_free(eprefix);
    curl_easy_cleanup(c);
    return rc;
}
