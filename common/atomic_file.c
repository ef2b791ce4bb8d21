/* atomic_file.c - see atomic_file.h */
#include "common/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int pg_fsync_parent_dir(const char *path, pg_error *err)
{
    char *copy = strdup(path);
    if (!copy)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        int rc = pg_fail(err, PG_EIO, "%s: open directory: %s", dir, strerror(errno));
        free(copy);
        return rc;
    }
    int rc = PG_OK;
    if (fsync(fd) != 0 && errno != EINVAL)
        rc = pg_fail(err, PG_EIO, "%s: fsync directory: %s", dir, strerror(errno));
    close(fd);
    free(copy);
    return rc;
}

int pg_mkdirs(const char *dir, pg_error *err)
{
    size_t n = strlen(dir);
    char *p = malloc(n + 1);
    if (!p)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    memcpy(p, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] == '/' || p[i] == '\0') {
            char c = p[i];
            p[i] = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST) {
                int rc = pg_fail(err, PG_EIO, "%s: mkdir: %s", p, strerror(errno));
                free(p);
                return rc;
            }
            p[i] = c;
        }
    }
    free(p);
    return PG_OK;
}

int pg_atomic_open(pg_atomic_file *af, const char *path, pg_error *err)
{
    memset(af, 0, sizeof *af);
    size_t n = strlen(path) + 32;
    af->final_path = strdup(path);
    af->tmp_path = malloc(n);
    if (!af->final_path || !af->tmp_path) {
        pg_atomic_abort(af);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    snprintf(af->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    af->fp = fopen(af->tmp_path, "wb");
    if (!af->fp) {
        int rc = pg_fail(err, PG_EIO, "%s: create: %s", af->tmp_path, strerror(errno));
        pg_atomic_abort(af);
        return rc;
    }
    return PG_OK;
}

int pg_atomic_commit(pg_atomic_file *af, pg_error *err)
{
    int rc = PG_OK;
    if (fflush(af->fp) != 0 || ferror(af->fp))
        rc = pg_fail(err, PG_EIO, "%s: write: %s", af->tmp_path, strerror(errno));
    else if (fsync(fileno(af->fp)) != 0)
        rc = pg_fail(err, PG_EIO, "%s: fsync: %s", af->tmp_path, strerror(errno));
    if (fclose(af->fp) != 0 && rc == PG_OK)
        rc = pg_fail(err, PG_EIO, "%s: close: %s", af->tmp_path, strerror(errno));
    af->fp = NULL;
    if (rc == PG_OK && rename(af->tmp_path, af->final_path) != 0)
        rc = pg_fail(err, PG_EIO, "%s: rename to %s: %s", af->tmp_path, af->final_path,
                     strerror(errno));
    if (rc == PG_OK)
        rc = pg_fsync_parent_dir(af->final_path, err);
    else
        unlink(af->tmp_path);
    free(af->final_path);
    free(af->tmp_path);
    af->final_path = af->tmp_path = NULL;
    return rc;
}

void pg_atomic_abort(pg_atomic_file *af)
{
    if (af->fp)
        fclose(af->fp);
    if (af->tmp_path)
        unlink(af->tmp_path);
    free(af->final_path);
    free(af->tmp_path);
    memset(af, 0, sizeof *af);
}

int pg_write_file_atomic(const char *path, const void *data, size_t len, pg_error *err)
{
    pg_atomic_file af;
    int rc = pg_atomic_open(&af, path, err);
    if (rc)
        return rc;
    if (len && fwrite(data, 1, len, af.fp) != len) {
        rc = pg_fail(err, PG_EIO, "%s: write: %s", af.tmp_path, strerror(errno));
        pg_atomic_abort(&af);
        return rc;
    }
    return pg_atomic_commit(&af, err);
}

int pg_read_file(const char *path, size_t max_bytes, char **out, size_t *len, pg_error *err)
{
    *out = NULL;
    *len = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return pg_fail(err, errno == ENOENT ? PG_ENOTFOUND : PG_EIO, "%s: open: %s", path,
                       strerror(errno));
    size_t cap = max_bytes < (1 << 16) ? max_bytes : (1 << 16), n = 0;
    char *buf = malloc(cap + 1);
    int rc = PG_OK;
    while (buf) {
        if (n == cap) {
            if (cap >= max_bytes) {
                if (fgetc(fp) == EOF)
                    break; /* exactly max_bytes long */
                rc = pg_fail(err, PG_ELIMIT, "%s: larger than the %zu-byte limit", path, max_bytes);
                break;
            }
            cap = cap * 2 > max_bytes ? max_bytes : cap * 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) {
            if (ferror(fp))
                rc = pg_fail(err, PG_EIO, "%s: read: %s", path, strerror(errno));
            break;
        }
    }
    fclose(fp);
    if (!buf)
        return pg_fail(err, PG_ENOMEM, "%s: out of memory", path);
    if (rc) {
        free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return PG_OK;
}
