/* encoder.c - units, the memo, byte fallback for what SentencePiece would
 * alter, and the decode table. */
#include "tokenize/encoder.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicode/utf8.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/hash.h"
#include "tokenize/spm_shim.h"
#include "tokenize/strtab.h"
#include "tokenize/words.h"

struct pg_encoder {
    pg_spm *spm;
    uint32_t vocab_size, bos_id;
    uint32_t byte_id[256];
    uint8_t sha256[32];
    /* decode table: bytes of id i are dec_bytes[dec_off[i] .. dec_off[i+1]) */
    uint64_t *dec_off;
    uint8_t *dec_bytes;
};

/* A direct-mapped cache of short units in front of the memo: one 64-byte line
 * holds the unit's bytes and its ids, so a hit costs one cache line instead
 * of the memo's slot, entry and key (three likely misses). Exact: the key
 * bytes are compared, never only the hash. */
#define LINE_KEY 26
#define LINE_IDS 8
#define N_LINES (1u << 15) /* 2 MB */
typedef struct unit_line {
    uint8_t len, n; /* n = 0: empty line */
    uint8_t key[LINE_KEY];
    uint32_t ids[LINE_IDS];
} unit_line;

struct pg_encode_ctx {
    const pg_encoder *enc;
    unit_line *lines;
    pg_strtab *memo;    /* unit bytes -> (offset << 16 | count) into memo_ids */
    uint32_t *memo_ids;
    size_t memo_n, memo_cap, memo_cap_bytes;
    uint32_t *tmp;      /* scratch for one unit */
    size_t tmp_n, tmp_cap;
};

#define MEMO_MAX_UNIT 256 /* longer units are rare; encode them every time */

int pg_encoder_open(const char *model_path, pg_encoder **out, pg_error *err)
{
    *out = NULL;
    pg_words_init();
    pg_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return pg_fail(err, PG_ENOMEM, "%s: no memory", model_path);
    int rc = pg_spm_load(model_path, &e->spm, err);
    if (rc < 0)
        goto fail;
    uint8_t md5[16];
    uint32_t crc;
    uint64_t size;
    if ((rc = pg_hash_file(model_path, md5, e->sha256, &crc, &size, err)) < 0)
        goto fail;
    e->vocab_size = pg_spm_vocab_size(e->spm);
    int64_t bos = pg_spm_bos_id(e->spm);
    if (bos < 0 || (uint64_t)bos >= e->vocab_size) {
        rc = pg_fail(err, PG_EINVAL, "%s: the model has no BOS piece (train with tokenize train)",
                     model_path);
        goto fail;
    }
    e->bos_id = (uint32_t)bos;
    for (int b = 0; b < 256; b++) {
        char piece[8];
        snprintf(piece, sizeof piece, "<0x%02X>", b);
        int64_t id = pg_spm_piece_id(e->spm, piece);
        if (id < 0 || !pg_spm_is_byte(e->spm, (uint32_t)id)) {
            rc = pg_fail(err, PG_EINVAL,
                         "%s: the model lacks byte piece %s (it must be trained with byte_fallback)",
                         model_path, piece);
            goto fail;
        }
        e->byte_id[b] = (uint32_t)id;
    }
    /* decode table */
    uint64_t total = 0;
    for (uint32_t i = 0; i < e->vocab_size; i++) {
        size_t len;
        pg_spm_piece(e->spm, i, &len);
        total += len;
    }
    e->dec_off = malloc((e->vocab_size + 1) * sizeof *e->dec_off);
    e->dec_bytes = malloc(total + 1);
    if (!e->dec_off || !e->dec_bytes) {
        rc = pg_fail(err, PG_ENOMEM, "%s: no memory for the decode table", model_path);
        goto fail;
    }
    uint64_t o = 0;
    for (uint32_t i = 0; i < e->vocab_size; i++) {
        e->dec_off[i] = o;
        if (pg_spm_is_control(e->spm, i) || pg_spm_is_unknown(e->spm, i))
            continue; /* decodes to nothing; never produced by the encoder */
        if (pg_spm_is_byte(e->spm, i)) {
            for (int b = 0; b < 256; b++)
                if (e->byte_id[b] == i)
                    e->dec_bytes[o++] = (uint8_t)b;
            continue;
        }
        size_t len;
        const char *p = pg_spm_piece(e->spm, i, &len);
        for (size_t k = 0; k < len;) {
            if (k + 3 <= len && memcmp(p + k, "\xE2\x96\x81", 3) == 0) {
                e->dec_bytes[o++] = ' ';
                k += 3;
            } else {
                e->dec_bytes[o++] = (uint8_t)p[k++];
            }
        }
    }
    e->dec_off[e->vocab_size] = o;
    *out = e;
    return 0;
fail:
    pg_encoder_free(e);
    return rc;
}

