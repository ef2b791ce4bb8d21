/* shard_format.h - the byte layout of PG19SHRD shards (see FORMAT.md), shared
 * by the reader and the writer so that both use one set of constants. */
#ifndef PG19_SHARD_FORMAT_H
#define PG19_SHARD_FORMAT_H

#include <stdint.h>
#include <string.h>

#define PGS_MAGIC          "PG19SHRD"
#define PGS_VERSION        2u  /* 2: book entries carry the SHA-256 of the text */
#define PGS_BYTE_ORDER     0x0A0B0C0Du
#define PGS_HEADER_SIZE    256u
#define PGS_ALIGN          64u
#define PGS_N_SECTIONS     4
#define PGS_BOOK_SIZE      88u
#define PGS_FLAG_WORD_FREQS 1u

enum { PGS_SEC_BOOKS = 0, PGS_SEC_TOKENS = 1, PGS_SEC_WORD_STARTS = 2, PGS_SEC_WORD_FREQS = 3 };

/* header field offsets */
#define PGS_OFF_MAGIC       0
#define PGS_OFF_VERSION     8
#define PGS_OFF_BYTE_ORDER  12
#define PGS_OFF_HEADER_SIZE 16
#define PGS_OFF_DTYPE       20
#define PGS_OFF_VOCAB_SIZE  24
#define PGS_OFF_BOS_ID      28
#define PGS_OFF_SPLIT       32
#define PGS_OFF_FLAGS       36
#define PGS_OFF_N_BOOKS     40
#define PGS_OFF_N_TOKENS    48
#define PGS_OFF_N_WORDS     56
#define PGS_OFF_N_BYTES     64
#define PGS_OFF_VOCAB_SHA   72
#define PGS_OFF_SECTIONS    104   /* 4 x {offset, size, xxh3} u64 */
#define PGS_OFF_RESERVED    200
#define PGS_OFF_HEADER_SUM  248

/* book table entry field offsets */
#define PGB_OFF_ID           0
#define PGB_OFF_SPLIT        8
#define PGB_OFF_RESERVED     12
#define PGB_OFF_TOKEN_OFFSET 16
#define PGB_OFF_N_TOKENS     24
#define PGB_OFF_WORD_OFFSET  32
#define PGB_OFF_N_WORDS      40
#define PGB_OFF_N_BYTES      48
#define PGB_OFF_TEXT_SHA     56    /* 32 bytes */

/* Explicit little-endian loads/stores: correct on any host, any alignment. */
static inline uint32_t pgs_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t pgs_get64(const uint8_t *p)
{
    return (uint64_t)pgs_get32(p) | (uint64_t)pgs_get32(p + 4) << 32;
}
static inline void pgs_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline void pgs_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t pgs_align_up(uint64_t x)
{
    return (x + (PGS_ALIGN - 1)) & ~(uint64_t)(PGS_ALIGN - 1);
}

#endif
