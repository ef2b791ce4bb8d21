/* gb_zip.c - see gb_zip.h. */
#include "fetch/gb_zip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <archive.h>
#include <archive_entry.h>

void gb_zip_limits_default(gb_zip_limits *l)
{
    l->max_bytes = (uint64_t)256 << 20;
    l->max_ratio = 100;   /* English text deflates about 3:1; 100:1 is a bomb */
    l->max_entries = 64;
}

/* Rejects absolute paths and any ".." component. */
static int unsafe_path(const char *p)
{
    if (!p || !*p || p[0] == '/' || p[0] == '\\')
        return 1;
    const char *s = p;
    while (*s) {
        const char *e = s;
        while (*e && *e != '/' && *e != '\\')
            e++;
        if (e - s == 2 && s[0] == '.' && s[1] == '.')
            return 1;
        s = *e ? e + 1 : e;
    }
    return strchr(p, ':') != NULL; /* drive letters and other oddities */
}

int gb_zip_extract_text(const char *name, const void *zip, size_t zip_len,
                        const gb_zip_limits *lim, char **out, size_t *out_len, char *member,
                        size_t member_cap, pg_error *err)
{
    struct archive *a = archive_read_new();
    if (!a)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    archive_read_support_format_zip(a);
    archive_read_support_filter_none(a);
    if (archive_read_open_memory(a, zip, zip_len) != ARCHIVE_OK) {
        int rc = pg_fail(err, PG_ECORRUPT, "%s: not a zip archive: %s", name, archive_error_string(a));
        archive_read_free(a);
        return rc;
    }
    /* The ratio cap, with 1 MiB of slack for tiny archives. */
    uint64_t ratio_cap = (uint64_t)zip_len * lim->max_ratio + ((uint64_t)1 << 20);
    uint64_t cap = lim->max_bytes < ratio_cap ? lim->max_bytes : ratio_cap;
    int rc = PG_ENOTFOUND;
    uint32_t entries = 0;
    struct archive_entry *e;
    int r;
    char *buf = NULL;
    size_t len = 0, bcap = 0;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *path = archive_entry_pathname(e);
        if (++entries > lim->max_entries) {
            rc = pg_fail(err, PG_ELIMIT, "%s: more than %u entries", name, lim->max_entries);
            goto done;
        }
        if (unsafe_path(path)) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: unsafe member path \"%.200s\"", name,
                         path ? path : "");
            goto done;
        }
        unsigned type = archive_entry_filetype(e);
        if (archive_entry_hardlink(e) || archive_entry_symlink(e) || type == AE_IFLNK) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: member \"%.200s\" is a link", name, path);
            goto done;
        }
        if (type == AE_IFDIR)
            continue;
        if (type != AE_IFREG) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: member \"%.200s\" is not a regular file", name, path);
            goto done;
        }
        size_t pl = strlen(path);
        if (pl < 4 || strcasecmp(path + pl - 4, ".txt") || rc == PG_OK)
            continue;
        if (archive_entry_size_is_set(e) && (uint64_t)archive_entry_size(e) > cap) {
            rc = pg_fail(err, PG_ELIMIT, "%s: member \"%.200s\" declares %lld bytes, over the cap of %llu "
                         "(archive is %zu bytes): refused as a decompression bomb",
                         name, path, (long long)archive_entry_size(e), (unsigned long long)cap, zip_len);
            goto done;
        }
        len = 0;
        for (;;) {
            if (bcap - len < 65536) {
                size_t nc = bcap ? bcap * 2 : 262144;
                if (nc > cap + 65536 + 1)
                    nc = (size_t)cap + 65536 + 1;
                if (nc <= bcap) {
                    rc = pg_fail(err, PG_ELIMIT, "%s: member \"%.200s\" expands past %llu bytes "
                                 "(archive is %zu bytes): refused as a decompression bomb",
                                 name, path, (unsigned long long)cap, zip_len);
                    goto done;
                }
                char *g = realloc(buf, nc);
                if (!g) {
                    rc = pg_fail(err, PG_ENOMEM, "out of memory");
                    goto done;
                }
                buf = g;
                bcap = nc;
            }
            la_ssize_t k = archive_read_data(a, buf + len, bcap - len - 1);
            if (k < 0) {
                rc = pg_fail(err, PG_ECORRUPT, "%s: member \"%.200s\": %s", name, path,
                             archive_error_string(a));
                goto done;
            }
            if (k == 0)
                break;
            len += (size_t)k;
            if (len > cap) {
                rc = pg_fail(err, PG_ELIMIT, "%s: member \"%.200s\" expands past %llu bytes "
                             "(archive is %zu bytes): refused as a decompression bomb",
                             name, path, (unsigned long long)cap, zip_len);
                goto done;
            }
        }
        if (member)
            snprintf(member, member_cap, "%s", path);
        rc = PG_OK; /* keep walking: every entry must pass the guards */
    }
    if (r != ARCHIVE_EOF) {
        rc = pg_fail(err, PG_ECORRUPT, "%s: %s", name, archive_error_string(a));
        goto done;
    }
    if (rc == PG_ENOTFOUND)
        pg_fail(err, PG_ENOTFOUND, "%s: no .txt member", name);
done:
    archive_read_free(a);
    if (rc == PG_OK) {
        buf[len] = '\0';
        *out = buf;
        *out_len = len;
    } else {
        free(buf);
    }
    return rc;
}
