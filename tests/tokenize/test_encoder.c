/* Unit tests for the encoder on a model trained here (a few hundred pieces
 * in well under a second): exact round trips on hard strings, each word's
 * token slice decoding to exactly its unit, memo == no memo, the byte
 * fallback for what SentencePiece would alter, and decode's id check. */
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
#include "tokenize/encoder.h"
#include "tokenize/spm_shim.h"
#include "tokenize/words.h"

static char model_path[64];
static pg_encoder *enc;

static const char *const training[] = {
    "The", " quick", " brown", " fox", "\r\nJumps", " over", " the", " lazy", " dog.",
    "\r\n\r\nThe", " end", " of", " the", " story", " \xCE\xB6\xCE\xB5\xCF\x8D\xCF\x83",
    " \xE6\x9D\xB1\xE4\xBA\xAC", " caf\xC3\xA9", "\r\n", "  ", " \xF0\x9F\x99\x82",
};
static size_t train_pos;

static int next_sentence(void *ctx, const char **s, size_t *len, uint64_t *freq)
{
    (void)ctx;
    if (train_pos >= sizeof training / sizeof *training)
        return 0;
    *s = training[train_pos];
    *len = strlen(training[train_pos]);
    *freq = 10 + train_pos;
    train_pos++;
    return 1;
}

