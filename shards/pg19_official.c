/* pg19_official.c - see pg19_official.h.
 *
 * The list is kept as one array sorted by id; lookups are binary searches.
 * Classification sorts a copy of the given books by id, so duplicates sit
 * next to each other and the digest is independent of the input order.
 */
#include "shards/pg19_official.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "shards/shard_reader.h"

/* shards/pg19_files.tsv, embedded at build time (the Makefile compiles from
 * the repository root; shards/reader.mk makes this object depend on it). */
__asm__(".section .rodata.pg19_files,\"a\",@progbits\n"
        ".balign 16\n"
        ".globl pg19_files_tsv\n"
        ".hidden pg19_files_tsv\n"
        "pg19_files_tsv:\n"
        ".incbin \"shards/pg19_files.tsv\"\n"
        ".globl pg19_files_tsv_end\n"
        ".hidden pg19_files_tsv_end\n"
        "pg19_files_tsv_end:\n"
        ".byte 0\n"
        ".previous\n");
extern const char pg19_files_tsv[], pg19_files_tsv_end[];

#define LIST_HEADER "split\tbook_id\tnum_bytes\tsha256"
#define MAX_LIST_BOOKS 10000000ull /* far above PG-19's 28,752: bounds a hostile list */

typedef struct list_entry {
    pg19_book_fact f;
    int split;
} list_entry;

struct pg19_file_list {
    list_entry *e;      /* sorted by id */
    uint64_t n;
    uint64_t per_split[3];
};

static int cmp_entry(const void *a, const void *b)
{
    uint64_t x = ((const list_entry *)a)->f.id, y = ((const list_entry *)b)->f.id;
    return (x > y) - (x < y);
}

static int cmp_fact(const void *a, const void *b)
{
    uint64_t x = ((const pg19_book_fact *)a)->id, y = ((const pg19_book_fact *)b)->id;
    return (x > y) - (x < y);
}

/* A decimal u64 of [s, e): 1..20 digits, no sign, no overflow. */
static int parse_u64(const char *s, const char *e, uint64_t *out)
{
    if (e <= s || e - s > 20)
        return -1;
    uint64_t v = 0;
    for (const char *p = s; p < e; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Lower-case hex only, so that one file has one spelling. */
static int parse_sha(const char *s, const char *e, uint8_t out[32])
{
    if (e - s != 64)
        return -1;
    char hex[65];
    for (int i = 0; i < 64; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return -1;
        hex[i] = s[i];
    }
    hex[64] = 0;
    return pg_unhex(hex, out, 32) == 0 ? 0 : -1;
}

int pg19_file_list_parse(const char *text, size_t len, const char *name, pg19_file_list **out,
                         pg_error *err)
{
    *out = NULL;
    pg19_file_list *l = calloc(1, sizeof *l);
    if (!l)
        return pg_fail(err, PG_ENOMEM, "%s: out of memory", name);
    uint64_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += text[i] == '\n';
    if (lines > MAX_LIST_BOOKS + 1) {
        free(l);
        return pg_fail(err, PG_ELIMIT, "%s: %llu lines, more than a book list can have", name,
                       (unsigned long long)lines);
    }
    if (!(l->e = calloc(lines + 1, sizeof *l->e))) {
        free(l);
        return pg_fail(err, PG_ENOMEM, "%s: out of memory", name);
    }
    const char *p = text, *end = text + len;
    uint64_t lineno = 0;
    int rc = 0;
    while (p < end && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: line %llu does not end with a newline", name,
                         (unsigned long long)lineno + 1);
            break;
        }
        const char *le = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
        lineno++;
        if (lineno == 1) {
            if ((size_t)(le - p) != strlen(LIST_HEADER) || memcmp(p, LIST_HEADER, (size_t)(le - p)))
                rc = pg_fail(err, PG_ECORRUPT, "%s: line 1 is not the header \"%s\"", name,
                             "split<TAB>book_id<TAB>num_bytes<TAB>sha256");
            p = nl + 1;
            continue;
        }
        const char *f[4], *fe[4];
        int nf = 0;
        for (const char *q = p; nf < 4;) {
            const char *t = memchr(q, '\t', (size_t)(le - q));
            f[nf] = q;
            fe[nf] = t ? t : le;
            nf++;
            if (!t)
                break;
            q = t + 1;
        }
        list_entry *x = &l->e[l->n];
        char split[16] = "";
        if (nf == 4 && fe[0] - f[0] < (long)sizeof split)
            memcpy(split, f[0], (size_t)(fe[0] - f[0]));
        x->split = pg_split_from_name(split);
        if (nf != 4 || fe[3] != le || x->split < 0 || parse_u64(f[1], fe[1], &x->f.id) ||
            parse_u64(f[2], fe[2], &x->f.n_bytes) || parse_sha(f[3], fe[3], x->f.sha256)) {
            rc = pg_fail(err, PG_ECORRUPT,
                         "%s: line %llu: expected split (train, validation or test), book id, "
                         "bytes and a lower-case hex SHA-256, separated by tabs",
                         name, (unsigned long long)lineno);
            break;
        }
        l->per_split[x->split]++;
        l->n++;
        p = nl + 1;
    }
    if (rc == 0 && lineno == 0)
        rc = pg_fail(err, PG_ECORRUPT, "%s: empty (no header line)", name);
    if (rc == 0) {
        qsort(l->e, l->n, sizeof *l->e, cmp_entry);
        for (uint64_t i = 1; i < l->n; i++)
            if (l->e[i].f.id == l->e[i - 1].f.id) {
                rc = pg_fail(err, PG_ECORRUPT, "%s: book %llu is listed twice", name,
                             (unsigned long long)l->e[i].f.id);
                break;
            }
    }
    if (rc) {
        pg19_file_list_free(l);
        return rc;
    }
    *out = l;
    return PG_OK;
}

