/* gb_zip.h - the one plain-text member of a Gutenberg zip, extracted safely.
 *
 * Mirror zips (ID.zip, ID-0.zip, ID-8.zip) hold the .txt and sometimes a
 * folder of it. The archive is read from memory through libarchive and never
 * touches the disk. Rejected: more than max_entries entries, absolute paths,
 * ".." components, symbolic or hard links and device/fifo entries, and any
 * expansion over max_bytes or over max_ratio times the archive's size
 * (decompression bombs); the caps are checked while decompressing, before
 * memory grows.
 */
#ifndef PG19_GB_ZIP_H
#define PG19_GB_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct gb_zip_limits {
    uint64_t max_bytes;     /* uncompressed size of the text member */
    uint64_t max_ratio;     /* uncompressed / archive size */
    uint32_t max_entries;
} gb_zip_limits;

void gb_zip_limits_default(gb_zip_limits *l);

/* Extracts the first member whose name ends in ".txt" (case-insensitive) into
 * a malloc'd *out. member (may be NULL) gets its path. */
int gb_zip_extract_text(const char *name, const void *zip, size_t zip_len,
                        const gb_zip_limits *lim, char **out, size_t *out_len, char *member,
                        size_t member_cap, pg_error *err);

#endif
