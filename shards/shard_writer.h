/* shard_writer.h - build one PG19SHRD shard (FORMAT.md) in memory, then write
 * it crash-safely (temp file, fsync, rename).
 *
 * Books are added in increasing book-id order. The writer checks what it is
 * given (ids inside the vocabulary, word starts consistent with the word
 * count) so that it never writes a shard the reader would reject.
 */
#ifndef PG19_SHARD_WRITER_H
#define PG19_SHARD_WRITER_H

#include <stdint.h>

#include "common/error.h"

typedef struct pg_shard_writer pg_shard_writer;

int pg_shard_writer_new(pg_shard_writer **out, int split, uint32_t vocab_size, uint32_t bos_id,
                        const uint8_t vocab_sha256[32], int with_word_freqs, pg_error *err);
/* n_bytes and text_sha256: size and SHA-256 of the book's text, the exact
 * bytes that were tokenized (what pg19_official.h compares with PG-19's
 * files). word_starts: n_tokens flags (0/1); word_freqs: n_words values, or
 * NULL when the writer was made without word frequencies. */
int pg_shard_writer_add_book(pg_shard_writer *w, uint64_t book_id, uint64_t n_bytes,
                             const uint8_t text_sha256[32], const uint32_t *tokens,
                             const uint8_t *word_starts, uint64_t n_tokens,
                             const uint64_t *word_freqs, uint64_t n_words, pg_error *err);
uint64_t pg_shard_writer_num_books(const pg_shard_writer *w);
/* The size the file would have if finished now. */
uint64_t pg_shard_writer_file_size(const pg_shard_writer *w);
/* The file size after adding a book of this many tokens and words. */
uint64_t pg_shard_writer_file_size_with(const pg_shard_writer *w, uint64_t n_tokens,
                                        uint64_t n_words);
/* Writes the shard to path atomically. The writer stays usable for nothing
 * but pg_shard_writer_free afterwards. */
int pg_shard_writer_write(pg_shard_writer *w, const char *path, pg_error *err);
void pg_shard_writer_free(pg_shard_writer *w);

#endif
