/* Unit tests for harness/: compression functions on hand-computed inputs,
 * the evaluation loop over real shard files (written with the shard
 * writer): NLLs against the model's logits, word/bucket accounting,
 * invariance to batching and thread count, the NLL dump and the results
 * JSON identities of harness/RESULTS.md. The model forward itself is checked
 * against the NumPy reference in test_reference.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "harness/blas_check.h"
#include "harness/eval.h"
#include "harness/model.h"
#include "harness/results.h"
#include "harness/safetensors.h"
#include "harness/shard_source.h"
#include "shards/shard_reader.h"
#include "shards/shard_writer.h"

static char tmpdir[256];

static int setup_dir(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pg19-harness-test-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static pg_model_config tiny_config(int compression)
{
    pg_model_config c;
    memset(&c, 0, sizeof c);
    snprintf(c.name, sizeof c.name, "unit");
    snprintf(c.family, sizeof c.family, compression ? "compressive-transformer"
                                                    : "transformer-xl");
    c.vocab_size = 50;
    c.d_model = 16;
    c.n_layer = 2;
    c.n_head = 2;
    c.d_head = 8;
    c.d_ff = 20;
    c.window = 6;
    c.memory = 6;
    c.compressed_memory = compression ? 4 : 0;
    c.compression_rate = 2;
    c.compression = compression;
    c.dilation = 2;
    c.ln_eps = 1e-5f;
    return c;
}

/* ---------------------------------------------------------- compression */

static void test_compress_pooling_and_most_used(void **state)
{
    (void)state;
    pg_model_config c = tiny_config(PG_COMPRESS_MAX_POOL);
    c.d_model = 2;
    pg_layer_params lp = {0};
    /* 6 rows of d = 2 -> 3 rows */
    const float in[12] = {1, -1, 3, -5, 2, 2, 0, 4, -1, -2, -3, -4};
    float out[6];
    assert_int_equal(pg_compress(&c, &lp, in, 6, NULL, out, NULL), 0);
    const float want_max[6] = {3, -1, 2, 4, -1, -2};
    for (int i = 0; i < 6; i++)
        assert_true(out[i] == want_max[i]);
    c.compression = PG_COMPRESS_MEAN_POOL;
    assert_int_equal(pg_compress(&c, &lp, in, 6, NULL, out, NULL), 0);
    const float want_mean[6] = {2, -3, 1, 3, -2, -3};
    for (int i = 0; i < 6; i++)
        assert_true(out[i] == want_mean[i]);
    /* most used: rows 4, 1, 2 have the highest usage (ties to the older
     * row: rows 2 and 3 tie, 2 is kept); output keeps time order */
    c.compression = PG_COMPRESS_MOST_USED;
    const float usage[6] = {0.1f, 2.0f, 1.0f, 1.0f, 3.0f, 0.0f};
    assert_int_equal(pg_compress(&c, &lp, in, 6, usage, out, NULL), 0);
    const float want_used[6] = {3, -5, 2, 2, -1, -2};
    for (int i = 0; i < 6; i++)
        assert_true(out[i] == want_used[i]);
}

static void test_compress_convolutions(void **state)
{
    (void)state;
    /* d = 1, c = 2: out[j] = b + w0 x[p0(j)] + w1 x[p1(j)] */
    pg_model_config c = tiny_config(PG_COMPRESS_CONV);
    c.d_model = 1;
    float w[2] = {10.0f, 1.0f}, b = 0.5f; /* weight [out=1, in=1, k=2] */
    pg_layer_params lp = {.cw = w, .cb = &b};
    const float in[6] = {1, 2, 3, 4, 5, 6};
    float out[3];
    assert_int_equal(pg_compress(&c, &lp, in, 6, NULL, out, NULL), 0);
    /* kernel = stride = 2: (x0, x1), (x2, x3), (x4, x5) */
    assert_true(out[0] == 0.5f + 10 + 2);
    assert_true(out[1] == 0.5f + 30 + 4);
    assert_true(out[2] == 0.5f + 50 + 6);
    /* dilation 2: taps x[2j+1-2], x[2j+1] (zero before the block) */
    c.compression = PG_COMPRESS_DILATED_CONV;
    assert_int_equal(pg_compress(&c, &lp, in, 6, NULL, out, NULL), 0);
    assert_true(out[0] == 0.5f + 0 + 2);
    assert_true(out[1] == 0.5f + 20 + 4);
    assert_true(out[2] == 0.5f + 40 + 6);
    /* d = 2 checks the [out, in, k] weight layout */
    c.d_model = 2;
    c.compression = PG_COMPRESS_CONV;
    float w2[8] = {1, 0, 0, 0,   /* out 0: in 0 (t0, t1), in 1 (t0, t1) */
                   0, 0, 0, 1};  /* out 1: in 1 at t1 */
    float b2[2] = {0, 0};
    pg_layer_params lp2 = {.cw = w2, .cb = b2};
    const float in2[4] = {7, 8, 9, 11}; /* rows (7,8), (9,11) */
    float out2[2];
    assert_int_equal(pg_compress(&c, &lp2, in2, 2, NULL, out2, NULL), 0);
    assert_true(out2[0] == 7.0f);  /* out 0 = x[t0][in 0] */
    assert_true(out2[1] == 11.0f); /* out 1 = x[t1][in 1] */
}

