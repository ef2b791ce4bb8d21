/* Unit tests for words and units (ICU White_Space), word types, the string
 * table, and the word-frequency file loader's rejections. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "tokenize/strtab.h"
#include "tokenize/wordfreq.h"
#include "tokenize/words.h"

typedef struct unit {
    size_t a, w, e;
    int sw;
} unit;

static size_t units_of(const char *s, size_t len, unit *out, size_t cap)
{
    pg_unit_iter it;
    size_t n = 0;
    pg_unit_iter_init(&it, (const uint8_t *)s, len);
    while (n < cap && pg_unit_next(&it, &out[n].a, &out[n].w, &out[n].e, &out[n].sw))
        n++;
    return n;
}

static void test_units(void **state)
{
    (void)state;
    unit u[16];
    /* leading whitespace joins the first word, trailing whitespace is a unit of its own */
    const char *s = "\r\n  Hello,\tworld \r\n";
    size_t n = units_of(s, strlen(s), u, 16);
    assert_int_equal(n, 3);
    assert_int_equal(u[0].a, 0);
    assert_int_equal(u[0].w, 4);
    assert_int_equal(u[0].e, 10);
    assert_true(u[0].sw);
    assert_int_equal(u[1].a, 10);
    assert_int_equal(u[1].w, 11);
    assert_int_equal(u[1].e, 16);
    assert_true(u[1].sw);
    assert_int_equal(u[2].a, 16);
    assert_int_equal(u[2].e, strlen(s));
    assert_false(u[2].sw);
    assert_int_equal(pg_count_words((const uint8_t *)s, strlen(s)), 2);
    /* empty, whitespace-only (one word), one word */
    assert_int_equal(units_of("", 0, u, 16), 0);
    assert_int_equal(pg_count_words((const uint8_t *)"", 0), 0);
    assert_int_equal(units_of(" \t\r\n", 4, u, 16), 1);
    assert_true(u[0].sw);
    assert_int_equal(pg_count_words((const uint8_t *)" \t\r\n", 4), 1);
    assert_int_equal(pg_count_words((const uint8_t *)"x", 1), 1);
    /* Unicode spaces: NBSP, ideographic space, U+2028 split; U+200B (ZWSP) and
     * U+180E do not (not White_Space) */
    const char *u8 = "a\xC2\xA0" "b\xE3\x80\x80" "c\xE2\x80\xA8" "d\xE2\x80\x8B" "e\xE1\xA0\x8E" "f";
    assert_int_equal(pg_count_words((const uint8_t *)u8, strlen(u8)), 4);
    /* bytes that are not UTF-8 are word characters; NUL too */
    const char bad[] = "\xff\xfe x\x00y \x80";
    assert_int_equal(pg_count_words((const uint8_t *)bad, sizeof bad - 1), 3);
    /* a truncated multi-byte sequence at the very end */
    assert_int_equal(pg_count_words((const uint8_t *)"ab \xE2\x82", 5), 2);
}

static void type_of(const char *w, const char *want)
{
    uint8_t out[256];
    size_t n = pg_word_type((const uint8_t *)w, strlen(w), out, sizeof out);
    out[n] = 0;
    assert_string_equal((const char *)out, want);
}

static void test_word_types(void **state)
{
    (void)state;
    type_of("The", "the");
    type_of("\"Well,", "well");
    type_of("(don't)", "don't");
    type_of("\xE2\x80\x9CQuoted\xE2\x80\x9D.", "quoted");    /* curly quotes are P* */
    type_of("--", "--");                                     /* all punctuation: itself */
    type_of("_Italic_", "italic");
    type_of("\xCE\x96\xCE\xB5\xCF\x8D\xCF\x82", "\xCE\xB6\xCE\xB5\xCF\x8D\xCF\x83"); /* Ζεύς -> ζεύσ (simple fold of final sigma) */
    type_of("$5.00", "$5.00");                              /* $ is a symbol (Sc), kept */
    type_of("MOSCOW!", "moscow");
    uint8_t out[16];
    assert_int_equal(pg_word_type((const uint8_t *)"A\xff" "B", 3, out, sizeof out), 3);
    assert_memory_equal(out, "a\xff" "b", 3);
}

