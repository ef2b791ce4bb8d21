/* gb_split.c - `fetch split`: train/validation/test book lists.
 *
 * --official METADATA.csv FILELIST: PG-19's own split. The file list is the
 *   release's object listing (lines containing "<split>/<id>.txt", e.g.
 *   gs://deepmind-gutenberg/train/10006.txt) or a TSV with "split" and
 *   "book_id" columns. Every listed id must be in metadata.csv, no id may be in
 *   two splits, every metadata row must be listed, and the sizes must be
 *   28,602 / 50 / 100 (--no-check skips the sizes).
 * --hash IDS|CATALOG.tsv: a deterministic split for custom corpora. Books are
 *   ranked by SHA-256("pg19-split:<seed>:<id>"); the first --test books form
 *   the test split, the next --validation the validation split, the rest train.
 *   A book's rank depends only on its id and the seed.
 * Output: DIR/train.txt, DIR/validation.txt, DIR/test.txt, ids ascending.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/hash.h"
#include "fetch/gb_catalog.h"
#include "fetch/gutenberg_cmds.h"

enum { SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_TEST, NSPLITS };
static const char *const SPLIT_NAMES[NSPLITS] = {"train", "validation", "test"};
static const size_t OFFICIAL_SIZES[NSPLITS] = {28602, 50, 100};

typedef struct idlist { long *v; size_t n, cap; } idlist;

static int il_push(idlist *l, long id)
{
    if (l->n == l->cap) {
        size_t c = l->cap ? 2 * l->cap : 1024;
        long *g = realloc(l->v, c * sizeof *g);
        if (!g)
            return -1;
        l->v = g;
        l->cap = c;
    }
    l->v[l->n++] = id;
    return 0;
}

static int long_cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int in_sorted(const long *v, size_t n, long id)
{
    return n && bsearch(&id, v, n, sizeof *v, long_cmp) != NULL;
}

static void sort_ids(long *v, size_t n)
{
    if (n)
        qsort(v, n, sizeof *v, long_cmp);
}

static int write_lists(const char *dir, idlist lists[NSPLITS], pg_error *err)
{
    int rc = pg_mkdirs(dir, err);
    for (int s = 0; s < NSPLITS && rc == 0; s++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s.txt", dir, SPLIT_NAMES[s]);
        sort_ids(lists[s].v, lists[s].n);
        pg_atomic_file af;
        rc = pg_atomic_open(&af, path, err);
        if (rc < 0)
            break;
        for (size_t i = 0; i < lists[s].n; i++)
            fprintf(af.fp, "%ld\n", lists[s].v[i]);
        rc = pg_atomic_commit(&af, err);
    }
    return rc;
}

/* metadata.csv ids (first field of each row; no header). */
static int read_metadata_ids(const char *path, idlist *ids, pg_error *err)
{
    char *s = NULL;
    size_t n = 0;
    int rc = pg_read_file(path, (size_t)256 << 20, &s, &n, err);
    if (rc < 0)
        return rc;
    size_t pos = 0;
    uint64_t line = 0;
    while (pos < n) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) : n;
        line++;
        if (end > pos) {
            char *endp;
            long id = strtol(s + pos, &endp, 10);
            if (endp == s + pos || *endp != ',' || id <= 0) {
                free(s);
                return pg_fail(err, PG_ECORRUPT, "%s: line %llu does not start with \"<id>,\"",
                               path, (unsigned long long)line);
            }
            if (il_push(ids, id) < 0) {
                free(s);
                return pg_fail(err, PG_ENOMEM, "out of memory");
            }
        }
        pos = end + 1;
    }
    free(s);
    sort_ids(ids->v, ids->n);
    for (size_t i = 1; i < ids->n; i++)
        if (ids->v[i] == ids->v[i - 1])
            return pg_fail(err, PG_ECORRUPT, "%s: book %ld appears twice", path, ids->v[i]);
    return PG_OK;
}

