/* shard_source.c - see shard_source.h */
#include "harness/shard_source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/hash.h"
#include "shards/shard_reader.h"

struct pg_shard_source {
    pg_book_source src;
    char **paths;
    size_t n_files;
    pg_shard **shards;
    uint8_t (*sha)[32];
    struct stat *st;      /* [n_files] each file as it was opened */
    uint64_t *first_book; /* [n_files + 1] global index of each file's first book */
    uint64_t total_books;
    uint8_t vocab_sha[32];
    uint64_t *selected;   /* pg_shard_source_select: source book i is global book selected[i] */
};

/* global book i -> (shard, local index) by binary search over first_book */
static const pg_shard *locate(const pg_shard_source *s, uint64_t *i)
{
    if (s->selected)
        *i = s->selected[*i];
    size_t lo = 0, hi = s->n_files;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (s->first_book[mid] <= *i)
            lo = mid;
        else
            hi = mid;
    }
    *i -= s->first_book[lo];
    return s->shards[lo];
}

static int src_book(void *ctx, uint64_t i, pg_eval_book *out, pg_error *err)
{
    pg_shard_book b;
    const pg_shard *sh = locate(ctx, &i);
    int rc = pg_shard_get_book(sh, i, &b, err);
    if (rc)
        return rc;
    out->book_id = b.book_id;
    out->n_tokens = b.n_tokens;
    out->n_words = b.n_words;
    out->n_bytes = b.n_bytes;
    return 0;
}

static int src_tokens(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint32_t *dst,
                      pg_error *err)
{
    const pg_shard *sh = locate(ctx, &i);
    return pg_shard_tokens(sh, i, start, count, dst, err);
}

static int src_word_starts(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint8_t *dst,
                           pg_error *err)
{
    const pg_shard *sh = locate(ctx, &i);
    return pg_shard_word_starts(sh, i, start, count, dst, err);
}

static int src_word_freqs(void *ctx, uint64_t i, uint64_t start, uint64_t count, uint64_t *dst,
                          pg_error *err)
{
    const pg_shard *sh = locate(ctx, &i);
    return pg_shard_word_freqs(sh, i, start, count, dst, err);
}

int pg_shard_source_open(const char *dir, const char *split, uint64_t max_books,
                         pg_shard_source **out, pg_error *err)
{
    pg_shard_source *s = calloc(1, sizeof *s);
    if (!s)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    int rc = pg_shard_list(dir, split, &s->paths, &s->n_files, err);
    if (rc)
        goto fail;
    if (s->n_files == 0) {
        rc = pg_fail(err, PG_ENOTFOUND, "%s: no %s-NNNNN.pgs shards (build them with `shards "
                     "build`, or `make demo` for generated ones)", dir, split);
        goto fail;
    }
    s->shards = calloc(s->n_files, sizeof *s->shards);
    s->sha = calloc(s->n_files, sizeof *s->sha);
    s->first_book = calloc(s->n_files + 1, sizeof *s->first_book);
    s->st = calloc(s->n_files, sizeof *s->st);
    if (!s->shards || !s->sha || !s->first_book || !s->st) {
        rc = pg_fail(err, PG_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t f = 0; f < s->n_files; f++) {
        if (stat(s->paths[f], &s->st[f]) != 0) {
            rc = pg_fail(err, PG_EIO, "%s: stat: %s", s->paths[f], strerror(errno));
            goto fail;
        }
        if ((rc = pg_shard_open(s->paths[f], 1, &s->shards[f], err)))
            goto fail;
        uint8_t md5[16];
        uint32_t crc;
        uint64_t size;
        if ((rc = pg_hash_file(s->paths[f], md5, s->sha[f], &crc, &size, err)))
            goto fail;
        pg_shard_summary sum;
        pg_shard_get_summary(s->shards[f], &sum);
        if (!sum.has_word_freqs && sum.n_words > 0) {
            rc = pg_fail(err, PG_EINVAL, "%s: no word-frequency section; rare-word buckets "
                         "need evaluation shards built with word frequencies", s->paths[f]);
            goto fail;
        }
        if (f == 0) {
            s->src.vocab_size = pg_shard_vocab_size(s->shards[0]);
            s->src.bos_id = pg_shard_bos_id(s->shards[0]);
            memcpy(s->vocab_sha, pg_shard_vocab_sha256(s->shards[0]), 32);
        } else if (pg_shard_vocab_size(s->shards[f]) != s->src.vocab_size ||
                   pg_shard_bos_id(s->shards[f]) != s->src.bos_id ||
                   memcmp(pg_shard_vocab_sha256(s->shards[f]), s->vocab_sha, 32) != 0) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: vocabulary differs from %s", s->paths[f],
                         s->paths[0]);
            goto fail;
        }
        s->first_book[f + 1] = s->first_book[f] + pg_shard_num_books(s->shards[f]);
    }
    s->total_books = s->first_book[s->n_files];
    s->src.ctx = s;
    s->src.n_books = max_books && max_books < s->total_books ? max_books : s->total_books;
    s->src.book = src_book;
    s->src.tokens = src_tokens;
    s->src.word_starts = src_word_starts;
    s->src.word_freqs = src_word_freqs;
    *out = s;
    return 0;
fail:
    pg_shard_source_close(s);
    return rc;
}