/* ---------------------------------------------------------- evaluation */

typedef struct fake_book {
    uint64_t id, n;
    uint32_t tok[200];
    uint8_t ws[200];
    uint64_t freq[200];
    uint64_t nw;
} fake_book;

static fake_book books[7];
static const uint64_t book_lens[7] = {13, 1, 40, 0, 27, 6, 33};

static void make_books(void)
{
    uint64_t x = 99;
    for (int i = 0; i < 7; i++) {
        fake_book *b = &books[i];
        memset(b, 0, sizeof *b);
        b->id = 100 + (uint64_t)i * 3;
        b->n = book_lens[i];
        for (uint64_t t = 0; t < b->n; t++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            b->tok[t] = (uint32_t)((x >> 33) % 40);
            b->ws[t] = t == 0 || ((x >> 20) % 3 == 0);
            if (b->ws[t]) {
                static const uint64_t f[] = {0, 5, 99, 100, 999, 1000, 9999, 10000, 123456};
                b->freq[b->nw++] = f[(x >> 40) % 9];
            }
        }
    }
}

/* books 0-3 in validation-00000.pgs, 4-6 in validation-00001.pgs */
static void write_shards(void)
{
    make_books();
    uint8_t sha[32] = {1, 2, 3};
    for (int f = 0; f < 2; f++) {
        pg_shard_writer *w;
        pg_error err;
        assert_int_equal(pg_shard_writer_new(&w, PG_SPLIT_VALIDATION, 45, 44, sha, 1, &err), 0);
        for (int i = f ? 4 : 0; i < (f ? 7 : 4); i++)
            assert_int_equal(pg_shard_writer_add_book(w, books[i].id, books[i].n * 3, sha,
                                                      books[i].tok, books[i].ws, books[i].n,
                                                      books[i].freq, books[i].nw, &err), 0);
        char path[300];
        snprintf(path, sizeof path, "%s/validation-%05d.pgs", tmpdir, f);
        assert_int_equal(pg_shard_writer_write(w, path, &err), 0);
        pg_shard_writer_free(w);
    }
}

static pg_model *tiny_model(int compression)
{
    pg_model_config c = tiny_config(compression);
    pg_model *m;
    assert_int_equal(pg_model_new(&c, &m, NULL), 0);
    assert_int_equal(pg_model_random_init(m, 42, NULL), 0);
    return m;
}

static void evaluate(pg_model *m, int batch, int threads, int window, pg_eval_result *res)
{
    pg_shard_source *src;
    pg_error err;
    int rc = pg_shard_source_open(tmpdir, "validation", 0, &src, &err);
    if (rc)
        fail_msg("%s", err.msg);
    pg_set_threads(threads);
    pg_eval_opts o = {.batch = batch, .window = window, .keep_nll = 1};
    rc = pg_evaluate(m, pg_shard_source_books(src), &o, res, &err);
    if (rc)
        fail_msg("%s", err.msg);
    pg_shard_source_close(src);
}

/* The NLL of every token equals -log softmax of a single-slot forward over
 * that book alone, and the accounting matches the books. */
