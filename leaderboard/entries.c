/* entries.c - see entries.h */
#include "leaderboard/entries.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "leaderboard/plausible.h"
#include "leaderboard/reproduce.h"
#include "leaderboard/results.h"

int lb_entry_from_submission(const json_t *submission, int reported, const char *source,
                             const char *notes, json_t **entry, pg_error *err)
{
    *entry = NULL;
    if (reported && (!source || !*source))
        return pg_fail(err, PG_EINVAL, "a reported result needs its source (a citation or URL)");
    json_t *e = json_deep_copy(submission);
    json_t *prov = json_object();
    if (!e || !prov ||
        json_object_set_new(prov, "kind", json_string(reported ? "reported" : "measured")) ||
        json_object_set_new(prov, "source", source ? json_string(source) : json_null()) ||
        json_object_set_new(prov, "status", json_string("unchecked")) ||
        json_object_set_new(prov, "consistency", json_null()) ||
        json_object_set_new(prov, "reproduction", json_null()) ||
        json_object_set_new(prov, "notes", notes ? json_string(notes) : json_null()) ||
        json_object_set_new(e, "provenance", prov)) {
        json_decref(e);
        return pg_fail(err, PG_ENOMEM, "out of memory (or invalid UTF-8 in --source/--notes)");
    }
    *entry = e;
    return PG_OK;
}

/* Lower-case letters and digits of the model name, other runs become '-'. */
static void slugify(const char *name, char *out, size_t cap)
{
    size_t j = 0;
    int dash = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && j + 1 < cap; p++) {
        unsigned char ch = *p;
        if (ch >= 'A' && ch <= 'Z')
            ch = (unsigned char)(ch - 'A' + 'a');
        if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
            if (dash && j > 0 && j + 2 < cap)
                out[j++] = '-';
            dash = 0;
            out[j++] = (char)ch;
        } else {
            dash = 1;
        }
    }
    out[j] = '\0';
    if (j == 0)
        snprintf(out, cap, "model");
}

int lb_entry_content_sha256(const json_t *entry, uint8_t sha[32], pg_error *err)
{
    /* The id hashes the result without its provenance, so the same result
     * cannot enter twice, measured or reported. */
    json_t *bare = json_deep_copy(entry);
    if (!bare)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    json_object_del(bare, "provenance");
    char *canon = json_dumps(bare, JSON_COMPACT | JSON_SORT_KEYS | JSON_REAL_PRECISION(17));
    json_decref(bare);
    if (!canon)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    pg_sha256(canon, strlen(canon), sha);
    free(canon);
    return PG_OK;
}

int lb_entry_filename(const json_t *entry, char *out, size_t cap, pg_error *err)
{
    const char *name = json_string_value(json_object_get(json_object_get(entry, "model"), "name"));
    const char *split = json_string_value(json_object_get(json_object_get(entry, "eval"), "split"));
    if (!name || !split)
        return pg_fail(err, PG_EINVAL, "entry has no model.name or eval.split");
    uint8_t sha[32];
    char hex[65];
    int rc = lb_entry_content_sha256(entry, sha, err);
    if (rc)
        return rc;
    pg_hex(sha, 32, hex);
    char slug[41];
    slugify(name, slug, sizeof slug);
    if ((size_t)snprintf(out, cap, "%s-%s-%.12s.json", split, slug, hex) >= cap)
        return pg_fail(err, PG_ELIMIT, "entry file name too long");
    return PG_OK;
}

char *lb_entry_serialize(const json_t *entry)
{
    /* The fewest significant digits (15..17) at which every real reads back
     * exactly: 33.2 stays "33.2", not "33.200000000000003". */
    char *s = NULL;
    for (int digits = 15; digits <= 17 && !s; digits++) {
        s = json_dumps(entry, JSON_INDENT(2) | JSON_REAL_PRECISION(digits));
        if (!s)
            return NULL;
        json_t *back = digits < 17 ? json_loads(s, 0, NULL) : NULL;
        if (digits < 17 && !json_equal(back, (json_t *)entry)) {
            free(s);
            s = NULL;
        }
        json_decref(back);
    }
    if (!s)
        return NULL;
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return NULL;
    }
    t[n] = '\n';
    t[n + 1] = '\0';
    return t;
}