void pg_encoder_free(pg_encoder *e)
{
    if (!e)
        return;
    pg_spm_free(e->spm);
    free(e->dec_off);
    free(e->dec_bytes);
    free(e);
}

uint32_t pg_encoder_vocab_size(const pg_encoder *e) { return e->vocab_size; }
uint32_t pg_encoder_bos_id(const pg_encoder *e) { return e->bos_id; }
const uint8_t *pg_encoder_model_sha256(const pg_encoder *e) { return e->sha256; }

pg_encode_ctx *pg_encode_ctx_new(const pg_encoder *e, size_t memo_cap_bytes)
{
    pg_encode_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->enc = e;
    c->memo_cap_bytes = memo_cap_bytes;
    if (memo_cap_bytes && (!(c->memo = pg_strtab_new()) ||
                           !(c->lines = calloc(N_LINES, sizeof *c->lines)))) {
        pg_strtab_free(c->memo);
        free(c);
        return NULL;
    }
    return c;
}

void pg_encode_ctx_free(pg_encode_ctx *c)
{
    if (!c)
        return;
    pg_strtab_free(c->memo);
    free(c->lines);
    free(c->memo_ids);
    free(c->tmp);
    free(c);
}

void pg_encoded_free(pg_encoded *o)
{
    free(o->ids);
    free(o->starts);
    memset(o, 0, sizeof *o);
}