static void test_eval_nll_and_accounting(void **state)
{
    (void)state;
    write_shards();
    pg_model *m = tiny_model(PG_COMPRESS_CONV);
    pg_eval_result res;
    evaluate(m, 3, 2, 0, &res);
    assert_int_equal(res.n_books, 7);
    uint64_t tokens = 0, words = 0, bytes = 0;
    for (int i = 0; i < 7; i++) {
        assert_int_equal(res.book_ids[i], books[i].id);
        assert_int_equal(res.book_tokens[i], books[i].n);
        tokens += books[i].n;
        words += books[i].nw;
        bytes += books[i].n * 3;
    }
    assert_int_equal(res.tot.tokens, tokens);
    assert_int_equal(res.tot.words, words);
    assert_int_equal(res.tot.bytes, bytes);
    /* recompute book 2 by hand: BOS, then tokens; windows of 6 */
    pg_state *st;
    assert_int_equal(pg_state_new(m, 1, 6, &st, NULL), 0);
    uint64_t off = books[0].n + books[1].n;
    const fake_book *b = &books[2];
    double book_nll = 0;
    for (uint64_t p = 0; p < b->n; p += 6) {
        int L = b->n - p < 6 ? (int)(b->n - p) : 6;
        uint32_t in[6];
        for (int i = 0; i < L; i++)
            in[i] = p + i == 0 ? 44 : b->tok[p + i - 1];
        const float *lg;
        assert_int_equal(pg_forward(m, st, in, &L, &lg, NULL), 0);
        for (int i = 0; i < L; i++) {
            double mx = -1e30, s = 0;
            for (int v = 0; v < 50; v++)
                mx = lg[i * 50 + v] > mx ? lg[i * 50 + v] : mx;
            for (int v = 0; v < 50; v++)
                s += exp(lg[i * 50 + v] - mx);
            double nll = log(s) + mx - lg[i * 50 + b->tok[p + i]];
            assert_true(fabs(nll - res.nll[off + p + i]) < 1e-5);
            book_nll += res.nll[off + p + i];
        }
    }
    pg_state_free(st);
    assert_true(book_nll > 0);
    /* buckets: every word in exactly one, by the frequency of its type */
    uint64_t bw[PG_N_BUCKETS] = {0}, bt[PG_N_BUCKETS] = {0};
    for (int i = 0; i < 7; i++) {
        int64_t w = -1;
        int k = 0;
        for (uint64_t t = 0; t < books[i].n; t++) {
            if (books[i].ws[t]) {
                w++;
                k = pg_bucket_of(books[i].freq[w]);
                bw[k]++;
            }
            bt[k]++;
        }
    }
    double nll_sum = 0;
    for (int k = 0; k < PG_N_BUCKETS; k++) {
        assert_int_equal(res.tot.bucket_words[k], bw[k]);
        assert_int_equal(res.tot.bucket_tokens[k], bt[k]);
        nll_sum += res.tot.bucket_nll[k];
    }
    assert_true(fabs(nll_sum - res.tot.nll) <= 1e-9 * res.tot.nll);
    assert_int_equal(pg_bucket_of(99), PG_BUCKET_RARE);
    assert_int_equal(pg_bucket_of(100), PG_BUCKET_MEDIUM);
    assert_int_equal(pg_bucket_of(9999), PG_BUCKET_COMMON);
    assert_int_equal(pg_bucket_of(10000), PG_BUCKET_FREQUENT);
    pg_eval_result_free(&res);
    pg_model_free(m);
}

/* Batching books differently and changing the thread count gives the same
 * per-token NLLs and the same totals, bit for bit. */
static void test_eval_invariances(void **state)
{
    (void)state;
    write_shards();
    for (int comp = 0; comp <= PG_COMPRESS_MOST_USED; comp++) {
        pg_model *m = tiny_model(comp);
        pg_eval_result ref, other;
        evaluate(m, 1, 1, 0, &ref);
        const int batches[] = {2, 3, 7}, threads[] = {2, 1, 2};
        for (int k = 0; k < 3; k++) {
            evaluate(m, batches[k], threads[k], 0, &other);
            assert_int_equal(other.tot.tokens, ref.tot.tokens);
            assert_memory_equal(other.nll, ref.nll, ref.tot.tokens * sizeof(float));
            assert_true(other.tot.nll == ref.tot.nll);
            for (int b = 0; b < PG_N_BUCKETS; b++)
                assert_true(other.tot.bucket_nll[b] == ref.tot.bucket_nll[b]);
            pg_eval_result_free(&other);
        }
        pg_eval_result_free(&ref);
        pg_model_free(m);
    }
}

/* With memory >= the longest book, nothing is evicted: whole-book windows
 * and small windows score the same (up to float rounding). */
