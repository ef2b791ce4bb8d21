/* hash.h - the checksums the project uses, behind one small API.
 *
 * SHA-256 and MD5 come from OpenSSL (EVP). CRC32C (Castagnoli, the checksum
 * Cloud Storage publishes as `crc32c`) has no Debian library, so it is here:
 * slice-by-8 tables, or the SSE4.2 crc32 instruction where the CPU has it.
 */
#ifndef PG19_HASH_H
#define PG19_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct pg_hasher pg_hasher; /* md5 + sha256 + crc32c in one pass */

pg_hasher *pg_hasher_new(void);
void pg_hasher_reset(pg_hasher *h);
void pg_hasher_update(pg_hasher *h, const void *data, size_t len);
/* Finishes; the hasher must be reset before reuse. */
void pg_hasher_final(pg_hasher *h, uint8_t md5[16], uint8_t sha256[32], uint32_t *crc32c);
void pg_hasher_free(pg_hasher *h);

/* Hash a whole file (streamed). */
int pg_hash_file(const char *path, uint8_t md5[16], uint8_t sha256[32], uint32_t *crc32c,
                 uint64_t *size, pg_error *err);

uint32_t pg_crc32c_update(uint32_t crc, const void *data, size_t len); /* start with 0 */
void pg_sha256(const void *data, size_t len, uint8_t out[32]);

/* Lower-case hex of n bytes into out (2n+1 chars). */
void pg_hex(const uint8_t *bytes, size_t n, char *out);
/* Strict hex decode of exactly 2n chars; PG_EINVAL otherwise. */
int pg_unhex(const char *hex, uint8_t *out, size_t n);
/* Strict standard base64 decode; fails unless it decodes to exactly n bytes. */
int pg_base64_decode_exact(const char *b64, uint8_t *out, size_t n);
/* Standard base64 with padding; out needs 4*ceil(n/3)+1 chars. */
void pg_base64_encode(const uint8_t *in, size_t n, char *out);

#endif
