/* manifest.c - see manifest.h */
#include "fetch/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/hash.h"

#define MANIFEST_HEADER "split\tid\tbytes\tmd5\tcrc32c\tsha256"
#define MANIFEST_MAX_BYTES (64u << 20)

static const char *split_order[] = {"-", "train", "validation", "test"};

static int split_rank(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, split_order[i]) == 0)
            return i;
    return 4;
}

/* Orders by split (metadata first), then numerically by id, then bytewise. */
static int entry_cmp(const char *sa, const char *ia, const char *sb, const char *ib)
{
    int ra = split_rank(sa), rb = split_rank(sb);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    int c = strcmp(sa, sb);
    if (c)
        return c;
    size_t la = strlen(ia), lb = strlen(ib);
    if (la != lb)
        return la < lb ? -1 : 1; /* ids are decimal: shorter is smaller */
    return strcmp(ia, ib);
}

static size_t lower_bound(const manifest *m, const char *split, const char *id)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry_cmp(m->entries[mid].split, m->entries[mid].id, split, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

const manifest_entry *manifest_find(const manifest *m, const char *split, const char *id)
{
    size_t i = lower_bound(m, split, id);
    if (i < m->n && strcmp(m->entries[i].split, split) == 0 && strcmp(m->entries[i].id, id) == 0)
        return &m->entries[i];
    return NULL;
}

int manifest_put(manifest *m, const manifest_entry *e, pg_error *err)
{
    size_t i = lower_bound(m, e->split, e->id);
    if (i < m->n && strcmp(m->entries[i].split, e->split) == 0 && strcmp(m->entries[i].id, e->id) == 0) {
        m->entries[i] = *e;
        return PG_OK;
    }
    if (m->n == m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 256;
        manifest_entry *ne = realloc(m->entries, ncap * sizeof *ne);
        if (!ne)
            return pg_fail(err, PG_ENOMEM, "out of memory");
        m->entries = ne;
        m->cap = ncap;
    }
    memmove(&m->entries[i + 1], &m->entries[i], (m->n - i) * sizeof *m->entries);
    m->entries[i] = *e;
    m->n++;
    return PG_OK;
}

void manifest_free(manifest *m)
{
    free(m->entries);
    memset(m, 0, sizeof *m);
}

static int parse_line(char *line, manifest_entry *e)
{
    char *f[7];
    int nf = 0;
    for (char *p = line; nf < 7;) {
        f[nf++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
    if (nf != 6 || strlen(f[0]) >= sizeof e->split || !*f[1] || strlen(f[1]) >= sizeof e->id)
        return -1;
    strcpy(e->split, f[0]);
    strcpy(e->id, f[1]);
    char *end;
    if (!*f[2] || *f[2] == '-')
        return -1;
    e->bytes = strtoull(f[2], &end, 10);
    if (*end)
        return -1;
    uint8_t crc[4];
    if (pg_unhex(f[3], e->md5, 16) || pg_unhex(f[4], crc, 4) || pg_unhex(f[5], e->sha256, 32))
        return -1;
    e->crc32c = (uint32_t)crc[0] << 24 | (uint32_t)crc[1] << 16 | (uint32_t)crc[2] << 8 | crc[3];
    return 0;
}

int manifest_load(manifest *m, const char *path, pg_error *err)
{
    memset(m, 0, sizeof *m);
    char *data;
    size_t len;
    int rc = pg_read_file(path, MANIFEST_MAX_BYTES, &data, &len, err);
    if (rc == PG_ENOTFOUND)
        return PG_OK;
    if (rc)
        return rc;
    if (memchr(data, '\0', len)) {
        free(data);
        return pg_fail(err, PG_ECORRUPT, "%s: contains a NUL byte", path);
    }
    size_t lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        lineno++;
        if (lineno == 1) {
            if (strcmp(line, MANIFEST_HEADER) != 0) {
                rc = pg_fail(err, PG_ECORRUPT, "%s: line 1: not a fetch manifest header", path);
                break;
            }
            continue;
        }
        manifest_entry e;
        memset(&e, 0, sizeof e);
        if (parse_line(line, &e) != 0) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: line %zu: malformed entry", path, lineno);
            break;
        }
        if ((rc = manifest_put(m, &e, err)) != PG_OK)
            break;
    }
    free(data);
    if (rc)
        manifest_free(m);
    return rc;
}

int manifest_save(const manifest *m, const char *path, pg_error *err)
{
    pg_atomic_file af;
    int rc = pg_atomic_open(&af, path, err);
    if (rc)
        return rc;
    fputs(MANIFEST_HEADER "\n", af.fp);
    for (size_t i = 0; i < m->n; i++) {
        const manifest_entry *e = &m->entries[i];
        char md5[33], sha[65];
        pg_hex(e->md5, 16, md5);
        pg_hex(e->sha256, 32, sha);
        fprintf(af.fp, "%s\t%s\t%llu\t%s\t%08x\t%s\n", e->split, e->id,
                (unsigned long long)e->bytes, md5, e->crc32c, sha);
    }
    return pg_atomic_commit(&af, err);
}
