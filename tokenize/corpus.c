/* corpus.c - list and read the books of a split. */
#include "tokenize/corpus.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/atomic_file.h"

static int cmp_book(const void *a, const void *b)
{
    const pg_book_ref *x = a, *y = b;
    return (x->id > y->id) - (x->id < y->id);
}

void pg_corpus_free(pg_book_ref *books, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(books[i].path);
    free(books);
}

int pg_corpus_list(const char *corpus, const char *split, pg_book_ref **books, size_t *n,
                   pg_error *err)
{
    *books = NULL;
    *n = 0;
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", corpus, split);
    DIR *d = opendir(dir);
    if (!d)
        return pg_fail(err, errno == ENOENT ? PG_ENOTFOUND : PG_EIO, "%s: %s", dir,
                       strerror(errno));
    pg_book_ref *v = NULL;
    size_t cnt = 0, cap = 0;
    int rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *name = de->d_name;
        if (name[0] == '.')
            continue;
        size_t len = strlen(name);
        if (len < 5 || strcmp(name + len - 4, ".txt") != 0)
            continue;
        uint64_t id = 0;
        size_t k = 0;
        for (; k < len - 4; k++) {
            if (name[k] < '0' || name[k] > '9' || id > (UINT64_MAX - 9) / 10)
                break;
            id = id * 10 + (uint64_t)(name[k] - '0');
        }
        if (k != len - 4) {
            rc = pg_fail(err, PG_EINVAL, "%s/%s: a book file must be named <id>.txt", dir, name);
            break;
        }
        if (cnt == cap) {
            size_t nc = cap ? 2 * cap : 64;
            pg_book_ref *nv = realloc(v, nc * sizeof *nv);
            if (!nv) {
                rc = pg_fail(err, PG_ENOMEM, "%s: no memory", dir);
                break;
            }
            v = nv;
            cap = nc;
        }
        size_t plen = strlen(dir) + 1 + len + 1;
        v[cnt].id = id;
        v[cnt].path = malloc(plen);
        if (!v[cnt].path) {
            rc = pg_fail(err, PG_ENOMEM, "%s: no memory", dir);
            break;
        }
        snprintf(v[cnt].path, plen, "%s/%s", dir, name);
        struct stat st;
        if (stat(v[cnt].path, &st) != 0 || !S_ISREG(st.st_mode)) {
            rc = pg_fail(err, PG_EIO, "%s: not a regular file", v[cnt].path);
            cnt++;
            break;
        }
        v[cnt].size = (uint64_t)st.st_size;
        cnt++;
    }
    closedir(d);
    if (rc < 0) {
        pg_corpus_free(v, cnt);
        return rc;
    }
    if (cnt)
        qsort(v, cnt, sizeof *v, cmp_book);
    for (size_t i = 1; i < cnt; i++)
        if (v[i].id == v[i - 1].id) {
            rc = pg_fail(err, PG_EINVAL, "%s and %s: the same book id twice", v[i - 1].path,
                         v[i].path);
            pg_corpus_free(v, cnt);
            return rc;
        }
    *books = v;
    *n = cnt;
    return 0;
}

int pg_corpus_read(const pg_book_ref *b, uint8_t **text, size_t *len, pg_error *err)
{
    char *t;
    int rc = pg_read_file(b->path, PG_MAX_BOOK_BYTES, &t, len, err);
    *text = (uint8_t *)t;
    return rc;
}
