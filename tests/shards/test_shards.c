/* Unit tests for the shard writer and reader: round trips in both token
 * dtypes, every single-byte flip and every truncation rejected, argument
 * checks, directory listing, and the fuzz seed corpus replayed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "common/atomic_file.h"
#include "shards/shard_format.h"
#include "shards/shard_reader.h"
#include "shards/shard_writer.h"

static char tmpdir[256];

/* Plain write (no fsync): the flip test writes thousands of variants. */
static void write_plain(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pg19-shards-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    DIR *d = opendir(tmpdir);
    if (d) {
        struct dirent *de;
        char p[512];
        while ((de = readdir(d)))
            if (de->d_name[0] != '.') {
                snprintf(p, sizeof p, "%s/%s", tmpdir, de->d_name);
                unlink(p);
            }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

/* Three books: empty, one token, and n tokens with a word every 3 tokens. */
#define BIG_N 1001
static uint32_t big_tokens[BIG_N];
static uint8_t big_starts[BIG_N];
static uint64_t big_freqs[BIG_N];
static uint64_t big_words;

static void make_books(uint32_t vocab)
{
    big_words = 0;
    for (uint32_t t = 0; t < BIG_N; t++) {
        big_tokens[t] = (t * 7919u + 13u) % vocab;
        big_starts[t] = t % 3 == 0;
        if (big_starts[t]) {
            big_freqs[big_words] = (uint64_t)t * 1000003u;
            big_words++;
        }
    }
}

static void write_test_shard(const char *path, uint32_t vocab, int split, int freqs)
{
    pg_error err = {0};
    pg_shard_writer *w;
    uint8_t sha[32];
    for (int i = 0; i < 32; i++)
        sha[i] = (uint8_t)(i * 3);
    make_books(vocab);
    assert_int_equal(pg_shard_writer_new(&w, split, vocab, vocab - 1, sha, freqs, &err), 0);
    uint8_t text_sha[3][32];
    for (int b = 0; b < 3; b++)
        for (int i = 0; i < 32; i++)
            text_sha[b][i] = (uint8_t)(b * 64 + i);
    assert_int_equal(pg_shard_writer_add_book(w, 5, 0, text_sha[0], NULL, NULL, 0, NULL, 0, &err),
                     0);
    uint32_t one = 3;
    uint8_t one_start = 1;
    uint64_t one_freq = 42;
    assert_int_equal(pg_shard_writer_add_book(w, 17, 4, text_sha[1], &one, &one_start, 1,
                                              &one_freq, 1, &err), 0);
    assert_int_equal(pg_shard_writer_add_book(w, 1000000000123ull, 9999, text_sha[2], big_tokens,
                                              big_starts, BIG_N, big_freqs, big_words, &err),
                     0);
    assert_int_equal(pg_shard_writer_num_books(w), 3);
    uint64_t expect_size = pg_shard_writer_file_size(w);
    assert_int_equal(pg_shard_writer_write(w, path, &err), 0);
    pg_shard_writer_free(w);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal((uint64_t)st.st_size, expect_size);
}

static void check_test_shard(const char *path, uint32_t vocab, int split, int freqs)
{
    pg_error err = {0};
    pg_shard *s;
    int rc = pg_shard_open(path, 1, &s, &err);
    if (rc)
        fail_msg("open: %s", err.msg);
    assert_int_equal(pg_shard_num_books(s), 3);
    assert_int_equal(pg_shard_vocab_size(s), vocab);
    assert_int_equal(pg_shard_bos_id(s), vocab - 1);
    assert_int_equal(pg_shard_vocab_sha256(s)[5], 15);
    pg_shard_summary sum;
    pg_shard_get_summary(s, &sum);
    assert_int_equal(sum.token_bytes, vocab <= 65536 ? 2 : 4);
    assert_int_equal(sum.n_tokens, 1 + BIG_N);
    assert_int_equal(sum.n_words, 1 + big_words);
    assert_int_equal(sum.n_bytes, 4 + 9999);

    pg_shard_book b;
    assert_int_equal(pg_shard_get_book(s, 0, &b, &err), 0);
    assert_int_equal(b.book_id, 5);
    assert_int_equal(b.split, split);
    assert_int_equal(b.n_tokens, 0);
    assert_int_equal(b.n_words, 0);
    assert_int_equal(pg_shard_get_book(s, 2, &b, &err), 0);
    assert_int_equal(b.book_id, 1000000000123ull);
    assert_int_equal(b.n_tokens, BIG_N);
    assert_int_equal(b.n_words, big_words);
    assert_int_equal(b.n_bytes, 9999);
    for (int i = 0; i < 32; i++) /* each book keeps its own text SHA-256 */
        assert_int_equal(b.text_sha256[i], 2 * 64 + i);
    assert_int_equal(pg_shard_get_book(s, 3, &b, &err), PG_EINVAL);
    /* the contract's spelling (SHARD_API.md) works too */
    pg_shard_book b2;
    assert_int_equal(pg_shard_book(s, 1, &b2, &err), 0);
    assert_int_equal(b2.book_id, 17);
    assert_int_equal(b2.n_bytes, 4);
    assert_int_equal(b2.text_sha256[0], 64);
    assert_int_equal(b2.text_sha256[31], 64 + 31);

    uint32_t toks[BIG_N];
    uint8_t starts[BIG_N];
    uint64_t fr[BIG_N];
    assert_int_equal(pg_shard_tokens(s, 2, 0, BIG_N, toks, &err), 0);
    assert_memory_equal(toks, big_tokens, sizeof toks);
    assert_int_equal(pg_shard_word_starts(s, 2, 0, BIG_N, starts, &err), 0);
    assert_memory_equal(starts, big_starts, sizeof starts);
    /* a window in the middle, at an odd bit position */
    assert_int_equal(pg_shard_tokens(s, 2, 77, 300, toks, &err), 0);
    assert_memory_equal(toks, big_tokens + 77, 300 * sizeof *toks);
    assert_int_equal(pg_shard_word_starts(s, 2, 77, 300, starts, &err), 0);
    assert_memory_equal(starts, big_starts + 77, 300);
    assert_int_equal(pg_shard_tokens(s, 1, 0, 1, toks, &err), 0);
    assert_int_equal(toks[0], 3);
    /* ranges past the end, and overflowing ranges, are refused */
    assert_int_equal(pg_shard_tokens(s, 2, 1, BIG_N, toks, &err), PG_EINVAL);
    assert_int_equal(pg_shard_tokens(s, 2, UINT64_MAX, 2, toks, &err), PG_EINVAL);
    assert_int_equal(pg_shard_word_starts(s, 0, 0, 1, starts, &err), PG_EINVAL);
    assert_int_equal(pg_shard_tokens(s, 0, 0, 0, toks, &err), 0);
    if (freqs) {
        assert_int_equal(pg_shard_word_freqs(s, 2, 0, big_words, fr, &err), 0);
        assert_memory_equal(fr, big_freqs, big_words * sizeof *fr);
        assert_int_equal(pg_shard_word_freqs(s, 1, 0, 1, fr, &err), 0);
        assert_int_equal(fr[0], 42);
        assert_int_equal(pg_shard_word_freqs(s, 1, 1, 1, fr, &err), PG_EINVAL);
    } else {
        assert_int_equal(pg_shard_word_freqs(s, 1, 0, 1, fr, &err), PG_ENOTFOUND);
    }
    pg_shard_close(s);
}

static void test_roundtrip_u16(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/validation-00000.pgs", tmpdir);
    write_test_shard(p, 32000, PG_SPLIT_VALIDATION, 1);
    check_test_shard(p, 32000, PG_SPLIT_VALIDATION, 1);
}

static void test_roundtrip_u32(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/train-00000.pgs", tmpdir);
    write_test_shard(p, 100000, PG_SPLIT_TRAIN, 0);
    check_test_shard(p, 100000, PG_SPLIT_TRAIN, 0);
}

static void test_empty_shard(void **state)
{
    (void)state;
    char p[512];
    pg_error err = {0};
    pg_shard_writer *w;
    uint8_t sha[32] = {0};
    snprintf(p, sizeof p, "%s/empty.pgs", tmpdir);
    assert_int_equal(pg_shard_writer_new(&w, PG_SPLIT_TEST, 1, 0, sha, 1, &err), 0);
    assert_int_equal(pg_shard_writer_write(w, p, &err), 0);
    pg_shard_writer_free(w);
    pg_shard *s;
    assert_int_equal(pg_shard_open(p, 1, &s, &err), 0);
    assert_int_equal(pg_shard_num_books(s), 0);
    pg_shard_close(s);
}

/* Every single flipped byte must be caught by a verifying open; a
 * non-verifying open must never crash and never serve an id >= vocab. */
static void test_every_flip_detected(void **state)
{
    (void)state;
    char p[512], q[512];
    snprintf(p, sizeof p, "%s/flip-src.pgs", tmpdir);
    snprintf(q, sizeof q, "%s/flip.pgs", tmpdir);
    write_test_shard(p, 5000, PG_SPLIT_TEST, 1);
    char *data;
    size_t len;
    pg_error err = {0};
    assert_int_equal(pg_read_file(p, 1 << 20, &data, &len, &err), 0);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            data[i] ^= (char)(1 << bit);
            write_plain(q, data, len);
            pg_shard *s = NULL;
            if (pg_shard_open(q, 1, &s, &err) == 0)
                fail_msg("flip of byte %zu bit %d not detected", i, bit);
            assert_null(s);
            if (pg_shard_open(q, 0, &s, &err) == 0) {
                uint32_t toks[BIG_N];
                pg_shard_book b;
                for (uint64_t k = 0; k < pg_shard_num_books(s); k++) {
                    assert_int_equal(pg_shard_get_book(s, k, &b, &err), 0);
                    if (b.n_tokens <= BIG_N && pg_shard_tokens(s, k, 0, b.n_tokens, toks, &err) == 0)
                        for (uint64_t t = 0; t < b.n_tokens; t++)
                            assert_true(toks[t] < pg_shard_vocab_size(s));
                }
                pg_shard_close(s);
            }
            data[i] ^= (char)(1 << bit);
        }
    }
    /* every truncation, and one appended byte */
    for (size_t cut = 0; cut < len; cut += (cut < 300 ? 1 : 97)) {
        write_plain(q, data, cut);
        pg_shard *s = NULL;
        assert_true(pg_shard_open(q, 0, &s, &err) < 0);
    }
    char *longer = malloc(len + 1);
    memcpy(longer, data, len);
    longer[len] = 0;
    assert_int_equal(pg_write_file_atomic(q, longer, len + 1, &err), 0);
    pg_shard *s = NULL;
    assert_int_equal(pg_shard_open(q, 0, &s, &err), PG_ECORRUPT);
    assert_non_null(strstr(err.msg, "trailing"));
    free(longer);
    free(data);
}

