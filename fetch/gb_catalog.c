/* gb_catalog.c - `fetch catalog`: Project Gutenberg's catalog as one TSV.
 *
 * Inputs: the rdf-files feed (cache/epub/feeds/rdf-files.tar.bz2, streamed
 * through libarchive, never unpacked to disk; --url downloads it first), a
 * directory of pgN.rdf records, or pg_catalog.csv. Each RDF/XML record is
 * parsed by libxml2 with the network and entity expansion off.
 *
 * Output (sorted by id, one header line), tab-separated, tabs and newlines in
 * values replaced by spaces, multiple values joined by "; ":
 *   id  title  authors  languages  subjects  issued  rights  type  files
 * authors: "Name (birth-death)"; files: the plain-text files as
 * "URL charset" pairs joined by "; " (charset "-" when none is given).
 */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "fetch/gb_catalog.h"
#include "fetch/gb_http.h"
#include "fetch/gutenberg_cmds.h"

#define NS_PG "http://www.gutenberg.org/2009/pgterms/"
#define NS_DC "http://purl.org/dc/terms/"
#define NS_RDF "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
#define NS_DCAM "http://purl.org/dc/dcam/"
#define MAX_RECORD_BYTES ((size_t)16 << 20)
#define DEFAULT_FEED_URL "https://www.gutenberg.org/cache/epub/feeds/rdf-files.tar.bz2"

/* ------------------------------------------------------- small strings -- */

typedef struct sbuf { char *p; size_t n, cap; int oom; } sbuf;

