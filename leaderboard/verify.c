/* verify.c - see verify.h */
#include "leaderboard/verify.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/hash.h"
#include "leaderboard/entries.h"
#include "leaderboard/reproduce.h"
#include "shards/pg19_official.h"
#include "shards/shard_reader.h"

/* Tokens read from a shard per call: bounds the scratch buffers. */
#define BLOCK_TOKENS ((uint64_t)1 << 16)

int lb_bucket_of(uint64_t f)
{
    for (int k = 0; k < LB_BUCKETS - 1; k++)
        if (f >= (uint64_t)lb_bucket_min[k])
            return k;
    return LB_BUCKETS - 1;
}

void lb_metrics_free(lb_metrics *m)
{
    free(m->shard_file);
    free(m->shard_sha256);
    memset(m, 0, sizeof *m);
}

/* One book of the split: where it lives. */
typedef struct book_ref {
    uint64_t book_id;
    uint32_t shard;
    uint64_t index;   /* in its shard */
    uint64_t n_tokens, n_words, n_bytes;
    uint8_t text_sha256[32];
    int seen;         /* scored by the dump already */
} book_ref;

static int cmp_book_ref(const void *a, const void *b)
{
    const book_ref *x = a, *y = b;
    return x->book_id < y->book_id ? -1 : x->book_id > y->book_id;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Scores tokens [0, n_scored) of one book (all of them unless a prefix run):
 * every token's NLL goes to the bucket of the word it belongs to. t0 is the
 * book's first token in the dump. Returns the words started in *words. */
static int score_book(const pg_shard *s, const book_ref *b, uint64_t n_scored,
                      const lb_nll_dump *dump, uint64_t t0, uint8_t *starts, uint64_t *freqs,
                      lb_metrics *m, uint64_t *words, pg_error *err)
{
    uint64_t word = 0;   /* words started so far in this book */
    int bucket = -1;     /* bucket of the current word */
    for (uint64_t start = 0; start < n_scored; start += BLOCK_TOKENS) {
        uint64_t count = n_scored - start < BLOCK_TOKENS ? n_scored - start : BLOCK_TOKENS;
        int rc = pg_shard_word_starts(s, b->index, start, count, starts, err);
        if (rc)
            return rc;
        uint64_t k = 0;
        for (uint64_t t = 0; t < count; t++)
            k += starts[t] != 0;
        if (k > b->n_words - word)
            return pg_fail(err, PG_ECORRUPT, "book %llu: more word starts than its %llu words",
                           (unsigned long long)b->book_id, (unsigned long long)b->n_words);
        if (k && (rc = pg_shard_word_freqs(s, b->index, word, k, freqs, err)))
            return rc;
        uint64_t w = 0;
        for (uint64_t t = 0; t < count; t++) {
            if (starts[t]) {
                bucket = lb_bucket_of(freqs[w++]);
                m->bucket_words[bucket]++;
            }
            if (bucket < 0)
                return pg_fail(err, PG_ECORRUPT, "book %llu: token 0 does not start a word",
                               (unsigned long long)b->book_id);
            float nll = lb_nll_value(dump, t0 + start + t);
            if (!isfinite(nll) || nll < 0)
                return pg_fail(err, PG_EINVAL,
                               "%s: token %llu of book %llu has NLL %g (must be finite, >= 0)",
                               dump->path, (unsigned long long)(start + t),
                               (unsigned long long)b->book_id, (double)nll);
            m->bucket_tokens[bucket]++;
            m->bucket_nll[bucket] += (double)nll;
        }
        word += k;
    }
    if (n_scored == b->n_tokens && word != b->n_words)
        return pg_fail(err, PG_ECORRUPT, "book %llu: %llu word starts, the shard says %llu words",
                       (unsigned long long)b->book_id, (unsigned long long)word,
                       (unsigned long long)b->n_words);
    *words = word;
    return PG_OK;
}

/* Are the shards' books PG-19's own? Each book's id, bytes and text SHA-256
 * (recorded by `shards build`) against the file list built into this tool. */
static int classify_books(const book_ref *books, uint64_t n, int split, lb_metrics *m,
                          pg_error *err)
{
    const pg19_file_list *list;
    int rc = pg19_file_list_builtin(&list, err);
    if (rc)
        return rc;
    pg19_book_fact *facts = malloc((size_t)(n + 1) * sizeof *facts);
    if (!facts)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        facts[i].id = books[i].book_id;
        facts[i].n_bytes = books[i].n_bytes;
        memcpy(facts[i].sha256, books[i].text_sha256, 32);
    }
    pg19_classification c;
    rc = pg19_classify_books(list, split, facts, n, &c, err);
    free(facts);
    if (rc)
        return rc;
    m->book_set = (int)c.kind;
    pg_hex(c.digest, 32, m->books_sha256);
    snprintf(m->book_set_reason, sizeof m->book_set_reason, "%s", c.reason);
    return PG_OK;
}