static int write_all_fsync(int fd, const char *data, size_t len, const char *path, pg_error *err)
{
    while (len) {
        ssize_t w = write(fd, data, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return pg_fail(err, PG_EIO, "%s: write: %s", path, strerror(errno));
        }
        data += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0)
        return pg_fail(err, PG_EIO, "%s: fsync: %s", path, strerror(errno));
    return PG_OK;
}

int lb_entry_store(const char *dir, const json_t *entry, char *path_out, size_t cap, pg_error *err)
{
    char name[128];
    int rc = lb_entry_filename(entry, name, sizeof name, err);
    if (rc)
        return rc;
    if ((rc = pg_mkdirs(dir, err)))
        return rc;
    char final[4096], tmp[4200];
    if ((size_t)snprintf(final, sizeof final, "%s/%s", dir, name) >= sizeof final)
        return pg_fail(err, PG_ELIMIT, "%s: path too long", dir);
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp.%ld", dir, name, (long)getpid());
    char *text = lb_entry_serialize(entry);
    if (!text)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = pg_fail(err, PG_EIO, "%s: create: %s", tmp, strerror(errno));
        free(text);
        return rc;
    }
    rc = write_all_fsync(fd, text, strlen(text), tmp, err);
    free(text);
    if (close(fd) != 0 && !rc)
        rc = pg_fail(err, PG_EIO, "%s: close: %s", tmp, strerror(errno));
    /* link() publishes the complete file under its final name and, unlike
     * rename(), refuses to replace an existing entry. */
    if (!rc && link(tmp, final) != 0)
        rc = errno == EEXIST
                 ? pg_fail(err, PG_EINVAL, "%s: this result is already on the leaderboard", final)
                 : pg_fail(err, PG_EIO, "%s: link: %s", final, strerror(errno));
    unlink(tmp);
    if (!rc)
        rc = pg_fsync_parent_dir(final, err);
    if (!rc && path_out)
        snprintf(path_out, cap, "%s", final);
    return rc;
}

int lb_entry_check_name(const char *path, const json_t *entry, pg_error *err)
{
    char want[128];
    int rc = lb_entry_filename(entry, want, sizeof want, err);
    if (rc)
        return rc;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    if (strcmp(base, want) != 0)
        return pg_fail(err, PG_EINVAL,
                       "%s: the file name does not match the entry's content (it should be %s): "
                       "an entry's numbers were edited by hand, or it was not added by "
                       "`leaderboard submit`", path, want);
    /* a sampled re-run checked the books its content chose, not others */
    const char *seed = json_string_value(json_object_get(
        json_object_get(json_object_get(json_object_get(entry, "provenance"), "reproduction"),
                        "sample"),
        "seed"));
    if (seed) {
        uint8_t sha[32];
        char want_seed[17];
        if ((rc = lb_entry_content_sha256(entry, sha, err)))
            return rc;
        snprintf(want_seed, sizeof want_seed, "%016llx", (unsigned long long)lb_sample_seed(sha));
        if (strcmp(seed, want_seed) != 0)
            return pg_fail(err, PG_EINVAL,
                           "%s: provenance.reproduction.sample.seed: %s is not the seed derived "
                           "from the entry's content (%s)", path, seed, want_seed);
    }
    return PG_OK;
}