static void sb_add(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *g = realloc(b->p, cap);
        if (!g) { b->oom = 1; return; }
        b->p = g;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* Appends a value with tabs, CR and LF turned into spaces, spaces collapsed. */
static void sb_field(sbuf *b, const char *s)
{
    int space = 0;
    for (; s && *s; s++) {
        char c = *s;
        if (c == '\t' || c == '\n' || c == '\r' || c == ' ') {
            space = 1;
            continue;
        }
        if (space && b->n && b->p[b->n - 1] != '\t')
            sb_add(b, " ", 1);
        space = 0;
        sb_add(b, &c, 1);
    }
}

/* ------------------------------------------------------------ RDF/XML -- */

static int is_el(const xmlNode *n, const char *ns, const char *name)
{
    return n && n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
           !strcmp((const char *)n->ns->href, ns) && !strcmp((const char *)n->name, name);
}

static const xmlNode *child(const xmlNode *n, const char *ns, const char *name)
{
    for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
        if (is_el(c, ns, name))
            return c;
    return NULL;
}

/* Text content (malloc'd by libxml2, xmlFree it) or NULL. */
static char *text_of(const xmlNode *n)
{
    return n ? (char *)xmlNodeGetContent(n) : NULL;
}

/* rdf:value inside <X><rdf:Description><rdf:value>. */
static char *desc_value(const xmlNode *n)
{
    return text_of(child(child(n, NS_RDF, "Description"), NS_RDF, "value"));
}

static void sep(sbuf *b, int *first)
{
    if (!*first)
        sb_str(b, "; ");
    *first = 0;
}

/* One <pgterms:ebook> -> one TSV line (without the trailing newline). */
static int ebook_line(const xmlNode *eb, long *id_out, sbuf *line)
{
    xmlChar *about = xmlGetNsProp(eb, (const xmlChar *)"about", (const xmlChar *)NS_RDF);
    if (!about)
        return 0;
    const char *a = (const char *)about;
    const char *slash = strrchr(a, '/');
    char *endp = NULL;
    long id = strtol(slash ? slash + 1 : a, &endp, 10);
    int ok = endp && *endp == '\0' && id > 0 && id < 100000000;
    xmlFree(about);
    if (!ok)
        return 0;
    *id_out = id;

    sbuf title = {0}, authors = {0}, langs = {0}, subjects = {0}, files = {0};
    char *issued = NULL, *rights = NULL, *type = NULL;
    int fa = 1, fl = 1, fs = 1, ff = 1;
    for (const xmlNode *c = eb->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (is_el(c, NS_DC, "title") && !title.n) {
            char *t = text_of(c);
            sb_field(&title, t);
            xmlFree(t);
        } else if (is_el(c, NS_DC, "creator")) {
            const xmlNode *ag = child(c, NS_PG, "agent");
            char *name = text_of(child(ag, NS_PG, "name"));
            char *birth = text_of(child(ag, NS_PG, "birthdate"));
            char *death = text_of(child(ag, NS_PG, "deathdate"));
            if (name) {
                sep(&authors, &fa);
                sb_field(&authors, name);
                if (birth || death) {
                    sb_str(&authors, " (");
                    sb_field(&authors, birth ? birth : "");
                    sb_str(&authors, "-");
                    sb_field(&authors, death ? death : "");
                    sb_str(&authors, ")");
                }
            }
            xmlFree(name);
            xmlFree(birth);
            xmlFree(death);
        } else if (is_el(c, NS_DC, "language")) {
            char *v = desc_value(c);
            if (v) {
                sep(&langs, &fl);
                sb_field(&langs, v);
            }
            xmlFree(v);
        } else if (is_el(c, NS_DC, "subject")) {
            const xmlNode *d = child(c, NS_RDF, "Description");
            const xmlNode *m = child(d, NS_DCAM, "memberOf");
            xmlChar *res = m ? xmlGetNsProp(m, (const xmlChar *)"resource", (const xmlChar *)NS_RDF)
                             : NULL;
            int lcsh = res && strstr((const char *)res, "LCSH");
            xmlFree(res);
            char *v = lcsh ? text_of(child(d, NS_RDF, "value")) : NULL;
            if (v) {
                sep(&subjects, &fs);
                sb_field(&subjects, v);
            }
            xmlFree(v);
        } else if (is_el(c, NS_DC, "issued") && !issued) {
            issued = text_of(c);
        } else if (is_el(c, NS_DC, "rights") && !rights) {
            rights = text_of(c);
        } else if (is_el(c, NS_DC, "type") && !type) {
            type = desc_value(c);
        } else if (is_el(c, NS_DC, "hasFormat")) {
            const xmlNode *f = child(c, NS_PG, "file");
            xmlChar *url = f ? xmlGetNsProp(f, (const xmlChar *)"about", (const xmlChar *)NS_RDF)
                             : NULL;
            char *fmt = desc_value(child(f, NS_DC, "format"));
            if (url && fmt && !strncmp(fmt, "text/plain", 10)) {
                const char *cs = strstr(fmt, "charset=");
                sep(&files, &ff);
                sb_field(&files, (const char *)url);
                sb_str(&files, " ");
                sb_field(&files, cs ? cs + 8 : "-");
            }
            xmlFree(url);
            xmlFree(fmt);
        }
    }
    char idbuf[32];
    snprintf(idbuf, sizeof idbuf, "%ld", id);
    sb_str(line, idbuf);
    const char *cols[] = {title.p, authors.p, langs.p, subjects.p, issued, rights, type, files.p};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
        sb_str(line, "\t");
        if (cols[i] && cols[i][0])
            sb_field(line, cols[i]);
        else
            sb_str(line, "-");
    }
    free(title.p); free(authors.p); free(langs.p); free(subjects.p); free(files.p);
    xmlFree(issued); xmlFree(rights); xmlFree(type);
    return line->oom ? -1 : 1;
}

/* ------------------------------------------------------------ catalog -- */

typedef struct cat_row { long id; char *line; } cat_row;
typedef struct catalog { cat_row *rows; size_t n, cap; uint64_t bad; } catalog;

static int cat_add(catalog *c, long id, char *line)
{
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 1024;
        cat_row *g = realloc(c->rows, cap * sizeof *g);
        if (!g)
            return -1;
        c->rows = g;
        c->cap = cap;
    }
    c->rows[c->n].id = id;
    c->rows[c->n].line = line;
    c->n++;
    return 0;
}

