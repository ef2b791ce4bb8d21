/* Unit tests for leaderboard/: the fuzz seed corpus replayed through the
 * validator, the NLL dump reader's rejections, bucket boundaries, and
 * `verify` end to end against shards written with the shard writer: an
 * honest entry becomes "consistent"; a tampered dump, a tampered metric, a
 * wrong shard hash or a missing book does not, and a failed verification
 * leaves the entry file untouched. The --sample book choice, and the rules
 * for a "verified" entry's reproduction record. (The re-run itself needs the
 * harness binary: tests/leaderboard/test_reproduce.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "leaderboard/entries.h"
#include "leaderboard/nll_dump.h"
#include "leaderboard/render.h"
#include "leaderboard/reproduce.h"
#include "leaderboard/results.h"
#include "leaderboard/verify.h"
#include "shards/pg19_official.h"
#include "shards/shard_reader.h"
#include "shards/shard_writer.h"

#define CORPUS "leaderboard/fuzz/corpus"

/* ---- seed corpus replay ---------------------------------------------------- */

static void test_seed_corpus(void **state)
{
    (void)state;
    DIR *d = opendir(CORPUS);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", CORPUS, de->d_name);
        char *buf;
        size_t len;
        pg_error err;
        assert_int_equal(pg_read_file(path, LB_MAX_JSON_BYTES + 1, &buf, &len, &err), 0);
        json_t *root = NULL;
        int parsed = lb_parse(buf, len, path, &root, &err) == PG_OK;
        int sub = parsed ? lb_validate(root, LB_SUBMISSION, path, &err) : PG_EINVAL;
        int ent = parsed ? lb_validate(root, LB_ENTRY, path, &err) : PG_EINVAL;
        lb_validate(root ? root : json_null(), LB_REPORTED_SUBMISSION, path, &err);
        if (ent == 0) { /* as the fuzz target does: a valid entry renders */
            lb_entry e = {.path = path, .id = de->d_name, .json = root};
            lb_entry_list l = {.items = &e, .n = 1};
            lb_buf b;
            assert_int_equal(lb_render_html(&l, &b, &err), 0);
            assert_non_null(strstr(b.data, "</html>"));
            lb_buf_free(&b);
            assert_int_equal(lb_render_markdown(&l, &b, &err), 0);
            lb_buf_free(&b);
        }
        /* the seed names say what the validator must conclude */
        if (strncmp(de->d_name, "submission-", 11) == 0) {
            if (sub != 0)
                fail_msg("%s rejected: %s", path, err.msg);
        } else if (strncmp(de->d_name, "entry-", 6) == 0) {
            if (ent != 0)
                fail_msg("%s rejected: %s", path, err.msg);
        } else if (strncmp(de->d_name, "reject-", 7) == 0) {
            assert_true(sub != 0 && ent != 0);
        }
        json_decref(root);
        free(buf);
        n++;
    }
    closedir(d);
    assert_true(n >= 8);
}

/* The NLL-dump fuzz seeds: valid-* parse, reject-* do not; every value of a
 * parsed dump is readable. */
static void test_nll_corpus(void **state)
{
    (void)state;
    const char *dir = "leaderboard/fuzz/nll_corpus";
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        char *buf;
        size_t len;
        pg_error err;
        assert_int_equal(pg_read_file(path, 1 << 20, &buf, &len, &err), 0);
        lb_nll_dump dump;
        int rc = lb_nll_parse((const uint8_t *)buf, len, path, &dump, &err);
        if (strncmp(de->d_name, "valid-", 6) == 0) {
            if (rc)
                fail_msg("%s rejected: %s", path, err.msg);
            double sum = 0;
            for (uint64_t t = 0; t < dump.n_tokens; t++)
                sum += lb_nll_value(&dump, t);
            assert_true(sum >= 0);
        } else if (strncmp(de->d_name, "reject-", 7) == 0) {
            assert_int_not_equal(rc, 0);
        }
        free(buf);
        n++;
    }
    closedir(d);
    assert_true(n >= 4);
}

/* ---- small helpers --------------------------------------------------------- */

static char tmpdir[256];