/* Parses a file list into per-split id lists. */
static int read_file_list(const char *path, idlist lists[NSPLITS], pg_error *err)
{
    char *s = NULL;
    size_t n = 0;
    int rc = pg_read_file(path, (size_t)256 << 20, &s, &n, err);
    if (rc < 0)
        return rc;
    int tsv_split = -1, tsv_id = -1;
    size_t pos = 0;
    uint64_t line = 0;
    while (pos < n && rc == 0) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) : n;
        line++;
        s[end] = '\0'; /* s has a NUL after n, so end == n is fine */
        char *l = s + pos;
        pos = end + 1;
        size_t ll = strlen(l);
        if (ll && l[ll - 1] == '\r')
            l[--ll] = '\0';
        if (!ll || l[0] == '#')
            continue;
        int split = -1;
        long id = -1;
        if (line == 1 && strstr(l, "split") && strstr(l, "book_id")) {
            int col = 0;
            for (char *f = l, *t; f; f = t ? t + 1 : NULL, col++) {
                t = strchr(f, '\t');
                size_t fl = t ? (size_t)(t - f) : strlen(f);
                if (fl == 5 && !strncmp(f, "split", 5)) tsv_split = col;
                if (fl == 7 && !strncmp(f, "book_id", 7)) tsv_id = col;
            }
            continue;
        }
        if (tsv_split >= 0 && tsv_id >= 0) {
            int col = 0;
            for (char *f = l, *t; f; f = t ? t + 1 : NULL, col++) {
                t = strchr(f, '\t');
                size_t fl = t ? (size_t)(t - f) : strlen(f);
                if (col == tsv_split)
                    for (int k = 0; k < NSPLITS; k++)
                        if (fl == strlen(SPLIT_NAMES[k]) && !strncmp(f, SPLIT_NAMES[k], fl))
                            split = k;
                if (col == tsv_id) {
                    char *endp;
                    long v = strtol(f, &endp, 10);
                    if (endp == f + fl && v > 0)
                        id = v;
                }
            }
        } else {
            for (int k = 0; k < NSPLITS && split < 0; k++) {
                char pat[32];
                snprintf(pat, sizeof pat, "%s/", SPLIT_NAMES[k]);
                const char *p = strstr(l, pat);
                if (p && (p == l || p[-1] == '/')) {
                    char *endp;
                    long v = strtol(p + strlen(pat), &endp, 10);
                    if (endp != p + strlen(pat) && v > 0 && !strncmp(endp, ".txt", 4)) {
                        split = k;
                        id = v;
                    }
                }
            }
            if (split < 0 && (strstr(l, "metadata.csv") || l[ll - 1] == '/'))
                continue; /* the listing's other objects */
        }
        if (split < 0 || id < 0) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: line %llu names no <split>/<id>.txt", path,
                         (unsigned long long)line);
            break;
        }
        if (il_push(&lists[split], id) < 0)
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
    }
    free(s);
    return rc;
}

static int official(const char *meta_path, const char *list_path, const char *out, int check,
                    pg_error *err)
{
    idlist meta = {0}, lists[NSPLITS] = {{0}};
    int rc = read_metadata_ids(meta_path, &meta, err);
    if (rc == 0)
        rc = read_file_list(list_path, lists, err);
    size_t listed = 0;
    for (int s = 0; s < NSPLITS && rc == 0; s++) {
        sort_ids(lists[s].v, lists[s].n);
        listed += lists[s].n;
        for (size_t i = 0; i < lists[s].n && rc == 0; i++) {
            long id = lists[s].v[i];
            if (i && id == lists[s].v[i - 1])
                rc = pg_fail(err, PG_ECORRUPT, "%s: book %ld listed twice in %s", list_path, id,
                             SPLIT_NAMES[s]);
            else if (!in_sorted(meta.v, meta.n, id))
                rc = pg_fail(err, PG_ECORRUPT, "%s: book %ld (%s) is not in %s", list_path, id,
                             SPLIT_NAMES[s], meta_path);
            for (int t = s + 1; t < NSPLITS && rc == 0; t++)
                if (in_sorted(lists[t].v, lists[t].n, id))
                    rc = pg_fail(err, PG_ECORRUPT, "%s: book %ld is in both %s and %s", list_path,
                                 id, SPLIT_NAMES[s], SPLIT_NAMES[t]);
        }
    }
    if (rc == 0 && listed != meta.n)
        rc = pg_fail(err, PG_ECORRUPT, "%s lists %zu books but %s has %zu rows", list_path, listed,
                     meta_path, meta.n);
    for (int s = 0; s < NSPLITS && rc == 0 && check; s++)
        if (lists[s].n != OFFICIAL_SIZES[s])
            rc = pg_fail(err, PG_ECORRUPT, "%s: %s has %zu books, PG-19's has %zu", list_path,
                         SPLIT_NAMES[s], lists[s].n, OFFICIAL_SIZES[s]);
    if (rc == 0)
        rc = write_lists(out, lists, err);
    if (rc == 0)
        fprintf(stderr, "fetch split: %zu train, %zu validation, %zu test written to %s\n",
                lists[0].n, lists[1].n, lists[2].n, out);
    free(meta.v);
    for (int s = 0; s < NSPLITS; s++)
        free(lists[s].v);
    return rc;
}

typedef struct ranked { uint8_t key[32]; long id; } ranked;

static int ranked_cmp(const void *a, const void *b)
{
    int c = memcmp(((const ranked *)a)->key, ((const ranked *)b)->key, 32);
    if (c)
        return c;
    return long_cmp(&((const ranked *)a)->id, &((const ranked *)b)->id);
}

