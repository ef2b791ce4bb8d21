/* eval.c - see eval.h */
#include "harness/eval.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "common/progress.h"

const char *const pg_bucket_names[PG_N_BUCKETS] = {"frequent", "common", "medium", "rare"};
const uint64_t pg_bucket_min[PG_N_BUCKETS] = {10000, 1000, 100, 0};

int pg_bucket_of(uint64_t f)
{
    return f >= 10000 ? PG_BUCKET_FREQUENT : f >= 1000 ? PG_BUCKET_COMMON
                                         : f >= 100    ? PG_BUCKET_MEDIUM
                                                       : PG_BUCKET_RARE;
}

/* One book in flight in one state slot. */
typedef struct slot {
    int64_t book;          /* index in the source, -1 when idle */
    uint64_t n_score, pos; /* tokens to score, tokens scored */
    uint64_t n_words;
    uint32_t *tok;         /* [n_score] */
    uint8_t *ws;           /* [n_score] word starts */
    uint64_t *freq;        /* [n_words] */
    int64_t word;          /* index of the current word */
    int bucket;            /* bucket of the current word */
    float *nll;            /* [n_score] */
} slot;

static void slot_clear(slot *s)
{
    free(s->tok);
    free(s->ws);
    free(s->freq);
    free(s->nll);
    memset(s, 0, sizeof *s);
    s->book = -1;
}

static int slot_load(slot *s, const pg_book_source *src, uint64_t i, const pg_eval_book *bk,
                     uint64_t n_score, pg_error *err)
{
    slot_clear(s);
    s->book = (int64_t)i;
    s->n_score = n_score;
    s->n_words = bk->n_words;
    s->word = -1;
    size_t n = (size_t)n_score;
    s->tok = malloc(n * sizeof *s->tok + 1);
    s->ws = malloc(n + 1);
    s->nll = malloc(n * sizeof *s->nll + 1);
    s->freq = malloc((size_t)bk->n_words * sizeof *s->freq + 1);
    if (!s->tok || !s->ws || !s->nll || !s->freq)
        return pg_fail(err, PG_ENOMEM, "book %llu: %llu tokens: out of memory",
                       (unsigned long long)bk->book_id, (unsigned long long)n_score);
    int rc;
    if ((rc = src->tokens(src->ctx, i, 0, n_score, s->tok, err)) ||
        (rc = src->word_starts(src->ctx, i, 0, n_score, s->ws, err)) ||
        (rc = src->word_freqs(src->ctx, i, 0, bk->n_words, s->freq, err)))
        return rc;
    if (n_score && !s->ws[0])
        return pg_fail(err, PG_ECORRUPT, "book %llu: token 0 does not start a word",
                       (unsigned long long)bk->book_id);
    return 0;
}

typedef struct book_totals {
    double nll, bucket_nll[PG_N_BUCKETS];
    uint64_t words, bucket_tokens[PG_N_BUCKETS], bucket_words[PG_N_BUCKETS];
} book_totals;

/* nll of row: logsumexp(logits) - logits[target] */
static float row_nll(const float *row, int V, uint32_t target)
{
    float mx = row[0];
    for (int j = 1; j < V; j++)
        mx = row[j] > mx ? row[j] : mx;
    double sum = 0.0; /* float exponentials, summed in double */
    for (int j = 0; j < V; j++)
        sum += (double)expf(row[j] - mx);
    return (float)(log(sum) + (double)mx - (double)row[target]);
}