int gb_catalog_parse_rdf(const char *name, const char *xml, size_t len, catalog_sink sink,
                         void *ctx, pg_error *err)
{
    if (len > MAX_RECORD_BYTES || len > (size_t)INT32_MAX)
        return pg_fail(err, PG_ELIMIT, "%s: RDF record of %zu bytes is over the cap", name, len);
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, name, NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if (!doc)
        return pg_fail(err, PG_ECORRUPT, "%s: not well-formed XML", name);
    int found = 0, rc = PG_OK;
    const xmlNode *root = xmlDocGetRootElement(doc);
    for (const xmlNode *c = root ? root->children : NULL; c; c = c->next) {
        if (!is_el(c, NS_PG, "ebook"))
            continue;
        sbuf line = {0};
        long id = 0;
        int r = ebook_line(c, &id, &line);
        if (r < 0) {
            free(line.p);
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
        if (r == 0) {
            free(line.p);
            continue;
        }
        found++;
        if (sink(ctx, id, line.p) < 0) {
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
    }
    xmlFreeDoc(doc);
    if (rc == PG_OK && !found)
        rc = pg_fail(err, PG_ECORRUPT, "%s: no pgterms:ebook record with an ebooks/N id", name);
    return rc;
}

static int cat_sink(void *ctx, long id, char *line) { return cat_add(ctx, id, line); }

/* Streams every *.rdf member of an archive (any format/filter libarchive reads). */
static int read_feed(const char *path, catalog *cat, pg_error *err)
{
    struct archive *a = archive_read_new();
    if (!a)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    archive_read_support_filter_all(a);
    archive_read_support_format_all(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        int rc = pg_fail(err, PG_EIO, "%s: %s", path, archive_error_string(a));
        archive_read_free(a);
        return rc;
    }
    char *buf = malloc(MAX_RECORD_BYTES);
    if (!buf) {
        archive_read_free(a);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    struct archive_entry *e;
    int rc = PG_OK, r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK || r == ARCHIVE_WARN) {
        const char *name = archive_entry_pathname(e);
        size_t nl = name ? strlen(name) : 0;
        if (archive_entry_filetype(e) != AE_IFREG || nl < 5 || strcmp(name + nl - 4, ".rdf"))
            continue;
        size_t got = 0;
        for (;;) {
            la_ssize_t k = archive_read_data(a, buf + got, MAX_RECORD_BYTES - got);
            if (k < 0) {
                rc = pg_fail(err, PG_ECORRUPT, "%s: %s: %s", path, name, archive_error_string(a));
                break;
            }
            if (k == 0)
                break;
            got += (size_t)k;
            if (got == MAX_RECORD_BYTES)
                break;
        }
        if (rc < 0)
            break;
        if (got == MAX_RECORD_BYTES) {
            /* One oversized record is skipped; next_header skips its rest. */
            fprintf(stderr, "fetch catalog: skipped: %s: %s: record over %zu bytes\n", path, name,
                    MAX_RECORD_BYTES);
            cat->bad++;
            continue;
        }
        pg_error e2 = {0};
        int pr = gb_catalog_parse_rdf(name, buf, got, cat_sink, cat, &e2);
        if (pr == PG_ENOMEM) {
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
        if (pr < 0) {
            fprintf(stderr, "fetch catalog: skipped: %s\n", e2.msg);
            cat->bad++;
        }
    }
    if (rc == PG_OK && r != ARCHIVE_EOF)
        rc = pg_fail(err, PG_ECORRUPT, "%s: %s", path, archive_error_string(a));
    free(buf);
    archive_read_free(a);
    return rc;
}

static int read_rdf_dir(const char *dir, catalog *cat, pg_error *err)
{
    DIR *d = opendir(dir);
    if (!d)
        return pg_fail(err, PG_EIO, "%s: %s", dir, strerror(errno));
    struct dirent *de;
    int rc = PG_OK;
    while ((de = readdir(d))) {
        size_t nl = strlen(de->d_name);
        if (nl < 5 || strcmp(de->d_name + nl - 4, ".rdf"))
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        char *xml = NULL;
        size_t len = 0;
        pg_error e2 = {0};
        int r = pg_read_file(path, MAX_RECORD_BYTES, &xml, &len, &e2);
        if (r == 0)
            r = gb_catalog_parse_rdf(path, xml, len, cat_sink, cat, &e2);
        free(xml);
        if (r == PG_ENOMEM) {
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
        if (r < 0) {
            fprintf(stderr, "fetch catalog: skipped: %s\n", e2.msg);
            cat->bad++;
        }
    }
    closedir(d);
    return rc;
}

/* ------------------------------------------------------ pg_catalog.csv -- */

/* Reads one RFC 4180 record starting at *pos; fields[] point into a copy
 * (NUL-separated) in *rec. Returns the field count, 0 at EOF, -1 if the
 * record is cut (unterminated quote at end of file). */
static int csv_record(const char *s, size_t n, size_t *pos, sbuf *rec, size_t *starts, int maxf)
{
    size_t i = *pos;
    if (i >= n)
        return 0;
    rec->n = 0;
    int nf = 0;
    starts[nf++] = 0;
    int quoted = 0, ended = 0;
    while (i < n) {
        char c = s[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 < n && s[i + 1] == '"') {
                    sb_add(rec, "\"", 1);
                    i += 2;
                    continue;
                }
                quoted = 0;
                i++;
                continue;
            }
            sb_add(rec, &c, 1);
            i++;
            continue;
        }
        if (c == '"') { quoted = 1; i++; continue; }
        if (c == ',') {
            sb_add(rec, "", 1); /* NUL separator */
            rec->p[rec->n - 1] = '\0';
            if (nf < maxf)
                starts[nf] = rec->n;
            nf++;
            i++;
            continue;
        }
        if (c == '\r') { i++; continue; }
        if (c == '\n') { i++; ended = 1; break; }
        sb_add(rec, &c, 1);
        i++;
    }
    sb_add(rec, "", 1);
    *pos = i;
    /* The catalog is always newline-terminated: a last record without its
     * newline (or inside an open quote) was cut off. */
    if (quoted || !ended)
        return -1;
    return nf;
}

static int read_csv(const char *path, catalog *cat, pg_error *err)
{
    char *s = NULL;
    size_t n = 0;
    int rc = pg_read_file(path, (size_t)1 << 30, &s, &n, err);
    if (rc < 0)
        return rc;
    size_t pos = 0, starts[16];
    sbuf rec = {0};
    int nf = csv_record(s, n, &pos, &rec, starts, 16);
    if (nf < 9 || rec.oom || strcmp(rec.p, "Text#")) {
        free(s);
        free(rec.p);
        return pg_fail(err, PG_ECORRUPT, "%s: not a pg_catalog.csv (header must start with Text#)",
                       path);
    }
    uint64_t line_no = 1;
    for (;;) {
        line_no++;
        nf = csv_record(s, n, &pos, &rec, starts, 16);
        if (nf == 0)
            break;
        if (rec.oom) {
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
        if (nf != 9) {
            fprintf(stderr, "fetch catalog: %s: record %llu %s; skipped\n", path,
                    (unsigned long long)line_no,
                    nf < 0 ? "is cut off (no newline or open quote at end of file)"
                           : "does not have 9 fields");
            cat->bad++;
            if (nf < 0)
                break;
            continue;
        }
        const char *f[9];
        for (int k = 0; k < 9; k++)
            f[k] = rec.p + starts[k];
        char *endp = NULL;
        long id = strtol(f[0], &endp, 10);
        if (!endp || *endp || id <= 0 || id >= 100000000) {
            fprintf(stderr, "fetch catalog: %s: record %llu: bad id \"%.20s\"; skipped\n", path,
                    (unsigned long long)line_no, f[0]);
            cat->bad++;
            continue;
        }
        /* Text#,Type,Issued,Title,Language,Authors,Subjects,LoCC,Bookshelves */
        sbuf line = {0};
        sb_str(&line, f[0]);
        const char *cols[] = {f[3], f[5], f[4], f[6], f[2], "-", f[1], "-"};
        for (size_t k = 0; k < 8; k++) {
            sb_str(&line, "\t");
            if (cols[k][0])
                sb_field(&line, cols[k]);
            else
                sb_str(&line, "-");
        }
        if (line.oom || cat_add(cat, id, line.p) < 0) {
            free(line.p);
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
    }
    free(rec.p);
    free(s);
    return rc;
}

static int row_cmp(const void *a, const void *b)
{
    long x = ((const cat_row *)a)->id, y = ((const cat_row *)b)->id;
    return (x > y) - (x < y);
}

static int catalog_usage(void)
{
    fprintf(stderr,
            "usage: fetch catalog [FEED.tar.bz2 | --rdf-dir DIR | --csv pg_catalog.csv |\n"
            "                      --url URL] -o CATALOG.tsv\n"
            "  with no input, downloads %s\n"
            "  output columns: id title authors languages subjects issued rights type files\n",
            DEFAULT_FEED_URL);
    return 2;
}

int fetch_cmd_catalog(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rdf-dir", required_argument, 0, 'd'}, {"csv", required_argument, 0, 'c'},
        {"url", required_argument, 0, 'u'},     {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    const char *dir = NULL, *csv = NULL, *url = NULL, *out = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "d:c:u:o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'd': dir = optarg; break;
        case 'c': csv = optarg; break;
        case 'u': url = optarg; break;
        case 'o': out = optarg; break;
        default: return catalog_usage();
        }
    }
    const char *feed = optind < argc ? argv[optind] : NULL;
    if (!out || optind + 1 < argc || (!!dir + !!csv + !!url + !!feed) > 1)
        return catalog_usage();

    pg_error err = {0};
    catalog cat = {0};
    int rc;
    char tmp[4096] = "";
    if (dir) {
        rc = read_rdf_dir(dir, &cat, &err);
    } else if (csv) {
        rc = read_csv(csv, &cat, &err);
    } else if (feed) {
        rc = read_feed(feed, &cat, &err);
    } else {
        snprintf(tmp, sizeof tmp, "%s.feed.tar.bz2", out);
        gb_http_opts ho;
        gb_http_opts_default(&ho);
        rc = gb_http_get_file(url ? url : DEFAULT_FEED_URL, tmp, &ho, NULL, &err);
        if (rc == 0)
            rc = read_feed(tmp, &cat, &err);
    }
    if (rc == 0) {
        if (cat.n)
            qsort(cat.rows, cat.n, sizeof *cat.rows, row_cmp);
        pg_atomic_file af;
        rc = pg_atomic_open(&af, out, &err);
        if (rc == 0) {
            fputs("id\ttitle\tauthors\tlanguages\tsubjects\tissued\trights\ttype\tfiles\n", af.fp);
            for (size_t i = 0; i < cat.n; i++) {
                if (i && cat.rows[i].id == cat.rows[i - 1].id)
                    continue; /* a feed lists each ebook once; drop repeats */
                fputs(cat.rows[i].line, af.fp);
                fputc('\n', af.fp);
            }
            rc = pg_atomic_commit(&af, &err);
        }
    }
    for (size_t i = 0; i < cat.n; i++)
        free(cat.rows[i].line);
    free(cat.rows);
    if (tmp[0])
        remove(tmp);
    if (rc < 0) {
        fprintf(stderr, "fetch catalog: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "fetch catalog: %zu books written to %s (%llu records skipped)\n", cat.n, out,
            (unsigned long long)cat.bad);
    return 0;
}

/* ---------------------------------------------------------- selection -- */

static int id_cmp(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int push_id(long **ids, size_t *n, size_t *cap, long id)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 256;
        long *g = realloc(*ids, c * sizeof *g);
        if (!g)
            return -1;
        *ids = g;
        *cap = c;
    }
    (*ids)[(*n)++] = id;
    return 0;
}

static void sort_unique(long *ids, size_t *n)
{
    if (!*n)
        return;
    qsort(ids, *n, sizeof *ids, id_cmp);
    size_t j = 0;
    for (size_t i = 0; i < *n; i++)
        if (!j || ids[i] != ids[j - 1])
            ids[j++] = ids[i];
    *n = j;
}

/* 1 if the "; "-joined list has an element equal to want. */
static int list_has(const char *list, size_t len, const char *want)
{
    size_t wl = strlen(want), i = 0;
    while (i < len) {
        size_t j = i;
        while (j < len && list[j] != ';')
            j++;
        size_t a = i, b = j;
        while (a < b && list[a] == ' ') a++;
        while (b > a && list[b - 1] == ' ') b--;
        if (b - a == wl && !strncmp(list + a, want, wl))
            return 1;
        i = j + 1;
    }
    return 0;
}

/* Every "(birth-death)" in the authors column has death < year (or none). */
static int authors_died_before(const char *s, size_t len, int year)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '(')
            continue;
        size_t j = i + 1;
        while (j < len && s[j] != '-' && s[j] != ')')
            j++;
        if (j >= len || s[j] != '-')
            continue;
        char *endp;
        long death = strtol(s + j + 1, &endp, 10);
        if (endp != s + j + 1 && endp < s + len && *endp == ')' && death >= year)
            return 0;
    }
    return 1;
}

