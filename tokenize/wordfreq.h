/* wordfreq.h - training-split word-type frequencies and their file.
 *
 * File format (text, UTF-8 or raw bytes as found in the books):
 *   line 1: "#pg19-word-freqs/1\tsplit=train\tbooks=N\twords=W\ttypes=T"
 *   then T lines "type<TAB>count<LF>", sorted by the type's bytes.
 * Types never hold whitespace, so TAB and LF cannot occur inside them. The
 * counts sum to W. The loader checks all of that.
 */
#ifndef PG19_WORDFREQ_H
#define PG19_WORDFREQ_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "tokenize/strtab.h"

/* Adds the word types of a text to t (value = count); returns words seen, or
 * (uint64_t)-1 when out of memory. */
uint64_t pg_wordfreq_add_text(pg_strtab *t, const uint8_t *text, size_t len);
int pg_wordfreq_save(const pg_strtab *t, const char *path, uint64_t books, uint64_t words,
                     pg_error *err);
int pg_wordfreq_load(const char *path, pg_strtab **out, uint64_t *words, pg_error *err);
/* Frequency of each word of text (in order) into freqs[0..n_words). The text
 * must have exactly n_words words. */
int pg_wordfreq_lookup_text(const pg_strtab *t, const uint8_t *text, size_t len,
                            uint64_t *freqs, uint64_t n_words, pg_error *err);

#endif
