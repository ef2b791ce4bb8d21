/* pg19_official.h - PG-19's own file list and the one decision "is this
 * evaluation the official PG-19 split?".
 *
 * shards/pg19_files.tsv lists every book file of the PG-19 release (split,
 * book id, size in bytes, SHA-256 of the file; 28,602 train, 50 validation and
 * 100 test books). It is compiled into every binary that links this module
 * (.incbin), so the list a tool checks against is the one in the repository,
 * never a file a user could swap.
 *
 * A set of evaluated books of one split is
 *   official     every book of PG-19's split, each with PG-19's bytes and
 *                SHA-256, and nothing else;
 *   pg19-subset  only PG-19 books of that split, byte for byte, but not all;
 *   custom       anything else (an id PG-19 does not have or has in another
 *                split, other bytes, a book twice).
 * Only an official set may be reported with PG-19's word-count normaliser.
 *
 * Books are identified by (id, bytes, SHA-256 of the text). The digest of a
 * set ("books_sha256" in the results JSON, harness/RESULTS.md) is the SHA-256
 * of one line "<id>\t<bytes>\t<sha256 hex>\n" per book in increasing id order.
 */
#ifndef PG19_SHARDS_PG19_OFFICIAL_H
#define PG19_SHARDS_PG19_OFFICIAL_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Books of each split of the PG-19 release. */
#define PG19_TRAIN_FILES 28602ull
#define PG19_VALIDATION_FILES 50ull
#define PG19_TEST_FILES 100ull

typedef struct pg19_book_fact {
    uint64_t id;
    uint64_t n_bytes;
    uint8_t sha256[32];  /* of the book's text, the exact bytes that were tokenized */
} pg19_book_fact;

typedef struct pg19_file_list pg19_file_list;

/* Parses a list in the format of shards/pg19_files.tsv: the header line
 * "split\tbook_id\tnum_bytes\tsha256", then one line per book (split train,
 * validation or test; decimal id and size; 64 lower-case hex digits), LF or
 * CRLF. Ids are unique across the list. `name` is used in messages. */
int pg19_file_list_parse(const char *text, size_t len, const char *name, pg19_file_list **out,
                         pg_error *err);
void pg19_file_list_free(pg19_file_list *l);
/* The list compiled in from shards/pg19_files.tsv, parsed on first use and
 * checked to hold PG-19's book counts; shared, never freed. Thread-safe. */
int pg19_file_list_builtin(const pg19_file_list **out, pg_error *err);
/* Books of a split (PG_SPLIT_*) in the list. */
uint64_t pg19_file_list_count(const pg19_file_list *l, int split);
/* The list's entry for an id: 1 and *split, *fact filled; 0 when absent. */
int pg19_file_list_find(const pg19_file_list *l, uint64_t id, int *split, pg19_book_fact *fact);

/* Zero is custom, so that a zeroed classification never claims official. */
typedef enum {
    PG19_BOOKS_CUSTOM = 0,
    PG19_BOOKS_SUBSET = 1,
    PG19_BOOKS_OFFICIAL = 2
} pg19_book_set;

/* "official", "pg19-subset", "custom"; NULL for anything else. */
const char *pg19_book_set_name(pg19_book_set k);
/* PG19_BOOKS_* for a name, or -1. */
int pg19_book_set_from_name(const char *name);

typedef struct pg19_classification {
    pg19_book_set kind;
    uint64_t n_books;       /* books given */
    uint64_t n_matching;    /* of them, byte-exact PG-19 books of the split (each counted once) */
    uint64_t n_split;       /* books of PG-19's split */
    uint8_t digest[32];     /* books_sha256 of the books given */
    char reason[200];       /* why the set is not official; "" when it is */
} pg19_classification;

/* Decides what a set of books of `split` (PG_SPLIT_*) is against list l. The
 * books may come in any order. */
int pg19_classify_books(const pg19_file_list *l, int split, const pg19_book_fact *books,
                        uint64_t n, pg19_classification *out, pg_error *err);
/* books_sha256 of a set of books (sorted by id here; books is not changed). */
int pg19_books_digest(const pg19_book_fact *books, uint64_t n, uint8_t out[32], pg_error *err);
/* books_sha256 of PG-19's own books of a split: the digest of an official run. */
int pg19_split_digest(const pg19_file_list *l, int split, uint8_t out[32], pg_error *err);

#endif