void pg19_file_list_free(pg19_file_list *l)
{
    if (!l)
        return;
    free(l->e);
    free(l);
}

static pthread_once_t builtin_once = PTHREAD_ONCE_INIT;
static pg19_file_list *builtin_list;
static pg_error builtin_err;
static int builtin_rc;

static void load_builtin(void)
{
    size_t len = (size_t)((uintptr_t)pg19_files_tsv_end - (uintptr_t)pg19_files_tsv);
    const char *name = "shards/pg19_files.tsv (built in)";
    builtin_rc = pg19_file_list_parse(pg19_files_tsv, len, name, &builtin_list, &builtin_err);
    if (builtin_rc == 0 && (builtin_list->per_split[PG_SPLIT_TRAIN] != PG19_TRAIN_FILES ||
                            builtin_list->per_split[PG_SPLIT_VALIDATION] != PG19_VALIDATION_FILES ||
                            builtin_list->per_split[PG_SPLIT_TEST] != PG19_TEST_FILES)) {
        builtin_rc = pg_fail(&builtin_err, PG_ECORRUPT,
                             "%s: %llu / %llu / %llu train / validation / test books, PG-19 has "
                             "%llu / %llu / %llu", name,
                             (unsigned long long)builtin_list->per_split[PG_SPLIT_TRAIN],
                             (unsigned long long)builtin_list->per_split[PG_SPLIT_VALIDATION],
                             (unsigned long long)builtin_list->per_split[PG_SPLIT_TEST],
                             PG19_TRAIN_FILES, PG19_VALIDATION_FILES, PG19_TEST_FILES);
        pg19_file_list_free(builtin_list);
        builtin_list = NULL;
    }
}

int pg19_file_list_builtin(const pg19_file_list **out, pg_error *err)
{
    pthread_once(&builtin_once, load_builtin);
    *out = builtin_list;
    if (builtin_rc) {
        if (err)
            *err = builtin_err;
        return builtin_rc;
    }
    return PG_OK;
}

uint64_t pg19_file_list_count(const pg19_file_list *l, int split)
{
    return split >= 0 && split < 3 ? l->per_split[split] : 0;
}

static const list_entry *find(const pg19_file_list *l, uint64_t id)
{
    list_entry key = {.f.id = id};
    return l->n ? bsearch(&key, l->e, l->n, sizeof *l->e, cmp_entry) : NULL;
}

int pg19_file_list_find(const pg19_file_list *l, uint64_t id, int *split, pg19_book_fact *fact)
{
    const list_entry *e = find(l, id);
    if (!e)
        return 0;
    if (split)
        *split = e->split;
    if (fact)
        *fact = e->f;
    return 1;
}

static const char *const set_names[] = {"custom", "pg19-subset", "official"};

const char *pg19_book_set_name(pg19_book_set k)
{
    return (int)k >= 0 && k <= PG19_BOOKS_OFFICIAL ? set_names[k] : NULL;
}

int pg19_book_set_from_name(const char *name)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp(name, set_names[i]) == 0)
            return i;
    return -1;
}

