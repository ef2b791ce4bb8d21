/* shard_writer.c - accumulate books into the four sections of a shard, then
 * lay them out (64-byte aligned, zero padding), checksum and write. */
#include "shards/shard_writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/atomic_file.h"
#include "shards/shard_format.h"
#include "shards/shard_reader.h"

typedef struct byte_buf {
    uint8_t *p;
    uint64_t len, cap;
} byte_buf;

struct pg_shard_writer {
    uint32_t split, vocab_size, bos_id, token_bytes;
    int with_freqs;
    uint8_t vocab_sha256[32];
    uint64_t n_books, n_tokens, n_words, n_bytes, last_id;
    byte_buf books, tokens, starts, freqs;
};

static int buf_reserve(byte_buf *b, uint64_t extra)
{
    if (extra > UINT64_MAX - b->len)
        return -1;
    uint64_t need = b->len + extra;
    if (need <= b->cap)
        return 0;
    uint64_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap = cap > UINT64_MAX / 2 ? need : cap * 2;
    if (cap > SIZE_MAX)
        return -1;
    uint8_t *p = realloc(b->p, (size_t)cap);
    if (!p)
        return -1;
    memset(p + b->cap, 0, (size_t)(cap - b->cap));
    b->p = p;
    b->cap = cap;
    return 0;
}

int pg_shard_writer_new(pg_shard_writer **out, int split, uint32_t vocab_size, uint32_t bos_id,
                        const uint8_t vocab_sha256[32], int with_word_freqs, pg_error *err)
{
    *out = NULL;
    if (split < PG_SPLIT_TRAIN || split > PG_SPLIT_TEST)
        return pg_fail(err, PG_EINVAL, "shard writer: unknown split %d", split);
    if (vocab_size == 0 || bos_id >= vocab_size)
        return pg_fail(err, PG_EINVAL, "shard writer: BOS id %u outside a vocabulary of %u",
                       bos_id, vocab_size);
    pg_shard_writer *w = calloc(1, sizeof *w);
    if (!w)
        return pg_fail(err, PG_ENOMEM, "shard writer: no memory");
    w->split = (uint32_t)split;
    w->vocab_size = vocab_size;
    w->bos_id = bos_id;
    w->token_bytes = vocab_size <= 65536 ? 2 : 4;
    w->with_freqs = with_word_freqs != 0;
    memcpy(w->vocab_sha256, vocab_sha256, 32);
    *out = w;
    return 0;
}