static int setup(void **state)
{
    (void)state;
    const char *opts[] = {"model_type", "unigram", "vocab_size", "300",
                          "character_coverage", "1.0", "byte_fallback", "true",
                          "normalization_rule_name", "identity", "add_dummy_prefix", "false",
                          "remove_extra_whitespaces", "false", "hard_vocab_limit", "false",
                          "unk_id", "0", "bos_id", "1", "eos_id", "2", "pad_id", "-1",
                          "num_threads", "1", NULL, NULL};
    char *model;
    size_t len;
    pg_error err;
    train_pos = 0;
    if (pg_spm_train(opts, next_sentence, NULL, &model, &len, &err) != 0) {
        fprintf(stderr, "train: %s\n", err.msg);
        return -1;
    }
    snprintf(model_path, sizeof model_path, "/tmp/pg19-enc-%d.model", (int)getpid());
    int rc = pg_write_file_atomic(model_path, model, len, &err);
    free(model);
    if (rc || pg_encoder_open(model_path, &enc, &err) != 0) {
        fprintf(stderr, "model: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    pg_encoder_free(enc);
    unlink(model_path);
    return 0;
}

static void check_text(const uint8_t *text, size_t len)
{
    pg_error err;
    pg_encode_ctx *memo = pg_encode_ctx_new(enc, 1 << 20), *plain = pg_encode_ctx_new(enc, 0);
    pg_encoded a = {0}, b = {0};
    /* twice through the memo: the second pass is served from it */
    for (int pass = 0; pass < 2; pass++)
        assert_int_equal(pg_encode_book(memo, text, len, &a, &err), 0);
    assert_int_equal(pg_encode_book(plain, text, len, &b, &err), 0);
    assert_int_equal(a.n, b.n);
    if (a.n)
        assert_memory_equal(a.ids, b.ids, a.n * sizeof *a.ids);
    uint8_t *back;
    size_t blen;
    assert_int_equal(pg_decode(enc, a.ids, a.n, &back, &blen, &err), 0);
    assert_int_equal(blen, len);
    if (len)
        assert_memory_equal(back, text, len);
    free(back);
    assert_int_equal(a.n_words, pg_count_words(text, len));
    /* Word k's tokens [S_k, S_k+1) decode to exactly the bytes from its
     * unit's start to the next word unit's start (the last word runs to the
     * end of the book, trailing whitespace included). */
    size_t *word_byte = malloc((a.n_words + 1) * sizeof *word_byte);
    size_t *word_tok = malloc((a.n_words + 1) * sizeof *word_tok);
    size_t nw = 0, nt = 0;
    pg_unit_iter it;
    size_t us, uw, ue;
    int sw;
    pg_unit_iter_init(&it, text, len);
    while (pg_unit_next(&it, &us, &uw, &ue, &sw))
        if (sw) {
            assert_true(nw < a.n_words);
            word_byte[nw++] = us;
        }
    for (size_t t = 0; t < a.n; t++)
        if (a.starts[t])
            word_tok[nt++] = t;
    assert_int_equal(nw, a.n_words);
    assert_int_equal(nt, a.n_words);
    if (a.n)
        assert_int_equal(a.starts[0], 1);
    word_byte[nw] = len;
    word_tok[nt] = a.n;
    for (size_t k = 0; k < nw; k++) {
        uint8_t *piece;
        size_t bytes;
        assert_int_equal(pg_decode(enc, a.ids + word_tok[k], word_tok[k + 1] - word_tok[k], &piece,
                                   &bytes, &err), 0);
        assert_int_equal(bytes, word_byte[k + 1] - word_byte[k]);
        assert_memory_equal(piece, text + word_byte[k], bytes);
        free(piece);
    }
    free(word_byte);
    free(word_tok);
    pg_encoded_free(&a);
    pg_encoded_free(&b);
    pg_encode_ctx_free(memo);
    pg_encode_ctx_free(plain);
}

static void test_roundtrips(void **state)
{
    (void)state;
    const char *cases[] = {
        "", "x", " ", "\r\n", "The quick brown fox\r\n", "\r\n\r\n  The end of the story.  \r\n",
        "tab\there", "caf\xC3\xA9 \xCE\xB6\xCE\xB5\xCF\x8D\xCF\x83 \xE6\x9D\xB1\xE4\xBA\xAC \xF0\x9F\x99\x82",
        "bad \xff\xfe utf8 \xC3", "lone \xE2\x96\x81 marker \xE2\x96\x81\xE2\x96\x81",
        "nbsp\xC2\xA0" "between", "\xE3\x80\x80ideographic", "zero\xE2\x80\x8Bwidth",
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        check_text((const uint8_t *)cases[i], strlen(cases[i]));
    const uint8_t nul[] = {'a', 0, 'b', ' ', 0, '\r', '\n'};
    check_text(nul, sizeof nul);
    /* a 200 KB line, and every byte value */
    size_t big = 200000;
    uint8_t *t = malloc(big);
    for (size_t i = 0; i < big; i++)
        t[i] = i % 1000 == 999 ? ' ' : (uint8_t)('a' + i % 26);
    check_text(t, big);
    for (size_t i = 0; i < 256 * 4; i++)
        t[i] = (uint8_t)(i * 37);
    check_text(t, 256 * 4);
    free(t);
}

static void test_byte_fallback_and_decode_checks(void **state)
{
    (void)state;
    pg_error err;
    pg_encode_ctx *c = pg_encode_ctx_new(enc, 0);
    pg_encoded e = {0};
    /* U+2581 must not pass through SentencePiece (it would decode to a space) */
    assert_int_equal(pg_encode_book(c, (const uint8_t *)"\xE2\x96\x81", 3, &e, &err), 0);
    assert_int_equal(e.n, 3);
    pg_encoded_free(&e);
    pg_encode_ctx_free(c);
    assert_false(pg_encoder_is_plain((const uint8_t *)"a\xE2\x96\x81", 4));
    assert_false(pg_encoder_is_plain((const uint8_t *)"a\0", 2));
    assert_false(pg_encoder_is_plain((const uint8_t *)"\xC3", 1));
    assert_true(pg_encoder_is_plain((const uint8_t *)"caf\xC3\xA9\r\n", 7));
    uint32_t bad = pg_encoder_vocab_size(enc);
    uint8_t *out;
    size_t n;
    assert_int_equal(pg_decode(enc, &bad, 1, &out, &n, &err), PG_EINVAL);
    assert_int_equal(pg_encoder_bos_id(enc), 1);
    pg_encoder *none;
    assert_true(pg_encoder_open("/nonexistent/model", &none, &err) < 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrips),
        cmocka_unit_test(test_byte_fallback_and_decode_checks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
