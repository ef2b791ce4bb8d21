/* nll_dump.h - reader of the per-token NLL dump `PG19NLL1` (harness/RESULTS.md).
 *
 * Layout (little-endian): magic "PG19NLL1", u32 version = 1, u32 dtype = 1
 * (f32 NLL in nats), u64 n_books, u64 n_tokens, then n_books records of
 * {u64 book_id, u64 n_tokens} in evaluation order, then n_tokens f32 NLLs
 * (books in the order above), then the CRC32C of every byte before it.
 *
 * lb_nll_open mmaps the file and checks, before returning: the magic,
 * version and dtype; that 32 + 16*n_books + 4*n_tokens + 4 equals the file
 * size (with overflow checks); that the book counts sum to n_tokens; the CRC.
 * It does not judge the NLL values; the verifier does.
 */
#ifndef PG19_LEADERBOARD_NLL_DUMP_H
#define PG19_LEADERBOARD_NLL_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define LB_NLL_MAGIC "PG19NLL1"
#define LB_NLL_VERSION 1u
#define LB_NLL_DTYPE_F32 1u
#define LB_NLL_HEADER 32u

typedef struct lb_nll_dump {
    const char *path;
    const uint8_t *map;
    size_t size;
    uint64_t n_books, n_tokens;
    int mapped;            /* lb_nll_close unmaps */
} lb_nll_dump;

int lb_nll_open(const char *path, lb_nll_dump *d, pg_error *err);
/* The same checks on a dump already in memory (data must outlive d; the
 * fuzz target uses this). `path` names it in messages. */
int lb_nll_parse(const uint8_t *data, size_t size, const char *path, lb_nll_dump *d,
                 pg_error *err);
void lb_nll_close(lb_nll_dump *d);
/* Book i's id and token count (i < n_books). */
void lb_nll_book(const lb_nll_dump *d, uint64_t i, uint64_t *book_id, uint64_t *n_tokens);
/* NLL of token t of the whole dump (t < n_tokens). */
float lb_nll_value(const lb_nll_dump *d, uint64_t t);

#endif
