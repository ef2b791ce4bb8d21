/* wordfreq.c - count, save, load and look up word types. */
#include "tokenize/wordfreq.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "tokenize/words.h"

/* Calls fn on the type of each word of text (the word span of each unit
 * that opens a word, or the whole unit for a whitespace-only book). */
static int each_type(const uint8_t *text, size_t len,
                     int (*fn)(void *ctx, const uint8_t *type, size_t tlen), void *ctx)
{
    pg_unit_iter it;
    size_t a, w, e;
    int sw;
    uint8_t small[1024];
    pg_unit_iter_init(&it, text, len);
    while (pg_unit_next(&it, &a, &w, &e, &sw)) {
        if (!sw)
            continue;
        if (w == e) /* whitespace-only book: its one word is the whitespace */
            w = a;
        size_t cap = 4 * (e - w) + 4;
        uint8_t *buf = cap <= sizeof small ? small : malloc(cap);
        if (!buf)
            return -1;
        size_t tl = pg_word_type(text + w, e - w, buf, cap);
        int rc = fn(ctx, buf, tl);
        if (buf != small)
            free(buf);
        if (rc)
            return rc;
    }
    return 0;
}

struct add_ctx {
    pg_strtab *t;
    uint64_t words;
};
static int add_one(void *ctx, const uint8_t *type, size_t len)
{
    struct add_ctx *c = ctx;
    int is_new;
    uint64_t *v = pg_strtab_upsert(c->t, type, len, &is_new);
    if (!v)
        return -1;
    (*v)++;
    c->words++;
    return 0;
}

uint64_t pg_wordfreq_add_text(pg_strtab *t, const uint8_t *text, size_t len)
{
    struct add_ctx c = {t, 0};
    if (each_type(text, len, add_one, &c))
        return UINT64_MAX;
    return c.words;
}

int pg_wordfreq_save(const pg_strtab *t, const char *path, uint64_t books, uint64_t words,
                     pg_error *err)
{
    size_t *idx = pg_strtab_sorted(t);
    if (!idx)
        return pg_fail(err, PG_ENOMEM, "%s: no memory", path);
    pg_atomic_file af;
    int rc = pg_atomic_open(&af, path, err);
    if (rc < 0) {
        free(idx);
        return rc;
    }
    fprintf(af.fp, "#pg19-word-freqs/1\tsplit=train\tbooks=%" PRIu64 "\twords=%" PRIu64
                   "\ttypes=%zu\n",
            books, words, pg_strtab_count(t));
    for (size_t i = 0; i < pg_strtab_count(t); i++) {
        size_t len;
        const uint8_t *k = pg_strtab_key(t, idx[i], &len);
        fwrite(k, 1, len, af.fp);
        fprintf(af.fp, "\t%" PRIu64 "\n", pg_strtab_value(t, idx[i]));
    }
    free(idx);
    if (ferror(af.fp)) {
        pg_atomic_abort(&af);
        return pg_fail(err, PG_EIO, "%s: write failed", path);
    }
    return pg_atomic_commit(&af, err);
}

static int parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* "key=value" field out of the header line */
static int header_field(const char *hdr, size_t hlen, const char *key, uint64_t *out)
{
    size_t kl = strlen(key);
    for (size_t i = 0; i + kl + 1 < hlen; i++) {
        if ((i == 0 || hdr[i - 1] == '\t') && memcmp(hdr + i, key, kl) == 0 && hdr[i + kl] == '=') {
            size_t a = i + kl + 1, b = a;
            while (b < hlen && hdr[b] != '\t')
                b++;
            return parse_u64(hdr + a, b - a, out);
        }
    }
    return -1;
}