void pg_shard_source_close(pg_shard_source *s)
{
    if (!s)
        return;
    for (size_t f = 0; f < s->n_files; f++) {
        if (s->shards && s->shards[f])
            pg_shard_close(s->shards[f]);
        free(s->paths[f]);
    }
    free(s->paths);
    free(s->shards);
    free(s->sha);
    free(s->first_book);
    free(s->st);
    free(s->selected);
    free(s);
}

int pg_shard_source_check_unchanged(const pg_shard_source *s, pg_error *err)
{
    for (size_t f = 0; f < s->n_files; f++) {
        const struct stat *a = &s->st[f];
        struct stat b;
        if (stat(s->paths[f], &b) != 0)
            return pg_fail(err, PG_EIO, "%s: changed during the run: stat: %s", s->paths[f],
                           strerror(errno));
        if (a->st_dev != b.st_dev || a->st_ino != b.st_ino || a->st_size != b.st_size ||
            a->st_mtim.tv_sec != b.st_mtim.tv_sec || a->st_mtim.tv_nsec != b.st_mtim.tv_nsec)
            return pg_fail(err, PG_EIO, "%s: changed during the run (it was %llu bytes when it "
                           "was opened and is %llu now, or was rewritten or replaced): the "
                           "scores may not be those of the verified shard; run again on files "
                           "that nothing writes to", s->paths[f],
                           (unsigned long long)a->st_size, (unsigned long long)b.st_size);
    }
    return 0;
}

typedef struct id_index {
    uint64_t book_id, global;
} id_index;

static int cmp_id_index(const void *a, const void *b)
{
    const id_index *x = a, *y = b;
    return x->book_id < y->book_id ? -1 : x->book_id > y->book_id;
}

int pg_shard_source_select(pg_shard_source *s, const uint64_t *book_ids, uint64_t n,
                           pg_error *err)
{
    if (n == 0 || n > s->total_books)
        return pg_fail(err, PG_EINVAL, "%llu books selected, the split has %llu",
                       (unsigned long long)n, (unsigned long long)s->total_books);
    uint64_t *sel = malloc(n * sizeof *sel);
    id_index *ids = malloc(s->total_books * sizeof *ids);
    uint8_t *taken = calloc(s->total_books, 1);
    int rc = 0;
    if (!sel || !ids || !taken) {
        rc = pg_fail(err, PG_ENOMEM, "out of memory");
        goto out;
    }
    free(s->selected);
    s->selected = NULL; /* locate() below maps global indices */
    s->src.n_books = s->total_books;
    for (uint64_t g = 0; g < s->total_books; g++) {
        uint64_t local = g;
        pg_shard_book b;
        const pg_shard *sh = locate(s, &local);
        if ((rc = pg_shard_get_book(sh, local, &b, err)))
            goto out;
        ids[g] = (id_index){.book_id = b.book_id, .global = g};
    }
    qsort(ids, s->total_books, sizeof *ids, cmp_id_index);
    for (uint64_t k = 0; k < n; k++) {
        id_index key = {.book_id = book_ids[k]};
        const id_index *hit = bsearch(&key, ids, s->total_books, sizeof *ids, cmp_id_index);
        if (!hit) {
            rc = pg_fail(err, PG_ENOTFOUND, "book %llu is not in the shards",
                         (unsigned long long)book_ids[k]);
            goto out;
        }
        if (taken[hit->global]++) {
            rc = pg_fail(err, PG_EINVAL, "book %llu is selected twice",
                         (unsigned long long)book_ids[k]);
            goto out;
        }
        sel[k] = hit->global;
    }
    s->selected = sel;
    s->src.n_books = n;
    sel = NULL;
out:
    free(sel);
    free(ids);
    free(taken);
    return rc;
}

const pg_book_source *pg_shard_source_books(const pg_shard_source *s)
{
    return &s->src;
}

const uint8_t *pg_shard_source_vocab_sha256(const pg_shard_source *s)
{
    return s->vocab_sha;
}

uint64_t pg_shard_source_total_books(const pg_shard_source *s)
{
    return s->total_books;
}

size_t pg_shard_source_num_files(const pg_shard_source *s)
{
    return s->n_files;
}

const char *pg_shard_source_file(const pg_shard_source *s, size_t i)
{
    return s->paths[i];
}

const uint8_t *pg_shard_source_file_sha256(const pg_shard_source *s, size_t i)
{
    return s->sha[i];
}

int pg_shard_source_classify(const pg_shard_source *s, const char *split, uint64_t n_books,
                             pg19_classification *out, pg_error *err)
{
    const pg19_file_list *list;
    int rc = pg19_file_list_builtin(&list, err);
    if (rc)
        return rc;
    if (n_books > s->total_books)
        return pg_fail(err, PG_EINVAL, "%llu books evaluated, the shards hold %llu",
                       (unsigned long long)n_books, (unsigned long long)s->total_books);
    pg19_book_fact *facts = malloc((size_t)(n_books + 1) * sizeof *facts);
    if (!facts)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n_books && rc == 0; i++) {
        uint64_t local = i;
        const pg_shard *sh = locate(s, &local);
        pg_shard_book b;
        if ((rc = pg_shard_get_book(sh, local, &b, err)) == 0) {
            facts[i].id = b.book_id;
            facts[i].n_bytes = b.n_bytes;
            memcpy(facts[i].sha256, b.text_sha256, 32);
        }
    }
    if (rc == 0)
        rc = pg19_classify_books(list, pg_split_from_name(split), facts, n_books, out, err);
    free(facts);
    return rc;
}