static int push_id(uint32_t **ids, size_t *n, size_t *cap, uint32_t id)
{
    if (*n == *cap) {
        size_t nc = *cap ? 2 * *cap : 256;
        uint32_t *p = realloc(*ids, nc * sizeof *p);
        if (!p)
            return -1;
        *ids = p;
        *cap = nc;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

/* Length of the character at s[i] that SentencePiece may see (valid UTF-8,
 * not NUL, not U+2581), or 0 when s[i] must go as raw bytes; *bad_len = the
 * number of bytes to send as bytes in that case. */
static size_t plain_char(const uint8_t *s, size_t len, size_t i, size_t *bad_len)
{
    *bad_len = 1;
    if (s[i] != 0 && s[i] < 0x80)
        return 1;
    int32_t k = (int32_t)i, n = len - i > 8 ? (int32_t)i + 8 : (int32_t)len;
    UChar32 c;
    U8_NEXT(s, k, n, c);
    *bad_len = (size_t)k - i;
    if (c <= 0 || c == 0x2581)
        return 0;
    return (size_t)k - i;
}

size_t pg_plain_char_len(const uint8_t *s, size_t len, size_t i)
{
    size_t bad;
    return plain_char(s, len, i, &bad);
}

size_t pg_plain_char_len_or_bad(const uint8_t *s, size_t len, size_t i, size_t *bad_len)
{
    return plain_char(s, len, i, bad_len);
}

int pg_encoder_is_plain(const uint8_t *text, size_t len)
{
    size_t i = 0, bad;
    while (i < len) {
        size_t l = plain_char(text, len, i, &bad);
        if (!l)
            return 0;
        i += l;
    }
    return 1;
}

/* Encodes one unit into c->tmp (reset first), without the memo. */
static int encode_unit_raw(pg_encode_ctx *c, const uint8_t *u, size_t len, pg_error *err)
{
    const pg_encoder *e = c->enc;
    c->tmp_n = 0;
    size_t i = 0;
    while (i < len) {
        size_t j = i, bad = 0;
        while (j < len) {
            size_t l = plain_char(u, len, j, &bad);
            if (!l)
                break;
            j += l;
        }
        if (j > i) {
            int rc = pg_spm_encode(e->spm, (const char *)u + i, j - i, &c->tmp, &c->tmp_n,
                                   &c->tmp_cap, err);
            if (rc < 0)
                return rc;
        }
        if (j < len) {
            for (size_t k = 0; k < bad; k++)
                if (push_id(&c->tmp, &c->tmp_n, &c->tmp_cap, e->byte_id[u[j + k]]))
                    return pg_fail(err, PG_ENOMEM, "encode: no memory");
            j += bad;
        }
        i = j;
    }
    return 0;
}

/* Encodes one unit, through the memo when it is short enough. Sets *ids and
 * *n to the unit's tokens (valid until the next call). */
static int encode_unit(pg_encode_ctx *c, const uint8_t *u, size_t len, const uint32_t **ids,
                       size_t *n, pg_error *err)
{
    unit_line *line = NULL;
    if (c->memo && len <= LINE_KEY) {
        line = &c->lines[XXH3_64bits(u, len) & (N_LINES - 1)];
        if (line->n && line->len == len && memcmp(line->key, u, len) == 0) {
            *ids = line->ids;
            *n = line->n;
            return 0;
        }
    }
    if (c->memo && len <= MEMO_MAX_UNIT) {
        uint64_t *v = pg_strtab_find(c->memo, u, len);
        if (v) {
            *ids = c->memo_ids + (*v >> 16);
            *n = (size_t)(*v & 0xFFFF);
            if (line && *n <= LINE_IDS) {
                line->len = (uint8_t)len;
                line->n = (uint8_t)*n;
                memcpy(line->key, u, len);
                memcpy(line->ids, *ids, *n * sizeof **ids);
            }
            return 0;
        }
    }
    int rc = encode_unit_raw(c, u, len, err);
    if (rc < 0)
        return rc;
    *ids = c->tmp;
    *n = c->tmp_n;
    if (c->memo && len <= MEMO_MAX_UNIT && c->tmp_n <= 0xFFFF) {
        if (pg_strtab_bytes(c->memo) + c->memo_cap * 4 > c->memo_cap_bytes) {
            pg_strtab_clear(c->memo); /* simple and exact: start a fresh memo */
            c->memo_n = 0;
        }
        if (c->memo_n + c->tmp_n > c->memo_cap) {
            size_t nc = c->memo_cap ? 2 * c->memo_cap : 65536;
            while (nc < c->memo_n + c->tmp_n)
                nc *= 2;
            uint32_t *p = realloc(c->memo_ids, nc * sizeof *p);
            if (!p)
                return 0; /* no memo this time; the result stands */
            c->memo_ids = p;
            c->memo_cap = nc;
        }
        int is_new;
        uint64_t *v = pg_strtab_upsert(c->memo, u, len, &is_new);
        if (v) {
            memcpy(c->memo_ids + c->memo_n, c->tmp, c->tmp_n * sizeof *c->tmp);
            *v = (uint64_t)c->memo_n << 16 | c->tmp_n;
            c->memo_n += c->tmp_n;
        }
    }
    return 0;
}

int pg_encode_book(pg_encode_ctx *c, const uint8_t *text, size_t len, pg_encoded *out,
                   pg_error *err)
{
    out->n = 0;
    out->n_words = 0;
    pg_unit_iter it;
    pg_unit_iter_init(&it, text, len);
    size_t a, w, end;
    int sw;
    while (pg_unit_next(&it, &a, &w, &end, &sw)) {
        const uint32_t *ids;
        size_t n;
        int rc = encode_unit(c, text + a, end - a, &ids, &n, err);
        if (rc < 0)
            return rc;
        if (out->n + n > out->cap) {
            size_t nc = out->cap ? out->cap : 4096;
            while (nc < out->n + n)
                nc *= 2;
            uint32_t *pi = realloc(out->ids, nc * sizeof *pi);
            if (pi)
                out->ids = pi;
            uint8_t *ps = realloc(out->starts, nc);
            if (ps)
                out->starts = ps;
            if (!pi || !ps)
                return pg_fail(err, PG_ENOMEM, "encode: no memory for %zu tokens", nc);
            out->cap = nc;
        }
        memcpy(out->ids + out->n, ids, n * sizeof *ids);
        memset(out->starts + out->n, 0, n);
        if (sw && n) {
            out->starts[out->n] = 1;
            out->n_words++;
        }
        out->n += n;
    }
    return 0;
}

int pg_decode(const pg_encoder *e, const uint32_t *ids, size_t n, uint8_t **text, size_t *len,
              pg_error *err)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= e->vocab_size)
            return pg_fail(err, PG_EINVAL, "decode: id %u outside the vocabulary of %u", ids[i],
                           e->vocab_size);
        total += e->dec_off[ids[i] + 1] - e->dec_off[ids[i]];
    }
    uint8_t *t = malloc(total + 1);
    if (!t)
        return pg_fail(err, PG_ENOMEM, "decode: no memory");
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t a = e->dec_off[ids[i]], b = e->dec_off[ids[i] + 1];
        memcpy(t + o, e->dec_bytes + a, b - a);
        o += b - a;
    }
    t[o] = 0;
    *text = t;
    *len = o;
    return 0;
}

