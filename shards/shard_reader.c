/* shard_reader.c - mmap a PG19SHRD shard, validate it, serve ranges.
 *
 * Validation happens once in pg_shard_open: the header, the section table and
 * the whole book table are checked against the file size (all arithmetic in
 * u64 with overflow checks) and the book table is copied to the heap, so later
 * calls trust only that copy. With verify_checksums the bytes themselves are
 * checked too (checksums, zero padding, token ids, word-start bits).
 */
#include "shards/shard_reader.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "shards/map_guard.h"
#include "shards/shard_format.h"

typedef struct shard_section {
    uint64_t offset, size, xxh3;
} shard_section;

struct pg_shard {
    char *path;
    const uint8_t *map;
    uint64_t file_size;
    uint32_t version, token_bytes, vocab_size, bos_id, split, flags;
    uint64_t n_books, n_tokens, n_words, n_bytes;
    uint8_t vocab_sha256[32];
    shard_section sec[PGS_N_SECTIONS];
    /* validated copy of the book table */
    struct shard_book {
        uint64_t id, token_offset, n_tokens, word_offset, n_words, n_bytes;
        uint8_t text_sha256[32];
    } *books;
};

static const char *const split_names[] = {"train", "validation", "test"};

const char *pg_split_name(int split)
{
    return split >= 0 && split < 3 ? split_names[split] : NULL;
}

int pg_split_from_name(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, split_names[i]) == 0)
            return i;
    return -1;
}

/* a * b into *out; 0 on overflow */
static int mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_mul_overflow(a, b, out);
}
static int add_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}

