/* tokenize - train the vocabulary, count word types, encode, verify.
 *
 *   tokenize train  --corpus DIR [--split train] --vocab-size N -o MODEL
 *                   [--sample-bytes B] [--threads T]
 *   tokenize words  --corpus DIR [--split train] -o FREQS.tsv
 *   tokenize encode --model MODEL [--lines] [--no-memo] [--threads T] FILE...
 *   tokenize verify --model MODEL --corpus DIR --split S [--threads T] [--check-spm]
 *                   [--no-memo]   (--no-memo: skip the memo-versus-no-memo comparison)
 *
 * See tokenize/README.md for the lossless configuration and the formats.
 */
#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/progress.h"
#include "tokenize/corpus.h"
#include "tokenize/encoder.h"
#include "tokenize/spm_shim.h"
#include "tokenize/strtab.h"
#include "tokenize/wordfreq.h"
#include "tokenize/words.h"

#define MEMO_BYTES ((size_t)256 << 20) /* per thread */

static void usage(void)
{
    fprintf(stderr,
            "usage:\n"
            "  tokenize train  --corpus DIR [--split train] --vocab-size N -o MODEL\n"
            "                  [--sample-bytes B] [--threads T]\n"
            "  tokenize words  --corpus DIR [--split train] -o FREQS.tsv\n"
            "  tokenize encode --model MODEL [--lines] [--no-memo] [--threads T] FILE...\n"
            "  tokenize verify --model MODEL --corpus DIR --split S [--threads T] [--check-spm]\n");
    exit(2);
}

typedef struct opts {
    const char *corpus, *split, *out, *model;
    uint64_t vocab_size, sample_bytes;
    int threads, lines, no_memo, check_spm;
    char **files;
    int n_files;
} opts;

static int parse_u64_arg(const char *s, uint64_t *v)
{
    char *end;
    unsigned long long x = strtoull(s, &end, 10);
    if (!*s || *end || s[0] == '-')
        return -1;
    *v = x;
    return 0;
}

static void parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->split = "train";
    o->sample_bytes = (uint64_t)2 << 30;
    o->threads = 0;
    o->files = calloc((size_t)argc, sizeof *o->files);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t x;
#define NEEDV() do { if (!v) usage(); i++; } while (0)
        if (!strcmp(a, "--corpus")) { NEEDV(); o->corpus = v; }
        else if (!strcmp(a, "--split")) { NEEDV(); o->split = v; }
        else if (!strcmp(a, "-o") || !strcmp(a, "--output")) { NEEDV(); o->out = v; }
        else if (!strcmp(a, "--model")) { NEEDV(); o->model = v; }
        else if (!strcmp(a, "--vocab-size")) { NEEDV(); if (parse_u64_arg(v, &o->vocab_size)) usage(); }
        else if (!strcmp(a, "--sample-bytes")) { NEEDV(); if (parse_u64_arg(v, &o->sample_bytes)) usage(); }
        else if (!strcmp(a, "--threads")) { NEEDV(); if (parse_u64_arg(v, &x) || x < 1 || x > 1024) usage(); o->threads = (int)x; }
        else if (!strcmp(a, "--lines")) o->lines = 1;
        else if (!strcmp(a, "--no-memo")) o->no_memo = 1;
        else if (!strcmp(a, "--check-spm")) o->check_spm = 1;
        else if (a[0] == '-' && a[1]) usage();
        else o->files[o->n_files++] = argv[i];
#undef NEEDV
    }
}

static int die(const pg_error *err)
{
    fprintf(stderr, "tokenize: %s\n", err->msg);
    return 1;
}

/* ---- train ---------------------------------------------------------------- */

#define SAMPLE_WINDOW ((size_t)64 << 10)

/* Counts the SentencePiece-safe, tab-free fragments of the units in
 * text[a, b): what the trainer is allowed to see (see README.md). */
