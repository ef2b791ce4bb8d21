/* shards - build, verify and describe PG19SHRD token shards (FORMAT.md).
 *
 *   shards build  --model MODEL --corpus DIR --split S -o OUTDIR
 *                 [--word-freqs FREQS.tsv] [--max-bytes N] [--threads T]
 *   shards verify [--model MODEL --corpus DIR] FILE...
 *   shards info   FILE
 *   shards stats  --dir DIR [--split S] [--metadata metadata.csv]
 *   shards official --dir DIR --split S
 */
#include <errno.h>
#include <inttypes.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/progress.h"
#include "shards/pg19_official.h"
#include "shards/shard_reader.h"
#include "shards/shard_writer.h"
#include "tokenize/corpus.h"
#include "tokenize/encoder.h"
#include "tokenize/strtab.h"
#include "tokenize/wordfreq.h"

#define MEMO_BYTES ((size_t)256 << 20)

static void usage(void)
{
    fprintf(stderr,
            "usage:\n"
            "  shards build  --model MODEL --corpus DIR --split S -o OUTDIR\n"
            "                [--word-freqs FREQS.tsv] [--max-bytes N] [--threads T]\n"
            "  shards verify [--model MODEL --corpus DIR] FILE...\n"
            "  shards info   FILE\n"
            "  shards stats  --dir DIR [--split S] [--metadata metadata.csv]\n"
            "  shards official --dir DIR --split S\n");
    exit(2);
}

typedef struct opts {
    const char *model, *corpus, *split, *out, *freqs, *dir, *metadata;
    uint64_t max_bytes;
    int threads;
    char **files;
    int n_files;
} opts;

static void parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_bytes = (uint64_t)1 << 30;
    o->files = calloc((size_t)argc, sizeof *o->files);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEEDV() do { if (!v) usage(); i++; } while (0)
        if (!strcmp(a, "--model")) { NEEDV(); o->model = v; }
        else if (!strcmp(a, "--corpus")) { NEEDV(); o->corpus = v; }
        else if (!strcmp(a, "--split")) { NEEDV(); o->split = v; }
        else if (!strcmp(a, "-o")) { NEEDV(); o->out = v; }
        else if (!strcmp(a, "--word-freqs")) { NEEDV(); o->freqs = v; }
        else if (!strcmp(a, "--dir")) { NEEDV(); o->dir = v; }
        else if (!strcmp(a, "--metadata")) { NEEDV(); o->metadata = v; }
        else if (!strcmp(a, "--max-bytes")) {
            NEEDV();
            char *end;
            errno = 0;
            unsigned long long x = strtoull(v, &end, 10);
            if (*end || errno || x < 4096 || v[0] == '-')
                usage();
            o->max_bytes = x;
        } else if (!strcmp(a, "--threads")) {
            NEEDV();
            int x = atoi(v);
            if (x < 1 || x > 1024)
                usage();
            o->threads = x;
        } else if (a[0] == '-' && a[1]) usage();
        else o->files[o->n_files++] = argv[i];
#undef NEEDV
    }
}

static int die(const pg_error *err)
{
    fprintf(stderr, "shards: %s\n", err->msg);
    return 1;
}

/* ---- build ---------------------------------------------------------------- */

typedef struct built_book {
    pg_encoded enc;
    uint64_t *freqs;
    uint64_t n_bytes;
    uint8_t sha256[32]; /* of the text: what tells PG-19's own books from others */
    int failed;
    pg_error err;
} built_book;

static int write_shard(pg_shard_writer *w, const char *out, const char *split, int index,
                       pg_error *err)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s-%05d.pgs", out, split, index);
    int rc = pg_shard_writer_write(w, path, err);
    if (rc == 0)
        fprintf(stderr, "shards: wrote %s (%" PRIu64 " books, %" PRIu64 " bytes)\n", path,
                pg_shard_writer_num_books(w), pg_shard_writer_file_size(w));
    return rc;
}

