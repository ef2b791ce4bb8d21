/* words.h - words and encoding units.
 *
 * A word is a maximal run of non-whitespace characters, whitespace being the
 * Unicode White_Space property (ICU). A book is cut into units: each unit is
 * the whitespace before a word plus the word; whitespace after the last word
 * is one more unit that starts no word. A non-empty book with no word at all
 * is one unit that counts as one word. Bytes that are not valid UTF-8 are
 * non-whitespace, one character each.
 *
 * The word type (the key of the training-split frequency table) is the word
 * without leading and trailing Unicode punctuation (general category P*),
 * case-folded (ICU simple case folding); a word that is all punctuation is
 * its own type. See tokenize/README.md for why.
 */
#ifndef PG19_WORDS_H
#define PG19_WORDS_H

#include <stddef.h>
#include <stdint.h>

/* Builds the ASCII fast-path table; call once before any thread uses words. */
void pg_words_init(void);
/* 1 when the character at s[i] is White_Space; *next = index after it. */
int pg_ws_at(const uint8_t *s, size_t len, size_t i, size_t *next);

typedef struct pg_unit_iter {
    const uint8_t *text;
    size_t len, pos;
    int seen_word;
} pg_unit_iter;

void pg_unit_iter_init(pg_unit_iter *it, const uint8_t *text, size_t len);
/* Next unit [*start, *end); its word is [*word, *end) (empty for trailing
 * whitespace); *starts_word = 1 when the unit opens a word. 0 at the end. */
int pg_unit_next(pg_unit_iter *it, size_t *start, size_t *word, size_t *end, int *starts_word);

/* Word type of word[0..len) into out (capacity cap >= 4*len + 4); returns its
 * length. */
size_t pg_word_type(const uint8_t *word, size_t len, uint8_t *out, size_t cap);

/* Number of words of a text (by the unit rule above). */
uint64_t pg_count_words(const uint8_t *text, size_t len);

#endif
