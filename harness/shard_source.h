/* shard_source.h - the shards of one split as a pg_book_source (eval.h):
 * a thin adapter over shards/shard_reader.h that numbers the books of all
 * the split's shard files in order and checks that the files agree on the
 * vocabulary (size, BOS id, SHA-256). */
#ifndef PG19_HARNESS_SHARD_SOURCE_H
#define PG19_HARNESS_SHARD_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "harness/eval.h"
#include "shards/pg19_official.h"

typedef struct pg_shard_source pg_shard_source;

/* Opens every "<split>-NNNNN.pgs" in dir (checksums verified). max_books > 0
 * keeps only the first max_books books. */
int pg_shard_source_open(const char *dir, const char *split, uint64_t max_books,
                         pg_shard_source **out, pg_error *err);
void pg_shard_source_close(pg_shard_source *s);
/* Evaluates only the books with these ids, in this order (`harness run
 * --books`): an id not in the shards, or given twice, is an error. */
int pg_shard_source_select(pg_shard_source *s, const uint64_t *book_ids, uint64_t n,
                           pg_error *err);
const pg_book_source *pg_shard_source_books(const pg_shard_source *s);
const uint8_t *pg_shard_source_vocab_sha256(const pg_shard_source *s);
uint64_t pg_shard_source_total_books(const pg_shard_source *s); /* before max_books */
size_t pg_shard_source_num_files(const pg_shard_source *s);
const char *pg_shard_source_file(const pg_shard_source *s, size_t i);  /* full path */
const uint8_t *pg_shard_source_file_sha256(const pg_shard_source *s, size_t i);
/* What books 0..n_books-1 of the source (the evaluated ones, after
 * --max-books or --books) are against PG-19's own file list
 * (shards/pg19_official.h): official, a PG-19 subset, or custom, from each
 * book's id, bytes and text SHA-256 recorded in the shards. */
int pg_shard_source_classify(const pg_shard_source *s, const char *split, uint64_t n_books,
                             pg19_classification *out, pg_error *err);
/* PG_EIO naming the file if any shard file is not as it was opened (device,
 * inode, size, modification time): a file cut inside its last page reads
 * as zeros there, and one rewritten in place serves bytes that were never
 * verified, so a run checks this before it writes any result. (A cut that
 * removes whole pages is caught by the reader itself: shards/map_guard.h.) */
int pg_shard_source_check_unchanged(const pg_shard_source *s, pg_error *err);

#endif