static void test_eval_whole_book_vs_windows(void **state)
{
    (void)state;
    write_shards();
    pg_model_config c = tiny_config(PG_COMPRESS_NONE);
    c.memory = 64;
    c.window = 64;
    pg_model *m;
    assert_int_equal(pg_model_new(&c, &m, NULL), 0);
    assert_int_equal(pg_model_random_init(m, 7, NULL), 0);
    pg_eval_result whole, win;
    evaluate(m, 2, 2, 64, &whole);
    evaluate(m, 3, 2, 5, &win);
    for (uint64_t t = 0; t < whole.tot.tokens; t++)
        assert_true(fabsf(whole.nll[t] - win.nll[t]) < 1e-4f);
    assert_true(fabs(whole.tot.nll - win.tot.nll) < 1e-5 * whole.tot.nll);
    pg_eval_result_free(&whole);
    pg_eval_result_free(&win);
    pg_model_free(m);
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = x << 8 | p[i];
    return x;
}

static void test_nll_dump_and_results_json(void **state)
{
    (void)state;
    write_shards();
    pg_model *m = tiny_model(PG_COMPRESS_MEAN_POOL);
    pg_eval_result res;
    evaluate(m, 2, 2, 0, &res);
    char path[300];
    snprintf(path, sizeof path, "%s/validation.nll", tmpdir);
    uint8_t sha[32];
    pg_error err;
    assert_int_equal(pg_nll_dump_write(path, &res, sha, &err), 0);
    char *buf;
    size_t len;
    assert_int_equal(pg_read_file(path, 1 << 20, &buf, &len, &err), 0);
    uint64_t nb = res.n_books, nt = res.tot.tokens;
    assert_int_equal(len, 32 + 16 * nb + 4 * nt + 4);
    const uint8_t *p = (const uint8_t *)buf;
    assert_memory_equal(p, "PG19NLL1", 8);
    assert_int_equal(p[8], 1);
    assert_int_equal(p[12], 1);
    assert_int_equal(get_u64(p + 16), nb);
    assert_int_equal(get_u64(p + 24), nt);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < nb; i++) {
        assert_int_equal(get_u64(p + 32 + 16 * i), books[i].id);
        sum += get_u64(p + 32 + 16 * i + 8);
    }
    assert_int_equal(sum, nt);
    assert_memory_equal(p + 32 + 16 * nb, res.nll, 4 * nt);
    uint32_t crc = pg_crc32c_update(0, p, len - 4);
    assert_int_equal(crc, (uint32_t)get_u64(p + len - 4) & 0xffffffffu);
    free(buf);

    /* results JSON: the identities a consumer checks */
    pg_run_info ri;
    memset(&ri, 0, sizeof ri);
    ri.cfg = &m->cfg;
    ri.params = m->n_params;
    ri.seed = 42;
    ri.tokenizer_name = "unit";
    ri.vocab_size = 45;
    ri.split = "validation";
    ri.split_books = 7;
    ri.window = 6;
    const char *files[1] = {"validation-00000.pgs"};
    uint8_t shas[1][32] = {{0}};
    ri.n_shards = 1;
    ri.shard_files = files;
    ri.shard_sha = (const uint8_t(*)[32])shas;
    ri.threads = 2;
    ri.nll_dump_file = "validation.nll";
    memcpy(ri.nll_dump_sha, sha, 32);
    snprintf(path, sizeof path, "%s/validation.json", tmpdir);
    assert_int_equal(pg_results_write_json(path, &ri, &res, &err), 0);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "schema")), "pg19-results/1");
    json_t *tot = json_object_get(j, "totals");
    double nll = json_real_value(json_object_get(tot, "nll"));
    json_int_t tokens = json_integer_value(json_object_get(tot, "tokens"));
    json_int_t words = json_integer_value(json_object_get(tot, "words"));
    json_int_t bytes = json_integer_value(json_object_get(tot, "bytes"));
    assert_true(nll == res.tot.nll);
    assert_int_equal(tokens, nt);
    assert_true(fabs(json_real_value(json_object_get(tot, "token_ppl")) - exp(nll / tokens)) <
                1e-9 * exp(nll / tokens));
    assert_true(fabs(json_real_value(json_object_get(tot, "bits_per_byte")) -
                     nll / (bytes * log(2.0))) < 1e-12);
    json_t *wp = json_object_get(j, "word_ppl");
    assert_string_equal(json_string_value(json_object_get(wp, "normaliser")), "exact");
    assert_int_equal(json_integer_value(json_object_get(wp, "words")), words);
    json_t *ev = json_object_get(j, "eval");
    assert_false(json_is_true(json_object_get(ev, "official")));
    /* a zeroed classification is custom, never official */
    assert_string_equal(json_string_value(json_object_get(ev, "book_set")), "custom");
    assert_int_equal(strlen(json_string_value(json_object_get(ev, "books_sha256"))), 64);
    json_t *bk = json_object_get(j, "buckets");
    assert_int_equal(json_array_size(bk), 4);
    double bn = 0;
    json_int_t bw = 0, bt = 0;
    for (size_t i = 0; i < 4; i++) {
        json_t *b = json_array_get(bk, i);
        bn += json_real_value(json_object_get(b, "nll"));
        bw += json_integer_value(json_object_get(b, "words"));
        bt += json_integer_value(json_object_get(b, "tokens"));
    }
    assert_true(fabs(bn - nll) <= 1e-6 * nll);
    assert_int_equal(bw, words);
    assert_int_equal(bt, tokens);
    assert_true(json_is_null(json_object_get(json_object_get(j, "model"), "weights_sha256")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "model"),
                                                        "random_init_seed")), 42);
    json_decref(j);
    /* 100 test books are not the official split by their count: only books
     * that are PG-19's own (classified official) are */
    ri.split = "test";
    ri.split_books = 100;
    res.n_books = 100;
    ri.books.n_books = 100;
    ri.books.kind = PG19_BOOKS_CUSTOM;
    assert_int_equal(pg_run_is_official(&ri, &res), 0);
    ri.books.kind = PG19_BOOKS_SUBSET;
    assert_int_equal(pg_run_is_official(&ri, &res), 0);
    ri.books.kind = PG19_BOOKS_OFFICIAL;
    assert_int_equal(pg_run_is_official(&ri, &res), 1);
    ri.books.n_books = 99; /* classified other books than were scored */
    assert_int_equal(pg_run_is_official(&ri, &res), 0);
    ri.books.n_books = 100;
    ri.prefix_tokens = 10;
    assert_int_equal(pg_run_is_official(&ri, &res), 0);
    res.n_books = nb;
    pg_eval_result_free(&res);
    pg_model_free(m);
}

