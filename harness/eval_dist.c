/* eval_dist.c - see eval_dist.h */
#include "harness/eval_dist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/progress.h"

uint64_t pg_dist_first_book(const uint64_t *sizes, uint64_t n_books, int rank, int size)
{
    if (rank <= 0)
        return 0;
    if (rank >= size)
        return n_books;
    long double total = 0;
    for (uint64_t i = 0; i < n_books; i++)
        total += (long double)sizes[i];
    /* first book whose middle lies at or past rank/size of the total */
    long double at = 0, cut = total * (long double)rank / (long double)size;
    for (uint64_t i = 0; i < n_books; i++) {
        if (at + (long double)sizes[i] / 2 >= cut && total > 0)
            return i;
        at += (long double)sizes[i];
    }
    return total > 0 ? n_books : n_books * (uint64_t)rank / (uint64_t)size;
}

/* The books [first, first + n) of another source. */
typedef struct range_src {
    const pg_book_source *src;
    uint64_t first;
} range_src;

static int range_book(void *ctx, uint64_t i, pg_eval_book *out, pg_error *err)
{
    range_src *r = ctx;
    return r->src->book(r->src->ctx, r->first + i, out, err);
}

static int range_tokens(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint32_t *dst,
                        pg_error *err)
{
    range_src *r = ctx;
    return r->src->tokens(r->src->ctx, r->first + i, start, count, dst, err);
}

static int range_word_starts(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint8_t *dst,
                             pg_error *err)
{
    range_src *r = ctx;
    return r->src->word_starts(r->src->ctx, r->first + i, start, count, dst, err);
}

static int range_word_freqs(void *ctx, uint64_t i, uint64_t start, uint64_t count,
                            uint64_t *dst, pg_error *err)
{
    range_src *r = ctx;
    return r->src->word_freqs(r->src->ctx, r->first + i, start, count, dst, err);
}

/* Wire format of one rank's part (native byte order: the ranks run the same
 * binary): n_books, n_tokens (u64), flops (f64), then per book id, tokens
 * (u64) and its pg_eval_totals, then the NLLs (f32). */
static int pack(const pg_eval_result *r, int keep_nll, uint8_t **out, uint64_t *len,
                pg_error *err)
{
    uint64_t nb = r->n_books, nt = keep_nll ? r->tot.tokens : 0;
    uint64_t n = 24 + nb * (16 + sizeof(pg_eval_totals)) + nt * 4;
    uint8_t *b = malloc(n + 1), *p = b;
    if (!b)
        return pg_fail(err, PG_ENOMEM, "evaluate: cannot pack %llu books",
                       (unsigned long long)nb);
    memcpy(p, &nb, 8);
    memcpy(p + 8, &nt, 8);
    memcpy(p + 16, &r->flops, 8);
    p += 24;
    for (uint64_t i = 0; i < nb; i++) {
        memcpy(p, &r->book_ids[i], 8);
        memcpy(p + 8, &r->book_tokens[i], 8);
        memcpy(p + 16, &r->book_tot[i], sizeof(pg_eval_totals));
        p += 16 + sizeof(pg_eval_totals);
    }
    if (nt)
        memcpy(p, r->nll, nt * 4);
    *out = b;
    *len = n;
    return 0;
}