int pg_shard_writer_add_book(pg_shard_writer *w, uint64_t book_id, uint64_t n_bytes,
                             const uint8_t text_sha256[32], const uint32_t *tokens,
                             const uint8_t *word_starts, uint64_t n_tokens,
                             const uint64_t *word_freqs, uint64_t n_words, pg_error *err)
{
    if (w->n_books > 0 && book_id <= w->last_id)
        return pg_fail(err, PG_EINVAL, "shard writer: book %llu after book %llu (ids must increase)",
                       (unsigned long long)book_id, (unsigned long long)w->last_id);
    if ((n_tokens == 0) != (n_words == 0) || n_words > n_tokens)
        return pg_fail(err, PG_EINVAL, "shard writer: book %llu has %llu words for %llu tokens",
                       (unsigned long long)book_id, (unsigned long long)n_words,
                       (unsigned long long)n_tokens);
    if (w->with_freqs && n_words && !word_freqs)
        return pg_fail(err, PG_EINVAL, "shard writer: book %llu lacks word frequencies",
                       (unsigned long long)book_id);
    uint64_t starts = 0;
    for (uint64_t t = 0; t < n_tokens; t++) {
        if (tokens[t] >= w->vocab_size)
            return pg_fail(err, PG_EINVAL, "shard writer: book %llu token %llu id %u >= vocab %u",
                           (unsigned long long)book_id, (unsigned long long)t, tokens[t],
                           w->vocab_size);
        if (word_starts[t] > 1)
            return pg_fail(err, PG_EINVAL, "shard writer: word-start flags must be 0 or 1");
        starts += word_starts[t];
    }
    if (n_tokens && (!word_starts[0] || starts != n_words))
        return pg_fail(err, PG_EINVAL,
                       "shard writer: book %llu: word starts (%llu, first %d) disagree with %llu words",
                       (unsigned long long)book_id, (unsigned long long)starts, word_starts[0],
                       (unsigned long long)n_words);
    uint64_t tok_bytes, new_bits_len;
    if (__builtin_mul_overflow(n_tokens, w->token_bytes, &tok_bytes) ||
        __builtin_add_overflow(w->n_tokens, n_tokens, &new_bits_len))
        return pg_fail(err, PG_ELIMIT, "shard writer: book %llu too large",
                       (unsigned long long)book_id);
    new_bits_len = new_bits_len / 8 + (new_bits_len % 8 != 0);
    if (buf_reserve(&w->books, PGS_BOOK_SIZE) || buf_reserve(&w->tokens, tok_bytes) ||
        buf_reserve(&w->starts, new_bits_len - w->starts.len + 1) ||
        (w->with_freqs && buf_reserve(&w->freqs, 8 * n_words)))
        return pg_fail(err, PG_ENOMEM, "shard writer: no memory for book %llu",
                       (unsigned long long)book_id);

    uint8_t *e = w->books.p + w->books.len;
    memset(e, 0, PGS_BOOK_SIZE);
    pgs_put64(e + PGB_OFF_ID, book_id);
    pgs_put32(e + PGB_OFF_SPLIT, w->split);
    pgs_put64(e + PGB_OFF_TOKEN_OFFSET, w->n_tokens);
    pgs_put64(e + PGB_OFF_N_TOKENS, n_tokens);
    pgs_put64(e + PGB_OFF_WORD_OFFSET, w->n_words);
    pgs_put64(e + PGB_OFF_N_WORDS, n_words);
    pgs_put64(e + PGB_OFF_N_BYTES, n_bytes);
    memcpy(e + PGB_OFF_TEXT_SHA, text_sha256, 32);
    w->books.len += PGS_BOOK_SIZE;

    uint8_t *tp = w->tokens.p + w->tokens.len;
    for (uint64_t t = 0; t < n_tokens; t++) {
        if (w->token_bytes == 2) {
            tp[2 * t] = (uint8_t)tokens[t];
            tp[2 * t + 1] = (uint8_t)(tokens[t] >> 8);
        } else {
            pgs_put32(tp + 4 * t, tokens[t]);
        }
        uint64_t g = w->n_tokens + t;
        if (word_starts[t])
            w->starts.p[g / 8] |= (uint8_t)(1u << (g % 8));
    }
    w->tokens.len += tok_bytes;
    w->starts.len = new_bits_len;
    if (w->with_freqs) {
        for (uint64_t k = 0; k < n_words; k++)
            pgs_put64(w->freqs.p + w->freqs.len + 8 * k, word_freqs[k]);
        w->freqs.len += 8 * n_words;
    }
    w->n_books++;
    w->n_tokens += n_tokens;
    w->n_words += n_words;
    w->n_bytes += n_bytes;
    w->last_id = book_id;
    return 0;
}

uint64_t pg_shard_writer_num_books(const pg_shard_writer *w) { return w->n_books; }

static uint64_t layout(uint64_t n_books, uint64_t n_tokens, uint64_t n_words, uint32_t tb,
                       int with_freqs, uint64_t off[4], uint64_t size[4])
{
    uint64_t sz[4] = {n_books * PGS_BOOK_SIZE, n_tokens * tb, n_tokens / 8 + (n_tokens % 8 != 0),
                      with_freqs ? 8 * n_words : 0};
    uint64_t pos = PGS_HEADER_SIZE;
    for (int i = 0; i < 4; i++) {
        pos = pgs_align_up(pos);
        if (off)
            off[i] = pos, size[i] = sz[i];
        pos += sz[i];
    }
    return pos;
}

