/* gcs_listing.h - list the objects of a public Cloud Storage bucket.
 *
 * JSON API: GET {base}/storage/v1/b/{bucket}/o?prefix=P[&pageToken=T] returns
 * {"items":[{"name","size","md5Hash","crc32c",...}], "nextPageToken"?}.
 * The listing is untrusted: every page is size-capped, every name is checked
 * against the PG-19 layout, sizes are bounded, and the base64 checksums must
 * decode to exactly 16 (MD5) and 4 (CRC32C, big-endian) bytes.
 */
#ifndef PG19_FETCH_GCS_LISTING_H
#define PG19_FETCH_GCS_LISTING_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "fetch/retry.h"

/* Bounds sized for PG-19 (28,752 books and metadata.csv, listed 1,000 per
 * page: 30 pages, about 1 MB a page), with room to spare. A listing past
 * them is hostile or not PG-19's, and is refused rather than held in memory:
 * at most GCS_MAX_ITEMS entries (about 30 MB) and one page at a time. */
#define GCS_MAX_NAME 256
#define GCS_MAX_OBJECT_BYTES (4ULL << 30)   /* no PG-19 file is near this */
#define GCS_MAX_PAGE_BYTES (8u << 20)       /* one listing page, before parsing */
#define GCS_MAX_PAGE_VALUES 200000          /* JSON values in a page (~20 per object) */
#define GCS_MAX_PAGES 2000                  /* per listing (one prefix) */
#define GCS_MAX_ITEMS 100000                /* per listing, and in all */

typedef struct gcs_object {
    char name[GCS_MAX_NAME];
    uint64_t size;
    uint8_t md5[16];
    uint32_t crc32c;
    int has_md5, has_crc32c;
} gcs_object;

typedef struct gcs_object_list {
    gcs_object *items;
    size_t n, cap;
} gcs_object_list;

void gcs_object_list_free(gcs_object_list *l);

/* Parses one listing page (json, len bytes; `source` names it in errors).
 * Appends its items to out; *next_token gets a malloc'd page token or NULL.
 * PG_ELIMIT if the page has more than GCS_MAX_PAGE_VALUES JSON values (the
 * parsed tree takes some 50 bytes a value, so 8 MB of "[1,1,...]" would
 * take 400 MB), or if out would hold more than GCS_MAX_ITEMS objects. */
int gcs_parse_listing_page(const char *json, size_t len, const char *source, gcs_object_list *out,
                           char **next_token, pg_error *err);

/* Fetches every page for `prefix` (with retries per the policy) and appends
 * the objects; a page slower than `speed` allows is retried. */
int gcs_list(const char *base_url, const char *bucket, const char *prefix, const retry_policy *rp,
             const speed_limits *speed, gcs_object_list *out, pg_error *err);

#endif