static void test_eval_rejects_bad_sources(void **state)
{
    (void)state;
    pg_shard_source *src;
    pg_error err;
    char empty[300];
    snprintf(empty, sizeof empty, "%s/empty", tmpdir);
    assert_int_equal(pg_mkdirs(empty, &err), 0);
    assert_int_equal(pg_shard_source_open(empty, "test", 0, &src, &err), PG_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no test-NNNNN.pgs"));
    /* shard vocabulary bigger than the model's */
    write_shards();
    pg_model_config c = tiny_config(PG_COMPRESS_NONE);
    c.vocab_size = 40;
    pg_model *m;
    assert_int_equal(pg_model_new(&c, &m, NULL), 0);
    assert_int_equal(pg_shard_source_open(tmpdir, "validation", 2, &src, &err), 0);
    assert_int_equal(pg_shard_source_books(src)->n_books, 2);
    pg_eval_opts o = {.batch = 1};
    pg_eval_result res;
    assert_int_equal(pg_evaluate(m, pg_shard_source_books(src), &o, &res, &err), PG_EINVAL);
    assert_non_null(strstr(err.msg, "vocab"));
    pg_shard_source_close(src);
    pg_model_free(m);
    /* evaluation shards without word frequencies cannot give buckets */
    char nofreq[300], path[400];
    snprintf(nofreq, sizeof nofreq, "%s/nofreq", tmpdir);
    assert_int_equal(pg_mkdirs(nofreq, &err), 0);
    pg_shard_writer *w;
    uint8_t sha[32] = {0};
    assert_int_equal(pg_shard_writer_new(&w, PG_SPLIT_TEST, 45, 44, sha, 0, &err), 0);
    assert_int_equal(pg_shard_writer_add_book(w, 1, 10, sha, books[0].tok, books[0].ws,
                                              books[0].n, NULL, books[0].nw, &err), 0);
    snprintf(path, sizeof path, "%s/test-00000.pgs", nofreq);
    assert_int_equal(pg_shard_writer_write(w, path, &err), 0);
    pg_shard_writer_free(w);
    assert_int_equal(pg_shard_source_open(nofreq, "test", 0, &src, &err), PG_EINVAL);
    assert_non_null(strstr(err.msg, "word-frequency"));
    /* shards of one split that disagree on the vocabulary */
    sha[0] = 9;
    assert_int_equal(pg_shard_writer_new(&w, PG_SPLIT_TEST, 45, 44, sha, 1, &err), 0);
    assert_int_equal(pg_shard_writer_add_book(w, 1, 10, sha, books[0].tok, books[0].ws,
                                              books[0].n, books[0].freq, books[0].nw, &err), 0);
    snprintf(path, sizeof path, "%s/test-00000.pgs", tmpdir);
    assert_int_equal(pg_shard_writer_write(w, path, &err), 0);
    pg_shard_writer_free(w);
    sha[0] = 8;
    assert_int_equal(pg_shard_writer_new(&w, PG_SPLIT_TEST, 45, 44, sha, 1, &err), 0);
    assert_int_equal(pg_shard_writer_add_book(w, 2, 10, sha, books[0].tok, books[0].ws,
                                              books[0].n, books[0].freq, books[0].nw, &err), 0);
    snprintf(path, sizeof path, "%s/test-00001.pgs", tmpdir);
    assert_int_equal(pg_shard_writer_write(w, path, &err), 0);
    pg_shard_writer_free(w);
    assert_int_equal(pg_shard_source_open(tmpdir, "test", 0, &src, &err), PG_ECORRUPT);
    assert_non_null(strstr(err.msg, "vocabulary differs"));
}

/* A shard truncated while it is mapped (another process rewrote or cut
 * it mid-run): every read of it is an error naming the file, not SIGBUS. */
static void test_truncated_shard_is_an_error(void **state)
{
    (void)state;
    write_shards();
    char path[300];
    snprintf(path, sizeof path, "%s/validation-00001.pgs", tmpdir);
    pg_shard *sh;
    pg_error err;
    assert_int_equal(pg_shard_open(path, 1, &sh, &err), 0);
    uint32_t tok[200];
    uint8_t ws[200];
    uint64_t freq[200];
    assert_int_equal(pg_shard_tokens(sh, 2, 0, books[6].n, tok, &err), 0);
    assert_memory_equal(tok, books[6].tok, books[6].n * sizeof *tok);
    assert_int_equal(truncate(path, 0), 0);
    assert_int_equal(pg_shard_tokens(sh, 2, 0, books[6].n, tok, &err), PG_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "truncated"));
    assert_non_null(strstr(err.msg, "is now 0 bytes"));
    assert_int_equal(pg_shard_word_starts(sh, 2, 0, books[6].n, ws, &err), PG_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_int_equal(pg_shard_word_freqs(sh, 2, 0, books[6].nw, freq, &err), PG_EIO);
    assert_non_null(strstr(err.msg, path));
    pg_shard_close(sh);

    /* the evaluation loop stops with the reader's error */
    write_shards();
    pg_shard_source *src;
    assert_int_equal(pg_shard_source_open(tmpdir, "validation", 0, &src, &err), 0);
    assert_int_equal(pg_shard_source_check_unchanged(src, &err), 0);
    assert_int_equal(truncate(path, 0), 0);
    pg_model *m = tiny_model(PG_COMPRESS_NONE);
    pg_eval_opts o = {.batch = 2, .keep_nll = 1};
    pg_eval_result res;
    assert_int_equal(pg_evaluate(m, pg_shard_source_books(src), &o, &res, &err), PG_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "is now 0 bytes"));
    assert_null(res.nll);
    pg_shard_source_close(src);

    /* A cut inside the last page reads as zeros, not SIGBUS, and a rewrite
     * in place changes bytes already checked: the run then notices that
     * the file is not the one it opened. */
    write_shards();
    assert_int_equal(pg_shard_source_open(tmpdir, "validation", 0, &src, &err), 0);
    evaluate(m, 2, 1, 0, &res);
    pg_eval_result_free(&res);
    assert_int_equal(pg_shard_source_check_unchanged(src, &err), 0);
    assert_int_equal(truncate(path, 100), 0);
    assert_int_equal(pg_shard_source_check_unchanged(src, &err), PG_EIO);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "changed"));
    pg_shard_source_close(src);
    pg_model_free(m);
}