static int count_fragments(pg_strtab *t, const uint8_t *text, size_t len, size_t a, size_t b,
                           uint64_t *units)
{
    pg_unit_iter it;
    size_t us, uw, ue;
    int sw;
    pg_unit_iter_init(&it, text, len);
    it.pos = a;
    while (it.pos < b && pg_unit_next(&it, &us, &uw, &ue, &sw)) {
        if (ue > b)
            break; /* only whole units */
        (*units)++;
        /* split at tabs and at characters SentencePiece would alter */
        size_t f = us, k = us;
        while (k <= ue) {
            size_t clen = k < ue && text[k] != '\t' ? pg_plain_char_len(text, ue, k) : 0;
            if (clen) {
                k += clen;
                continue;
            }
            if (k > f && k - f <= 4192) {
                int is_new;
                uint64_t *v = pg_strtab_upsert(t, text + f, k - f, &is_new);
                if (!v)
                    return -1;
                (*v)++;
            }
            if (k == ue)
                break;
            size_t bad;
            pg_plain_char_len_or_bad(text, ue, k, &bad);
            k += bad ? bad : 1;
            f = k;
        }
    }
    return 0;
}

typedef struct train_iter {
    const pg_strtab *t;
    const size_t *order;
    size_t i, n;
} train_iter;

static int train_next(void *ctx, const char **s, size_t *len, uint64_t *freq)
{
    train_iter *it = ctx;
    if (it->i >= it->n)
        return 0;
    size_t k = it->order[it->i++];
    *s = (const char *)pg_strtab_key(it->t, k, len);
    *freq = pg_strtab_value(it->t, k);
    return 1;
}

static int cmd_train(opts *o)
{
    pg_error err = {0};
    if (!o->corpus || !o->out || !o->vocab_size)
        usage();
    pg_words_init();
    pg_book_ref *books;
    size_t nb;
    if (pg_corpus_list(o->corpus, o->split, &books, &nb, &err) < 0)
        return die(&err);
    if (nb == 0) {
        fprintf(stderr, "tokenize: %s/%s: no books\n", o->corpus, o->split);
        return 1;
    }
    uint64_t per_book = o->sample_bytes / nb, sampled = 0, units = 0;
    if (per_book < SAMPLE_WINDOW)
        per_book = SAMPLE_WINDOW;
    pg_strtab *t = pg_strtab_new();
    pg_progress pr;
    pg_progress_init(&pr, "sample", "books", "B", nb, 0);
    for (size_t b = 0; b < nb; b++) {
        uint8_t *text;
        size_t len;
        if (pg_corpus_read(&books[b], &text, &len, &err) < 0)
            return die(&err);
        /* Windows of SAMPLE_WINDOW bytes, evenly spaced through the book; the
         * same books and positions on every run (by id order and length). */
        /* A book within its budget is taken whole (one window). */
        uint64_t k = len <= per_book ? 1 : (per_book + SAMPLE_WINDOW - 1) / SAMPLE_WINDOW;
        size_t win = len <= per_book ? len : SAMPLE_WINDOW;
        for (uint64_t j = 0; j < k; j++) {
            size_t a = k == 1 ? 0 : (size_t)((len - win) * j / (k - 1));
            size_t e = a + win < len ? a + win : len;
            /* start at the beginning of a unit: after the word we land in */
            size_t nx;
            while (a > 0 && a < e && !pg_ws_at(text, len, a, &nx))
                a++;
            if (count_fragments(t, text, len, a, e, &units) < 0) {
                fprintf(stderr, "tokenize: out of memory while sampling\n");
                return 1;
            }
            sampled += e - a;
        }
        free(text);
        pg_progress_update(&pr, b + 1, sampled);
    }
    pg_progress_finish(&pr, NULL);
    fprintf(stderr, "tokenize train: %zu books, %" PRIu64 " bytes sampled, %" PRIu64
                    " units, %zu distinct fragments\n",
            nb, sampled, units, pg_strtab_count(t));

    char vocab[32], threads[16];
    snprintf(vocab, sizeof vocab, "%" PRIu64, o->vocab_size);
    snprintf(threads, sizeof threads, "%d", o->threads ? o->threads : 2);
    uint64_t frag_bytes = 0;
    for (size_t i = 0; i < pg_strtab_count(t); i++) {
        size_t l;
        pg_strtab_key(t, i, &l);
        frag_bytes += l;
    }
    const char *options[] = {
        "model_type", "unigram",
        "vocab_size", vocab,
        "character_coverage", "1.0",
        "byte_fallback", "true",
        "normalization_rule_name", "identity",
        "add_dummy_prefix", "false",
        "remove_extra_whitespaces", "false",
        "split_by_whitespace", "true",
        "split_digits", "false",
        "unk_id", "0", "bos_id", "1", "eos_id", "2", "pad_id", "-1",
        "input_sentence_size", "0",
        "shuffle_input_sentence", "false",
        "hard_vocab_limit", "false",
        "max_sentence_length", "4192",
        "num_threads", threads,
        "train_extremely_large_corpus", frag_bytes > ((uint64_t)1 << 30) ? "true" : "false",
        NULL, NULL};
    size_t *order = pg_strtab_sorted(t);
    train_iter it = {t, order, 0, pg_strtab_count(t)};
    char *model;
    size_t model_len;
    double t0 = pg_now();
    if (pg_spm_train(options, train_next, &it, &model, &model_len, &err) < 0)
        return die(&err);
    double secs = pg_now() - t0;
    free(order);
    pg_strtab_free(t);
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", o->out);
    char *slash = strrchr(dir, '/');
    if (slash) {
        *slash = 0;
        if (pg_mkdirs(dir, &err) < 0)
            return die(&err);
    }
    if (pg_write_file_atomic(o->out, model, model_len, &err) < 0)
        return die(&err);
    uint8_t sha[32];
    char hex[65];
    pg_sha256(model, model_len, sha);
    pg_hex(sha, 32, hex);
    free(model);
    /* record what was built next to the model */
    pg_encoder *enc;
    if (pg_encoder_open(o->out, &enc, &err) < 0)
        return die(&err);
    char json[2048], jpath[4200];
    int jl = snprintf(json, sizeof json,
                      "{\"model\": \"%s\", \"sha256\": \"%s\", \"vocab_size\": %u, "
                      "\"requested_vocab_size\": %" PRIu64 ", \"kind\": \"sentencepiece-unigram\", "
                      "\"bos_id\": %u, \"split\": \"%s\", \"books\": %zu, \"sample_bytes\": %" PRIu64
                      ", \"units\": %" PRIu64 ", \"train_seconds\": %.1f}\n",
                      o->out, hex, pg_encoder_vocab_size(enc), o->vocab_size,
                      pg_encoder_bos_id(enc), o->split, nb, sampled, units, secs);
    pg_encoder_free(enc);
    snprintf(jpath, sizeof jpath, "%s.json", o->out);
    if (pg_write_file_atomic(jpath, json, (size_t)jl, &err) < 0)
        return die(&err);
    pg_corpus_free(books, nb);
    printf("%s  %s\n", hex, o->out);
    return 0;
}