static int setup_tmp(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/lb_test_XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_tmp(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* A PG19NLL1 dump in memory; fix_crc=0 leaves the CRC of the untampered data. */
static uint8_t *make_dump(uint64_t nb, const uint64_t *ids, const uint64_t *counts,
                          const float *nll, size_t *size)
{
    uint64_t nt = 0;
    for (uint64_t i = 0; i < nb; i++)
        nt += counts[i];
    *size = 32 + 16 * nb + 4 * nt + 4;
    uint8_t *b = calloc(1, *size);
    memcpy(b, "PG19NLL1", 8);
    put32(b + 8, 1);
    put32(b + 12, 1);
    put64(b + 16, nb);
    put64(b + 24, nt);
    for (uint64_t i = 0; i < nb; i++) {
        put64(b + 32 + 16 * i, ids[i]);
        put64(b + 40 + 16 * i, counts[i]);
    }
    memcpy(b + 32 + 16 * nb, nll, 4 * nt);
    put32(b + *size - 4, pg_crc32c_update(0, b, *size - 4));
    return b;
}

static int write_file(const char *path, const void *data, size_t len)
{
    pg_error err;
    return pg_write_file_atomic(path, data, len, &err);
}

/* ---- NLL dump reader ------------------------------------------------------- */

static void test_nll_dump_reader(void **state)
{
    (void)state;
    uint64_t ids[2] = {7, 9}, counts[2] = {3, 2};
    float nll[5] = {1.0f, 2.0f, 0.5f, 0.25f, 3.0f};
    size_t size;
    uint8_t *good = make_dump(2, ids, counts, nll, &size);
    char path[512];
    snprintf(path, sizeof path, "%s/d.nll", tmpdir);
    pg_error err;
    lb_nll_dump d;

    assert_int_equal(write_file(path, good, size), 0);
    assert_int_equal(lb_nll_open(path, &d, &err), 0);
    assert_int_equal(d.n_books, 2);
    assert_int_equal(d.n_tokens, 5);
    uint64_t id, n;
    lb_nll_book(&d, 1, &id, &n);
    assert_int_equal(id, 9);
    assert_int_equal(n, 2);
    assert_true(lb_nll_value(&d, 4) == 3.0f);
    lb_nll_close(&d);

    struct { size_t off; uint8_t val; const char *why; } flips[] = {
        {0, 'X', "magic"}, {8, 2, "version"}, {12, 2, "dtype"},
        {16, 3, "n_books vs size"}, {24, 9, "n_tokens vs size"},
        {40, 4, "book counts vs n_tokens"}, {32 + 32 + 1, 0x77, "crc (payload byte)"},
    };
    for (size_t i = 0; i < sizeof flips / sizeof flips[0]; i++) {
        uint8_t *bad = malloc(size);
        memcpy(bad, good, size);
        bad[flips[i].off] = flips[i].val;
        assert_int_equal(write_file(path, bad, size), 0);
        if (lb_nll_open(path, &d, &err) == 0)
            fail_msg("a dump with a bad %s was accepted", flips[i].why);
        free(bad);
    }
    /* huge counts must not overflow the size check */
    uint8_t *bad = malloc(size);
    memcpy(bad, good, size);
    put64(bad + 16, UINT64_MAX / 8);
    put64(bad + 24, UINT64_MAX / 2);
    assert_int_equal(write_file(path, bad, size), 0);
    assert_int_not_equal(lb_nll_open(path, &d, &err), 0);
    /* truncated */
    assert_int_equal(write_file(path, good, size - 1), 0);
    assert_int_not_equal(lb_nll_open(path, &d, &err), 0);
    assert_int_equal(write_file(path, good, 10), 0);
    assert_int_not_equal(lb_nll_open(path, &d, &err), 0);
    free(bad);
    free(good);
}

static void test_bucket_boundaries(void **state)
{
    (void)state;
    assert_int_equal(lb_bucket_of(0), 3);
    assert_int_equal(lb_bucket_of(99), 3);
    assert_int_equal(lb_bucket_of(100), 2);
    assert_int_equal(lb_bucket_of(999), 2);
    assert_int_equal(lb_bucket_of(1000), 1);
    assert_int_equal(lb_bucket_of(9999), 1);
    assert_int_equal(lb_bucket_of(10000), 0);
    assert_int_equal(lb_bucket_of(UINT64_MAX), 0);
}

/* ---- verify end to end ------------------------------------------------------- */

enum { NBOOKS = 3, VOCAB = 200 };
static const uint64_t book_ids[NBOOKS] = {101, 205, 377};
static const uint64_t book_tokens[NBOOKS] = {1500, 700, 2300};
static const uint64_t word_freq_choices[] = {0, 7, 99, 100, 640, 999, 1000, 4321, 9999, 10000, 123456};

typedef struct fixture {
    uint8_t *starts[NBOOKS];
    uint64_t *freqs[NBOOKS];
    uint64_t words[NBOOKS];
    float *nll;               /* all books, in book order */
    uint64_t n_tokens;
    char shard_dir[512], entry_path[1024], dump_path[512];
    char shard_sha[2][65];
    pg19_book_fact facts[NBOOKS]; /* what the shards record of each book's text */
    char books_sha[65];           /* their books_sha256 */
} fixture;

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Expected metrics, computed directly from the fixture's arrays; prefix > 0
 * scores only the first prefix tokens of each book (bytes then unknown). */
static void expected_prefix(const fixture *f, uint64_t prefix, lb_metrics *m)
{
    memset(m, 0, sizeof *m);
    uint64_t t = 0;
    for (int b = 0; b < NBOOKS; b++) {
        int bucket = -1;
        uint64_t w = 0;
        uint64_t n = prefix && prefix < book_tokens[b] ? prefix : book_tokens[b];
        for (uint64_t i = 0; i < book_tokens[b]; i++, t++) {
            if (i >= n)
                continue;
            if (f->starts[b][i]) {
                bucket = lb_bucket_of(f->freqs[b][w++]);
                m->bucket_words[bucket]++;
            }
            m->bucket_tokens[bucket]++;
            m->bucket_nll[bucket] += f->nll[t];
        }
        m->words += w;
        m->tokens += n;
        m->bytes += prefix ? 0 : book_tokens[b] * 3 + 1;
    }
    for (int k = 0; k < LB_BUCKETS; k++)
        m->nll += m->bucket_nll[k];
    m->books = NBOOKS;
}

static void expected(const fixture *f, lb_metrics *m)
{
    expected_prefix(f, 0, m);
}

/* A results JSON (exact normaliser: a 3-book subset of the test split). */
static json_t *results_json(const fixture *f, const lb_metrics *m, const uint8_t vocab_sha[32])
{
    char vhex[65];
    pg_hex(vocab_sha, 32, vhex);
    json_t *buckets = json_array();
    for (int k = 0; k < LB_BUCKETS; k++) {
        json_t *b = json_pack("{s:s, s:I, s:o, s:I, s:I, s:f, s:o}", "name", lb_bucket_names[k],
                              "min_freq", (json_int_t)lb_bucket_min[k], "max_freq",
                              lb_bucket_max[k] < 0 ? json_null() : json_integer(lb_bucket_max[k]),
                              "words", (json_int_t)m->bucket_words[k], "tokens",
                              (json_int_t)m->bucket_tokens[k], "nll", m->bucket_nll[k], "word_ppl",
                              m->bucket_words[k]
                                  ? json_real(exp(m->bucket_nll[k] / (double)m->bucket_words[k]))
                                  : json_null());
        json_array_append_new(buckets, b);
    }
    double ppl = exp(m->nll / (double)m->words);
    json_t *r = json_pack(
        "{s:s, s:{s:s, s:s, s:I, s:s, s:n, s:I},"
        " s:{s:s, s:s, s:I, s:s},"
        " s:{s:I, s:I, s:I, s:n, s:I},"
        " s:{s:s, s:b, s:s, s:I, s:s, s:s, s:n, s:[{s:s, s:s}, {s:s, s:s}]},"
        " s:{s:I, s:I, s:I, s:f, s:f, s:o},"
        " s:{s:s, s:I, s:f}, s:{s:s, s:I, s:f}, s:o,"
        " s:{s:f, s:f}, s:{s:s, s:s}, s:s, s:{s:s, s:I, s:n}}",
        "schema", "pg19-results/1",
        "model", "name", "tiny-txl", "family", "transformer-xl", "params", (json_int_t)12345,
        "config_sha256", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "weights_sha256", "random_init_seed", (json_int_t)42,
        "tokenizer", "name", "test-200", "kind", "sentencepiece-unigram", "vocab_size",
        (json_int_t)VOCAB, "vocab_sha256", vhex,
        "context", "window", (json_int_t)64, "memory", (json_int_t)64, "compressed_memory",
        (json_int_t)0, "compression_rate", "attention_span", (json_int_t)128,
        "eval", "split", "test", "official", 0, "book_set", "custom", "books", (json_int_t)NBOOKS,
        "books_sha256", f->books_sha, "book_handling", "whole", "chunk_tokens", "shards", "file", "test-00000.pgs", "sha256", f->shard_sha[0],
        "file", "test-00001.pgs", "sha256", f->shard_sha[1],
        "totals", "tokens", (json_int_t)m->tokens, "bytes", (json_int_t)m->bytes, "words",
        (json_int_t)m->words, "nll", m->nll, "token_ppl", exp(m->nll / (double)m->tokens),
        "bits_per_byte", m->bytes ? json_real(m->nll / ((double)m->bytes * M_LN2)) : json_null(),
        "word_ppl", "normaliser", "exact", "words", (json_int_t)m->words, "value", ppl,
        "word_ppl_exact", "normaliser", "exact", "words", (json_int_t)m->words, "value", ppl,
        "buckets", buckets,
        "throughput", "tokens_per_s", 1000.0, "seconds", 4.5,
        "harness", "name", "pg19-harness", "version", "0.1.0",
        "date", "2026-11-23T12:00:00Z",
        "hardware", "cpu", "test", "threads", (json_int_t)2, "gpu");
    return r;
}

static fixture fx;

/* cmocka cannot fail_msg() inside a group setup; report and return -1. */
#define SETUP_FAIL()                          \
    do {                                      \
        print_error("setup: %s\n", err.msg);  \
        return -1;                            \
    } while (0)

static int setup_fixture(void **state)
{
    (void)state;
    if (setup_tmp(state))
        return -1;
    fixture *f = &fx;
    memset(f, 0, sizeof *f);
    snprintf(f->shard_dir, sizeof f->shard_dir, "%s/shards", tmpdir);
    pg_error err;
    if (pg_mkdirs(f->shard_dir, &err))
        return -1;
    uint8_t vocab_sha[32];
    pg_sha256("test vocabulary", 15, vocab_sha);
    for (int b = 0; b < NBOOKS; b++)
        f->n_tokens += book_tokens[b];
    f->nll = malloc(f->n_tokens * sizeof *f->nll);
    uint64_t t = 0;
    /* shard 0 holds books 0 and 1, shard 1 holds book 2 */
    pg_shard_writer *w = NULL;
    for (int b = 0; b < NBOOKS; b++) {
        uint64_t n = book_tokens[b];
        uint32_t *tokens = malloc(n * sizeof *tokens);
        f->starts[b] = malloc(n);
        f->freqs[b] = malloc(n * sizeof *f->freqs[b]);
        uint64_t words = 0;
        for (uint64_t i = 0; i < n; i++) {
            tokens[i] = 1 + (uint32_t)(next_rand() % (VOCAB - 1));
            f->starts[b][i] = i == 0 || next_rand() % 5 < 2;
            if (f->starts[b][i])
                f->freqs[b][words++] =
                    word_freq_choices[next_rand() % (sizeof word_freq_choices / 8)];
            /* NLLs exactly representable in f32 and double */
            f->nll[t++] = (float)(next_rand() % 4096) / 256.0f;
        }
        f->words[b] = words;
        if (b == 0 || b == 2) {
            if (w) {
                char p[600];
                snprintf(p, sizeof p, "%s/test-00000.pgs", f->shard_dir);
                if (pg_shard_writer_write(w, p, &err))
                    SETUP_FAIL();
                pg_shard_writer_free(w);
            }
            if (pg_shard_writer_new(&w, PG_SPLIT_TEST, VOCAB, 0, vocab_sha, 1, &err))
                SETUP_FAIL();
        }
        pg19_book_fact *bf = &f->facts[b];
        bf->id = book_ids[b];
        bf->n_bytes = n * 3 + 1;
        pg_sha256(&book_ids[b], sizeof book_ids[b], bf->sha256); /* any per-book value */
        if (pg_shard_writer_add_book(w, book_ids[b], n * 3 + 1, bf->sha256, tokens, f->starts[b],
                                     n, f->freqs[b], words, &err))
            SETUP_FAIL();
        free(tokens);
    }
    char p[600];
    snprintf(p, sizeof p, "%s/test-00001.pgs", f->shard_dir);
    if (pg_shard_writer_write(w, p, &err))
        SETUP_FAIL();
    pg_shard_writer_free(w);
    for (int s = 0; s < 2; s++) {
        uint8_t md5[16], sha[32];
        uint32_t crc;
        uint64_t size;
        snprintf(p, sizeof p, "%s/test-%05d.pgs", f->shard_dir, s);
        if (pg_hash_file(p, md5, sha, &crc, &size, &err))
            SETUP_FAIL();
        pg_hex(sha, 32, f->shard_sha[s]);
    }
    uint8_t digest[32];
    if (pg19_books_digest(f->facts, NBOOKS, digest, &err))
        SETUP_FAIL();
    pg_hex(digest, 32, f->books_sha);
    return 0;
}

static int teardown_fixture(void **state)
{
    for (int b = 0; b < NBOOKS; b++) {
        free(fx.starts[b]);
        free(fx.freqs[b]);
    }
    free(fx.nll);
    return teardown_tmp(state);
}

/* Writes the honest dump (books in the given order) and returns its path. */
static void write_dump(const fixture *f, const int *order, const float *nll_override)
{
    const float *src = nll_override ? nll_override : f->nll;
    uint64_t ids[NBOOKS], counts[NBOOKS];
    float *nll = malloc(f->n_tokens * sizeof *nll);
    uint64_t off[NBOOKS], o = 0, t = 0;
    for (int b = 0; b < NBOOKS; b++) {
        off[b] = o;
        o += book_tokens[b];
    }
    for (int i = 0; i < NBOOKS; i++) {
        int b = order[i];
        ids[i] = book_ids[b];
        counts[i] = book_tokens[b];
        memcpy(nll + t, src + off[b], book_tokens[b] * sizeof *nll);
        t += book_tokens[b];
    }
    size_t size;
    uint8_t *d = make_dump(NBOOKS, ids, counts, nll, &size);
    assert_int_equal(write_file(f->dump_path, d, size), 0);
    free(d);
    free(nll);
}

/* Stores an entry made from (possibly edited) results; returns its path in f. */
static void store_entry(fixture *f, json_t *results, const char *dirname)
{
    pg_error err;
    char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", tmpdir, dirname);
    if (lb_validate(results, LB_SUBMISSION, "results", &err))
        fail_msg("fixture results invalid: %s", err.msg);
    json_t *entry;
    assert_int_equal(lb_entry_from_submission(results, 0, "unit test", NULL, &entry, &err), 0);
    if (lb_entry_store(dir, entry, f->entry_path, sizeof f->entry_path, &err))
        fail_msg("%s", err.msg);
    json_decref(entry);
}

static char *slurp(const char *path)
{
    char *buf;
    size_t len;
    pg_error err;
    assert_int_equal(pg_read_file(path, 1 << 20, &buf, &len, &err), 0);
    return buf;
}

static json_t *honest_results(const fixture *f)
{
    lb_metrics m;
    expected(f, &m);
    uint8_t vocab_sha[32];
    pg_sha256("test vocabulary", 15, vocab_sha);
    json_t *r = results_json(f, &m, vocab_sha);
    assert_non_null(r);
    return r;
}

/* With PG19_LB_FIXTURE_OUT=DIR, also leaves DIR/shards/test-*.pgs,
 * DIR/results/test.json and DIR/results/test.nll in the layout of the
 * pipeline, so tests/leaderboard/test_demo_stage.py can run stage 50's
 * verify step on real shards. */
static void export_fixture(const fixture *f, const json_t *results)
{
    const char *out = getenv("PG19_LB_FIXTURE_OUT");
    if (!out)
        return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s/shards' '%s/results' && cp '%s'/test-*.pgs '%s/shards/' "
             "&& cp '%s' '%s/results/test.nll'", out, out, f->shard_dir, out, f->dump_path, out);
    assert_int_equal(system(cmd), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/results/test.json", out);
    assert_int_equal(json_dump_file(results, path, JSON_INDENT(2) | JSON_REAL_PRECISION(17)), 0);
}

static void test_verify_honest(void **state)
{
    (void)state;
    fixture *f = &fx;
    snprintf(f->dump_path, sizeof f->dump_path, "%s/honest.nll", tmpdir);
    int order[NBOOKS] = {2, 0, 1}; /* evaluation order is free */
    write_dump(f, order, NULL);
    json_t *r = honest_results(f);
    export_fixture(f, r);
    store_entry(f, r, "honest");
    json_decref(r);
    lb_verify_report rep;
    pg_error err;
    int rc = lb_verify_entry(f->entry_path, f->dump_path, f->shard_dir, &rep, &err);
    if (rc)
        fail_msg("verify failed: %s", err.msg);
    for (size_t i = 0; i < rep.n_mismatch; i++)
        print_error("mismatch: %s\n", rep.mismatch[i]);
    assert_int_equal(rep.n_mismatch, 0);
    assert_true(rep.n_checks >= 20);
    assert_int_equal(rep.books, NBOOKS);
    /* the entry is now consistent (not verified: nothing was re-run), still
     * valid, and records the dump's hash */
    assert_string_equal(rep.status, "consistent");
    lb_verify_report_free(&rep);
    json_t *e;
    assert_int_equal(lb_load_file(f->entry_path, &e, &err), 0);
    assert_int_equal(lb_validate(e, LB_ENTRY, f->entry_path, &err), 0);
    const json_t *prov = json_object_get(e, "provenance");
    assert_string_equal(json_string_value(json_object_get(prov, "status")), "consistent");
    assert_true(json_is_null(json_object_get(prov, "reproduction")));
    const char *h = json_string_value(json_object_get(
        json_object_get(prov, "consistency"), "nll_sha256"));
    uint8_t md5[16], sha[32];
    uint32_t crc;
    uint64_t size;
    char hex[65];
    assert_int_equal(pg_hash_file(f->dump_path, md5, sha, &crc, &size, &err), 0);
    pg_hex(sha, 32, hex);
    assert_string_equal(h, hex);
    json_decref(e);
}

/* Runs verify on an entry that must NOT verify; checks the file is unchanged. */
static void expect_not_verified(fixture *f, int want_error)
{
    char *before = slurp(f->entry_path);
    lb_verify_report rep;
    pg_error err;
    int rc = lb_verify_entry(f->entry_path, f->dump_path, f->shard_dir, &rep, &err);
    /* say why, so a reader of the log sees each case fail for its own reason */
    print_message("# not verified: %s\n", rc ? err.msg : rep.n_mismatch ? rep.mismatch[0] : "?");
    if (want_error)
        assert_int_not_equal(rc, 0);
    else if (rc != 0)
        fail_msg("expected mismatches, got an error: %s", err.msg);
    else
        assert_true(rep.n_mismatch > 0);
    lb_verify_report_free(&rep);
    char *after = slurp(f->entry_path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_verify_tampered_dump(void **state)
{
    (void)state;
    fixture *f = &fx;
    json_t *r = honest_results(f);
    store_entry(f, r, "tampered-dump");
    json_decref(r);
    int order[NBOOKS] = {0, 1, 2};
    /* one token's NLL lowered, CRC recomputed: a well-formed but dishonest dump */
    float *nll = malloc(f->n_tokens * sizeof *nll);
    memcpy(nll, f->nll, f->n_tokens * sizeof *nll);
    nll[1234] = nll[1234] > 1 ? nll[1234] - 1 : nll[1234] + 1;
    snprintf(f->dump_path, sizeof f->dump_path, "%s/tampered.nll", tmpdir);
    write_dump(f, order, nll);
    expect_not_verified(f, 0);
    /* a negative NLL is not a probability */
    memcpy(nll, f->nll, f->n_tokens * sizeof *nll);
    nll[5] = -0.5f;
    write_dump(f, order, nll);
    expect_not_verified(f, 1);
    /* a flipped byte without a new CRC */
    write_dump(f, order, NULL);
    char *buf;
    size_t len;
    pg_error err;
    assert_int_equal(pg_read_file(f->dump_path, 1 << 24, &buf, &len, &err), 0);
    buf[100] ^= 0x40;
    assert_int_equal(write_file(f->dump_path, buf, len), 0);
    free(buf);
    expect_not_verified(f, 1);
    /* a book missing from the dump */
    uint64_t ids[2] = {book_ids[0], book_ids[1]}, counts[2] = {book_tokens[0], book_tokens[1]};
    size_t size;
    uint8_t *d = make_dump(2, ids, counts, f->nll, &size);
    assert_int_equal(write_file(f->dump_path, d, size), 0);
    free(d);
    expect_not_verified(f, 1);
    /* a book scored twice instead of another */
    uint64_t ids3[3] = {book_ids[0], book_ids[0], book_ids[2]};
    uint64_t counts3[3] = {book_tokens[0], book_tokens[0], book_tokens[2]};
    float *nll3 = malloc((2 * book_tokens[0] + book_tokens[2]) * sizeof *nll3);
    memcpy(nll3, f->nll, book_tokens[0] * 4);
    memcpy(nll3 + book_tokens[0], f->nll, book_tokens[0] * 4);
    memcpy(nll3 + 2 * book_tokens[0], f->nll + book_tokens[0] + book_tokens[1],
           book_tokens[2] * 4);
    d = make_dump(3, ids3, counts3, nll3, &size);
    assert_int_equal(write_file(f->dump_path, d, size), 0);
    free(d);
    free(nll3);
    expect_not_verified(f, 1);
    free(nll);
}

static void test_verify_tampered_metric(void **state)
{
    (void)state;
    fixture *f = &fx;
    int order[NBOOKS] = {0, 1, 2};
    snprintf(f->dump_path, sizeof f->dump_path, "%s/honest2.nll", tmpdir);
    write_dump(f, order, NULL);
    lb_metrics m;
    expected(f, &m);
    uint8_t vocab_sha[32];
    pg_sha256("test vocabulary", 15, vocab_sha);

    /* every NLL 1% lower, consistently through totals, buckets and
     * perplexities: the file is self-consistent, only the dump disagrees */
    lb_metrics t = m;
    t.nll = 0;
    for (int k = 0; k < LB_BUCKETS; k++) {
        t.bucket_nll[k] *= 0.99;
        t.nll += t.bucket_nll[k];
    }
    json_t *r = results_json(f, &t, vocab_sha);
    store_entry(f, r, "tampered-nll");
    json_decref(r);
    expect_not_verified(f, 0);

    /* one word moved from the rare to the frequent bucket */
    t = m;
    t.bucket_words[0]++;
    t.bucket_words[3]--;
    t.bucket_tokens[0]++;
    t.bucket_tokens[3]--;
    r = results_json(f, &t, vocab_sha);
    store_entry(f, r, "tampered-bucket");
    json_decref(r);
    expect_not_verified(f, 0);

    /* bytes inflated (bits per byte looks better), consistently */
    t = m;
    t.bytes += 1000;
    r = results_json(f, &t, vocab_sha);
    store_entry(f, r, "tampered-bytes");
    json_decref(r);
    expect_not_verified(f, 0);

    /* a wrong shard hash */
    r = results_json(f, &m, vocab_sha);
    json_t *sh = json_array_get(json_object_get(json_object_get(r, "eval"), "shards"), 1);
    json_object_set_new(sh, "sha256", json_string("00000000000000000000000000000000"
                                                  "00000000000000000000000000000000"));
    store_entry(f, r, "tampered-shard");
    json_decref(r);
    expect_not_verified(f, 0);

    /* a different vocabulary */
    uint8_t other[32];
    pg_sha256("another vocabulary", 18, other);
    r = results_json(f, &m, other);
    store_entry(f, r, "tampered-vocab");
    json_decref(r);
    expect_not_verified(f, 0);

    /* an nll_dump hash that is not this dump's */
    r = results_json(f, &m, vocab_sha);
    json_object_set_new(r, "nll_dump",
                        json_pack("{s:s, s:s}", "file", "test.nll", "sha256",
                                  "1111111111111111111111111111111111111111111111111111111111111111"));
    store_entry(f, r, "tampered-dumphash");
    json_decref(r);
    expect_not_verified(f, 0);
}

/* Verify recomputes what the books are from the shards' per-book SHA-256:
 * an entry that names other books, or calls them a PG-19 subset, disagrees. */
static void expect_mismatch_on(fixture *f, const char *what)
{
    lb_verify_report rep;
    pg_error err;
    char *before = slurp(f->entry_path);
    assert_int_equal(lb_verify_entry(f->entry_path, f->dump_path, f->shard_dir, &rep, &err), 0);
    int found = 0;
    for (size_t i = 0; i < rep.n_mismatch; i++)
        found |= strncmp(rep.mismatch[i], what, strlen(what)) == 0;
    if (!found)
        fail_msg("no mismatch on %s (%zu mismatches)", what, rep.n_mismatch);
    lb_verify_report_free(&rep);
    char *after = slurp(f->entry_path);
    assert_string_equal(before, after);
    free(before);
    free(after);
}

static void test_verify_book_set(void **state)
{
    (void)state;
    fixture *f = &fx;
    int order[NBOOKS] = {0, 1, 2};
    snprintf(f->dump_path, sizeof f->dump_path, "%s/books.nll", tmpdir);
    write_dump(f, order, NULL);
    json_t *r = honest_results(f);
    json_t *ev = json_object_get(r, "eval");
    char other[65];
    snprintf(other, sizeof other, "%s", f->books_sha);
    other[0] = other[0] == '0' ? '1' : '0';
    json_object_set_new(ev, "books_sha256", json_string(other));
    store_entry(f, r, "books-digest");
    expect_mismatch_on(f, "eval.books_sha256");
    json_object_set_new(ev, "books_sha256", json_string(f->books_sha));
    json_object_set_new(ev, "book_set", json_string("pg19-subset"));
    store_entry(f, r, "books-subset");
    expect_mismatch_on(f, "eval.book_set");
    json_decref(r);
}

/* `harness run --max-tokens-per-book P` scores the first P tokens of each
 * book ("prefix"); verify recomputes exactly that. */
static void test_verify_prefix(void **state)
{
    (void)state;
    fixture *f = &fx;
    const uint64_t P = 1000; /* longer than book 1 (700 tokens): it is scored whole */
    lb_metrics m;
    expected_prefix(f, P, &m);
    uint8_t vocab_sha[32];
    pg_sha256("test vocabulary", 15, vocab_sha);
    json_t *r = results_json(f, &m, vocab_sha);
    json_t *ev = json_object_get(r, "eval"), *tot = json_object_get(r, "totals");
    json_object_set_new(ev, "book_handling", json_string("prefix"));
    json_object_set_new(ev, "chunk_tokens", json_integer((json_int_t)P));
    store_entry(f, r, "prefix");
    /* the dump holds the first P NLLs of each book */
    uint64_t ids[NBOOKS], counts[NBOOKS], t = 0, o = 0;
    float *nll = malloc(f->n_tokens * sizeof *nll);
    for (int b = 0; b < NBOOKS; b++) {
        ids[b] = book_ids[b];
        counts[b] = book_tokens[b] < P ? book_tokens[b] : P;
        memcpy(nll + t, f->nll + o, counts[b] * sizeof *nll);
        t += counts[b];
        o += book_tokens[b];
    }
    size_t size;
    uint8_t *d = make_dump(NBOOKS, ids, counts, nll, &size);
    snprintf(f->dump_path, sizeof f->dump_path, "%s/prefix.nll", tmpdir);
    assert_int_equal(write_file(f->dump_path, d, size), 0);
    lb_verify_report rep;
    pg_error err;
    if (lb_verify_entry(f->entry_path, f->dump_path, f->shard_dir, &rep, &err))
        fail_msg("verify failed: %s", err.msg);
    for (size_t i = 0; i < rep.n_mismatch; i++)
        print_error("mismatch: %s\n", rep.mismatch[i]);
    assert_int_equal(rep.n_mismatch, 0);
    assert_int_equal(rep.tokens, P + 700 + P);
    lb_verify_report_free(&rep);
    /* the same dump against an entry that claims whole books does not verify */
    json_object_set_new(ev, "book_handling", json_string("whole"));
    json_object_set_new(ev, "chunk_tokens", json_null());
    json_object_set_new(tot, "bytes", json_integer((json_int_t)(book_tokens[0] * 3 + 1)));
    json_object_set_new(tot, "bits_per_byte",
                        json_real(m.nll / ((double)(book_tokens[0] * 3 + 1) * M_LN2)));
    store_entry(f, r, "prefix-as-whole");
    expect_not_verified(f, 1);
    json_decref(r);
    free(d);
    free(nll);
}

/* --sample: the same seed chooses the same books, distinct, ascending, from
 * the given ids; another seed chooses others; asking for all gives all. */
static void test_sample_books(void **state)
{
    (void)state;
    uint64_t ids[1000], a[20], b[20], c[20], all[1000];
    pg_error err;
    for (int i = 0; i < 1000; i++)
        ids[i] = 10000 + 7 * (uint64_t)i;
    assert_int_equal(lb_sample_books(ids, 1000, 0x0123456789abcdefull, 20, a, &err), 0);
    assert_int_equal(lb_sample_books(ids, 1000, 0x0123456789abcdefull, 20, b, &err), 0);
    assert_int_equal(lb_sample_books(ids, 1000, 0x0123456789abcdeeull, 20, c, &err), 0);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    for (int i = 0; i < 20; i++) {
        assert_true(a[i] >= 10000 && (a[i] - 10000) % 7 == 0 && a[i] < 10000 + 7000);
        if (i)
            assert_true(a[i] > a[i - 1]);
    }
    assert_int_equal(lb_sample_books(ids, 1000, 5, 1000, all, &err), 0);
    assert_memory_equal(all, ids, sizeof ids);
    /* the seed is the first 8 bytes of the content hash, big-endian */
    uint8_t sha[32] = {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xff};
    assert_true(lb_sample_seed(sha) == 0x0123456789abcdefull);
    /* pinned: what the Python implementation of reproduce.h's rule in
     * tests/leaderboard/test_reproduce.py (sample()) chooses */
    uint64_t small[5] = {1, 2, 3, 4, 5}, pick[3];
    assert_int_equal(lb_sample_books(small, 5, 0, 2, pick, &err), 0);
    assert_true(pick[0] == 1 && pick[1] == 2);
    assert_int_equal(lb_sample_books(ids, 1000, 0x0123456789abcdefull, 3, pick, &err), 0);
    assert_true(pick[0] == 10756 && pick[1] == 12828 && pick[2] == 16755);
}

/* A verified entry's reproduction record must agree with the entry: its
 * weights, its config, its consistency record, the documented tolerance,
 * and an entry without weights can never be verified. */
static json_t *verified_entry(void)
{
    json_t *sub;
    pg_error err;
    assert_int_equal(lb_load_file(CORPUS "/submission-test-official.json", &sub, &err), 0);
    json_t *e;
    assert_int_equal(lb_entry_from_submission(sub, 0, "unit test", NULL, &e, &err), 0);
    json_decref(sub);
    json_t *m = json_object_get(e, "model");
    json_object_set_new(m, "weights_sha256", json_string("d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"
                                                         "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4"));
    json_object_set_new(m, "random_init_seed", json_null());
    const char *nll = "abababababababababababababababababababababababababababababababab";
    json_t *prov = json_object_get(e, "provenance");
    json_object_set_new(prov, "status", json_string("verified"));
    json_object_set_new(prov, "consistency",
                        json_pack("{s:s, s:s, s:s}", "date", "2026-11-30T00:00:00Z",
                                  "nll_sha256", nll, "tool", LB_VERIFY_TOOL));
    json_t *books = json_array();
    for (int i = 0; i < 3; i++)
        json_array_append_new(books, json_integer(100 + i));
    json_object_set_new(
        prov, "reproduction",
        json_pack("{s:s, s:s, s:s, s:O, s:O, s:s, s:s, s:{s:f, s:f}, s:{s:i, s:s}, s:o, s:I, "
                  "s:f, s:f, s:s}",
                  "date", "2026-11-30T00:00:00Z", "tool", LB_REPRODUCE_TOOL, "harness",
                  "pg19-harness 0.1.0", "weights_sha256", json_object_get(m, "weights_sha256"),
                  "config_sha256", json_object_get(m, "config_sha256"), "backend", "cpu",
                  "precision", "fp32", "tolerance", "abs", 1e-4, "rel", 1e-5, "sample", "books",
                  3, "seed", "0123456789abcdef", "books", books, "tokens", (json_int_t)1000,
                  "max_abs_deviation", 0.0, "max_deviation_ratio", 0.0, "nll_sha256", nll));
    return e;
}

static void expect_invalid(json_t *e, const char *what)
{
    pg_error err;
    int rc = lb_validate(e, LB_ENTRY, "e.json", &err);
    if (rc == 0)
        fail_msg("accepted, should fail with \"%s\"", what);
    print_message("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, what));
    json_decref(e);
}

static void test_reproduction_record(void **state)
{
    (void)state;
    pg_error err;
    json_t *e = verified_entry();
    if (lb_validate(e, LB_ENTRY, "e.json", &err))
        fail_msg("a well-formed verified entry is refused: %s", err.msg);
    json_decref(e);
#define PROV(e) json_object_get(e, "provenance")
#define REPRO(e) json_object_get(PROV(e), "reproduction")
    /* random-init: no weights, never verified */
    e = verified_entry();
    json_object_set_new(json_object_get(e, "model"), "weights_sha256", json_null());
    json_object_set_new(json_object_get(e, "model"), "random_init_seed", json_integer(1));
    expect_invalid(e, "an entry without weights (random_init_seed) can never be verified");
    e = verified_entry();
    json_object_set_new(REPRO(e), "weights_sha256", json_string("00000000000000000000000000000000"
                                                                "00000000000000000000000000000000"));
    expect_invalid(e, "is not model.weights_sha256");
    e = verified_entry();
    json_object_set_new(REPRO(e), "nll_sha256", json_string("cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
                                                            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"));
    expect_invalid(e, "is not the dump of provenance.consistency");
    e = verified_entry(); /* a looser tolerance than the documented one */
    json_object_set_new(json_object_get(REPRO(e), "tolerance"), "abs", json_real(0.1));
    expect_invalid(e, "the documented tolerance for cpu fp32");
    e = verified_entry();
    json_object_set_new(REPRO(e), "max_deviation_ratio", json_real(1.5));
    expect_invalid(e, "max_deviation_ratio");
    e = verified_entry(); /* a GPU run has no documented tolerance */
    json_object_set_new(json_object_get(e, "hardware"), "gpu", json_string("H100"));
    expect_invalid(e, "the entry's run was gpu fp32");
    e = verified_entry(); /* the sample's count of books */
    json_array_remove(json_object_get(REPRO(e), "books"), 0);
    expect_invalid(e, "2 books, but the sample means 3");
    e = verified_entry();
    json_object_set_new(PROV(e), "reproduction", json_null());
    expect_invalid(e, "a \"verified\" entry records what was re-run");
    e = verified_entry();
    json_object_set_new(PROV(e), "status", json_string("consistent"));
    expect_invalid(e, "must be null in a \"consistent\" entry");
    e = verified_entry(); /* the old boolean */
    json_object_set_new(PROV(e), "verified", json_true());
    expect_invalid(e, "replaced by provenance.status");
#undef PROV
#undef REPRO
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_corpus),
        cmocka_unit_test(test_nll_corpus),
        cmocka_unit_test(test_bucket_boundaries),
        cmocka_unit_test_setup_teardown(test_nll_dump_reader, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_sample_books),
        cmocka_unit_test(test_reproduction_record),
    };
    const struct CMUnitTest verify_tests[] = {
        cmocka_unit_test(test_verify_honest),
        cmocka_unit_test(test_verify_tampered_dump),
        cmocka_unit_test(test_verify_tampered_metric),
        cmocka_unit_test(test_verify_prefix),
        cmocka_unit_test(test_verify_book_set),
    };
    int failed = cmocka_run_group_tests_name("leaderboard", tests, NULL, NULL);
    failed += cmocka_run_group_tests_name("leaderboard_verify", verify_tests, setup_fixture,
                                          teardown_fixture);
    return failed ? 1 : 0;
}