static int cmd_build(opts *o)
{
    pg_error err = {0};
    if (!o->model || !o->corpus || !o->split || !o->out)
        usage();
    int split = pg_split_from_name(o->split);
    if (split < 0) {
        fprintf(stderr, "shards: unknown split \"%s\"\n", o->split);
        return 2;
    }
    pg_encoder *enc;
    if (pg_encoder_open(o->model, &enc, &err) < 0)
        return die(&err);
    pg_strtab *freqs = NULL;
    uint64_t train_words = 0;
    if (o->freqs && pg_wordfreq_load(o->freqs, &freqs, &train_words, &err) < 0)
        return die(&err);
    pg_book_ref *books;
    size_t nb;
    if (pg_corpus_list(o->corpus, o->split, &books, &nb, &err) < 0)
        return die(&err);
    if (pg_mkdirs(o->out, &err) < 0)
        return die(&err);
    int nt = o->threads ? o->threads : omp_get_max_threads();
    pg_encode_ctx **ctx = calloc((size_t)nt, sizeof *ctx);
    for (int k = 0; k < nt; k++)
        if (!(ctx[k] = pg_encode_ctx_new(enc, MEMO_BYTES))) {
            fprintf(stderr, "shards: out of memory\n");
            return 1;
        }
    size_t batch = (size_t)nt * 4;
    built_book *bb = calloc(batch, sizeof *bb);
    pg_shard_writer *w = NULL;
    int shard_index = 0, rc = 0;
    uint64_t tot_tokens = 0, tot_words = 0, tot_bytes = 0;
    pg_progress pr;
    pg_progress_init(&pr, "shards", "books", "B", nb, 0);
    for (size_t b0 = 0; b0 < nb && rc == 0; b0 += batch) {
        size_t nbatch = nb - b0 < batch ? nb - b0 : batch;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (size_t k = 0; k < nbatch; k++) {
            built_book *x = &bb[k];
            pg_encode_ctx *cx = ctx[omp_get_thread_num()];
            uint8_t *text = NULL, *back = NULL;
            size_t len, blen;
            x->failed = 1;
            free(x->freqs);
            x->freqs = NULL;
            if (pg_corpus_read(&books[b0 + k], &text, &len, &x->err) < 0 ||
                pg_encode_book(cx, text, len, &x->enc, &x->err) < 0 ||
                pg_decode(enc, x->enc.ids, x->enc.n, &back, &blen, &x->err) < 0)
                goto done;
            if (blen != len || memcmp(back, text, len) != 0) {
                pg_fail(&x->err, PG_ECORRUPT, "%s: decode(encode(book)) differs from the book",
                        books[b0 + k].path);
                goto done;
            }
            if (freqs) {
                x->freqs = malloc((x->enc.n_words + 1) * sizeof *x->freqs);
                if (!x->freqs) {
                    pg_fail(&x->err, PG_ENOMEM, "%s: no memory", books[b0 + k].path);
                    goto done;
                }
                if (pg_wordfreq_lookup_text(freqs, text, len, x->freqs, x->enc.n_words,
                                            &x->err) < 0)
                    goto done;
            }
            x->n_bytes = len;
            pg_sha256(text, len, x->sha256);
            x->failed = 0;
        done:
            free(text);
            free(back);
        }
        for (size_t k = 0; k < nbatch && rc == 0; k++) {
            built_book *x = &bb[k];
            const pg_book_ref *ref = &books[b0 + k];
            if (x->failed) {
                rc = pg_wrap(&x->err, "%s", ref->path);
                err = x->err;
                break;
            }
            if (w && pg_shard_writer_num_books(w) > 0 &&
                pg_shard_writer_file_size_with(w, x->enc.n, x->enc.n_words) > o->max_bytes) {
                if ((rc = write_shard(w, o->out, o->split, shard_index++, &err)) < 0)
                    break;
                pg_shard_writer_free(w);
                w = NULL;
            }
            if (!w && (rc = pg_shard_writer_new(&w, split, pg_encoder_vocab_size(enc),
                                                pg_encoder_bos_id(enc),
                                                pg_encoder_model_sha256(enc), freqs != NULL,
                                                &err)) < 0)
                break;
            if ((rc = pg_shard_writer_add_book(w, ref->id, x->n_bytes, x->sha256, x->enc.ids,
                                               x->enc.starts, x->enc.n, x->freqs, x->enc.n_words,
                                               &err)) < 0) {
                pg_wrap(&err, "%s", ref->path);
                break;
            }
            tot_tokens += x->enc.n;
            tot_words += x->enc.n_words;
            tot_bytes += x->n_bytes;
        }
        pg_progress_update(&pr, b0 + nbatch, tot_bytes);
    }
    if (rc == 0) {
        /* A split with no books still gets one (empty) shard, so that its
         * absence is never mistaken for success. */
        if (!w && (rc = pg_shard_writer_new(&w, split, pg_encoder_vocab_size(enc),
                                            pg_encoder_bos_id(enc),
                                            pg_encoder_model_sha256(enc), freqs != NULL, &err)) < 0)
            return die(&err);
        rc = write_shard(w, o->out, o->split, shard_index++, &err);
    }
    pg_progress_finish(&pr, NULL);
    if (rc < 0)
        return die(&err);
    /* Shards of an earlier, larger build of this split would be read as part
     * of it: remove those past the last one written. */
    char **paths;
    size_t np;
    if (pg_shard_list(o->out, o->split, &paths, &np, &err) == 0) {
        for (size_t i = 0; i < np; i++) {
            const char *base = strrchr(paths[i], '/') + 1;
            int idx = atoi(base + strlen(o->split) + 1);
            if (idx >= shard_index && unlink(paths[i]) == 0)
                fprintf(stderr, "shards: removed stale %s\n", paths[i]);
            free(paths[i]);
        }
        free(paths);
    }
    char hex[65];
    pg_hex(pg_encoder_model_sha256(enc), 32, hex);
    printf("{\"split\": \"%s\", \"shards\": %d, \"books\": %zu, \"bytes\": %" PRIu64
           ", \"tokens\": %" PRIu64 ", \"words\": %" PRIu64 ", \"tokens_per_word\": %.4f"
           ", \"word_freqs\": %s, \"vocab_sha256\": \"%s\"}\n",
           o->split, shard_index, nb, tot_bytes, tot_tokens, tot_words,
           tot_words ? (double)tot_tokens / (double)tot_words : 0.0, freqs ? "true" : "false", hex);
    for (size_t k = 0; k < batch; k++) {
        pg_encoded_free(&bb[k].enc);
        free(bb[k].freqs);
    }
    free(bb);
    pg_shard_writer_free(w);
    for (int k = 0; k < nt; k++)
        pg_encode_ctx_free(ctx[k]);
    free(ctx);
    pg_strtab_free(freqs);
    pg_corpus_free(books, nb);
    pg_encoder_free(enc);
    return 0;
}