/* ---- words ---------------------------------------------------------------- */

static int cmd_words(opts *o)
{
    pg_error err = {0};
    if (!o->corpus || !o->out)
        usage();
    pg_words_init();
    pg_book_ref *books;
    size_t nb;
    if (pg_corpus_list(o->corpus, o->split, &books, &nb, &err) < 0)
        return die(&err);
    pg_strtab *t = pg_strtab_new();
    uint64_t words = 0, bytes = 0;
    pg_progress pr;
    pg_progress_init(&pr, "words", "books", "B", nb, 0);
    for (size_t b = 0; b < nb; b++) {
        uint8_t *text;
        size_t len;
        if (pg_corpus_read(&books[b], &text, &len, &err) < 0)
            return die(&err);
        uint64_t w = pg_wordfreq_add_text(t, text, len);
        free(text);
        if (w == UINT64_MAX) {
            fprintf(stderr, "tokenize: out of memory counting words\n");
            return 1;
        }
        words += w;
        bytes += len;
        pg_progress_update(&pr, b + 1, bytes);
    }
    pg_progress_finish(&pr, NULL);
    if (pg_wordfreq_save(t, o->out, nb, words, &err) < 0)
        return die(&err);
    printf("{\"split\": \"%s\", \"books\": %zu, \"bytes\": %" PRIu64 ", \"words\": %" PRIu64
           ", \"types\": %zu, \"file\": \"%s\"}\n",
           o->split, nb, bytes, words, pg_strtab_count(t), o->out);
    pg_strtab_free(t);
    pg_corpus_free(books, nb);
    return 0;
}

/* ---- encode --------------------------------------------------------------- */