/* Appends the parts of every rank, in rank order (= book order), to res. */
static int unpack_all(const uint8_t *all, const uint64_t *counts, int size, int keep_nll,
                      pg_eval_result *res, pg_error *err)
{
    uint64_t nb = 0, nt = 0, off = 0;
    double flops = 0;
    for (int r = 0; r < size; off += counts[r], r++) {
        uint64_t b, t;
        if (counts[r] < 24)
            return pg_fail(err, PG_ECORRUPT, "evaluate: rank %d sent %llu bytes", r,
                           (unsigned long long)counts[r]);
        memcpy(&b, all + off, 8);
        memcpy(&t, all + off + 8, 8);
        if (b > counts[r] || t > counts[r] ||
            24 + b * (16 + sizeof(pg_eval_totals)) + t * 4 != counts[r])
            return pg_fail(err, PG_ECORRUPT, "evaluate: rank %d sent a malformed part", r);
        nb += b;
        nt += t;
    }
    memset(res, 0, sizeof *res);
    res->book_ids = malloc(nb * 8 + 8);
    res->book_tokens = malloc(nb * 8 + 8);
    res->book_tot = malloc(nb * sizeof(pg_eval_totals) + 1);
    res->nll = keep_nll ? malloc(nt * 4 + 4) : NULL;
    if (!res->book_ids || !res->book_tokens || !res->book_tot || (keep_nll && !res->nll))
        return pg_fail(err, PG_ENOMEM, "evaluate: results of %llu books",
                       (unsigned long long)nb);
    uint64_t bi = 0, ti = 0;
    off = 0;
    for (int r = 0; r < size; off += counts[r], r++) {
        const uint8_t *p = all + off;
        uint64_t b, t;
        double f;
        memcpy(&b, p, 8);
        memcpy(&t, p + 8, 8);
        memcpy(&f, p + 16, 8);
        flops += f;
        p += 24;
        for (uint64_t i = 0; i < b; i++, bi++) {
            memcpy(&res->book_ids[bi], p, 8);
            memcpy(&res->book_tokens[bi], p + 8, 8);
            memcpy(&res->book_tot[bi], p + 16, sizeof(pg_eval_totals));
            p += 16 + sizeof(pg_eval_totals);
        }
        if (keep_nll && t)
            memcpy(res->nll + ti, p, t * 4);
        ti += t;
    }
    res->n_books = nb;
    res->flops = flops;
    pg_eval_sum_books(res);
    if (keep_nll && res->tot.tokens != nt)
        return pg_fail(err, PG_ECORRUPT, "evaluate: the ranks sent %llu NLLs for %llu tokens",
                       (unsigned long long)nt, (unsigned long long)res->tot.tokens);
    return 0;
}

int pg_evaluate_dist(const pg_dist *d, const pg_model *m, const pg_book_source *src,
                     const pg_eval_opts *opts, pg_eval_result *res, pg_error *err)
{
    if (d->size <= 1)
        return pg_evaluate(m, src, opts, res, err);
    memset(res, 0, sizeof *res);
    double t0 = pg_now();
    uint64_t nb = src->n_books, *sizes = calloc(nb + 1, sizeof *sizes);
    int rc = sizes ? 0 : pg_fail(err, PG_ENOMEM, "evaluate: out of memory");
    for (uint64_t i = 0; !rc && i < nb; i++) {
        pg_eval_book bk;
        if ((rc = src->book(src->ctx, i, &bk, err)))
            break;
        sizes[i] = bk.n_tokens;
        if (opts->max_tokens_per_book && sizes[i] > opts->max_tokens_per_book)
            sizes[i] = opts->max_tokens_per_book;
    }
    uint64_t first = 0, end = 0;
    if (!rc) {
        first = pg_dist_first_book(sizes, nb, d->rank, d->size);
        end = pg_dist_first_book(sizes, nb, d->rank + 1, d->size);
    }
    free(sizes);
    range_src rs = {src, first};
    pg_book_source sub = *src;
    sub.ctx = &rs;
    sub.n_books = end - first;
    sub.book = range_book;
    sub.tokens = range_tokens;
    sub.word_starts = range_word_starts;
    sub.word_freqs = range_word_freqs;
    pg_eval_opts o = *opts;
    o.progress = opts->progress && d->rank == 0;
    pg_eval_result mine;
    memset(&mine, 0, sizeof mine);
    if (!rc)
        rc = pg_evaluate(m, &sub, &o, &mine, err);
    /* every rank takes the same path: no rank waits in a gather for a failed one */
    if (!pg_dist_all_ok(d, rc == 0)) {
        pg_eval_result_free(&mine);
        return rc ? rc : pg_fail(err, PG_EINVAL, "evaluate: another rank failed (its error is "
                                 "above)");
    }
    uint8_t *part = NULL, *all = NULL;
    uint64_t len = 0, *counts = calloc((size_t)d->size, sizeof *counts);
    rc = counts ? pack(&mine, opts->keep_nll, &part, &len, err)
                : pg_fail(err, PG_ENOMEM, "evaluate: out of memory");
    if (!pg_dist_all_ok(d, rc == 0)) {
        rc = rc ? rc : pg_fail(err, PG_EINVAL, "evaluate: another rank failed");
        goto done;
    }
    if ((rc = pg_dist_gather_bytes(d, part, len, &all, counts, err)))
        goto done;
    if (d->rank == 0) {
        rc = unpack_all(all, counts, d->size, opts->keep_nll, res, err);
        if (rc)
            pg_eval_result_free(res);
        res->seconds = pg_now() - t0;
    } else {
        *res = mine; /* this rank's own books */
        memset(&mine, 0, sizeof mine);
        res->seconds = pg_now() - t0;
    }
done:
    free(part);
    free(all);
    free(counts);
    pg_eval_result_free(&mine);
    return rc;
}