/* "<split>-<slug>-<12 hex>.json" -> slug, or 0 when the name is not one. */
static int slug_of_filename(const char *name, char *slug, size_t cap)
{
    static const char *const splits[] = {"train-", "validation-", "test-"};
    size_t n = strlen(name);
    if (n < 5 + 13 || strcmp(name + n - 5, ".json") != 0 || name[n - 18] != '-')
        return 0;
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(splits[i]);
        if (strncmp(name, splits[i], k) == 0 && n - 18 > k && n - 18 - k < cap) {
            memcpy(slug, name + k, n - 18 - k);
            slug[n - 18 - k] = '\0';
            return 1;
        }
    }
    return 0;
}

int lb_entry_check_slug(const char *dir, const json_t *entry, pg_error *err)
{
    const char *name = json_string_value(json_object_get(json_object_get(entry, "model"), "name"));
    if (!name)
        return pg_fail(err, PG_EINVAL, "entry has no model.name");
    char slug[41], other_slug[64];
    slugify(name, slug, sizeof slug);
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? PG_OK /* no entries yet */
                               : pg_fail(err, PG_EIO, "%s: open directory: %s", dir,
                                         strerror(errno));
    int rc = PG_OK;
    struct dirent *de;
    while (!rc && (de = readdir(d))) {
        if (de->d_name[0] == '.' || !slug_of_filename(de->d_name, other_slug, sizeof other_slug) ||
            strcmp(slug, other_slug) != 0)
            continue;
        char path[4096];
        json_t *other = NULL;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if ((rc = lb_load_file(path, &other, err)))
            break;
        const char *other_name =
            json_string_value(json_object_get(json_object_get(other, "model"), "name"));
        if (other_name && strcmp(other_name, name) != 0)
            rc = pg_fail(err, PG_EINVAL,
                         "model.name: \"%.100s\" has the slug \"%s\" of \"%.100s\" (%s), a "
                         "different spelling; use the same name for the same model, or one "
                         "that differs in its letters or digits (refused by the plausibility "
                         "rule \"%s\")", name, slug, other_name, path, LB_RULE_NAME_SLUG);
        json_decref(other);
    }
    closedir(d);
    return rc;
}

int lb_entry_rewrite(const char *path, const json_t *entry, pg_error *err)
{
    char *text = lb_entry_serialize(entry);
    if (!text)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    int rc = pg_write_file_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void lb_entries_free(lb_entry_list *list)
{
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i].path);
        free(list->items[i].id);
        json_decref(list->items[i].json);
    }
    free(list->items);
    list->items = NULL;
    list->n = 0;
}

int lb_entries_load(const char *dir, lb_entry_list *out, pg_error *err)
{
    out->items = NULL;
    out->n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return pg_fail(err, errno == ENOENT ? PG_ENOTFOUND : PG_EIO, "%s: open directory: %s", dir,
                       strerror(errno));
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = PG_OK;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t len = strlen(de->d_name);
        if (de->d_name[0] == '.' || len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
            continue;
        if (n == LB_MAX_ENTRIES) {
            rc = pg_fail(err, PG_ELIMIT, "%s: more than %d entries", dir, LB_MAX_ENTRIES);
            break;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) {
                rc = pg_fail(err, PG_ENOMEM, "out of memory");
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (!rc && n)
        qsort(names, n, sizeof *names, cmp_str);
    if (!rc && n && !(out->items = calloc(n, sizeof *out->items)))
        rc = pg_fail(err, PG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n && !rc; i++) {
        lb_entry *e = &out->items[out->n];
        size_t plen = strlen(dir) + strlen(names[i]) + 2;
        e->path = malloc(plen);
        e->id = strndup(names[i], strlen(names[i]) - 5);
        if (!e->path || !e->id) {
            free(e->path);
            free(e->id);
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
        snprintf(e->path, plen, "%s/%s", dir, names[i]);
        out->n++;
        if (!(rc = lb_load_file(e->path, &e->json, err)))
            rc = lb_validate(e->json, LB_ENTRY, e->path, err);
        if (!rc)
            rc = lb_entry_check_name(e->path, e->json, err);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    if (rc)
        lb_entries_free(out);
    return rc;
}