/* Appends ids as decimal text separated by spaces, then a newline. */
static void put_ids(char **buf, size_t *len, size_t *cap, const uint32_t *ids, size_t n)
{
    size_t need = *len + n * 11 + 2;
    if (need > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < need)
            nc *= 2;
        char *p = realloc(*buf, nc);
        if (!p) {
            fprintf(stderr, "tokenize: out of memory\n");
            exit(1);
        }
        *buf = p;
        *cap = nc;
    }
    char *o = *buf + *len;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = ' ';
        char tmp[12];
        int k = 0;
        uint32_t v = ids[i];
        do {
            tmp[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v);
        while (k)
            *o++ = tmp[--k];
    }
    *o++ = '\n';
    *len = (size_t)(o - *buf);
}

typedef struct span {
    size_t a, b;
} span;

/* Encodes each item (a whole file, or a line of it with --lines) and writes
 * one line of ids per item, in order, like spm_encode --output_format=id. */
static int cmd_encode(opts *o)
{
    pg_error err = {0};
    if (!o->model || o->n_files == 0)
        usage();
    pg_encoder *enc;
    if (pg_encoder_open(o->model, &enc, &err) < 0)
        return die(&err);
    int nt = o->threads ? o->threads : omp_get_max_threads();
    pg_encode_ctx **ctx = calloc((size_t)nt, sizeof *ctx);
    for (int k = 0; k < nt; k++)
        ctx[k] = pg_encode_ctx_new(enc, o->no_memo ? 0 : MEMO_BYTES);
    uint64_t total_bytes = 0, total_tokens = 0;
    double t_enc = 0;
    if (!o->lines) {
        /* Whole books: OpenMP across files, in batches whose outputs are
         * written in argument order. */
        int batch = nt * 4, failed = 0;
        char **outb = calloc((size_t)batch, sizeof *outb);
        size_t *outl = calloc((size_t)batch, sizeof *outl);
        for (int f0 = 0; f0 < o->n_files && !failed; f0 += batch) {
            int nb = o->n_files - f0 < batch ? o->n_files - f0 : batch;
            double t0 = pg_now();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(+ : total_tokens, total_bytes)
            for (int k = 0; k < nb; k++) {
                pg_error terr = {0};
                char *data = NULL;
                size_t len, cap = 0;
                pg_encoded e = {0};
                outl[k] = 0;
                if (pg_read_file(o->files[f0 + k], PG_MAX_BOOK_BYTES, &data, &len, &terr) < 0 ||
                    pg_encode_book(ctx[omp_get_thread_num()], (const uint8_t *)data, len, &e,
                                   &terr) < 0) {
#pragma omp critical
                    {
                        fprintf(stderr, "tokenize: %s\n", terr.msg);
                        failed = 1;
                    }
                } else {
                    put_ids(&outb[k], &outl[k], &cap, e.ids, e.n);
                    total_tokens += e.n;
                    total_bytes += len;
                }
                pg_encoded_free(&e);
                free(data);
            }
            t_enc += pg_now() - t0;
            for (int k = 0; k < nb && !failed; k++)
                fwrite(outb[k], 1, outl[k], stdout);
        }
        for (int k = 0; k < batch; k++)
            free(outb[k]);
        free(outb);
        free(outl);
        if (failed)
            return 1;
    }
    for (int f = 0; o->lines && f < o->n_files; f++) {
        char *data;
        size_t len;
        if (pg_read_file(o->files[f], PG_MAX_BOOK_BYTES, &data, &len, &err) < 0)
            return die(&err);
        size_t ns = 0, cs = 16;
        span *sp = malloc(cs * sizeof *sp);
        if (o->lines) {
            size_t a = 0;
            while (a < len) {
                char *nl = memchr(data + a, '\n', len - a);
                size_t b = nl ? (size_t)(nl - data) : len;
                if (ns == cs)
                    sp = realloc(sp, (cs *= 2) * sizeof *sp);
                sp[ns++] = (span){a, b};
                a = b + 1;
            }
        } else {
            sp[ns++] = (span){0, len};
        }
        /* chunks of items per thread, each chunk's text output kept in order */
        size_t chunk = 4096, nchunks = (ns + chunk - 1) / chunk;
        char **outb = calloc(nchunks ? nchunks : 1, sizeof *outb);
        size_t *outl = calloc(nchunks ? nchunks : 1, sizeof *outl);
        int failed = 0;
        double t0 = pg_now();
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) reduction(+ : total_tokens)
        for (size_t c = 0; c < nchunks; c++) {
            pg_encode_ctx *cx = ctx[omp_get_thread_num()];
            pg_encoded e = {0};
            pg_error terr = {0};
            size_t cap = 0;
            for (size_t i = c * chunk; i < ns && i < (c + 1) * chunk; i++) {
                if (pg_encode_book(cx, (const uint8_t *)data + sp[i].a, sp[i].b - sp[i].a, &e,
                                   &terr) < 0) {
#pragma omp critical
                    {
                        fprintf(stderr, "tokenize: %s: %s\n", o->files[f], terr.msg);
                        failed = 1;
                    }
                    break;
                }
                put_ids(&outb[c], &outl[c], &cap, e.ids, e.n);
                total_tokens += e.n;
            }
            pg_encoded_free(&e);
        }
        t_enc += pg_now() - t0;
        total_bytes += len;
        for (size_t c = 0; c < nchunks; c++) {
            if (!failed)
                fwrite(outb[c], 1, outl[c], stdout);
            free(outb[c]);
        }
        free(outb);
        free(outl);
        free(sp);
        free(data);
        if (failed)
            return 1;
    }
    fflush(stdout);
    fprintf(stderr,
            "tokenize encode: %" PRIu64 " bytes, %" PRIu64 " tokens, %.3f s encoding, %.2f MB/s, "
            "%d threads\n",
            total_bytes, total_tokens, t_enc, t_enc > 0 ? total_bytes / t_enc / 1e6 : 0.0, nt);
    for (int k = 0; k < nt; k++)
        pg_encode_ctx_free(ctx[k]);
    free(ctx);
    pg_encoder_free(enc);
    return ferror(stdout) ? 1 : 0;
}