int pg_wordfreq_load(const char *path, pg_strtab **out, uint64_t *words, pg_error *err)
{
    *out = NULL;
    char *data;
    size_t len;
    int rc = pg_read_file(path, (size_t)16 << 30, &data, &len, err);
    if (rc < 0)
        return rc;
    pg_strtab *t = pg_strtab_new();
    if (!t) {
        free(data);
        return pg_fail(err, PG_ENOMEM, "%s: no memory", path);
    }
    const char *magic = "#pg19-word-freqs/1\t";
    char *nl = memchr(data, '\n', len);
    uint64_t h_words, h_types, sum = 0, line = 1;
    if (!nl || len < strlen(magic) || memcmp(data, magic, strlen(magic)) != 0 ||
        header_field(data, (size_t)(nl - data), "words", &h_words) ||
        header_field(data, (size_t)(nl - data), "types", &h_types)) {
        rc = pg_fail(err, PG_ECORRUPT, "%s: not a pg19 word-frequency file (bad header)", path);
        goto fail;
    }
    size_t pos = (size_t)(nl - data) + 1;
    const uint8_t *prev = NULL;
    size_t prev_len = 0;
    while (pos < len) {
        line++;
        char *eol = memchr(data + pos, '\n', len - pos);
        char *tab = eol ? memchr(data + pos, '\t', (size_t)(eol - (data + pos))) : NULL;
        uint64_t cnt;
        if (!eol || !tab ||
            parse_u64(tab + 1, (size_t)(eol - tab - 1), &cnt) || cnt == 0) {
            rc = pg_fail(err, PG_ECORRUPT, "%s:%" PRIu64 ": expected \"type<TAB>count\"", path, line);
            goto fail;
        }
        const uint8_t *k = (const uint8_t *)data + pos;
        size_t kl = (size_t)(tab - (data + pos));
        if (prev) {
            size_t m = kl < prev_len ? kl : prev_len;
            int c = memcmp(prev, k, m);
            if (c > 0 || (c == 0 && prev_len >= kl)) {
                rc = pg_fail(err, PG_ECORRUPT, "%s:%" PRIu64 ": types not sorted or repeated", path, line);
                goto fail;
            }
        }
        int is_new;
        uint64_t *v = pg_strtab_upsert(t, k, kl, &is_new);
        if (!v) {
            rc = pg_fail(err, PG_ENOMEM, "%s: no memory", path);
            goto fail;
        }
        *v = cnt;
        if (__builtin_add_overflow(sum, cnt, &sum)) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: counts overflow", path);
            goto fail;
        }
        prev = k;
        prev_len = kl;
        pos = (size_t)(eol - data) + 1;
    }
    if (pg_strtab_count(t) != h_types || sum != h_words) {
        rc = pg_fail(err, PG_ECORRUPT, "%s: %zu types summing to %" PRIu64
                                       " words, the header says %" PRIu64 " and %" PRIu64,
                     path, pg_strtab_count(t), sum, h_types, h_words);
        goto fail;
    }
    free(data);
    *out = t;
    *words = sum;
    return 0;
fail:
    free(data);
    pg_strtab_free(t);
    return rc;
}

struct lookup_ctx {
    const pg_strtab *t;
    uint64_t *freqs;
    uint64_t n, cap;
};
static int lookup_one(void *ctx, const uint8_t *type, size_t len)
{
    struct lookup_ctx *c = ctx;
    if (c->n >= c->cap)
        return 1;
    const uint64_t *v = pg_strtab_find(c->t, type, len);
    c->freqs[c->n++] = v ? *v : 0;
    return 0;
}

int pg_wordfreq_lookup_text(const pg_strtab *t, const uint8_t *text, size_t len,
                            uint64_t *freqs, uint64_t n_words, pg_error *err)
{
    struct lookup_ctx c = {t, freqs, 0, n_words};
    int rc = each_type(text, len, lookup_one, &c);
    if (rc < 0)
        return pg_fail(err, PG_ENOMEM, "word lookup: no memory");
    if (rc > 0 || c.n != n_words)
        return pg_fail(err, PG_EINVAL, "word lookup: word count mismatch (%" PRIu64 " vs %" PRIu64 ")",
                       c.n, n_words);
    return 0;
}