/* ---------------------------------------------------------- weights */

static float *tensor(pg_model *m, const char *name)
{
    pg_tensor_info info[64];
    int n = pg_model_tensors(m, info, 64);
    for (int i = 0; i < n && i < 64; i++)
        if (strcmp(info[i].name, name) == 0)
            return info[i].data;
    fail_msg("no tensor %s", name);
    return NULL;
}

/* A weight that is finite at load time can still overflow in the forward:
 * the run stops at the first non-finite NLL, naming the book and the
 * token, and keeps no NLLs. (Here: NaN put straight into the compression
 * weights, which only tokens that see the compressed memory depend on.) */
static void test_eval_stops_at_first_nonfinite_nll(void **state)
{
    (void)state;
    write_shards();
    pg_model *m = tiny_model(PG_COMPRESS_CONV);
    tensor(m, "layers.0.compress.weight")[0] = NAN;
    /* where the first non-finite NLL is, from single-book forwards */
    int64_t want_book = -1, want_tok = -1;
    for (int i = 0; i < 7 && want_book < 0; i++) {
        pg_state *st;
        assert_int_equal(pg_state_new(m, 1, 6, &st, NULL), 0);
        for (uint64_t p = 0; p < books[i].n && want_book < 0; p += 6) {
            int L = books[i].n - p < 6 ? (int)(books[i].n - p) : 6;
            uint32_t in[6];
            for (int k = 0; k < L; k++)
                in[k] = p + k == 0 ? 44 : books[i].tok[p + k - 1];
            const float *lg;
            assert_int_equal(pg_forward(m, st, in, &L, &lg, NULL), 0);
            for (int k = 0; k < L && want_book < 0; k++)
                for (int v = 0; v < 50; v++)
                    if (!isfinite(lg[k * 50 + v])) {
                        want_book = (int64_t)books[i].id;
                        want_tok = (int64_t)(p + (uint64_t)k);
                        break;
                    }
        }
        pg_state_free(st);
    }
    assert_true(want_book >= 0);
    assert_true(want_tok > 0); /* not simply the first token of the run */
    pg_shard_source *src;
    pg_error err;
    assert_int_equal(pg_shard_source_open(tmpdir, "validation", 0, &src, &err), 0);
    pg_eval_opts o = {.batch = 1, .keep_nll = 1};
    pg_eval_result res;
    assert_int_equal(pg_evaluate(m, pg_shard_source_books(src), &o, &res, &err), PG_EINVAL);
    char want[64];
    snprintf(want, sizeof want, "book %lld, token %lld ", (long long)want_book,
             (long long)want_tok);
    if (!strstr(err.msg, want))
        fail_msg("expected \"%s\" in: %s", want, err.msg);
    assert_non_null(strstr(err.msg, "NaN"));
    assert_null(res.nll);
    pg_shard_source_close(src);
    pg_model_free(m);
}