int pg_evaluate(const pg_model *m, const pg_book_source *src, const pg_eval_opts *opts,
                pg_eval_result *res, pg_error *err)
{
    memset(res, 0, sizeof *res);
    const int V = m->cfg.vocab_size;
    int W = opts->window > 0 ? opts->window : m->cfg.window;
    int B = opts->batch > 0 ? opts->batch : 1;
    uint64_t nb = src->n_books;
    if (src->vocab_size > (uint32_t)V || src->bos_id >= (uint32_t)V)
        return pg_fail(err, PG_EINVAL, "the shards' vocabulary (%u ids, BOS %u) does not fit "
                       "model %s (vocab_size %d)", src->vocab_size, src->bos_id, m->cfg.name, V);
    if (B > 4096)
        B = 4096;
    if ((uint64_t)B > nb && nb > 0)
        B = (int)nb;
    int rc = 0;
    pg_eval_book *books = calloc(nb + 1, sizeof *books);
    uint64_t *offset = calloc(nb + 1, sizeof *offset);
    book_totals *bt = calloc(nb + 1, sizeof *bt);
    slot *slots = calloc((size_t)B, sizeof *slots);
    uint32_t *in = calloc((size_t)B * W, sizeof *in);
    int *lens = calloc((size_t)B, sizeof *lens);
    pg_state *st = NULL;
    res->book_ids = calloc(nb + 1, sizeof *res->book_ids);
    res->book_tokens = calloc(nb + 1, sizeof *res->book_tokens);
    if (!books || !offset || !bt || !slots || !in || !lens || !res->book_ids ||
        !res->book_tokens) {
        rc = pg_fail(err, PG_ENOMEM, "evaluate: out of memory for %llu books",
                     (unsigned long long)nb);
        goto done;
    }
    for (int b = 0; b < B; b++)
        slots[b].book = -1;
    /* Pass 1: book sizes, the tokens scored per book, offsets of their NLLs. */
    uint64_t total = 0;
    for (uint64_t i = 0; i < nb; i++) {
        if ((rc = src->book(src->ctx, i, &books[i], err)))
            goto done;
        uint64_t n = books[i].n_tokens;
        if (opts->max_tokens_per_book && n > opts->max_tokens_per_book)
            n = opts->max_tokens_per_book;
        if (n > ((uint64_t)1 << 40) || books[i].n_words > books[i].n_tokens) {
            rc = pg_fail(err, PG_ECORRUPT, "book %llu: %llu tokens, %llu words: implausible",
                         (unsigned long long)books[i].book_id,
                         (unsigned long long)books[i].n_tokens,
                         (unsigned long long)books[i].n_words);
            goto done;
        }
        res->book_ids[i] = books[i].book_id;
        res->book_tokens[i] = n;
        offset[i] = total;
        total += n;
    }
    res->n_books = nb;
    if (opts->keep_nll) {
        res->nll = malloc((size_t)total * sizeof *res->nll + 1);
        if (!res->nll) {
            rc = pg_fail(err, PG_ENOMEM, "evaluate: NLLs of %llu tokens",
                         (unsigned long long)total);
            goto done;
        }
    }
    if ((rc = pg_state_new(m, B, W, &st, err)))
        goto done;
    pg_progress prog;
    pg_progress_init(&prog, "harness", "books", "tokens", nb, total);
    if (!opts->progress)
        prog.live = 0;
    double t0 = pg_now();
    uint64_t next = 0, books_done = 0, tokens_done = 0;
    for (;;) {
        /* fill idle slots with the next non-empty books */
        for (int b = 0; b < B; b++) {
            while (slots[b].book < 0 && next < nb) {
                uint64_t i = next++;
                if (res->book_tokens[i] == 0) {
                    books_done++;
                    continue;
                }
                if ((rc = slot_load(&slots[b], src, i, &books[i], res->book_tokens[i], err)))
                    goto done;
                pg_state_reset_slot(st, b);
            }
        }
        int T = 0;
        for (int b = 0; b < B; b++) {
            slot *s = &slots[b];
            lens[b] = 0;
            if (s->book < 0)
                continue;
            uint64_t left = s->n_score - s->pos;
            lens[b] = left < (uint64_t)W ? (int)left : W;
            /* the model sees BOS, then token t-1 to predict token t */
            for (int i = 0; i < lens[b]; i++) {
                uint64_t t = s->pos + (uint64_t)i;
                in[T + i] = t == 0 ? src->bos_id : s->tok[t - 1];
            }
            T += lens[b];
        }
        if (T == 0)
            break;
        const float *logits;
        if ((rc = pg_forward(m, st, in, lens, &logits, err)))
            goto done;
        int row = 0;
        for (int b = 0; b < B; b++) {
            slot *s = &slots[b];
            if (!lens[b])
                continue;
            const float *lg = logits + (size_t)row * V;
            int L = lens[b];
#pragma omp parallel for num_threads(pg_get_threads()) schedule(static)
            for (int i = 0; i < L; i++)
                s->nll[s->pos + i] = row_nll(lg + (size_t)i * V, V, s->tok[s->pos + i]);
            book_totals *t = &bt[s->book];
            for (int i = 0; i < L; i++) {
                uint64_t p = s->pos + (uint64_t)i;
                if (s->ws[p]) {
                    s->word++;
                    if ((uint64_t)s->word >= s->n_words) {
                        rc = pg_fail(err, PG_ECORRUPT, "book %llu: more word starts than its "
                                     "%llu words", (unsigned long long)books[s->book].book_id,
                                     (unsigned long long)s->n_words);
                        goto done;
                    }
                    s->bucket = pg_bucket_of(s->freq[s->word]);
                    t->words++;
                    t->bucket_words[s->bucket]++;
                }
                double x = (double)s->nll[p];
                if (!isfinite(x)) { /* stop: every total from here on would be NaN */
                    rc = pg_fail(err, PG_EINVAL, "book %llu, token %llu (from 0) of %llu: the "
                                 "NLL is %s (the model's logits are not finite: broken or "
                                 "overflowing weights); stopping without results",
                                 (unsigned long long)books[s->book].book_id,
                                 (unsigned long long)p, (unsigned long long)s->n_score,
                                 isnan(x) ? "NaN" : "infinite");
                    goto done;
                }
                t->nll += x;
                t->bucket_nll[s->bucket] += x;
                t->bucket_tokens[s->bucket]++;
            }
            s->pos += (uint64_t)L;
            row += L;
            tokens_done += (uint64_t)L;
            if (s->pos == s->n_score) {
                if (!opts->max_tokens_per_book && t->words != s->n_words) {
                    rc = pg_fail(err, PG_ECORRUPT, "book %llu: %llu word starts, the shard says "
                                 "%llu words", (unsigned long long)books[s->book].book_id,
                                 (unsigned long long)t->words,
                                 (unsigned long long)s->n_words);
                    goto done;
                }
                if (res->nll)
                    memcpy(res->nll + offset[s->book], s->nll, (size_t)s->n_score * sizeof(float));
                slot_clear(s);
                books_done++;
            }
        }
        pg_progress_update(&prog, books_done, tokens_done);
    }
    res->seconds = pg_now() - t0;
    res->flops = pg_state_flops(st);
    if (opts->progress)
        pg_progress_finish(&prog, NULL);
    /* totals in book order: independent of batching and threads */
    for (uint64_t i = 0; i < nb; i++) {
        pg_eval_totals *T = &res->tot;
        T->tokens += res->book_tokens[i];
        T->bytes += opts->max_tokens_per_book ? 0 : books[i].n_bytes;
        T->words += bt[i].words;
        T->nll += bt[i].nll;
        for (int k = 0; k < PG_N_BUCKETS; k++) {
            T->bucket_nll[k] += bt[i].bucket_nll[k];
            T->bucket_tokens[k] += bt[i].bucket_tokens[k];
            T->bucket_words[k] += bt[i].bucket_words[k];
        }
    }
done:
    if (slots)
        for (int b = 0; b < B; b++)
            slot_clear(&slots[b]);
    pg_state_free(st);
    free(books);
    free(offset);
    free(bt);
    free(slots);
    free(in);
    free(lens);
    if (rc)
        pg_eval_result_free(res);
    return rc;
}