/* A version-1 shard (no per-book SHA-256) is refused with a message that says
 * what to do, even when its checksums are right. */
static void test_old_version_refused(void **state)
{
    (void)state;
    char p[512];
    snprintf(p, sizeof p, "%s/v1.pgs", tmpdir);
    write_test_shard(p, 300, PG_SPLIT_VALIDATION, 1);
    char *data;
    size_t len;
    pg_error err = {0};
    assert_int_equal(pg_read_file(p, 1 << 20, &data, &len, &err), 0);
    pgs_put32((uint8_t *)data + PGS_OFF_VERSION, 1);
    pgs_put64((uint8_t *)data + PGS_OFF_HEADER_SUM, XXH3_64bits(data, PGS_OFF_HEADER_SUM));
    write_plain(p, data, len);
    free(data);
    pg_shard *s = NULL;
    for (int verify = 0; verify <= 1; verify++) {
        assert_int_equal(pg_shard_open(p, verify, &s, &err), PG_ECORRUPT);
        assert_non_null(strstr(err.msg, "version 1 is too old"));
        assert_non_null(strstr(err.msg, "rebuild the shards with `shards build`"));
    }
    assert_null(s);
}

static void test_writer_rejects(void **state)
{
    (void)state;
    pg_error err = {0};
    pg_shard_writer *w;
    uint8_t sha[32] = {0};
    assert_int_equal(pg_shard_writer_new(&w, 3, 100, 0, sha, 0, &err), PG_EINVAL);
    assert_int_equal(pg_shard_writer_new(&w, 0, 100, 100, sha, 0, &err), PG_EINVAL);
    assert_int_equal(pg_shard_writer_new(&w, 0, 100, 0, sha, 0, &err), 0);
    uint32_t t[3] = {1, 2, 3};
    uint8_t st_bad_first[3] = {0, 1, 1}, st_ok[3] = {1, 0, 1};
    assert_int_equal(pg_shard_writer_add_book(w, 1, 3, sha, t, st_bad_first, 3, NULL, 2, &err), PG_EINVAL);
    assert_int_equal(pg_shard_writer_add_book(w, 1, 3, sha, t, st_ok, 3, NULL, 1, &err), PG_EINVAL);
    uint32_t t_big[3] = {1, 100, 3};
    assert_int_equal(pg_shard_writer_add_book(w, 1, 3, sha, t_big, st_ok, 3, NULL, 2, &err), PG_EINVAL);
    assert_int_equal(pg_shard_writer_add_book(w, 9, 3, sha, t, st_ok, 3, NULL, 2, &err), 0);
    assert_int_equal(pg_shard_writer_add_book(w, 9, 3, sha, t, st_ok, 3, NULL, 2, &err), PG_EINVAL);
    assert_int_equal(pg_shard_writer_add_book(w, 8, 3, sha, t, st_ok, 3, NULL, 2, &err), PG_EINVAL);
    assert_int_equal(pg_shard_writer_num_books(w), 1);
    pg_shard_writer_free(w);
}

