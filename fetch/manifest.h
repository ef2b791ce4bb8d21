/* manifest.h - MANIFEST.tsv: what fetch has verified and placed on disk.
 *
 * One line per file, tab-separated, with a header line:
 *   split  id  bytes  md5  crc32c  sha256
 * split is train/validation/test (or "-" for metadata.csv, whose id is
 * "metadata.csv"); md5 and sha256 are lower-case hex, crc32c 8 hex digits.
 * A file listed here was verified against the bucket listing before it was
 * renamed into place, so a rerun can skip it without re-reading it.
 * The manifest is rewritten atomically (temp, fsync, rename).
 */
#ifndef PG19_FETCH_MANIFEST_H
#define PG19_FETCH_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct manifest_entry {
    char split[16];
    char id[64];
    uint64_t bytes;
    uint8_t md5[16];
    uint32_t crc32c;
    uint8_t sha256[32];
} manifest_entry;

typedef struct manifest {
    manifest_entry *entries; /* sorted by (split, id) */
    size_t n, cap;
} manifest;

/* A missing file is an empty manifest; a malformed one is an error naming the line. */
int manifest_load(manifest *m, const char *path, pg_error *err);
const manifest_entry *manifest_find(const manifest *m, const char *split, const char *id);
int manifest_put(manifest *m, const manifest_entry *e, pg_error *err);
int manifest_save(const manifest *m, const char *path, pg_error *err);
void manifest_free(manifest *m);

#endif