/* 1 where a span may end just before text[i]: a word end (see encoder.h). */
static int span_cut(const uint8_t *text, size_t i)
{
    uint8_t prev = text[i - 1], c = text[i];
    return prev > 0x20 && prev < 0x7F && (c == ' ' || c == '\n' || c == '\r' || c == '\t');
}

int pg_check_against_spm(const pg_encoder *e, const uint8_t *text, size_t len,
                         const uint32_t *ids, size_t n, pg_spm_check *out, pg_error *err)
{
    memset(out, 0, sizeof *out);
    uint32_t *w = NULL;
    size_t wcap = 0, a = 0, t = 0; /* span start byte, its first token in ids */
    int rc = 0;
    while (a < len) {
        size_t b = a + PG_SPM_CHECK_SPAN < len ? a + PG_SPM_CHECK_SPAN : len;
        while (b < len && !span_cut(text, b))
            b++;
        /* our tokens of [a, b): tokens never cross a unit, and b starts one */
        size_t t_end = t, bytes = 0;
        while (t_end < n && bytes < b - a) {
            if (ids[t_end] >= e->vocab_size) {
                rc = pg_fail(err, PG_EINVAL, "check-spm: id %u outside the vocabulary",
                             ids[t_end]);
                goto done;
            }
            bytes += e->dec_off[ids[t_end] + 1] - e->dec_off[ids[t_end]];
            t_end++;
        }
        if (bytes != b - a) {
            rc = pg_fail(err, PG_ECORRUPT,
                         "check-spm: our tokens do not end at byte %zu (a word end)", b);
            goto done;
        }
        size_t wn = 0;
        if ((rc = pg_spm_encode(e->spm, (const char *)text + a, b - a, &w, &wn, &wcap, err)) < 0)
            goto done;
        out->spans++;
        size_t tn = t_end - t;
        if (wn == tn && (wn == 0 || memcmp(w, ids + t, wn * sizeof *w) == 0)) {
            out->equal++;
        } else {
            double s1 = pg_encoder_score(e, ids + t, tn), s2 = pg_encoder_score(e, w, wn);
            double tol = 1e-9 * fabs(s1) + 1e-6;
            if (fabs(s1 - s2) <= tol)
                out->ties++;
            else if (s1 > s2)
                out->ours_better++;
            else
                out->spm_better++;
        }
        a = b;
        t = t_end;
    }
    if (t != n)
        rc = pg_fail(err, PG_ECORRUPT, "check-spm: %zu tokens past the end of the text", n - t);
done:
    free(w);
    return rc;
}

double pg_encoder_score(const pg_encoder *e, const uint32_t *ids, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += ids[i] < e->vocab_size ? (double)pg_spm_score(e->spm, ids[i]) : 0.0;
    return s;
}