void pg_eval_result_free(pg_eval_result *res)
{
    free(res->book_ids);
    free(res->book_tokens);
    free(res->nll);
    res->book_ids = res->book_tokens = NULL;
    res->nll = NULL;
}

static void put_u32(uint8_t *p, uint32_t x)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t x)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(x >> (8 * i));
}

int pg_nll_dump_write(const char *path, const pg_eval_result *res, uint8_t sha[32],
                      pg_error *err)
{
    if (!res->nll && res->tot.tokens)
        return pg_fail(err, PG_EINVAL, "%s: no per-token NLLs were kept", path);
    pg_atomic_file af;
    int rc = pg_atomic_open(&af, path, err);
    if (rc)
        return rc;
    uint32_t crc = 0;
    uint8_t hdr[32];
    memcpy(hdr, "PG19NLL1", 8);
    put_u32(hdr + 8, 1);
    put_u32(hdr + 12, 1);
    put_u64(hdr + 16, res->n_books);
    put_u64(hdr + 24, res->tot.tokens);
    int ok = fwrite(hdr, 1, 32, af.fp) == 32;
    crc = pg_crc32c_update(crc, hdr, 32);
    for (uint64_t i = 0; ok && i < res->n_books; i++) {
        uint8_t e[16];
        put_u64(e, res->book_ids[i]);
        put_u64(e + 8, res->book_tokens[i]);
        ok = fwrite(e, 1, 16, af.fp) == 16;
        crc = pg_crc32c_update(crc, e, 16);
    }
    uint8_t buf[4096];
    for (uint64_t i = 0; ok && i < res->tot.tokens;) {
        size_t n = 0;
        for (; n < sizeof buf / 4 && i < res->tot.tokens; n++, i++) {
            uint32_t bits;
            memcpy(&bits, &res->nll[i], 4);
            put_u32(buf + 4 * n, bits);
        }
        ok = fwrite(buf, 4, n, af.fp) == n;
        crc = pg_crc32c_update(crc, buf, 4 * n);
    }
    uint8_t tail[4];
    put_u32(tail, crc);
    if (!ok || fwrite(tail, 1, 4, af.fp) != 4) {
        pg_atomic_abort(&af);
        return pg_fail(err, PG_EIO, "%s: write: %s", path, strerror(errno));
    }
    if ((rc = pg_atomic_commit(&af, err)))
        return rc;
    if (sha) {
        uint8_t md5[16];
        uint32_t c2;
        uint64_t size;
        if ((rc = pg_hash_file(path, md5, sha, &c2, &size, err)))
            return rc;
    }
    return 0;
}