int lb_recompute(const lb_nll_dump *dump, const char *dir, const char *split,
                 uint64_t prefix_tokens, lb_metrics *m, pg_error *err)
{
    memset(m, 0, sizeof *m);
    int split_id = pg_split_from_name(split);
    if (split_id < 0)
        return pg_fail(err, PG_EINVAL, "unknown split \"%s\"", split);
    char **paths = NULL;
    size_t n = 0;
    int rc = pg_shard_list(dir, split, &paths, &n, err);
    if (rc)
        return rc;
    pg_shard **shards = NULL;
    book_ref *books = NULL;
    uint8_t *starts = NULL;
    uint64_t *freqs = NULL;
    uint64_t n_books = 0;
    if (n == 0) {
        rc = pg_fail(err, PG_ENOTFOUND, "%s: no %s-NNNNN.pgs shard files", dir, split);
        goto out;
    }
    shards = calloc(n, sizeof *shards);
    m->shard_file = calloc(n, sizeof *m->shard_file);
    m->shard_sha256 = calloc(n, sizeof *m->shard_sha256);
    starts = malloc(BLOCK_TOKENS);
    freqs = malloc(BLOCK_TOKENS * sizeof *freqs);
    if (!shards || !m->shard_file || !m->shard_sha256 || !starts || !freqs) {
        rc = pg_fail(err, PG_ENOMEM, "out of memory");
        goto out;
    }
    m->n_shards = n;
    for (size_t i = 0; i < n && !rc; i++) {
        uint8_t md5[16], sha[32];
        uint32_t crc;
        uint64_t size;
        snprintf(m->shard_file[i], sizeof m->shard_file[i], "%s", base_name(paths[i]));
        if ((rc = pg_hash_file(paths[i], md5, sha, &crc, &size, err)))
            break;
        pg_hex(sha, 32, m->shard_sha256[i]);
        if ((rc = pg_shard_open(paths[i], 1, &shards[i], err)))
            break;
        if (i == 0) {
            m->vocab_size = pg_shard_vocab_size(shards[i]);
            memcpy(m->vocab_sha256, pg_shard_vocab_sha256(shards[i]), 32);
        } else if (pg_shard_vocab_size(shards[i]) != m->vocab_size ||
                   memcmp(pg_shard_vocab_sha256(shards[i]), m->vocab_sha256, 32) != 0) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: a different vocabulary from %s", paths[i],
                         paths[0]);
            break;
        }
        uint64_t nb = pg_shard_num_books(shards[i]);
        if (nb > UINT64_MAX / sizeof *books - n_books) {
            rc = pg_fail(err, PG_ELIMIT, "%s: too many books", paths[i]);
            break;
        }
        book_ref *nbks = realloc(books, (n_books + nb + 1) * sizeof *books);
        if (!nbks) {
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
        books = nbks;
        for (uint64_t j = 0; j < nb && !rc; j++) {
            pg_shard_book sb;
            if ((rc = pg_shard_get_book(shards[i], j, &sb, err)))
                break;
            if (sb.split != split_id) {
                rc = pg_fail(err, PG_ECORRUPT, "%s: book %llu is not in the %s split", paths[i],
                             (unsigned long long)sb.book_id, split);
                break;
            }
            books[n_books] = (book_ref){.book_id = sb.book_id, .shard = (uint32_t)i, .index = j,
                                        .n_tokens = sb.n_tokens, .n_words = sb.n_words,
                                        .n_bytes = sb.n_bytes};
            memcpy(books[n_books++].text_sha256, sb.text_sha256, 32);
        }
    }
    if (rc)
        goto out;
    qsort(books, n_books, sizeof *books, cmp_book_ref);
    for (uint64_t i = 1; i < n_books; i++)
        if (books[i].book_id == books[i - 1].book_id) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: book %llu is in two shards", dir,
                         (unsigned long long)books[i].book_id);
            goto out;
        }
    if ((rc = classify_books(books, n_books, split_id, m, err)))
        goto out;
    /* Every shard book is scored exactly once, with its own token count. */
    if (dump->n_books != n_books) {
        rc = pg_fail(err, PG_EINVAL, "%s: scores %llu books, the %s shards hold %llu",
                     dump->path, (unsigned long long)dump->n_books, split,
                     (unsigned long long)n_books);
        goto out;
    }
    uint64_t t0 = 0;
    for (uint64_t i = 0; i < dump->n_books; i++) {
        uint64_t id, nt;
        lb_nll_book(dump, i, &id, &nt);
        book_ref key = {.book_id = id};
        book_ref *b = bsearch(&key, books, n_books, sizeof *books, cmp_book_ref);
        if (!b) {
            rc = pg_fail(err, PG_EINVAL, "%s: book %llu is not in the %s shards", dump->path,
                         (unsigned long long)id, split);
            goto out;
        }
        if (b->seen) {
            rc = pg_fail(err, PG_EINVAL, "%s: book %llu is scored twice", dump->path,
                         (unsigned long long)id);
            goto out;
        }
        uint64_t want = prefix_tokens && prefix_tokens < b->n_tokens ? prefix_tokens : b->n_tokens;
        if (nt != want) {
            rc = pg_fail(err, PG_EINVAL, "%s: book %llu has %llu NLLs but %llu tokens%s",
                         dump->path, (unsigned long long)id, (unsigned long long)nt,
                         (unsigned long long)want, prefix_tokens ? " in the scored prefix" : "");
            goto out;
        }
        b->seen = 1;
        uint64_t words = 0;
        if ((rc = score_book(shards[b->shard], b, nt, dump, t0, starts, freqs, m, &words, err)))
            goto out;
        t0 += nt;
        m->books++;
        m->tokens += nt;
        m->words += words;
        m->bytes += prefix_tokens ? 0 : b->n_bytes; /* a prefix's bytes are unknown */
    }
    for (int k = 0; k < LB_BUCKETS; k++)
        m->nll += m->bucket_nll[k];