int gb_catalog_select(const char *path, const gb_select *sel, long **ids_out, size_t *n_out,
                      pg_error *err)
{
    char *s = NULL;
    size_t n = 0;
    int rc = pg_read_file(path, (size_t)2 << 30, &s, &n, err);
    if (rc < 0)
        return rc;
    if (n < 3 || strncmp(s, "id\t", 3)) {
        free(s);
        return pg_fail(err, PG_ECORRUPT, "%s: not a catalog TSV (header must start with id<TAB>)",
                       path);
    }
    long *ids = NULL;
    size_t count = 0, cap = 0;
    size_t pos = 0;
    uint64_t line_no = 0;
    while (pos < n) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) : n;
        line_no++;
        const char *f[9];
        size_t fl[9];
        int nf = 0;
        size_t a = pos;
        for (size_t i = pos; i <= end && nf < 9; i++) {
            if (i == end || s[i] == '\t') {
                f[nf] = s + a;
                fl[nf] = i - a;
                nf++;
                a = i + 1;
            }
        }
        pos = end + 1;
        if (line_no == 1)
            continue;
        if (nf != 9) {
            free(s);
            free(ids);
            return pg_fail(err, PG_ECORRUPT, "%s: line %llu has %d fields, not 9", path,
                           (unsigned long long)line_no, nf);
        }
        char *endp;
        long id = strtol(f[0], &endp, 10);
        if (endp != f[0] + fl[0] || id <= 0) {
            free(s);
            free(ids);
            return pg_fail(err, PG_ECORRUPT, "%s: line %llu: bad id", path,
                           (unsigned long long)line_no);
        }
        if (sel->language && sel->language[0] && !list_has(f[3], fl[3], sel->language))
            continue;
        if (sel->type && sel->type[0] && !list_has(f[7], fl[7], sel->type))
            continue;
        if (sel->max_issued_year > 0) {
            long y = strtol(f[5], &endp, 10);
            if (endp == f[5] || y > sel->max_issued_year)
                continue;
        }
        if (sel->author_died_before > 0 && !authors_died_before(f[2], fl[2], sel->author_died_before))
            continue;
        if (push_id(&ids, &count, &cap, id) < 0) {
            free(s);
            free(ids);
            return pg_fail(err, PG_ENOMEM, "out of memory");
        }
    }
    free(s);
    sort_unique(ids, &count);
    if (sel->limit > 0 && count > (size_t)sel->limit)
        count = (size_t)sel->limit;
    *ids_out = ids;
    *n_out = count;
    return PG_OK;
}