/* Rewrites the safetensors header of path: sets data_offsets of tensor name
 * to [begin + shift, end + shift]. */
static void shift_offsets(const char *path, const char *name, long long shift)
{
    char *buf;
    size_t len;
    pg_error err;
    assert_int_equal(pg_read_file(path, 1 << 24, &buf, &len, &err), 0);
    uint64_t hl = get_u64((const uint8_t *)buf);
    json_error_t je;
    json_t *h = json_loadb(buf + 8, hl, 0, &je);
    assert_non_null(h);
    json_t *offs = json_object_get(json_object_get(h, name), "data_offsets");
    assert_non_null(offs);
    for (size_t k = 0; k < 2; k++)
        json_array_set_new(offs, k, json_integer(json_integer_value(json_array_get(offs, k)) +
                                                 shift));
    char *text = json_dumps(h, JSON_COMPACT);
    size_t tl = strlen(text), padded = (tl + 7) / 8 * 8;
    size_t out_len = 8 + padded + (len - 8 - hl);
    uint8_t *out = malloc(out_len);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    memset(out + 8, ' ', padded);
    memcpy(out + 8, text, tl);
    memcpy(out + 8 + padded, buf + 8 + hl, len - 8 - hl);
    assert_int_equal(pg_write_file_atomic(path, out, out_len, &err), 0);
    free(out);
    free(text);
    json_decref(h);
    free(buf);
}