static void test_strtab(void **state)
{
    (void)state;
    pg_strtab *t = pg_strtab_new();
    char key[32];
    int is_new;
    for (int i = 0; i < 100000; i++) {
        int len = snprintf(key, sizeof key, "k%d", i * 7919 % 100003);
        uint64_t *v = pg_strtab_upsert(t, key, (size_t)len, &is_new);
        assert_non_null(v);
        assert_true(is_new);
        *v = (uint64_t)i;
    }
    assert_int_equal(pg_strtab_count(t), 100000);
    for (int i = 0; i < 100000; i += 37) {
        int len = snprintf(key, sizeof key, "k%d", i * 7919 % 100003);
        uint64_t *v = pg_strtab_find(t, key, (size_t)len);
        assert_non_null(v);
        assert_int_equal(*v, i);
    }
    assert_null(pg_strtab_find(t, "nope", 4));
    uint64_t *e = pg_strtab_upsert(t, "", 0, &is_new);
    assert_non_null(e);
    assert_true(is_new);
    size_t *idx = pg_strtab_sorted(t);
    size_t l0, l1;
    pg_strtab_key(t, idx[0], &l0);
    assert_int_equal(l0, 0); /* the empty key sorts first */
    for (size_t i = 1; i + 1 < pg_strtab_count(t); i++) {
        const uint8_t *a = pg_strtab_key(t, idx[i], &l0), *b = pg_strtab_key(t, idx[i + 1], &l1);
        int c = memcmp(a, b, l0 < l1 ? l0 : l1);
        assert_true(c < 0 || (c == 0 && l0 < l1));
    }
    free(idx);
    pg_strtab_clear(t);
    assert_int_equal(pg_strtab_count(t), 0);
    assert_null(pg_strtab_find(t, "k0", 2));
    pg_strtab_free(t);
}

static void test_wordfreq_file(void **state)
{
    (void)state;
    char path[] = "/tmp/pg19-wf-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    pg_error err;
    pg_strtab *t = pg_strtab_new();
    const char *text = "The cat, the CAT. \"Cat\" sat\r\n  on\tthe mat";
    assert_int_equal(pg_wordfreq_add_text(t, (const uint8_t *)text, strlen(text)), 9);
    assert_int_equal(pg_wordfreq_save(t, path, 1, 9, &err), 0);
    pg_strtab *u;
    uint64_t words;
    assert_int_equal(pg_wordfreq_load(path, &u, &words, &err), 0);
    assert_int_equal(words, 9);
    assert_int_equal(*pg_strtab_find(u, "cat", 3), 3);
    assert_int_equal(*pg_strtab_find(u, "the", 3), 3);
    uint64_t fr[9];
    assert_int_equal(pg_wordfreq_lookup_text(u, (const uint8_t *)text, strlen(text), fr, 9, &err), 0);
    assert_int_equal(fr[0], 3);
    assert_int_equal(fr[5], 1); /* sat */
    assert_int_equal(pg_wordfreq_lookup_text(u, (const uint8_t *)text, strlen(text), fr, 8, &err),
                     PG_EINVAL);
    pg_strtab_free(u);
    pg_strtab_free(t);
    const char *bad[] = {
        "",
        "#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=1\ttypes=1\na\t1",      /* no final LF */
        "#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=2\ttypes=2\nb\t1\na\t1\n", /* unsorted */
        "#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=2\ttypes=2\na\t1\na\t1\n", /* repeated */
        "#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=1\ttypes=1\na\t0\n",      /* zero count */
        "#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=5\ttypes=1\na\t1\n",      /* sum */
        "#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=1\ttypes=1\na\t99999999999999999999999\n",
        "#pg19-word-freqs/1\tsplit=train\tbooks=1\twords=1\ttypes=1\na 1\n",       /* no tab */
        "#other\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(pg_write_file_atomic(path, bad[i], strlen(bad[i]), &err), 0);
        assert_true(pg_wordfreq_load(path, &u, &words, &err) < 0);
        assert_null(u);
    }
    unlink(path);
}

int main(void)
{
    pg_words_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_word_types),
        cmocka_unit_test(test_strtab),
        cmocka_unit_test(test_wordfreq_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