int gb_read_ids(const char *path, long **ids_out, size_t *n_out, pg_error *err)
{
    char *s = NULL;
    size_t n = 0;
    int rc = pg_read_file(path, (size_t)1 << 30, &s, &n, err);
    if (rc < 0)
        return rc;
    long *ids = NULL;
    size_t count = 0, cap = 0, pos = 0;
    uint64_t line_no = 0;
    while (pos < n) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - s) : n;
        line_no++;
        size_t a = pos;
        pos = end + 1;
        while (a < end && (s[a] == ' ' || s[a] == '\r'))
            a++;
        if (a == end || s[a] == '#')
            continue;
        char *endp;
        long id = strtol(s + a, &endp, 10);
        int ok = endp != s + a && id > 0 && id < 100000000 &&
                 (endp == s + end || *endp == '\t' || *endp == ',' || *endp == '\r' || *endp == ' ');
        if (!ok) {
            if (line_no == 1)
                continue; /* a header line */
            free(s);
            free(ids);
            return pg_fail(err, PG_ECORRUPT, "%s: line %llu: not a book id", path,
                           (unsigned long long)line_no);
        }
        if (push_id(&ids, &count, &cap, id) < 0) {
            free(s);
            free(ids);
            return pg_fail(err, PG_ENOMEM, "out of memory");
        }
    }
    free(s);
    sort_unique(ids, &count);
    *ids_out = ids;
    *n_out = count;
    return PG_OK;
}