static int hashed(const char *input, const gb_select *sel, const char *seed, size_t n_test,
                  size_t n_val, const char *out, pg_error *err)
{
    long *ids = NULL;
    size_t n = 0;
    char head[4] = "";
    FILE *fp = fopen(input, "rb");
    if (fp) {
        size_t got = fread(head, 1, 3, fp);
        head[got] = '\0';
        fclose(fp);
    }
    int rc = !strcmp(head, "id\t") ? gb_catalog_select(input, sel, &ids, &n, err)
                                   : gb_read_ids(input, &ids, &n, err);
    if (rc < 0)
        return rc;
    if (n_test + n_val > n) {
        free(ids);
        return pg_fail(err, PG_EINVAL, "%s: %zu books cannot fill %zu test + %zu validation", input,
                       n, n_test, n_val);
    }
    ranked *r = malloc((n ? n : 1) * sizeof *r);
    if (!r) {
        free(ids);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        char msg[128];
        int ml = snprintf(msg, sizeof msg, "pg19-split:%s:%ld", seed, ids[i]);
        pg_sha256(msg, (size_t)ml, r[i].key);
        r[i].id = ids[i];
    }
    free(ids);
    if (n)
        qsort(r, n, sizeof *r, ranked_cmp);
    idlist lists[NSPLITS] = {{0}};
    for (size_t i = 0; i < n && rc == 0; i++) {
        int s = i < n_test ? SPLIT_TEST : i < n_test + n_val ? SPLIT_VALIDATION : SPLIT_TRAIN;
        if (il_push(&lists[s], r[i].id) < 0)
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
    }
    free(r);
    if (rc == 0)
        rc = write_lists(out, lists, err);
    if (rc == 0)
        fprintf(stderr, "fetch split: %zu train, %zu validation, %zu test written to %s\n",
                lists[0].n, lists[1].n, lists[2].n, out);
    for (int s = 0; s < NSPLITS; s++)
        free(lists[s].v);
    return rc;
}

static int split_usage(void)
{
    fprintf(stderr,
            "usage: fetch split --official METADATA.csv FILELIST -o DIR [--no-check]\n"
            "       fetch split --hash IDS|CATALOG.tsv -o DIR [--test N] [--validation N]\n"
            "                   [--seed S] [--language L --type T --max-issued-year Y\n"
            "                    --author-died-before Y --limit N  (catalog input)]\n"
            "  writes DIR/train.txt DIR/validation.txt DIR/test.txt (ids ascending)\n");
    return 2;
}

int fetch_cmd_split(int argc, char **argv)
{
    static const struct option opts[] = {
        {"official", required_argument, 0, 'O'}, {"hash", required_argument, 0, 'H'},
        {"output", required_argument, 0, 'o'},   {"test", required_argument, 0, 't'},
        {"validation", required_argument, 0, 'v'}, {"seed", required_argument, 0, 's'},
        {"no-check", no_argument, 0, 'x'},       {"language", required_argument, 0, 'L'},
        {"type", required_argument, 0, 'T'},     {"max-issued-year", required_argument, 0, 'Y'},
        {"author-died-before", required_argument, 0, 'D'},
        {"limit", required_argument, 0, 'n'},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *meta = NULL, *hash_in = NULL, *out = NULL, *seed = "0";
    long n_test = 100, n_val = 50;
    int check = 1, c;
    gb_select sel = {0};
    optind = 0;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'O': meta = optarg; break;
        case 'H': hash_in = optarg; break;
        case 'o': out = optarg; break;
        case 't': n_test = atol(optarg); break;
        case 'v': n_val = atol(optarg); break;
        case 's': seed = optarg; break;
        case 'x': check = 0; break;
        case 'L': sel.language = optarg; break;
        case 'T': sel.type = optarg; break;
        case 'Y': sel.max_issued_year = atoi(optarg); break;
        case 'D': sel.author_died_before = atoi(optarg); break;
        case 'n': sel.limit = atol(optarg); break;
        default: return split_usage();
        }
    }
    if (!out || !!meta == !!hash_in || n_test < 0 || n_val < 0 || strlen(seed) > 64)
        return split_usage();
    if (meta && optind != argc - 1)
        return split_usage();
    if (hash_in && optind != argc)
        return split_usage();
    pg_error err = {0};
    int rc = meta ? official(meta, argv[optind], out, check, &err)
                  : hashed(hash_in, &sel, seed, (size_t)n_test, (size_t)n_val, out, &err);
    if (rc < 0) {
        fprintf(stderr, "fetch split: %s\n", err.msg);
        return 1;
    }
    return 0;
}