/* ---- verify --------------------------------------------------------------- */

static int cmd_verify(opts *o)
{
    pg_error err = {0};
    if (!o->model || !o->corpus)
        usage();
    pg_encoder *enc;
    if (pg_encoder_open(o->model, &enc, &err) < 0)
        return die(&err);
    pg_book_ref *books;
    size_t nb;
    if (pg_corpus_list(o->corpus, o->split, &books, &nb, &err) < 0)
        return die(&err);
    int nt = o->threads ? o->threads : omp_get_max_threads();
    pg_encode_ctx **memo = calloc((size_t)nt, sizeof *memo), **plain = calloc((size_t)nt, sizeof *plain);
    for (int k = 0; k < nt; k++) {
        memo[k] = pg_encode_ctx_new(enc, MEMO_BYTES);
        plain[k] = o->no_memo ? NULL : pg_encode_ctx_new(enc, 0);
    }
    uint64_t bytes = 0, tokens = 0, words = 0, bad_roundtrip = 0, bad_memo = 0, bad_words = 0;
    uint64_t spm_checked = 0, spm_equal = 0, spm_ties = 0, spm_ours_better = 0, failures = 0;
    pg_progress pr;
    pg_progress_init(&pr, "verify", "books", "B", nb, 0);
    uint64_t done = 0, done_bytes = 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) \
    reduction(+ : bytes, tokens, words, bad_roundtrip, bad_memo, bad_words, spm_checked, spm_equal, spm_ties, spm_ours_better, failures)
    for (size_t b = 0; b < nb; b++) {
        int th = omp_get_thread_num();
        pg_error terr = {0};
        uint8_t *text = NULL, *back = NULL;
        size_t len, blen;
        pg_encoded e1 = {0}, e2 = {0};
        const char *what = NULL;
        if (pg_corpus_read(&books[b], &text, &len, &terr) < 0 ||
            pg_encode_book(memo[th], text, len, &e1, &terr) < 0 ||
            (!o->no_memo && pg_encode_book(plain[th], text, len, &e2, &terr) < 0) ||
            pg_decode(enc, e1.ids, e1.n, &back, &blen, &terr) < 0) {
            failures++;
            what = terr.msg;
        } else {
            bytes += len;
            tokens += e1.n;
            words += e1.n_words;
            if (blen != len || (len && memcmp(back, text, len) != 0)) {
                bad_roundtrip++;
                what = "decode(encode(book)) differs from the book";
            }
            if (!o->no_memo &&
                (e1.n != e2.n || (e1.n && memcmp(e1.ids, e2.ids, e1.n * sizeof *e1.ids) != 0))) {
                bad_memo++;
                what = "the memo changed the encoding";
            }
            if (e1.n_words != pg_count_words(text, len))
                bad_words++;
            if (o->check_spm && pg_encoder_is_plain(text, len)) {
                /* SentencePiece over the book in spans cut at word ends, which
                 * its lattice cannot cross: the whole-book comparison with the
                 * memory of one span (encoder.h, pg_check_against_spm). Spans
                 * can differ by exact ties (the same pieces in another order,
                 * e.g. "\r\n" + "\r\n\r\n" against "\r\n\r\n" + "\r\n"), broken
                 * by float rounding, or by float32 path scores that lose the
                 * resolution to see the best path in a long span; ours must
                 * always score at least as well. */
                pg_spm_check chk;
                if (pg_check_against_spm(enc, text, len, e1.ids, e1.n, &chk, &terr) < 0) {
                    failures++;
                    what = terr.msg;
                } else {
                    spm_checked++;
                    if (chk.spm_better)
                        what = "SentencePiece finds a better segmentation";
                    else if (chk.equal == chk.spans)
                        spm_equal++;
                    else if (chk.ours_better)
                        spm_ours_better++;
                    else
                        spm_ties++;
                }
            }
        }
        if (what) {
#pragma omp critical
            fprintf(stderr, "tokenize verify: %s: %s\n", books[b].path, what);
        }
        free(text);
        free(back);
        pg_encoded_free(&e1);
        pg_encoded_free(&e2);
#pragma omp critical
        {
            done++;
            done_bytes += books[b].size;
            pg_progress_update(&pr, done, done_bytes);
        }
    }
    pg_progress_finish(&pr, NULL);
    char hex[65];
    pg_hex(pg_encoder_model_sha256(enc), 32, hex);
    printf("{\"split\": \"%s\", \"books\": %zu, \"bytes\": %" PRIu64 ", \"tokens\": %" PRIu64
           ", \"words\": %" PRIu64 ", \"tokens_per_word\": %.4f, \"bytes_per_token\": %.4f, "
           "\"roundtrip_failures\": %" PRIu64 ", \"memo_mismatches\": %" PRIu64
           ", \"word_count_mismatches\": %" PRIu64 ", \"read_or_encode_failures\": %" PRIu64,
           o->split, nb, bytes, tokens, words, words ? (double)tokens / (double)words : 0.0,
           tokens ? (double)bytes / (double)tokens : 0.0, bad_roundtrip, bad_memo, bad_words,
           failures);
    if (o->check_spm)
        printf(", \"whole_book_spm_checked\": %" PRIu64 ", \"whole_book_spm_equal\": %" PRIu64
               ", \"whole_book_spm_equal_score_ties\": %" PRIu64
               ", \"whole_book_spm_lower_score\": %" PRIu64,
               spm_checked, spm_equal, spm_ties, spm_ours_better);
    printf(", \"vocab_size\": %u, \"vocab_sha256\": \"%s\"}\n", pg_encoder_vocab_size(enc), hex);
    for (int k = 0; k < nt; k++) {
        pg_encode_ctx_free(memo[k]);
        pg_encode_ctx_free(plain[k]);
    }
    free(memo);
    free(plain);
    pg_corpus_free(books, nb);
    pg_encoder_free(enc);
    int bad = bad_roundtrip || bad_memo || bad_words || failures ||
              (o->check_spm && spm_equal + spm_ties + spm_ours_better != spm_checked);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    opts o;
    parse(argc, argv, &o);
    int rc;
    if (!strcmp(argv[1], "train"))
        rc = cmd_train(&o);
    else if (!strcmp(argv[1], "words"))
        rc = cmd_words(&o);
    else if (!strcmp(argv[1], "encode"))
        rc = cmd_encode(&o);
    else if (!strcmp(argv[1], "verify"))
        rc = cmd_verify(&o);
    else
        usage();
    free(o.files);
    return rc;
}
