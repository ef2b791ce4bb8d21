/* Unit tests for shards/pg19_official.c: the list parser (strict), the
 * built-in PG-19 list, the books_sha256 digest, and the decision official /
 * pg19-subset / custom on a synthetic list and on the real one (with real
 * books from $PG19_TEST_CORPUS when it is set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "shards/pg19_official.h"
#include "shards/shard_reader.h"

static const char synthetic[] =
    "split\tbook_id\tnum_bytes\tsha256\n"
    "train\t7\t100\t0000000000000000000000000000000000000000000000000000000000000007\n"
    "test\t30\t300\t3030303030303030303030303030303030303030303030303030303030303030\n"
    "test\t10\t100\t1010101010101010101010101010101010101010101010101010101010101010\n"
    "validation\t5\t55\t0505050505050505050505050505050505050505050505050505050505050505\n"
    "test\t20\t200\t2020202020202020202020202020202020202020202020202020202020202020\n";

static pg19_file_list *load_synthetic(void)
{
    pg19_file_list *l;
    pg_error err = {0};
    if (pg19_file_list_parse(synthetic, strlen(synthetic), "synthetic", &l, &err))
        fail_msg("parse: %s", err.msg);
    return l;
}

static pg19_book_fact fact(uint64_t id, uint64_t bytes, uint8_t fill)
{
    pg19_book_fact f = {.id = id, .n_bytes = bytes};
    memset(f.sha256, fill, 32);
    return f;
}

static void classify(const pg19_file_list *l, int split, const pg19_book_fact *b, uint64_t n,
                     pg19_classification *c)
{
    pg_error err = {0};
    if (pg19_classify_books(l, split, b, n, c, &err))
        fail_msg("classify: %s", err.msg);
}

static void test_synthetic_decisions(void **state)
{
    (void)state;
    pg19_file_list *l = load_synthetic();
    assert_int_equal(pg19_file_list_count(l, PG_SPLIT_TEST), 3);
    assert_int_equal(pg19_file_list_count(l, PG_SPLIT_VALIDATION), 1);
    assert_int_equal(pg19_file_list_count(l, PG_SPLIT_TRAIN), 1);
    pg19_classification c;

    /* exactly the split, in any order: official, and its digest is the split's */
    pg19_book_fact all[4] = {fact(30, 300, 0x30), fact(10, 100, 0x10), fact(20, 200, 0x20)};
    classify(l, PG_SPLIT_TEST, all, 3, &c);
    assert_int_equal(c.kind, PG19_BOOKS_OFFICIAL);
    assert_string_equal(c.reason, "");
    assert_int_equal(c.n_matching, 3);
    uint8_t want[32];
    pg_error err = {0};
    assert_int_equal(pg19_split_digest(l, PG_SPLIT_TEST, want, &err), 0);
    assert_memory_equal(c.digest, want, 32);

    /* two of three: a subset, labelled so */
    classify(l, PG_SPLIT_TEST, all, 2, &c);
    assert_int_equal(c.kind, PG19_BOOKS_SUBSET);
    assert_string_equal(c.reason, "2 of PG-19's 3 test books");
    assert_memory_not_equal(c.digest, want, 32);

    /* one byte of one SHA-256 changed: custom, naming the book */
    all[1].sha256[31] ^= 1;
    classify(l, PG_SPLIT_TEST, all, 3, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    assert_non_null(strstr(c.reason, "book 10 differs from PG-19's file"));
    all[1].sha256[31] ^= 1;

    /* other bytes */
    all[0].n_bytes = 301;
    classify(l, PG_SPLIT_TEST, all, 3, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    assert_non_null(strstr(c.reason, "book 30 has 301 bytes, PG-19's file 300"));
    all[0].n_bytes = 300;

    /* the whole split plus a book from another split, or one PG-19 lacks */
    all[3] = fact(5, 55, 0x05);
    classify(l, PG_SPLIT_TEST, all, 4, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    assert_non_null(strstr(c.reason, "book 5 is in PG-19's validation split, not test"));
    all[3] = fact(99, 1, 0x99);
    classify(l, PG_SPLIT_TEST, all, 4, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    assert_non_null(strstr(c.reason, "book 99 is not a PG-19 book"));

    /* a book twice in place of another */
    all[2] = all[1];
    classify(l, PG_SPLIT_TEST, all, 3, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    assert_non_null(strstr(c.reason, "evaluated twice"));

    /* several problems: the first one and how many more */
    pg19_book_fact junk[3] = {fact(1, 1, 1), fact(2, 1, 1), fact(3, 1, 1)};
    classify(l, PG_SPLIT_TEST, junk, 3, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    assert_string_equal(c.reason, "book 1 is not a PG-19 book (and 2 more)");
    assert_int_equal(c.n_matching, 0);

    /* the one validation book is the whole (synthetic) validation split */
    pg19_book_fact v = fact(5, 55, 0x05);
    classify(l, PG_SPLIT_VALIDATION, &v, 1, &c);
    assert_int_equal(c.kind, PG19_BOOKS_OFFICIAL);
    /* no books at all is not the split */
    classify(l, PG_SPLIT_VALIDATION, &v, 0, &c);
    assert_int_equal(c.kind, PG19_BOOKS_SUBSET);
    assert_int_equal(pg19_classify_books(l, 3, &v, 1, &c, &err), PG_EINVAL);

    int split;
    pg19_book_fact f;
    assert_int_equal(pg19_file_list_find(l, 20, &split, &f), 1);
    assert_int_equal(split, PG_SPLIT_TEST);
    assert_int_equal(f.n_bytes, 200);
    assert_int_equal(f.sha256[0], 0x20);
    assert_int_equal(pg19_file_list_find(l, 21, &split, &f), 0);
    pg19_file_list_free(l);
}

/* books_sha256 is SHA-256 over "<id>\t<bytes>\t<hex>\n" lines in id order. */
static void test_digest_definition(void **state)
{
    (void)state;
    pg19_book_fact b[2] = {fact(20, 200, 0x20), fact(3, 7, 0xab)};
    char text[400], h0[65], h1[65];
    pg_hex(b[1].sha256, 32, h1);
    pg_hex(b[0].sha256, 32, h0);
    snprintf(text, sizeof text, "3\t7\t%s\n20\t200\t%s\n", h1, h0);
    uint8_t want[32], got[32];
    pg_sha256(text, strlen(text), want);
    pg_error err = {0};
    assert_int_equal(pg19_books_digest(b, 2, got, &err), 0);
    assert_memory_equal(got, want, 32);
    /* the input is not reordered in place */
    assert_int_equal(b[0].id, 20);
}

static void expect_parse_error(const char *text, const char *needle)
{
    pg19_file_list *l = (pg19_file_list *)1;
    pg_error err = {0};
    assert_int_equal(pg19_file_list_parse(text, strlen(text), "bad.tsv", &l, &err), PG_ECORRUPT);
    assert_null(l);
    if (!strstr(err.msg, needle))
        fail_msg("\"%s\" lacks \"%s\"", err.msg, needle);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    const char *h = "split\tbook_id\tnum_bytes\tsha256\n";
    const char *sha = "1010101010101010101010101010101010101010101010101010101010101010";
    char buf[512];
    expect_parse_error("", "empty");
    expect_parse_error("split\tid\tbytes\tsha256\n", "line 1 is not the header");
    snprintf(buf, sizeof buf, "%stest\t10\t100\t%s", h, sha);
    expect_parse_error(buf, "line 2 does not end with a newline");
    snprintf(buf, sizeof buf, "%stest\t10\t100\t%s\ntest\t10\t5\t%s\n", h, sha, sha);
    expect_parse_error(buf, "book 10 is listed twice");
    snprintf(buf, sizeof buf, "%sdev\t10\t100\t%s\n", h, sha);
    expect_parse_error(buf, "line 2: expected split");
    snprintf(buf, sizeof buf, "%stest\t-10\t100\t%s\n", h, sha);
    expect_parse_error(buf, "line 2: expected split");
    snprintf(buf, sizeof buf, "%stest\t10\t100\t%s\textra\n", h, sha);
    expect_parse_error(buf, "line 2: expected split");
    snprintf(buf, sizeof buf, "%stest\t18446744073709551616\t100\t%s\n", h, sha);
    expect_parse_error(buf, "line 2: expected split");
    snprintf(buf, sizeof buf, "%stest\t10\t100\t%.63sA\n", h, sha);
    expect_parse_error(buf, "line 2: expected split");
    snprintf(buf, sizeof buf, "%stest\t10\t100\t%.62s\n", h, sha);
    expect_parse_error(buf, "line 2: expected split");
    snprintf(buf, sizeof buf, "%stest\t10\t100\n", h);
    expect_parse_error(buf, "line 2: expected split");
    /* CRLF is accepted */
    pg19_file_list *l;
    pg_error err = {0};
    snprintf(buf, sizeof buf, "split\tbook_id\tnum_bytes\tsha256\r\ntest\t10\t100\t%s\r\n", sha);
    assert_int_equal(pg19_file_list_parse(buf, strlen(buf), "crlf.tsv", &l, &err), 0);
    assert_int_equal(pg19_file_list_count(l, PG_SPLIT_TEST), 1);
    pg19_file_list_free(l);
}

/* Facts of PG-19's own books of a split, from the list itself. */
static uint64_t split_facts(const pg19_file_list *l, int split, pg19_book_fact *out, uint64_t cap)
{
    uint64_t n = 0;
    for (uint64_t id = 0; id < 100000 && n < cap; id++) {
        int s;
        pg19_book_fact f;
        if (pg19_file_list_find(l, id, &s, &f) && s == split)
            out[n++] = f;
    }
    return n;
}

static void test_builtin_list(void **state)
{
    (void)state;
    const pg19_file_list *l, *again;
    pg_error err = {0};
    if (pg19_file_list_builtin(&l, &err))
        fail_msg("builtin: %s", err.msg);
    assert_int_equal(pg19_file_list_builtin(&again, &err), 0);
    assert_ptr_equal(l, again);
    assert_int_equal(pg19_file_list_count(l, PG_SPLIT_TRAIN), 28602);
    assert_int_equal(pg19_file_list_count(l, PG_SPLIT_VALIDATION), 50);
    assert_int_equal(pg19_file_list_count(l, PG_SPLIT_TEST), 100);
    int split;
    pg19_book_fact f;
    assert_int_equal(pg19_file_list_find(l, 860, &split, &f), 1);
    assert_int_equal(split, PG_SPLIT_TEST);
    assert_int_equal(f.n_bytes, 280293);
    char hex[65];
    pg_hex(f.sha256, 32, hex);
    assert_string_equal(hex, "4b52c996d63bfeb3c942fff20b6b2298d3455be8954d44a3350022c3187dd584");

    /* the official test split, built from the list: official */
    static pg19_book_fact test[100];
    assert_int_equal(split_facts(l, PG_SPLIT_TEST, test, 100), 100);
    pg19_classification c;
    classify(l, PG_SPLIT_TEST, test, 100, &c);
    assert_int_equal(c.kind, PG19_BOOKS_OFFICIAL);
    /* one byte of one book changed (its SHA-256 then differs): not official */
    test[42].sha256[7] ^= 0x40;
    classify(l, PG_SPLIT_TEST, test, 100, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    test[42].sha256[7] ^= 0x40;
    /* 100 one-line fake books, ids 1..100: custom, whatever their count */
    static pg19_book_fact fake[100];
    for (int i = 0; i < 100; i++) {
        char line[32];
        int k = snprintf(line, sizeof line, "fake book %d\n", i + 1);
        fake[i].id = (uint64_t)i + 1;
        fake[i].n_bytes = (uint64_t)k;
        pg_sha256(line, (size_t)k, fake[i].sha256);
    }
    classify(l, PG_SPLIT_TEST, fake, 100, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    /* fake text under PG-19's own test ids: custom too */
    for (int i = 0; i < 100; i++)
        fake[i].id = test[i].id;
    classify(l, PG_SPLIT_TEST, fake, 100, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    assert_int_equal(c.n_matching, 0);
}

/* The nine byte-exact validation books of the corpus: a PG-19 subset; one
 * byte changed in one of them: custom. */
static void test_real_validation_books(void **state)
{
    (void)state;
    const char *corpus = getenv("PG19_TEST_CORPUS");
    if (!corpus || !*corpus) {
        skip();
        return;
    }
    char dir[1024];
    snprintf(dir, sizeof dir, "%s/pg19-sample/validation", corpus);
    DIR *d = opendir(dir);
    if (!d) {
        skip();
        return;
    }
    pg19_book_fact books[64];
    uint64_t n = 0;
    struct dirent *de;
    pg_error err = {0};
    while ((de = readdir(d)) && n < 64) {
        size_t len = strlen(de->d_name);
        if (len < 5 || strcmp(de->d_name + len - 4, ".txt") != 0)
            continue;
        char path[2048];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        char *text;
        size_t tl;
        assert_int_equal(pg_read_file(path, (size_t)1 << 30, &text, &tl, &err), 0);
        books[n].id = strtoull(de->d_name, NULL, 10);
        books[n].n_bytes = tl;
        if (n == 0) { /* the tampered copy of the first book */
            text[tl / 2] ^= 0x20;
            pg_sha256(text, tl, books[63].sha256);
            text[tl / 2] ^= 0x20;
            books[63].id = books[0].id;
            books[63].n_bytes = tl;
        }
        pg_sha256(text, tl, books[n].sha256);
        free(text);
        n++;
    }
    closedir(d);
    assert_int_equal(n, 9);
    const pg19_file_list *l;
    assert_int_equal(pg19_file_list_builtin(&l, &err), 0);
    pg19_classification c;
    classify(l, PG_SPLIT_VALIDATION, books, n, &c);
    assert_int_equal(c.kind, PG19_BOOKS_SUBSET);
    assert_int_equal(c.n_matching, 9);
    assert_string_equal(c.reason, "9 of PG-19's 50 validation books");
    /* the same books called test books are not PG-19's test books */
    classify(l, PG_SPLIT_TEST, books, n, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    books[0] = books[63];
    classify(l, PG_SPLIT_VALIDATION, books, n, &c);
    assert_int_equal(c.kind, PG19_BOOKS_CUSTOM);
    assert_non_null(strstr(c.reason, "differs from PG-19's file"));
    assert_int_equal(c.n_matching, 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_decisions),
        cmocka_unit_test(test_digest_definition),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_builtin_list),
        cmocka_unit_test(test_real_validation_books),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