static void test_list(void **state)
{
    (void)state;
    const char *names[] = {"test-00002.pgs", "test-00000.pgs", "test-00001.pgs", "train-00000.pgs",
                           "test-0001.pgs", "test-00003.pgs.tmp.1", "xtest-00004.pgs"};
    char p[512];
    pg_error err = {0};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[i]);
        assert_int_equal(pg_write_file_atomic(p, "x", 1, &err), 0);
    }
    char **paths;
    size_t n;
    assert_int_equal(pg_shard_list(tmpdir, "test", &paths, &n, &err), 0);
    assert_int_equal(n, 3);
    for (size_t i = 0; i < n; i++) {
        char want[512];
        snprintf(want, sizeof want, "%s/test-0000%zu.pgs", tmpdir, i);
        assert_string_equal(paths[i], want);
        free(paths[i]);
    }
    free(paths);
    assert_int_equal(pg_shard_list(tmpdir, "bogus", &paths, &n, &err), PG_EINVAL);
    assert_int_equal(pg_shard_list("/nonexistent/pg19", "test", &paths, &n, &err), PG_ENOTFOUND);
    pg_shard *s;
    snprintf(p, sizeof p, "%s/test-00000.pgs", tmpdir);
    assert_int_equal(pg_shard_open(p, 1, &s, &err), PG_ECORRUPT);
    assert_int_equal(pg_shard_open("/nonexistent/x.pgs", 1, &s, &err), PG_ENOTFOUND);
}