/* ---- verify --------------------------------------------------------------- */

/* With a model and the corpus, every book is decoded and compared with its
 * text file, so the shards are checked against the source, not only against
 * their own checksums. */
static int verify_against_corpus(const char *path, pg_shard *s, const pg_encoder *enc,
                                 const char *corpus, pg_error *err)
{
    if (memcmp(pg_shard_vocab_sha256(s), pg_encoder_model_sha256(enc), 32) != 0)
        return pg_fail(err, PG_ECORRUPT, "%s: built with another vocabulary than the model",
                       path);
    pg_shard_summary sum;
    pg_shard_get_summary(s, &sum);
    for (uint64_t i = 0; i < sum.n_books; i++) {
        pg_shard_book b;
        int rc = pg_shard_get_book(s, i, &b, err);
        if (rc < 0)
            return rc;
        char bp[4200];
        snprintf(bp, sizeof bp, "%s/%s/%" PRIu64 ".txt", corpus, pg_split_name(b.split),
                 b.book_id);
        pg_book_ref ref = {b.book_id, 0, bp};
        uint8_t *text, *back = NULL;
        size_t len, blen;
        if ((rc = pg_corpus_read(&ref, &text, &len, err)) < 0)
            return rc;
        uint32_t *ids = malloc((b.n_tokens + 1) * sizeof *ids);
        if (!ids) {
            free(text);
            return pg_fail(err, PG_ENOMEM, "%s: no memory", path);
        }
        rc = pg_shard_tokens(s, i, 0, b.n_tokens, ids, err);
        if (rc == 0)
            rc = pg_decode(enc, ids, b.n_tokens, &back, &blen, err);
        uint8_t sha[32];
        pg_sha256(text, len, sha);
        if (rc == 0 && (blen != len || memcmp(back, text, len) != 0 || len != b.n_bytes))
            rc = pg_fail(err, PG_ECORRUPT, "%s: book %" PRIu64 " does not decode to %s", path,
                         b.book_id, bp);
        else if (rc == 0 && memcmp(sha, b.text_sha256, 32) != 0)
            rc = pg_fail(err, PG_ECORRUPT, "%s: book %" PRIu64 ": the recorded SHA-256 is not "
                         "that of %s", path, b.book_id, bp);
        free(ids);
        free(back);
        free(text);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int cmd_verify(opts *o)
{
    pg_error err = {0};
    if (o->n_files == 0 || (!o->model != !o->corpus))
        usage();
    pg_encoder *enc = NULL;
    if (o->model && pg_encoder_open(o->model, &enc, &err) < 0)
        return die(&err);
    int bad = 0;
    for (int f = 0; f < o->n_files; f++) {
        pg_shard *s;
        if (pg_shard_open(o->files[f], 1, &s, &err) < 0 ||
            (enc && verify_against_corpus(o->files[f], s, enc, o->corpus, &err) < 0)) {
            fprintf(stderr, "shards verify: FAILED %s\n", err.msg);
            bad = 1;
            continue;
        }
        pg_shard_summary sum;
        pg_shard_get_summary(s, &sum);
        printf("OK %s: %" PRIu64 " books, %" PRIu64 " tokens, %" PRIu64 " words%s\n",
               o->files[f], sum.n_books, sum.n_tokens, sum.n_words,
               enc ? ", every book decodes to its text" : "");
        pg_shard_close(s);
    }
    pg_encoder_free(enc);
    return bad;
}

/* ---- info ----------------------------------------------------------------- */

static int cmd_info(opts *o)
{
    pg_error err = {0};
    if (o->n_files != 1)
        usage();
    pg_shard *s;
    if (pg_shard_open(o->files[0], 1, &s, &err) < 0)
        return die(&err);
    pg_shard_summary m;
    pg_shard_get_summary(s, &m);
    char hex[65];
    pg_hex(pg_shard_vocab_sha256(s), 32, hex);
    printf("{\"file\": \"%s\", \"format\": \"PG19SHRD\", \"version\": %u, \"file_bytes\": %" PRIu64
           ", \"split\": \"%s\", \"token_dtype\": \"uint%u\", \"vocab_size\": %u, \"bos_id\": %u, "
           "\"vocab_sha256\": \"%s\", \"word_freqs\": %s, \"books\": %" PRIu64 ", \"tokens\": %" PRIu64
           ", \"words\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"book_table\": [",
           o->files[0], m.version, m.file_size, pg_split_name((int)m.split), m.token_bytes * 8,
           m.vocab_size, m.bos_id, hex, m.has_word_freqs ? "true" : "false", m.n_books,
           m.n_tokens, m.n_words, m.n_bytes);
    for (uint64_t i = 0; i < m.n_books; i++) {
        pg_shard_book b;
        pg_shard_get_book(s, i, &b, &err);
        char bsha[65];
        pg_hex(b.text_sha256, 32, bsha);
        printf("%s\n  {\"id\": %" PRIu64 ", \"tokens\": %" PRIu64 ", \"words\": %" PRIu64
               ", \"bytes\": %" PRIu64 ", \"sha256\": \"%s\"}",
               i ? "," : "", b.book_id, b.n_tokens, b.n_words, b.n_bytes, bsha);
    }
    printf("]}\n");
    pg_shard_close(s);
    return 0;
}

/* ---- stats ---------------------------------------------------------------- */

/* metadata.csv rows "id,title,year,url" (no header; titles may be quoted with
 * "" escapes). Returns the year of each id through a strtab keyed by id text. */
static int load_years(const char *path, pg_strtab **out, pg_error *err)
{
    char *data;
    size_t len;
    int rc = pg_read_file(path, (size_t)64 << 20, &data, &len, err);
    if (rc < 0)
        return rc;
    pg_strtab *t = pg_strtab_new();
    size_t i = 0;
    while (i < len) {
        /* fields of one record */
        size_t fs[8], fe[8];
        int nf = 0;
        for (;;) {
            size_t a = i;
            if (i < len && data[i] == '"') {
                i++;
                while (i < len && !(data[i] == '"' && (i + 1 >= len || data[i + 1] != '"')))
                    i += data[i] == '"' ? 2 : 1;
                i++;
            } else {
                while (i < len && data[i] != ',' && data[i] != '\n' && data[i] != '\r')
                    i++;
            }
            if (nf < 8) {
                fs[nf] = a;
                fe[nf] = i < len ? i : len;
                nf++;
            }
            if (i < len && data[i] == ',') {
                i++;
                continue;
            }
            while (i < len && (data[i] == '\r' || data[i] == '\n'))
                i++;
            break;
        }
        if (nf >= 3) {
            char year[16];
            size_t yl = fe[2] - fs[2];
            if (yl > 0 && yl < sizeof year) {
                memcpy(year, data + fs[2], yl);
                year[yl] = 0;
                char *end;
                long y = strtol(year, &end, 10);
                int is_new;
                uint64_t *v = *end == 0 ? pg_strtab_upsert(t, data + fs[0], fe[0] - fs[0], &is_new) : NULL;
                if (v)
                    *v = (uint64_t)(y + 100000); /* offset keeps negative years representable */
            }
        }
    }
    free(data);
    *out = t;
    return 0;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int cmd_stats(opts *o)
{
    pg_error err = {0};
    if (!o->dir)
        usage();
    pg_strtab *years = NULL;
    if (o->metadata && load_years(o->metadata, &years, &err) < 0)
        return die(&err);
    static const char *const all[] = {"train", "validation", "test"};
    int first = 1;
    printf("{");
    for (int si = 0; si < 3; si++) {
        if (o->split && strcmp(o->split, all[si]) != 0)
            continue;
        char **paths;
        size_t np;
        if (pg_shard_list(o->dir, all[si], &paths, &np, &err) < 0)
            return die(&err);
        if (np == 0) {
            free(paths);
            continue;
        }
        uint64_t books = 0, bytes = 0, words = 0, tokens = 0, cap = 1024, unknown_year = 0;
        uint64_t *tok_len = malloc(cap * sizeof *tok_len), *byte_len = malloc(cap * sizeof *byte_len);
        uint64_t decades[400] = {0}; /* decade index (year/10) from year 0 to 3999 */
        uint64_t before_year0 = 0;
        for (size_t p = 0; p < np; p++) {
            pg_shard *s;
            if (pg_shard_open(paths[p], 1, &s, &err) < 0)
                return die(&err);
            for (uint64_t i = 0; i < pg_shard_num_books(s); i++) {
                pg_shard_book b;
                pg_shard_get_book(s, i, &b, &err);
                if (books == cap) {
                    cap *= 2;
                    tok_len = realloc(tok_len, cap * sizeof *tok_len);
                    byte_len = realloc(byte_len, cap * sizeof *byte_len);
                    if (!tok_len || !byte_len) {
                        fprintf(stderr, "shards: out of memory\n");
                        return 1;
                    }
                }
                tok_len[books] = b.n_tokens;
                byte_len[books] = b.n_bytes;
                books++;
                bytes += b.n_bytes;
                words += b.n_words;
                tokens += b.n_tokens;
                if (years) {
                    char id[24];
                    int l = snprintf(id, sizeof id, "%" PRIu64, b.book_id);
                    uint64_t *v = pg_strtab_find(years, id, (size_t)l);
                    if (!v)
                        unknown_year++;
                    else if (*v < 100000)
                        before_year0++;
                    else if (*v - 100000 < 4000)
                        decades[(*v - 100000) / 10]++;
                    else
                        unknown_year++;
                }
            }
            pg_shard_close(s);
            free(paths[p]);
        }
        free(paths);
        qsort(tok_len, books, sizeof *tok_len, cmp_u64);
        qsort(byte_len, books, sizeof *byte_len, cmp_u64);
#define PCT(a, q) ((a)[(size_t)((double)(books - 1) * (q) + 0.5)])
        printf("%s\n\"%s\": {\"shards\": %zu, \"books\": %" PRIu64 ", \"bytes\": %" PRIu64
               ", \"words\": %" PRIu64 ", \"tokens\": %" PRIu64 ", \"tokens_per_word\": %.4f"
               ", \"bytes_per_token\": %.4f",
               first ? "" : ",", all[si], np, books, bytes, words, tokens,
               words ? (double)tokens / (double)words : 0.0,
               tokens ? (double)bytes / (double)tokens : 0.0);
        first = 0;
        if (books) {
            printf(",\n  \"book_tokens\": {\"min\": %" PRIu64 ", \"p10\": %" PRIu64
                   ", \"p50\": %" PRIu64 ", \"p90\": %" PRIu64 ", \"max\": %" PRIu64
                   ", \"mean\": %.1f}",
                   tok_len[0], PCT(tok_len, 0.1), PCT(tok_len, 0.5), PCT(tok_len, 0.9),
                   tok_len[books - 1], (double)tokens / (double)books);
            printf(",\n  \"book_bytes\": {\"min\": %" PRIu64 ", \"p10\": %" PRIu64
                   ", \"p50\": %" PRIu64 ", \"p90\": %" PRIu64 ", \"max\": %" PRIu64
                   ", \"mean\": %.1f}",
                   byte_len[0], PCT(byte_len, 0.1), PCT(byte_len, 0.5), PCT(byte_len, 0.9),
                   byte_len[books - 1], (double)bytes / (double)books);
        }
#undef PCT
        if (years) {
            printf(",\n  \"publication_decades\": {");
            int f2 = 1;
            if (before_year0) {
                printf("\"<0\": %" PRIu64, before_year0);
                f2 = 0;
            }
            for (int d = 0; d < 400; d++)
                if (decades[d]) {
                    printf("%s\"%d\": %" PRIu64, f2 ? "" : ", ", d * 10, decades[d]);
                    f2 = 0;
                }
            printf("}, \"year_unknown\": %" PRIu64, unknown_year);
        }
        printf("}");
        free(tok_len);
        free(byte_len);
    }
    printf("\n}\n");
    pg_strtab_free(years);
    return 0;
}

/* ---- official ------------------------------------------------------------- */

/* Are the shards of a split exactly PG-19's books of that split? Prints the
 * decision as JSON; exit status 0 only for the official split. */
static int cmd_official(opts *o)
{
    pg_error err = {0};
    if (!o->dir || !o->split)
        usage();
    int split = pg_split_from_name(o->split);
    if (split < 0) {
        fprintf(stderr, "shards: unknown split \"%s\"\n", o->split);
        return 2;
    }
    const pg19_file_list *list;
    if (pg19_file_list_builtin(&list, &err) < 0)
        return die(&err);
    char **paths;
    size_t np;
    if (pg_shard_list(o->dir, o->split, &paths, &np, &err) < 0)
        return die(&err);
    if (np == 0) {
        fprintf(stderr, "shards: no %s-NNNNN.pgs shards in %s\n", o->split, o->dir);
        free(paths);
        return 1;
    }
    pg19_book_fact *facts = NULL;
    uint64_t n = 0;
    int rc = 0;
    for (size_t p = 0; p < np; p++) {
        pg_shard *s = NULL;
        uint64_t nb = 0;
        pg19_book_fact *grown = NULL;
        if (rc == 0 && (rc = pg_shard_open(paths[p], 1, &s, &err)) == 0) {
            nb = pg_shard_num_books(s);
            if (!(grown = realloc(facts, (size_t)(n + nb + 1) * sizeof *facts)))
                rc = pg_fail(&err, PG_ENOMEM, "out of memory");
            else
                facts = grown;
        }
        for (uint64_t i = 0; rc == 0 && i < nb; i++) {
            pg_shard_book b;
            if ((rc = pg_shard_get_book(s, i, &b, &err)) == 0) {
                facts[n].id = b.book_id;
                facts[n].n_bytes = b.n_bytes;
                memcpy(facts[n++].sha256, b.text_sha256, 32);
            }
        }
        pg_shard_close(s);
        free(paths[p]);
    }
    free(paths);
    pg19_classification c;
    if (rc == 0)
        rc = pg19_classify_books(list, split, facts, n, &c, &err);
    free(facts);
    if (rc < 0)
        return die(&err);
    char hex[65];
    pg_hex(c.digest, 32, hex);
    printf("{\"split\": \"%s\", \"book_set\": \"%s\", \"books\": %" PRIu64
           ", \"pg19_books\": %" PRIu64 ", \"matching\": %" PRIu64
           ", \"books_sha256\": \"%s\", \"reason\": \"%s\"}\n",
           o->split, pg19_book_set_name(c.kind), c.n_books, c.n_split, c.n_matching, hex,
           c.reason);
    return c.kind == PG19_BOOKS_OFFICIAL ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    opts o;
    parse(argc, argv, &o);
    int rc;
    if (!strcmp(argv[1], "build"))
        rc = cmd_build(&o);
    else if (!strcmp(argv[1], "verify"))
        rc = cmd_verify(&o);
    else if (!strcmp(argv[1], "info"))
        rc = cmd_info(&o);
    else if (!strcmp(argv[1], "stats"))
        rc = cmd_stats(&o);
    else if (!strcmp(argv[1], "official"))
        rc = cmd_official(&o);
    else
        usage();
    free(o.files);
    return rc;
}
