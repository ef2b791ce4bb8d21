/* words.c - whitespace classes from ICU, the unit cutter, word types. */
#include "tokenize/words.h"

#include <string.h>
#include <unicode/uchar.h>
#include <unicode/utf8.h>

static uint8_t ascii_ws[128];

void pg_words_init(void)
{
    for (int c = 0; c < 128; c++)
        ascii_ws[c] = (uint8_t)u_hasBinaryProperty(c, UCHAR_WHITE_SPACE);
}

int pg_ws_at(const uint8_t *s, size_t len, size_t i, size_t *next)
{
    if (s[i] < 0x80) {
        *next = i + 1;
        return ascii_ws[s[i]];
    }
    int32_t k = (int32_t)i, n = len > INT32_MAX ? INT32_MAX : (int32_t)len;
    UChar32 c;
    U8_NEXT(s, k, n, c);
    *next = (size_t)k;
    return c >= 0 && u_hasBinaryProperty(c, UCHAR_WHITE_SPACE);
}

void pg_unit_iter_init(pg_unit_iter *it, const uint8_t *text, size_t len)
{
    it->text = text;
    it->len = len;
    it->pos = 0;
    it->seen_word = 0;
}

int pg_unit_next(pg_unit_iter *it, size_t *start, size_t *word, size_t *end, int *starts_word)
{
    const uint8_t *s = it->text;
    size_t n = it->len, i = it->pos, nx;
    if (i >= n)
        return 0;
    *start = i;
    while (i < n && pg_ws_at(s, n, i, &nx))
        i = nx;
    *word = i;
    if (i == n) { /* trailing whitespace, or a book of whitespace only */
        *end = n;
        *starts_word = !it->seen_word;
        it->pos = n;
        return 1;
    }
    while (i < n && !pg_ws_at(s, n, i, &nx))
        i = nx;
    *end = i;
    /* Whitespace up to the end of the book belongs to this last word. */
    *starts_word = 1;
    it->seen_word = 1;
    it->pos = i;
    return 1;
}

size_t pg_word_type(const uint8_t *w, size_t len, uint8_t *out, size_t cap)
{
    int32_t n = len > INT32_MAX ? INT32_MAX : (int32_t)len;
    /* strip leading punctuation */
    int32_t a = 0, b = n;
    while (a < n) {
        int32_t k = a;
        UChar32 c;
        U8_NEXT(w, k, n, c);
        if (c < 0 || !u_ispunct(c))
            break;
        a = k;
    }
    while (b > a) {
        int32_t k = b;
        UChar32 c;
        U8_PREV(w, a, k, c);
        if (c < 0 || !u_ispunct(c))
            break;
        b = k;
    }
    if (a == b) { /* all punctuation: the word itself */
        a = 0;
        b = n;
    }
    size_t o = 0;
    for (int32_t k = a; k < b;) {
        int32_t k0 = k;
        UChar32 c;
        U8_NEXT(w, k, b, c);
        if (c < 0) { /* invalid bytes kept as they are */
            for (int32_t j = k0; j < k && o < cap; j++)
                out[o++] = w[j];
            continue;
        }
        c = u_foldCase(c, U_FOLD_CASE_DEFAULT);
        if (o + 4 > cap)
            break;
        UBool err = 0;
        U8_APPEND((uint8_t *)out, o, cap, c, err);
        (void)err;
    }
    return o;
}

uint64_t pg_count_words(const uint8_t *text, size_t len)
{
    pg_unit_iter it;
    size_t a, w, e;
    int sw;
    uint64_t words = 0;
    pg_unit_iter_init(&it, text, len);
    while (pg_unit_next(&it, &a, &w, &e, &sw))
        words += (uint64_t)sw;
    return words;
}
