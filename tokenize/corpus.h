/* corpus.h - the books of one split: <dir>/<split>/<id>.txt, ordered by id. */
#ifndef PG19_CORPUS_H
#define PG19_CORPUS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define PG_MAX_BOOK_BYTES ((size_t)1 << 30) /* 1 GiB; PG-19's largest book is ~50 MB */

typedef struct pg_book_ref {
    uint64_t id;
    uint64_t size;
    char *path;
} pg_book_ref;

/* Every <digits>.txt file in <corpus>/<split>/, sorted by id. Other names are
 * an error (they would silently fall out of the vocabulary or the shards). */
int pg_corpus_list(const char *corpus, const char *split, pg_book_ref **books, size_t *n,
                   pg_error *err);
void pg_corpus_free(pg_book_ref *books, size_t n);
int pg_corpus_read(const pg_book_ref *b, uint8_t **text, size_t *len, pg_error *err);

#endif