out:
    for (size_t i = 0; i < n; i++) {
        if (shards && shards[i])
            pg_shard_close(shards[i]);
        free(paths[i]);
    }
    free(paths);
    free(shards);
    free(books);
    free(starts);
    free(freqs);
    if (rc)
        lb_metrics_free(m);
    return rc;
}

/* ---- comparison ---------------------------------------------------------- */

static void note(lb_verify_report *rep, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(lb_verify_report *rep, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char **v = realloc(rep->mismatch, (rep->n_mismatch + 1) * sizeof *v);
    char *copy = strdup(line);
    if (!v || !copy) { /* out of memory: keep the count honest even without text */
        if (v)
            rep->mismatch = v;
        free(copy);
        return;
    }
    rep->mismatch = v;
    rep->mismatch[rep->n_mismatch++] = copy;
}

static const json_t *jget(const json_t *root, const char *a, const char *b)
{
    const json_t *v = json_object_get(root, a);
    return b ? json_object_get(v, b) : v;
}

static void check_count(lb_verify_report *rep, const char *what, const json_t *v, uint64_t want)
{
    rep->n_checks++;
    if (!json_is_integer(v) || (uint64_t)json_integer_value(v) != want)
        note(rep, "%s: entry says %lld, recomputed %llu", what,
             json_is_integer(v) ? (long long)json_integer_value(v) : -1LL,
             (unsigned long long)want);
}

static void check_real(lb_verify_report *rep, const char *what, const json_t *v, double want)
{
    rep->n_checks++;
    if (!json_is_number(v) || !lb_close(json_number_value(v), want, LB_REL_TOL))
        note(rep, "%s: entry says %.17g, recomputed %.17g", what,
             json_is_number(v) ? json_number_value(v) : NAN, want);
}

static void check_string(lb_verify_report *rep, const char *what, const json_t *v,
                         const char *want)
{
    rep->n_checks++;
    const char *s = json_string_value(v);
    if (!s || strcmp(s, want) != 0)
        note(rep, "%s: entry says %s, recomputed %s", what, s ? s : "null", want);
}

int lb_compare(const json_t *e, const lb_metrics *m, const char *nll_sha256,
               lb_verify_report *rep, pg_error *err)
{
    (void)err;
    const json_t *totals = json_object_get(e, "totals");
    check_count(rep, "eval.books", jget(e, "eval", "books"), m->books);
    check_count(rep, "totals.tokens", json_object_get(totals, "tokens"), m->tokens);
    check_count(rep, "totals.bytes", json_object_get(totals, "bytes"), m->bytes);
    check_count(rep, "totals.words", json_object_get(totals, "words"), m->words);
    check_real(rep, "totals.nll", json_object_get(totals, "nll"), m->nll);
    check_real(rep, "totals.token_ppl", json_object_get(totals, "token_ppl"),
               exp(m->nll / (double)m->tokens));
    if (m->bytes) /* 0 for a prefix run, whose bits_per_byte is null */
        check_real(rep, "totals.bits_per_byte", json_object_get(totals, "bits_per_byte"),
                   m->nll / ((double)m->bytes * M_LN2));
    /* the headline normaliser is fixed by the validator (PG-19's word count on
     * the official splits, else the exact count); recompute with it */
    const json_t *wp = json_object_get(e, "word_ppl");
    const json_t *norm_words = json_object_get(wp, "words");
    if (json_is_integer(norm_words) && json_integer_value(norm_words) > 0)
        check_real(rep, "word_ppl.value", json_object_get(wp, "value"),
                   exp(m->nll / (double)json_integer_value(norm_words)));
    const json_t *ex = json_object_get(e, "word_ppl_exact");
    check_count(rep, "word_ppl_exact.words", json_object_get(ex, "words"), m->words);
    check_real(rep, "word_ppl_exact.value", json_object_get(ex, "value"),
               exp(m->nll / (double)m->words));
    const json_t *buckets = json_object_get(e, "buckets");
    for (int k = 0; k < LB_BUCKETS; k++) {
        const json_t *b = json_array_get(buckets, (size_t)k);
        char what[64];
        snprintf(what, sizeof what, "buckets[%s].words", lb_bucket_names[k]);
        check_count(rep, what, json_object_get(b, "words"), m->bucket_words[k]);
        snprintf(what, sizeof what, "buckets[%s].tokens", lb_bucket_names[k]);
        check_count(rep, what, json_object_get(b, "tokens"), m->bucket_tokens[k]);
        snprintf(what, sizeof what, "buckets[%s].nll", lb_bucket_names[k]);
        check_real(rep, what, json_object_get(b, "nll"), m->bucket_nll[k]);
        snprintf(what, sizeof what, "buckets[%s].word_ppl", lb_bucket_names[k]);
        if (m->bucket_words[k]) {
            check_real(rep, what, json_object_get(b, "word_ppl"),
                       exp(m->bucket_nll[k] / (double)m->bucket_words[k]));
        } else {
            rep->n_checks++;
            if (!json_is_null(json_object_get(b, "word_ppl")))
                note(rep, "%s: entry has a value, the bucket has no words", what);
        }
    }
    check_count(rep, "tokenizer.vocab_size", jget(e, "tokenizer", "vocab_size"), m->vocab_size);
    char vhex[65];
    pg_hex(m->vocab_sha256, 32, vhex);
    check_string(rep, "tokenizer.vocab_sha256", jget(e, "tokenizer", "vocab_sha256"), vhex);
    /* the shards the entry names are exactly the split's shard files */
    const json_t *shards = jget(e, "eval", "shards");
    rep->n_checks++;
    if (json_array_size(shards) != m->n_shards)
        note(rep, "eval.shards: entry lists %zu files, the directory holds %zu",
             json_array_size(shards), m->n_shards);
    for (size_t i = 0; i < m->n_shards; i++) {
        const json_t *found = NULL;
        for (size_t j = 0; j < json_array_size(shards); j++) {
            const char *f = json_string_value(json_object_get(json_array_get(shards, j), "file"));
            if (f && strcmp(f, m->shard_file[i]) == 0)
                found = json_array_get(shards, j);
        }
        char what[128];
        snprintf(what, sizeof what, "eval.shards %s sha256", m->shard_file[i]);
        if (!found) {
            rep->n_checks++;
            note(rep, "eval.shards: %s is not listed", m->shard_file[i]);
        } else {
            check_string(rep, what, json_object_get(found, "sha256"), m->shard_sha256[i]);
        }
    }
    /* the books: official only if the shards hold exactly PG-19's books */
    check_string(rep, "eval.books_sha256", jget(e, "eval", "books_sha256"), m->books_sha256);
    check_string(rep, "eval.book_set", jget(e, "eval", "book_set"),
                 pg19_book_set_name((pg19_book_set)m->book_set));
    rep->n_checks++;
    if (json_is_true(jget(e, "eval", "official")) && m->book_set != PG19_BOOKS_OFFICIAL)
        note(rep, "eval.official: entry says true, but the shards' books are %s (%s)",
             pg19_book_set_name((pg19_book_set)m->book_set), m->book_set_reason);
    const json_t *dump = json_object_get(e, "nll_dump");
    if (json_is_object(dump))
        check_string(rep, "nll_dump.sha256", json_object_get(dump, "sha256"), nll_sha256);
    return PG_OK;
}

void lb_verify_report_free(lb_verify_report *rep)
{
    for (size_t i = 0; i < rep->n_mismatch; i++)
        free(rep->mismatch[i]);
    free(rep->mismatch);
    memset(rep, 0, sizeof *rep);
}

static json_t *reproduction_record(const lb_reproduction *r, const lb_reproduce_opts *o,
                                   const json_t *e, const char *date, const char *nll_hex)
{
    const char *backend, *precision;
    lb_entry_backend(e, &backend, &precision);
    const lb_tolerance *t = lb_tolerance_for(backend, precision);
    json_t *books = json_array();
    for (size_t i = 0; books && i < r->n_books; i++)
        if (json_array_append_new(books, json_integer((json_int_t)r->books[i]))) {
            json_decref(books);
            return NULL;
        }
    char seed[17];
    snprintf(seed, sizeof seed, "%016llx", (unsigned long long)r->seed);
    json_t *sample = o->sample ? json_pack("{s:I, s:s}", "books", (json_int_t)o->sample, "seed",
                                           seed)
                               : json_null();
    if (!books || !sample || !t) {
        json_decref(books);
        json_decref(sample);
        return NULL;
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:{s:f, s:f}, s:o, s:o, s:I, s:f, s:f, "
                     "s:s}",
                     "date", date, "tool", LB_REPRODUCE_TOOL, "harness", r->harness,
                     "weights_sha256", r->weights_sha256, "config_sha256", r->config_sha256,
                     "backend", backend, "precision", precision, "tolerance", "abs", t->abs,
                     "rel", t->rel, "sample", sample, "books", books, "tokens",
                     (json_int_t)r->tokens, "max_abs_deviation", r->max_abs_deviation,
                     "max_deviation_ratio", r->max_ratio, "nll_sha256", nll_hex);
}

int lb_verify_entry(const char *entry_path, const char *nll_path, const char *shards_dir,
                    lb_verify_report *rep, pg_error *err)
{
    return lb_verify_entry_reproduce(entry_path, nll_path, shards_dir, NULL, rep, err);
}

int lb_verify_entry_reproduce(const char *entry_path, const char *nll_path,
                              const char *shards_dir, const lb_reproduce_opts *ro,
                              lb_verify_report *rep, pg_error *err)
{
    memset(rep, 0, sizeof *rep);
    json_t *e = NULL;
    int rc = lb_load_file(entry_path, &e, err);
    if (!rc)
        rc = lb_validate(e, LB_ENTRY, entry_path, err);
    if (!rc)
        rc = lb_entry_check_name(entry_path, e, err);
    if (rc) {
        json_decref(e);
        return rc;
    }
    const char *kind = json_string_value(jget(e, "provenance", "kind"));
    if (strcmp(kind, "measured") != 0) {
        json_decref(e);
        return pg_fail(err, PG_EINVAL,
                       "%s: a reported entry has no measurements to recompute", entry_path);
    }
    /* what can fail cheaply fails before the dump is read or the model re-run */
    lb_reproduction repro;
    memset(&repro, 0, sizeof repro);
    if (ro && (rc = lb_reproduce_precheck(e, ro, &repro, err))) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        json_decref(e);
        return pg_fail(err, rc, "%s: cannot be verified: %s", entry_path, why);
    }
    uint8_t md5[16], sha[32];
    uint32_t crc;
    uint64_t size;
    char nll_hex[65];
    lb_nll_dump dump;
    if ((rc = pg_hash_file(nll_path, md5, sha, &crc, &size, err)) ||
        (rc = lb_nll_open(nll_path, &dump, err))) {
        json_decref(e);
        return rc;
    }
    pg_hex(sha, 32, nll_hex);
    /* whole and chunked runs score every token; a prefix run the first chunk_tokens */
    const char *how = json_string_value(jget(e, "eval", "book_handling"));
    uint64_t prefix = 0;
    if (how && strcmp(how, "prefix") == 0)
        prefix = (uint64_t)json_integer_value(jget(e, "eval", "chunk_tokens"));
    lb_metrics m;
    rc = lb_recompute(&dump, shards_dir, json_string_value(jget(e, "eval", "split")), prefix, &m,
                      err);
    if (!rc) {
        rep->books = m.books;
        rep->tokens = m.tokens;
        rep->words = m.words;
        rc = lb_compare(e, &m, nll_hex, rep, err);
        lb_metrics_free(&m);
    }
    /* consistent: now re-run the model on (a sample of) the same books */
    uint8_t content[32];
    if (!rc && rep->n_mismatch == 0 && ro && !(rc = lb_entry_content_sha256(e, content, err))) {
        size_t before = rep->n_mismatch;
        rc = lb_reproduce(e, content, &dump, shards_dir, ro, &repro, &rep->mismatch,
                          &rep->n_mismatch, err);
        rep->reproduced = !rc && rep->n_mismatch == before;
        rep->rerun_books = repro.n_books;
        rep->rerun_tokens = repro.tokens;
        rep->max_abs_deviation = repro.max_abs_deviation;
    }
    lb_nll_close(&dump);
    if (!rc && rep->n_mismatch == 0) {
        /* All agree: record it. The rewrite is atomic; the entry keeps its name. */
        json_t *prov = json_object_get(e, "provenance");
        char date[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *cons = json_pack("{s:s, s:s, s:s}", "date", date, "nll_sha256", nll_hex, "tool",
                                 LB_VERIFY_TOOL);
        json_t *rec = NULL;
        if (ro) {
            rec = reproduction_record(&repro, ro, e, date, nll_hex);
        } else {
            /* a reproduction of this same dump stays valid; of another, it does not */
            const json_t *old = json_object_get(prov, "reproduction");
            const char *old_nll = json_string_value(json_object_get(old, "nll_sha256"));
            rec = old_nll && strcmp(old_nll, nll_hex) == 0 ? json_deep_copy(old) : json_null();
        }
        if (!cons || !rec || json_object_set_new(prov, "consistency", cons) ||
            json_object_set_new(prov, "reproduction", rec) ||
            json_object_set_new(prov, "status",
                                json_string(json_is_object(rec) ? "verified" : "consistent"))) {
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
        } else {
            rep->status = json_is_object(rec) ? "verified" : "consistent";
            if (!(rc = lb_validate(e, LB_ENTRY, entry_path, err)))
                rc = lb_entry_rewrite(entry_path, e, err);
        }
    }
    lb_reproduction_free(&repro);
    json_decref(e);
    return rc;
}
