/* nll_dump.c - see nll_dump.h */
#include "leaderboard/nll_dump.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/hash.h"

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

int lb_nll_open(const char *path, lb_nll_dump *d, pg_error *err)
{
    memset(d, 0, sizeof *d);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pg_fail(err, errno == ENOENT ? PG_ENOTFOUND : PG_EIO, "%s: open: %s", path,
                       strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = pg_fail(err, PG_EIO, "%s: stat: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return pg_fail(err, PG_EINVAL, "%s: not a regular file", path);
    }
    if (st.st_size < (off_t)(LB_NLL_HEADER + 4)) {
        close(fd);
        return pg_fail(err, PG_ECORRUPT, "%s: %lld bytes is too small for an NLL dump", path,
                       (long long)st.st_size);
    }
    size_t size = (size_t)st.st_size;
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED)
        return pg_fail(err, PG_EIO, "%s: mmap: %s", path, strerror(errno));
    int rc = lb_nll_parse(map, size, path, d, err);
    d->mapped = 1;
    if (rc)
        lb_nll_close(d);
    return rc;
}

int lb_nll_parse(const uint8_t *data, size_t size, const char *path, lb_nll_dump *d,
                 pg_error *err)
{
    memset(d, 0, sizeof *d);
    d->path = path;
    d->map = data;
    d->size = size;
    if (size < LB_NLL_HEADER + 4)
        return pg_fail(err, PG_ECORRUPT, "%s: %zu bytes is too small for an NLL dump", path, size);
    const uint8_t *h = d->map;
    int rc = PG_OK;
    if (memcmp(h, LB_NLL_MAGIC, 8) != 0)
        rc = pg_fail(err, PG_ECORRUPT, "%s: not a PG19NLL1 dump (bad magic)", path);
    else if (le32(h + 8) != LB_NLL_VERSION)
        rc = pg_fail(err, PG_ECORRUPT, "%s: unsupported version %u", path, le32(h + 8));
    else if (le32(h + 12) != LB_NLL_DTYPE_F32)
        rc = pg_fail(err, PG_ECORRUPT, "%s: unsupported dtype %u (1 = f32)", path, le32(h + 12));
    if (rc)
        return rc;
    d->n_books = le64(h + 16);
    d->n_tokens = le64(h + 24);
    /* 32 + 16*n_books + 4*n_tokens + 4 == size, without overflow: bound each
     * count by the file size first. */
    if (d->n_books > size / 16 || d->n_tokens > size / 4 ||
        LB_NLL_HEADER + 16 * d->n_books + 4 * d->n_tokens + 4 != (uint64_t)size)
        return pg_fail(err, PG_ECORRUPT,
                       "%s: %llu books and %llu tokens do not fit the file size %zu", path,
                       (unsigned long long)d->n_books, (unsigned long long)d->n_tokens, size);
    uint64_t sum = 0;
    for (uint64_t i = 0; i < d->n_books; i++) {
        uint64_t n = le64(h + LB_NLL_HEADER + 16 * i + 8);
        if (n > d->n_tokens - sum)
            return pg_fail(err, PG_ECORRUPT, "%s: book counts exceed n_tokens at book %llu", path,
                           (unsigned long long)i);
        sum += n;
    }
    if (sum != d->n_tokens)
        return pg_fail(err, PG_ECORRUPT, "%s: book counts sum to %llu, header says %llu tokens",
                       path, (unsigned long long)sum, (unsigned long long)d->n_tokens);
    uint32_t want = le32(h + size - 4), got = pg_crc32c_update(0, h, size - 4);
    if (want != got)
        return pg_fail(err, PG_ECORRUPT, "%s: CRC32C mismatch (file says %08x, data %08x)", path,
                       want, got);
    return PG_OK;
}

void lb_nll_close(lb_nll_dump *d)
{
    if (d->map && d->mapped)
        munmap((void *)d->map, d->size);
    memset(d, 0, sizeof *d);
}

void lb_nll_book(const lb_nll_dump *d, uint64_t i, uint64_t *book_id, uint64_t *n_tokens)
{
    const uint8_t *p = d->map + LB_NLL_HEADER + 16 * i;
    *book_id = le64(p);
    *n_tokens = le64(p + 8);
}

float lb_nll_value(const lb_nll_dump *d, uint64_t t)
{
    uint32_t bits = le32(d->map + LB_NLL_HEADER + 16 * d->n_books + 4 * t);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}
