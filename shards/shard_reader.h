/* shard_reader.h - open, validate and read PG19SHRD token shards (FORMAT.md).
 *
 * A shard is mmapped read-only; every count and offset is checked against the
 * file size (with overflow checks) before pg_shard_open returns, and with
 * verify_checksums=1 every byte of the file is checked too. Accessors copy out
 * of the mapping with bounds checks; none of them trusts the file.
 */
#ifndef PG19_SHARD_READER_H
#define PG19_SHARD_READER_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" { /* usable from C++ and CUDA code too */
#endif

#include "common/error.h" /* inside extern "C": common/ is plain C */

typedef struct pg_shard pg_shard;          /* an opened, mmapped, validated shard file */
enum { PG_SPLIT_TRAIN = 0, PG_SPLIT_VALIDATION = 1, PG_SPLIT_TEST = 2 };
typedef struct pg_shard_book {
    uint64_t book_id;
    int      split;                        /* PG_SPLIT_* */
    uint64_t n_tokens, n_words, n_bytes;   /* bytes of the book's text */
    uint8_t  text_sha256[32];              /* SHA-256 of the book's text (format version 2) */
} pg_shard_book;

/* Opens, mmaps and checks every count/offset against the file size and every
 * section checksum (verify_checksums=1) before returning. */
int  pg_shard_open(const char *path, int verify_checksums, pg_shard **out, pg_error *err);
void pg_shard_close(pg_shard *s);
uint64_t pg_shard_num_books(const pg_shard *s);
uint32_t pg_shard_vocab_size(const pg_shard *s);
uint32_t pg_shard_bos_id(const pg_shard *s);          /* id the model sees before token 0 */
const uint8_t *pg_shard_vocab_sha256(const pg_shard *s); /* 32 bytes */
/* Book i of the shard (0 <= i < pg_shard_num_books). SHARD_API.md names
 * this function pg_shard_book, like the type, which C does not allow; the
 * function is pg_shard_get_book, and a function-like macro keeps the
 * contract's call syntax `pg_shard_book(s, i, &b, &err)` working (it expands
 * only before "(", so `pg_shard_book b;` still names the type). */
int pg_shard_get_book(const pg_shard *s, uint64_t i, pg_shard_book *out, pg_error *err);
#define pg_shard_book(s, i, out, err) pg_shard_get_book((s), (i), (out), (err))
/* Tokens [start, start+count) of book i, widened to uint32. */
int pg_shard_tokens(const pg_shard *s, uint64_t i, uint64_t start, uint64_t count,
                    uint32_t *dst, pg_error *err);
/* For tokens [start, start+count) of book i: 1 where the token starts a word, else 0.
 * Token 0 of every non-empty book starts a word; every token belongs to exactly one word. */
int pg_shard_word_starts(const pg_shard *s, uint64_t i, uint64_t start, uint64_t count,
                         uint8_t *dst, pg_error *err);
/* Training-split frequency of words [start, start+count) of book i (0 = unseen). */
int pg_shard_word_freqs(const pg_shard *s, uint64_t i, uint64_t start, uint64_t count,
                        uint64_t *dst, pg_error *err);
/* The shard files of one split in a directory ("<split>-NNNNN.pgs"), sorted.
 * Caller frees each path and the array. */
int pg_shard_list(const char *dir, const char *split, char ***paths, size_t *n, pg_error *err);

/* Beyond the contract: facts `shards info/stats/verify` print. */
typedef struct pg_shard_summary {
    uint32_t version, token_bytes, vocab_size, bos_id, split;
    int has_word_freqs;
    uint64_t n_books, n_tokens, n_words, n_bytes, file_size;
} pg_shard_summary;
void pg_shard_get_summary(const pg_shard *s, pg_shard_summary *out);
/* "train" / "validation" / "test", or NULL for an unknown split. */
const char *pg_split_name(int split);
/* PG_SPLIT_* for a name, or -1. */
int pg_split_from_name(const char *name);

#ifdef __cplusplus
}
#endif
#endif