uint64_t pg_shard_writer_file_size(const pg_shard_writer *w)
{
    return layout(w->n_books, w->n_tokens, w->n_words, w->token_bytes, w->with_freqs, NULL, NULL);
}

uint64_t pg_shard_writer_file_size_with(const pg_shard_writer *w, uint64_t n_tokens,
                                        uint64_t n_words)
{
    return layout(w->n_books + 1, w->n_tokens + n_tokens, w->n_words + n_words, w->token_bytes,
                  w->with_freqs, NULL, NULL);
}

int pg_shard_writer_write(pg_shard_writer *w, const char *path, pg_error *err)
{
    uint64_t off[4], size[4];
    layout(w->n_books, w->n_tokens, w->n_words, w->token_bytes, w->with_freqs, off, size);
    const uint8_t *data[4] = {w->books.p, w->tokens.p, w->starts.p, w->freqs.p};
    uint8_t h[PGS_HEADER_SIZE];
    memset(h, 0, sizeof h);
    memcpy(h + PGS_OFF_MAGIC, PGS_MAGIC, 8);
    pgs_put32(h + PGS_OFF_VERSION, PGS_VERSION);
    pgs_put32(h + PGS_OFF_BYTE_ORDER, PGS_BYTE_ORDER);
    pgs_put32(h + PGS_OFF_HEADER_SIZE, PGS_HEADER_SIZE);
    pgs_put32(h + PGS_OFF_DTYPE, w->token_bytes);
    pgs_put32(h + PGS_OFF_VOCAB_SIZE, w->vocab_size);
    pgs_put32(h + PGS_OFF_BOS_ID, w->bos_id);
    pgs_put32(h + PGS_OFF_SPLIT, w->split);
    pgs_put32(h + PGS_OFF_FLAGS, w->with_freqs ? PGS_FLAG_WORD_FREQS : 0);
    pgs_put64(h + PGS_OFF_N_BOOKS, w->n_books);
    pgs_put64(h + PGS_OFF_N_TOKENS, w->n_tokens);
    pgs_put64(h + PGS_OFF_N_WORDS, w->n_words);
    pgs_put64(h + PGS_OFF_N_BYTES, w->n_bytes);
    memcpy(h + PGS_OFF_VOCAB_SHA, w->vocab_sha256, 32);
    for (int i = 0; i < 4; i++) {
        uint8_t *e = h + PGS_OFF_SECTIONS + 24 * i;
        pgs_put64(e, off[i]);
        pgs_put64(e + 8, size[i]);
        pgs_put64(e + 16, XXH3_64bits(data[i] ? data[i] : (const uint8_t *)"", (size_t)size[i]));
    }
    pgs_put64(h + PGS_OFF_HEADER_SUM, XXH3_64bits(h, PGS_OFF_HEADER_SUM));

    pg_atomic_file af;
    int rc = pg_atomic_open(&af, path, err);
    if (rc < 0)
        return rc;
    static const uint8_t zeros[PGS_ALIGN];
    uint64_t pos = PGS_HEADER_SIZE;
    int ok = fwrite(h, 1, sizeof h, af.fp) == sizeof h;
    for (int i = 0; ok && i < 4; i++) {
        if (off[i] > pos)
            ok = fwrite(zeros, 1, (size_t)(off[i] - pos), af.fp) == off[i] - pos;
        if (ok && size[i])
            ok = fwrite(data[i], 1, (size_t)size[i], af.fp) == size[i];
        pos = off[i] + size[i];
    }
    if (!ok) {
        pg_atomic_abort(&af);
        return pg_fail(err, PG_EIO, "%s: write failed", path);
    }
    return pg_atomic_commit(&af, err);
}

void pg_shard_writer_free(pg_shard_writer *w)
{
    if (!w)
        return;
    free(w->books.p);
    free(w->tokens.p);
    free(w->starts.p);
    free(w->freqs.p);
    free(w);
}