static int all_zero(const uint8_t *p, uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static int check_header(pg_shard *s, pg_error *err)
{
    const char *path = s->path;
    const uint8_t *h = s->map;
    if (s->file_size < PGS_HEADER_SIZE)
        return pg_fail(err, PG_ECORRUPT, "%s: %llu bytes, shorter than the %u-byte shard header",
                       path, (unsigned long long)s->file_size, PGS_HEADER_SIZE);
    if (memcmp(h, PGS_MAGIC, 8) != 0)
        return pg_fail(err, PG_ECORRUPT, "%s: not a shard (bad magic)", path);
    s->version = pgs_get32(h + PGS_OFF_VERSION);
    if (s->version >= 1 && s->version < PGS_VERSION)
        return pg_fail(err, PG_ECORRUPT,
                       "%s: shard format version %u is too old (version %u records each book's "
                       "SHA-256, which the harness and the leaderboard need to tell PG-19's own "
                       "books from others); rebuild the shards with `shards build`",
                       path, s->version, PGS_VERSION);
    if (s->version != PGS_VERSION)
        return pg_fail(err, PG_ECORRUPT, "%s: shard version %u, this reader knows %u", path,
                       s->version, PGS_VERSION);
    if (pgs_get32(h + PGS_OFF_BYTE_ORDER) != PGS_BYTE_ORDER)
        return pg_fail(err, PG_ECORRUPT, "%s: bad byte-order mark 0x%08x", path,
                       pgs_get32(h + PGS_OFF_BYTE_ORDER));
    if (pgs_get32(h + PGS_OFF_HEADER_SIZE) != PGS_HEADER_SIZE)
        return pg_fail(err, PG_ECORRUPT, "%s: header size %u, expected %u", path,
                       pgs_get32(h + PGS_OFF_HEADER_SIZE), PGS_HEADER_SIZE);
    s->token_bytes = pgs_get32(h + PGS_OFF_DTYPE);
    s->vocab_size = pgs_get32(h + PGS_OFF_VOCAB_SIZE);
    s->bos_id = pgs_get32(h + PGS_OFF_BOS_ID);
    s->split = pgs_get32(h + PGS_OFF_SPLIT);
    s->flags = pgs_get32(h + PGS_OFF_FLAGS);
    if (s->token_bytes != 2 && s->token_bytes != 4)
        return pg_fail(err, PG_ECORRUPT, "%s: token dtype of %u bytes (2 or 4 expected)", path,
                       s->token_bytes);
    if (s->vocab_size == 0 || (s->token_bytes == 2 && s->vocab_size > 65536))
        return pg_fail(err, PG_ECORRUPT, "%s: vocab size %u does not fit %u-byte token ids", path,
                       s->vocab_size, s->token_bytes);
    if (s->bos_id >= s->vocab_size)
        return pg_fail(err, PG_ECORRUPT, "%s: BOS id %u outside the vocabulary of %u", path,
                       s->bos_id, s->vocab_size);
    if (s->split > PG_SPLIT_TEST)
        return pg_fail(err, PG_ECORRUPT, "%s: unknown split %u", path, s->split);
    if (s->flags & ~PGS_FLAG_WORD_FREQS)
        return pg_fail(err, PG_ECORRUPT, "%s: unknown flags 0x%x", path, s->flags);
    if (!all_zero(h + PGS_OFF_RESERVED, PGS_OFF_HEADER_SUM - PGS_OFF_RESERVED))
        return pg_fail(err, PG_ECORRUPT, "%s: reserved header bytes are not zero", path);
    s->n_books = pgs_get64(h + PGS_OFF_N_BOOKS);
    s->n_tokens = pgs_get64(h + PGS_OFF_N_TOKENS);
    s->n_words = pgs_get64(h + PGS_OFF_N_WORDS);
    s->n_bytes = pgs_get64(h + PGS_OFF_N_BYTES);
    memcpy(s->vocab_sha256, h + PGS_OFF_VOCAB_SHA, 32);

    /* Sections: expected sizes from the counts, then placement in the file. */
    uint64_t want[PGS_N_SECTIONS];
    if (!mul_ok(s->n_books, PGS_BOOK_SIZE, &want[PGS_SEC_BOOKS]) ||
        !mul_ok(s->n_tokens, s->token_bytes, &want[PGS_SEC_TOKENS]) ||
        !mul_ok(s->n_words, 8, &want[PGS_SEC_WORD_FREQS]))
        return pg_fail(err, PG_ECORRUPT, "%s: header counts overflow", path);
    want[PGS_SEC_WORD_STARTS] = s->n_tokens / 8 + (s->n_tokens % 8 != 0);
    if (!(s->flags & PGS_FLAG_WORD_FREQS))
        want[PGS_SEC_WORD_FREQS] = 0;
    static const char *const sec_names[] = {"books", "tokens", "word_starts", "word_freqs"};
    uint64_t pos = PGS_HEADER_SIZE;
    for (int i = 0; i < PGS_N_SECTIONS; i++) {
        const uint8_t *e = h + PGS_OFF_SECTIONS + 24 * i;
        shard_section *sec = &s->sec[i];
        sec->offset = pgs_get64(e);
        sec->size = pgs_get64(e + 8);
        sec->xxh3 = pgs_get64(e + 16);
        uint64_t end;
        if (sec->offset % PGS_ALIGN != 0 || sec->offset < pos)
            return pg_fail(err, PG_ECORRUPT, "%s: section %s at offset %llu is misplaced", path,
                           sec_names[i], (unsigned long long)sec->offset);
        if (sec->size != want[i])
            return pg_fail(err, PG_ECORRUPT,
                           "%s: section %s holds %llu bytes, the header counts need %llu", path,
                           sec_names[i], (unsigned long long)sec->size,
                           (unsigned long long)want[i]);
        if (!add_ok(sec->offset, sec->size, &end) || end > s->file_size)
            return pg_fail(err, PG_ECORRUPT,
                           "%s: section %s [%llu, +%llu) runs past the end of the file (%llu bytes)",
                           path, sec_names[i], (unsigned long long)sec->offset,
                           (unsigned long long)sec->size, (unsigned long long)s->file_size);
        pos = end;
    }
    if (pos != s->file_size)
        return pg_fail(err, PG_ECORRUPT, "%s: %llu trailing bytes after the last section", path,
                       (unsigned long long)(s->file_size - pos));
    return 0;
}

static int check_book_table(pg_shard *s, pg_error *err)
{
    const char *path = s->path;
    if (s->n_books && !(s->books = calloc(s->n_books, sizeof *s->books)))
        return pg_fail(err, PG_ENOMEM, "%s: no memory for %llu books", path,
                       (unsigned long long)s->n_books);
    const uint8_t *t = s->map + s->sec[PGS_SEC_BOOKS].offset;
    uint64_t tok = 0, words = 0, bytes = 0;
    for (uint64_t i = 0; i < s->n_books; i++) {
        const uint8_t *e = t + i * PGS_BOOK_SIZE;
        struct shard_book *b = &s->books[i];
        b->id = pgs_get64(e + PGB_OFF_ID);
        b->token_offset = pgs_get64(e + PGB_OFF_TOKEN_OFFSET);
        b->n_tokens = pgs_get64(e + PGB_OFF_N_TOKENS);
        b->word_offset = pgs_get64(e + PGB_OFF_WORD_OFFSET);
        b->n_words = pgs_get64(e + PGB_OFF_N_WORDS);
        b->n_bytes = pgs_get64(e + PGB_OFF_N_BYTES);
        memcpy(b->text_sha256, e + PGB_OFF_TEXT_SHA, 32);
        if (pgs_get32(e + PGB_OFF_SPLIT) != s->split || pgs_get32(e + PGB_OFF_RESERVED) != 0)
            return pg_fail(err, PG_ECORRUPT, "%s: book %llu: split or reserved field is wrong",
                           path, (unsigned long long)i);
        if (i > 0 && b->id <= s->books[i - 1].id)
            return pg_fail(err, PG_ECORRUPT, "%s: book %llu: id %llu not above the previous id",
                           path, (unsigned long long)i, (unsigned long long)b->id);
        if (b->token_offset != tok || b->word_offset != words)
            return pg_fail(err, PG_ECORRUPT, "%s: book %llu (id %llu): offsets do not follow on",
                           path, (unsigned long long)i, (unsigned long long)b->id);
        if ((b->n_tokens == 0) != (b->n_words == 0) || b->n_words > b->n_tokens)
            return pg_fail(err, PG_ECORRUPT,
                           "%s: book %llu (id %llu): %llu words for %llu tokens", path,
                           (unsigned long long)i, (unsigned long long)b->id,
                           (unsigned long long)b->n_words, (unsigned long long)b->n_tokens);
        if (!add_ok(tok, b->n_tokens, &tok) || !add_ok(words, b->n_words, &words) ||
            !add_ok(bytes, b->n_bytes, &bytes) || tok > s->n_tokens || words > s->n_words)
            return pg_fail(err, PG_ECORRUPT, "%s: book %llu (id %llu): counts exceed the totals",
                           path, (unsigned long long)i, (unsigned long long)b->id);
    }
    if (tok != s->n_tokens || words != s->n_words || bytes != s->n_bytes)
        return pg_fail(err, PG_ECORRUPT, "%s: book table totals differ from the header", path);
    return 0;
}

static inline int word_start_bit(const pg_shard *s, uint64_t t)
{
    return (s->map[s->sec[PGS_SEC_WORD_STARTS].offset + t / 8] >> (t % 8)) & 1;
}

static uint32_t token_at(const pg_shard *s, uint64_t t)
{
    const uint8_t *p = s->map + s->sec[PGS_SEC_TOKENS].offset + t * s->token_bytes;
    return s->token_bytes == 2 ? (uint32_t)p[0] | (uint32_t)p[1] << 8 : pgs_get32(p);
}

static int check_bytes(pg_shard *s, pg_error *err)
{
    const char *path = s->path;
    if (XXH3_64bits(s->map, PGS_OFF_HEADER_SUM) != pgs_get64(s->map + PGS_OFF_HEADER_SUM))
        return pg_fail(err, PG_ECORRUPT, "%s: header checksum mismatch", path);
    static const char *const sec_names[] = {"books", "tokens", "word_starts", "word_freqs"};
    uint64_t pos = PGS_HEADER_SIZE;
    for (int i = 0; i < PGS_N_SECTIONS; i++) {
        const shard_section *sec = &s->sec[i];
        if (!all_zero(s->map + pos, sec->offset - pos))
            return pg_fail(err, PG_ECORRUPT, "%s: padding before section %s is not zero", path,
                           sec_names[i]);
        if (XXH3_64bits(s->map + sec->offset, sec->size) != sec->xxh3)
            return pg_fail(err, PG_ECORRUPT, "%s: section %s checksum mismatch", path,
                           sec_names[i]);
        pos = sec->offset + sec->size;
    }
    for (uint64_t t = 0; t < s->n_tokens; t++)
        if (token_at(s, t) >= s->vocab_size)
            return pg_fail(err, PG_ECORRUPT, "%s: token %llu has id %u, outside the vocabulary",
                           path, (unsigned long long)t, token_at(s, t));
    if (s->n_tokens % 8) {
        uint8_t last = s->map[s->sec[PGS_SEC_WORD_STARTS].offset + s->n_tokens / 8];
        if (last >> (s->n_tokens % 8))
            return pg_fail(err, PG_ECORRUPT, "%s: unused word-start bits are set", path);
    }
    for (uint64_t i = 0; i < s->n_books; i++) {
        const struct shard_book *b = &s->books[i];
        if (b->n_tokens == 0)
            continue;
        uint64_t starts = 0;
        for (uint64_t t = b->token_offset; t < b->token_offset + b->n_tokens; t++)
            starts += (uint64_t)word_start_bit(s, t);
        if (!word_start_bit(s, b->token_offset) || starts != b->n_words)
            return pg_fail(err, PG_ECORRUPT,
                           "%s: book id %llu: word-start bits disagree with its %llu words", path,
                           (unsigned long long)b->id, (unsigned long long)b->n_words);
    }
    return 0;
}

/* Every read of the mapping runs under a map guard (map_guard.h): a file
 * truncated or rewritten while mapped makes the read fail with an error that
 * names it instead of killing the process with SIGBUS. */
static int validate(pg_shard *s, int verify_checksums, pg_error *err)
{
    pg_map_guard g;
    pg_map_guard_enter(&g, s->map, (size_t)s->file_size);
    if (sigsetjmp(g.env, 1)) {
        pg_map_guard_leave(&g);
        return pg_map_guard_fail(&g, s->path, s->file_size, err);
    }
    int rc = check_header(s, err);
    if (!rc)
        rc = check_book_table(s, err);
    if (!rc && verify_checksums)
        rc = check_bytes(s, err);
    pg_map_guard_leave(&g);
    return rc;
}

int pg_shard_open(const char *path, int verify_checksums, pg_shard **out, pg_error *err)
{
    *out = NULL;
    pg_shard *s = calloc(1, sizeof *s);
    if (!s || !(s->path = strdup(path))) {
        free(s);
        return pg_fail(err, PG_ENOMEM, "%s: no memory", path);
    }
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = pg_fail(err, errno == ENOENT ? PG_ENOTFOUND : PG_EIO, "%s: open: %s", path,
                     strerror(errno));
        goto fail;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = pg_fail(err, PG_EIO, "%s: not a readable regular file", path);
        close(fd);
        goto fail;
    }
    s->file_size = (uint64_t)st.st_size;
    if (s->file_size >= PGS_HEADER_SIZE) {
        void *m = mmap(NULL, (size_t)s->file_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = pg_fail(err, PG_EIO, "%s: mmap: %s", path, strerror(errno));
            close(fd);
            goto fail;
        }
        s->map = m;
    }
    close(fd);
    if ((rc = validate(s, verify_checksums, err)) < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    pg_shard_close(s);
    return rc;
}

void pg_shard_close(pg_shard *s)
{
    if (!s)
        return;
    if (s->map)
        munmap((void *)s->map, (size_t)s->file_size);
    free(s->books);
    free(s->path);
    free(s);
}

uint64_t pg_shard_num_books(const pg_shard *s) { return s->n_books; }
uint32_t pg_shard_vocab_size(const pg_shard *s) { return s->vocab_size; }
uint32_t pg_shard_bos_id(const pg_shard *s) { return s->bos_id; }
const uint8_t *pg_shard_vocab_sha256(const pg_shard *s) { return s->vocab_sha256; }

void pg_shard_get_summary(const pg_shard *s, pg_shard_summary *o)
{
    o->version = s->version;
    o->token_bytes = s->token_bytes;
    o->vocab_size = s->vocab_size;
    o->bos_id = s->bos_id;
    o->split = s->split;
    o->has_word_freqs = (s->flags & PGS_FLAG_WORD_FREQS) != 0;
    o->n_books = s->n_books;
    o->n_tokens = s->n_tokens;
    o->n_words = s->n_words;
    o->n_bytes = s->n_bytes;
    o->file_size = s->file_size;
}

int pg_shard_get_book(const pg_shard *s, uint64_t i, pg_shard_book *out, pg_error *err)
{
    if (i >= s->n_books)
        return pg_fail(err, PG_EINVAL, "%s: book index %llu out of range (%llu books)", s->path,
                       (unsigned long long)i, (unsigned long long)s->n_books);
    const struct shard_book *b = &s->books[i];
    out->book_id = b->id;
    out->split = (int)s->split;
    out->n_tokens = b->n_tokens;
    out->n_words = b->n_words;
    out->n_bytes = b->n_bytes;
    memcpy(out->text_sha256, b->text_sha256, 32);
    return 0;
}

/* Checks that [start, start+count) lies within [0, n) of book i. */
static int check_range(const pg_shard *s, uint64_t i, uint64_t start, uint64_t count, int words,
                       pg_error *err)
{
    if (i >= s->n_books)
        return pg_fail(err, PG_EINVAL, "%s: book index %llu out of range (%llu books)", s->path,
                       (unsigned long long)i, (unsigned long long)s->n_books);
    uint64_t n = words ? s->books[i].n_words : s->books[i].n_tokens, end;
    if (!add_ok(start, count, &end) || end > n)
        return pg_fail(err, PG_EINVAL, "%s: book id %llu: %s [%llu, +%llu) beyond its %llu",
                       s->path, (unsigned long long)s->books[i].id, words ? "words" : "tokens",
                       (unsigned long long)start, (unsigned long long)count,
                       (unsigned long long)n);
    return 0;
}

int pg_shard_tokens(const pg_shard *s, uint64_t i, uint64_t start, uint64_t count,
                    uint32_t *dst, pg_error *err)
{
    int rc = check_range(s, i, start, count, 0, err);
    if (rc < 0)
        return rc;
    uint64_t t0 = s->books[i].token_offset + start;
    const uint8_t *p = s->map + s->sec[PGS_SEC_TOKENS].offset + t0 * s->token_bytes;
    uint32_t bad = 0;
    pg_map_guard g;
    pg_map_guard_enter(&g, s->map, (size_t)s->file_size);
    if (sigsetjmp(g.env, 1)) {
        pg_map_guard_leave(&g);
        return pg_map_guard_fail(&g, s->path, s->file_size, err);
    }
    if (s->token_bytes == 2) {
        for (uint64_t k = 0; k < count; k++) {
            dst[k] = (uint32_t)p[2 * k] | (uint32_t)p[2 * k + 1] << 8;
            bad |= dst[k] >= s->vocab_size;
        }
    } else {
        for (uint64_t k = 0; k < count; k++) {
            dst[k] = pgs_get32(p + 4 * k);
            bad |= dst[k] >= s->vocab_size;
        }
    }
    pg_map_guard_leave(&g);
    if (bad)
        return pg_fail(err, PG_ECORRUPT, "%s: book id %llu: a token id is outside the vocabulary",
                       s->path, (unsigned long long)s->books[i].id);
    return 0;
}

int pg_shard_word_starts(const pg_shard *s, uint64_t i, uint64_t start, uint64_t count,
                         uint8_t *dst, pg_error *err)
{
    int rc = check_range(s, i, start, count, 0, err);
    if (rc < 0)
        return rc;
    uint64_t t0 = s->books[i].token_offset + start;
    pg_map_guard g;
    pg_map_guard_enter(&g, s->map, (size_t)s->file_size);
    if (sigsetjmp(g.env, 1)) {
        pg_map_guard_leave(&g);
        return pg_map_guard_fail(&g, s->path, s->file_size, err);
    }
    for (uint64_t k = 0; k < count; k++)
        dst[k] = (uint8_t)word_start_bit(s, t0 + k);
    pg_map_guard_leave(&g);
    return 0;
}

int pg_shard_word_freqs(const pg_shard *s, uint64_t i, uint64_t start, uint64_t count,
                        uint64_t *dst, pg_error *err)
{
    if (!(s->flags & PGS_FLAG_WORD_FREQS))
        return pg_fail(err, PG_ENOTFOUND,
                       "%s: this shard has no word-frequency section (built without --word-freqs)",
                       s->path);
    int rc = check_range(s, i, start, count, 1, err);
    if (rc < 0)
        return rc;
    const uint8_t *p = s->map + s->sec[PGS_SEC_WORD_FREQS].offset + 8 * (s->books[i].word_offset + start);
    pg_map_guard g;
    pg_map_guard_enter(&g, s->map, (size_t)s->file_size);
    if (sigsetjmp(g.env, 1)) {
        pg_map_guard_leave(&g);
        return pg_map_guard_fail(&g, s->path, s->file_size, err);
    }
    for (uint64_t k = 0; k < count; k++)
        dst[k] = pgs_get64(p + 8 * k);
    pg_map_guard_leave(&g);
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "<split>-" then one or more digits then ".pgs" */
static int is_shard_name(const char *name, const char *split)
{
    size_t ls = strlen(split);
    if (strncmp(name, split, ls) != 0 || name[ls] != '-')
        return 0;
    const char *p = name + ls + 1;
    size_t digits = 0;
    while (p[digits] >= '0' && p[digits] <= '9')
        digits++;
    return digits >= 5 && strcmp(p + digits, ".pgs") == 0;
}

int pg_shard_list(const char *dir, const char *split, char ***paths, size_t *n, pg_error *err)
{
    *paths = NULL;
    *n = 0;
    if (pg_split_from_name(split) < 0)
        return pg_fail(err, PG_EINVAL, "unknown split \"%s\" (train, validation or test)", split);
    DIR *d = opendir(dir);
    if (!d)
        return pg_fail(err, errno == ENOENT ? PG_ENOTFOUND : PG_EIO, "%s: opendir: %s", dir,
                       strerror(errno));
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_shard_name(de->d_name, split))
            continue;
        if (cnt == cap) {
            size_t nc = cap ? 2 * cap : 16;
            char **nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = pg_fail(err, PG_ENOMEM, "%s: no memory", dir);
                break;
            }
            v = nv;
            cap = nc;
        }
        size_t len = strlen(dir) + 1 + strlen(de->d_name) + 1;
        if (!(v[cnt] = malloc(len))) {
            rc = pg_fail(err, PG_ENOMEM, "%s: no memory", dir);
            break;
        }
        snprintf(v[cnt], len, "%s/%s", dir, de->d_name);
        cnt++;
    }
    closedir(d);
    if (rc < 0) {
        for (size_t k = 0; k < cnt; k++)
            free(v[k]);
        free(v);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_str);
    *paths = v;
    *n = cnt;
    return 0;
}