/* The digest over facts already sorted by id. */
static int digest_sorted(const pg19_book_fact *b, uint64_t n, uint8_t out[32], pg_error *err)
{
    pg_hasher *h = pg_hasher_new();
    if (!h)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < n; i++) {
        char line[128], hex[65];
        pg_hex(b[i].sha256, 32, hex);
        int k = snprintf(line, sizeof line, "%llu\t%llu\t%s\n", (unsigned long long)b[i].id,
                         (unsigned long long)b[i].n_bytes, hex);
        pg_hasher_update(h, line, (size_t)k);
    }
    uint8_t md5[16];
    uint32_t crc;
    pg_hasher_final(h, md5, out, &crc);
    pg_hasher_free(h);
    return PG_OK;
}

static int sorted_copy(const pg19_book_fact *books, uint64_t n, pg19_book_fact **out,
                       pg_error *err)
{
    if (n > SIZE_MAX / sizeof **out - 1)
        return pg_fail(err, PG_ELIMIT, "%llu books: too many", (unsigned long long)n);
    *out = malloc((size_t)(n + 1) * sizeof **out);
    if (!*out)
        return pg_fail(err, PG_ENOMEM, "out of memory for %llu books", (unsigned long long)n);
    if (n)
        memcpy(*out, books, (size_t)n * sizeof **out);
    qsort(*out, (size_t)n, sizeof **out, cmp_fact);
    return PG_OK;
}

int pg19_books_digest(const pg19_book_fact *books, uint64_t n, uint8_t out[32], pg_error *err)
{
    pg19_book_fact *s;
    int rc = sorted_copy(books, n, &s, err);
    if (rc == 0)
        rc = digest_sorted(s, n, out, err);
    free(s);
    return rc;
}

int pg19_split_digest(const pg19_file_list *l, int split, uint8_t out[32], pg_error *err)
{
    uint64_t n = pg19_file_list_count(l, split), k = 0;
    pg19_book_fact *b = malloc((size_t)(n + 1) * sizeof *b);
    if (!b)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < l->n; i++) /* the list is sorted by id already */
        if (l->e[i].split == split)
            b[k++] = l->e[i].f;
    int rc = digest_sorted(b, k, out, err);
    free(b);
    return rc;
}

int pg19_classify_books(const pg19_file_list *l, int split, const pg19_book_fact *books,
                        uint64_t n, pg19_classification *out, pg_error *err)
{
    memset(out, 0, sizeof *out);
    const char *sname = pg_split_name(split);
    if (!sname)
        return pg_fail(err, PG_EINVAL, "unknown split %d", split);
    pg19_book_fact *s;
    int rc = sorted_copy(books, n, &s, err);
    if (rc)
        return rc;
    if ((rc = digest_sorted(s, n, out->digest, err))) {
        free(s);
        return rc;
    }
    out->n_books = n;
    out->n_split = pg19_file_list_count(l, split);
    uint64_t bad = 0;
    for (uint64_t i = 0; i < n; i++) {
        char why[sizeof out->reason];
        const list_entry *e = find(l, s[i].id);
        unsigned long long id = (unsigned long long)s[i].id;
        why[0] = 0;
        if (i > 0 && s[i].id == s[i - 1].id)
            snprintf(why, sizeof why, "book %llu is evaluated twice", id);
        else if (!e)
            snprintf(why, sizeof why, "book %llu is not a PG-19 book", id);
        else if (e->split != split)
            snprintf(why, sizeof why, "book %llu is in PG-19's %s split, not %s", id,
                     pg_split_name(e->split), sname);
        else if (e->f.n_bytes != s[i].n_bytes)
            snprintf(why, sizeof why, "book %llu has %llu bytes, PG-19's file %llu", id,
                     (unsigned long long)s[i].n_bytes, (unsigned long long)e->f.n_bytes);
        else if (memcmp(e->f.sha256, s[i].sha256, 32) != 0)
            snprintf(why, sizeof why, "book %llu differs from PG-19's file (SHA-256)", id);
        if (why[0]) {
            if (bad++ == 0)
                memcpy(out->reason, why, sizeof why);
        } else {
            out->n_matching++;
        }
    }
    free(s);
    if (bad) {
        out->kind = PG19_BOOKS_CUSTOM;
        if (bad > 1) {
            size_t used = strlen(out->reason);
            snprintf(out->reason + used, sizeof out->reason - used, " (and %llu more)",
                     (unsigned long long)(bad - 1));
        }
    } else if (out->n_matching == out->n_split && n > 0) {
        out->kind = PG19_BOOKS_OFFICIAL;
    } else {
        out->kind = PG19_BOOKS_SUBSET;
        snprintf(out->reason, sizeof out->reason, "%llu of PG-19's %llu %s books",
                 (unsigned long long)out->n_matching, (unsigned long long)out->n_split, sname);
    }
    return PG_OK;
}