/* The libFuzzer seed corpus, replayed through the reader in the normal
 * (sanitizer) build: nothing may crash, and the valid seeds must open. */
static void test_fuzz_corpus_replay(void **state)
{
    (void)state;
    const char *dir = "shards/fuzz/corpus";
    DIR *d = opendir(dir);
    if (!d)
        fail_msg("%s: missing (run from the repository root)", dir);
    struct dirent *de;
    int files = 0, opened = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        pg_error err = {0};
        pg_shard *s;
        files++;
        for (int verify = 0; verify <= 1; verify++) {
            if (pg_shard_open(p, verify, &s, &err) != 0)
                continue;
            opened += verify;
            for (uint64_t k = 0; k < pg_shard_num_books(s); k++) {
                pg_shard_book b;
                assert_int_equal(pg_shard_get_book(s, k, &b, &err), 0);
                uint32_t *t = malloc((b.n_tokens + 1) * sizeof *t);
                uint8_t *st = malloc(b.n_tokens + 1);
                uint64_t *f = malloc((b.n_words + 1) * sizeof *f);
                (void)pg_shard_tokens(s, k, 0, b.n_tokens, t, &err);
                (void)pg_shard_word_starts(s, k, 0, b.n_tokens, st, &err);
                (void)pg_shard_word_freqs(s, k, 0, b.n_words, f, &err);
                free(t);
                free(st);
                free(f);
            }
            pg_shard_close(s);
        }
    }
    closedir(d);
    assert_true(files >= 3);
    assert_true(opened >= 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_u16),
        cmocka_unit_test(test_roundtrip_u32),
        cmocka_unit_test(test_empty_shard),
        cmocka_unit_test(test_every_flip_detected),
        cmocka_unit_test(test_old_version_refused),
        cmocka_unit_test(test_writer_rejects),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_fuzz_corpus_replay),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