static void test_safetensors_refuses_broken_weights(void **state)
{
    (void)state;
    pg_model *m = tiny_model(PG_COMPRESS_CONV), *back = tiny_model(PG_COMPRESS_CONV);
    char path[300];
    snprintf(path, sizeof path, "%s/w.safetensors", tmpdir);
    pg_error err;
    assert_int_equal(pg_safetensors_save(m, path, &err), 0);
    assert_int_equal(pg_safetensors_load(back, path, NULL, NULL, &err), 0);
    /* NaN and Inf are named with the tensor and the index */
    float *w1 = tensor(m, "layers.1.ff.w1.weight"); /* [d_ff 20, d 16] */
    w1[3 * 16 + 5] = NAN;
    assert_int_equal(pg_safetensors_save(m, path, &err), 0);
    assert_int_equal(pg_safetensors_load(back, path, NULL, NULL, &err), PG_ECORRUPT);
    assert_non_null(strstr(err.msg, "layers.1.ff.w1.weight holds NaN at [3, 5]"));
    w1[3 * 16 + 5] = 0.5f;
    tensor(m, "ln_f.bias")[2] = -INFINITY;
    assert_int_equal(pg_safetensors_save(m, path, &err), 0);
    assert_int_equal(pg_safetensors_load(back, path, NULL, NULL, &err), PG_ECORRUPT);
    assert_non_null(strstr(err.msg, "ln_f.bias holds -Inf at [2]"));
    tensor(m, "ln_f.bias")[2] = 0.0f;
    /* tensors that share bytes: the same block twice, and a 4-byte overlap */
    assert_int_equal(pg_safetensors_save(m, path, &err), 0);
    assert_int_equal(pg_safetensors_load(back, path, NULL, NULL, &err), 0);
    shift_offsets(path, "layers.0.ln1.bias", -16 * 4); /* onto ln1.weight, saved just before */
    assert_int_equal(pg_safetensors_load(back, path, NULL, NULL, &err), PG_ECORRUPT);
    assert_non_null(strstr(err.msg, "overlap"));
    assert_non_null(strstr(err.msg, "layers.0.ln1.weight"));
    assert_non_null(strstr(err.msg, "layers.0.ln1.bias"));
    assert_int_equal(pg_safetensors_save(m, path, &err), 0);
    shift_offsets(path, "layers.1.ff.w2.bias", -4);
    assert_int_equal(pg_safetensors_load(back, path, NULL, NULL, &err), PG_ECORRUPT);
    assert_non_null(strstr(err.msg, "overlap"));
    assert_non_null(strstr(err.msg, "layers.1.ff.w2.weight"));
    assert_non_null(strstr(err.msg, "layers.1.ff.w2.bias"));
    pg_model_free(m);
    pg_model_free(back);
}

/* layer_norm_eps is stored as a float: below FLT_MIN it would turn
 * subnormal or 0 (and 0 divides by zero on a constant row). */
static void test_layer_norm_eps_range(void **state)
{
    (void)state;
    static const struct {
        const char *eps;
        int ok;
    } cases[] = {{"1e-5", 1}, {"1", 1}, {"1.2e-38", 1}, {"1e-39", 0}, {"1e-40", 0},
                 {"1e-46", 0}, {"0", 0}, {"-1e-5", 0}, {"1.5", 0}, {"1e309", 0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char json[400];
        int n = snprintf(json, sizeof json,
                         "{\"name\": \"e\", \"family\": \"transformer-xl\", \"vocab_size\": 10, "
                         "\"d_model\": 4, \"n_layer\": 1, \"n_head\": 1, \"d_head\": 4, "
                         "\"d_ff\": 4, \"window\": 2, \"memory\": 2, \"layer_norm_eps\": %s}",
                         cases[i].eps);
        pg_model_config c;
        pg_error err;
        int rc = pg_model_config_parse(json, (size_t)n, "eps.json", &c, &err);
        if (cases[i].ok) {
            if (rc)
                fail_msg("eps %s: %s", cases[i].eps, err.msg);
            assert_true(c.ln_eps > 0 && isnormal(c.ln_eps));
        } else {
            if (rc != PG_EINVAL)
                fail_msg("eps %s accepted (%g as a float)", cases[i].eps, (double)c.ln_eps);
        }
    }
}

/* The start-up check that decides whether the harness keeps the SkylakeX
 * kernels: passes on a sound OpenBLAS, and its test-only perturbation
 * makes it fail with the element that differs. */
static void test_sgemm_selfcheck(void **state)
{
    (void)state;
    pg_error err;
    if (pg_sgemm_selfcheck(0, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(pg_sgemm_selfcheck(1, &err), PG_ECORRUPT);
    assert_non_null(strstr(err.msg, "C[0][0]"));
    assert_non_null(strstr(err.msg, "a plain loop gives"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compress_pooling_and_most_used),
        cmocka_unit_test(test_compress_convolutions),
        cmocka_unit_test(test_eval_nll_and_accounting),
        cmocka_unit_test(test_eval_invariances),
        cmocka_unit_test(test_eval_whole_book_vs_windows),
        cmocka_unit_test(test_nll_dump_and_results_json),
        cmocka_unit_test(test_eval_rejects_bad_sources),
        cmocka_unit_test(test_truncated_shard_is_an_error),
        cmocka_unit_test(test_eval_stops_at_first_nonfinite_nll),
        cmocka_unit_test(test_safetensors_refuses_broken_weights),
        cmocka_unit_test(test_layer_norm_eps_range),
        cmocka_unit_test(test_sgemm_selfcheck),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
