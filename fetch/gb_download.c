/* gb_download.c - `fetch gutenberg`: plain texts from a Project Gutenberg
 * mirror, cleaned, with a manifest.
 *
 * For each book the best plain text is the first of these the mirror has:
 *   files/ID/ID-0.txt   cache/epub/ID/pgID.txt   (UTF-8)
 *   files/ID/ID-8.txt                            (Latin-1)
 *   files/ID/ID.txt                              (ASCII or anything)
 *   files/ID/ID-0.zip  files/ID/ID-8.zip  files/ID/ID.zip  (zip variants)
 * Layout under --out: raw/ID.txt (as served; raw/ID.url names its source),
 * clean/ID.txt (fetch clean, or --pg19), manifest.tsv. Books already in raw/
 * are not downloaded again, so an interrupted run resumes where it stopped;
 * a partial download resumes from its .part file.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/hash.h"
#include "common/progress.h"
#include "fetch/gb_catalog.h"
#include "fetch/gb_clean.h"
#include "fetch/gb_http.h"
#include "fetch/gb_zip.h"
#include "fetch/gutenberg_cmds.h"

#define DEFAULT_MIRROR "https://www.gutenberg.org"
#define MAX_ZIP_BYTES ((size_t)128 << 20)

typedef struct book {
    long id;
    char status[16];     /* ok, missing, failed, short */
    char url[512];
    uint64_t raw_bytes, clean_bytes, words;
    char raw_sha[65], clean_sha[65];
    gb_clean_report rep;
    char error[512];
} book;

typedef struct job {
    const char *mirror, *out;
    int mode, do_clean;
    uint64_t min_words;
    double delay_s;
    gb_http_opts http;
    gb_zip_limits zip;
    book *books;
    size_t n, next, done;
    uint64_t done_bytes;
    pg_progress prog;
    pthread_mutex_t mu;
} job;

static const char *const TXT_CANDIDATES[] = {
    "files/%ld/%ld-0.txt", "cache/epub/%ld/pg%ld.txt", "files/%ld/%ld-8.txt", "files/%ld/%ld.txt",
};
static const char *const ZIP_CANDIDATES[] = {
    "files/%ld/%ld-0.zip", "files/%ld/%ld-8.zip", "files/%ld/%ld.zip",
};

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds and downloads the best plain text of b into raw_path. */
static int download_raw(job *j, book *b, const char *raw_path, pg_error *err)
{
    char rel[256], url[512];
    for (size_t i = 0; i < sizeof TXT_CANDIDATES / sizeof *TXT_CANDIDATES; i++) {
        snprintf(rel, sizeof rel, TXT_CANDIDATES[i], b->id, b->id);
        snprintf(url, sizeof url, "%s/%s", j->mirror, rel);
        int rc = gb_http_get_file(url, raw_path, &j->http, NULL, err);
        if (rc == PG_ENOTFOUND)
            continue;
        if (rc == 0)
            snprintf(b->url, sizeof b->url, "%s", url);
        return rc;
    }
    for (size_t i = 0; i < sizeof ZIP_CANDIDATES / sizeof *ZIP_CANDIDATES; i++) {
        snprintf(rel, sizeof rel, ZIP_CANDIDATES[i], b->id, b->id);
        snprintf(url, sizeof url, "%s/%s", j->mirror, rel);
        char zip_path[4096];
        snprintf(zip_path, sizeof zip_path, "%s/raw/%ld.zip", j->out, b->id);
        gb_http_opts o = j->http;
        o.max_bytes = MAX_ZIP_BYTES;
        int rc = gb_http_get_file(url, zip_path, &o, NULL, err);
        if (rc == PG_ENOTFOUND)
            continue;
        if (rc < 0)
            return rc;
        char *zip = NULL, *txt = NULL;
        size_t zip_len = 0, txt_len = 0;
        rc = pg_read_file(zip_path, MAX_ZIP_BYTES, &zip, &zip_len, err);
        if (rc == 0)
            rc = gb_zip_extract_text(url, zip, zip_len, &j->zip, &txt, &txt_len, NULL, 0, err);
        free(zip);
        remove(zip_path);
        if (rc == 0)
            rc = pg_write_file_atomic(raw_path, txt, txt_len, err);
        free(txt);
        if (rc == 0)
            snprintf(b->url, sizeof b->url, "%s", url);
        return rc;
    }
    return pg_fail(err, PG_ENOTFOUND, "book %ld: no plain-text file on the mirror", b->id);
}

static uint64_t count_words(const char *s, size_t n)
{
    uint64_t w = 0;
    int in = 0;
    for (size_t i = 0; i < n; i++) {
        int space = s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r';
        if (!space && !in)
            w++;
        in = !space;
    }
    return w;
}

static void process_book(job *j, book *b)
{
    pg_error err = {0};
    char raw_path[4096], url_path[4096], clean_path[4096];
    snprintf(raw_path, sizeof raw_path, "%s/raw/%ld.txt", j->out, b->id);
    snprintf(url_path, sizeof url_path, "%s/raw/%ld.url", j->out, b->id);
    snprintf(clean_path, sizeof clean_path, "%s/clean/%ld.txt", j->out, b->id);
    int rc = 0;
    if (file_exists(raw_path)) {
        char *u = NULL;
        size_t ul = 0;
        pg_error e2 = {0};
        if (pg_read_file(url_path, sizeof b->url - 1, &u, &ul, &e2) == 0) {
            while (ul && (u[ul - 1] == '\n' || u[ul - 1] == '\r'))
                u[--ul] = '\0';
            snprintf(b->url, sizeof b->url, "%s", u);
        }
        free(u);
    } else {
        rc = download_raw(j, b, raw_path, &err);
        if (rc == 0) {
            char line[600];
            int ll = snprintf(line, sizeof line, "%s\n", b->url);
            rc = pg_write_file_atomic(url_path, line, (size_t)ll, &err);
        }
        if (j->delay_s > 0) {
            struct timespec ts = {(time_t)j->delay_s,
                                  (long)((j->delay_s - (double)(time_t)j->delay_s) * 1e9)};
            nanosleep(&ts, NULL);
        }
    }
    if (rc == PG_ENOTFOUND) {
        snprintf(b->status, sizeof b->status, "missing");
        snprintf(b->error, sizeof b->error, "%s", err.msg);
        return;
    }
    char *raw = NULL;
    size_t raw_len = 0;
    if (rc == 0)
        rc = pg_read_file(raw_path, GB_MAX_RAW_BYTES, &raw, &raw_len, &err);
    if (rc < 0) {
        snprintf(b->status, sizeof b->status, "failed");
        snprintf(b->error, sizeof b->error, "%s", err.msg);
        free(raw);
        return;
    }
    uint8_t sha[32];
    pg_sha256(raw, raw_len, sha);
    pg_hex(sha, 32, b->raw_sha);
    b->raw_bytes = raw_len;
    snprintf(b->status, sizeof b->status, "ok");
    if (j->do_clean) {
        char *out = NULL;
        size_t out_len = 0;
        rc = gb_clean(raw_path, (const uint8_t *)raw, raw_len, j->mode, &out, &out_len, &b->rep, &err);
        if (rc < 0) { /* not text, an empty book, or undecodable: this book failed */
            snprintf(b->status, sizeof b->status, "failed");
            snprintf(b->error, sizeof b->error, "%s", err.msg);
            remove(clean_path);
        } else {
            b->words = count_words(out, out_len);
            if (j->min_words && b->words < j->min_words) {
                snprintf(b->status, sizeof b->status, "short");
                remove(clean_path);
            } else if (pg_write_file_atomic(clean_path, out, out_len, &err) < 0) {
                snprintf(b->status, sizeof b->status, "failed");
                snprintf(b->error, sizeof b->error, "%s", err.msg);
            } else {
                pg_sha256(out, out_len, sha);
                pg_hex(sha, 32, b->clean_sha);
                b->clean_bytes = out_len;
            }
        }
        free(out);
    }
    free(raw);
}

static void *worker(void *arg)
{
    job *j = arg;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t i = j->next < j->n ? j->next++ : j->n;
        pthread_mutex_unlock(&j->mu);
        if (i >= j->n)
            break;
        process_book(j, &j->books[i]);
        pthread_mutex_lock(&j->mu);
        j->done++;
        j->done_bytes += j->books[i].raw_bytes;
        pg_progress_update(&j->prog, j->done, j->done_bytes);
        pthread_mutex_unlock(&j->mu);
    }
    return NULL;
}

static int write_manifest(const job *j, pg_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/manifest.tsv", j->out);
    pg_atomic_file af;
    int rc = pg_atomic_open(&af, path, err);
    if (rc < 0)
        return rc;
    fputs("id\tstatus\turl\traw_bytes\traw_sha256\tencoding\treplacements\tstart\tend\t"
          "clean_bytes\tclean_sha256\twords\n", af.fp);
    for (size_t i = 0; i < j->n; i++) {
        const book *b = &j->books[i];
        fprintf(af.fp, "%ld\t%s\t%s\t%llu\t%s\t%s\t%llu\t%s\t%s\t%llu\t%s\t%llu\n", b->id, b->status,
                b->url[0] ? b->url : "-", (unsigned long long)b->raw_bytes,
                b->raw_sha[0] ? b->raw_sha : "-", b->rep.encoding[0] ? b->rep.encoding : "-",
                (unsigned long long)b->rep.replacements, gb_mark_name(b->rep.start_kind),
                b->rep.has_end ? "end" : "none", (unsigned long long)b->clean_bytes,
                b->clean_sha[0] ? b->clean_sha : "-", (unsigned long long)b->words);
    }
    return pg_atomic_commit(&af, err);
}

static int gutenberg_usage(void)
{
    fprintf(stderr,
            "usage: fetch gutenberg (--ids FILE | --catalog CATALOG.tsv [filters]) --out DIR\n"
            "  filters: --language L  --type T  --max-issued-year Y  --author-died-before Y\n"
            "           --limit N  --min-words N (checked on the cleaned text)\n"
            "  --mirror URL   Gutenberg mirror with the files/ID/ layout (default %s)\n"
            "  --jobs N       parallel downloads (default 2; be polite)\n"
            "  --delay S      seconds each worker waits after a download (default 1)\n"
            "  --retries N    retries per request (default 4, exponential backoff)\n"
            "  --pg19         clean with PG-19's cut instead of the full clean\n"
            "  --no-clean     download only\n",
            DEFAULT_MIRROR);
    return 2;
}

int fetch_cmd_gutenberg(int argc, char **argv)
{
    static const struct option opts[] = {
        {"ids", required_argument, 0, 'i'},        {"catalog", required_argument, 0, 'c'},
        {"language", required_argument, 0, 'L'},   {"type", required_argument, 0, 'T'},
        {"max-issued-year", required_argument, 0, 'Y'},
        {"author-died-before", required_argument, 0, 'D'},
        {"limit", required_argument, 0, 'n'},      {"min-words", required_argument, 0, 'w'},
        {"mirror", required_argument, 0, 'm'},     {"out", required_argument, 0, 'o'},
        {"jobs", required_argument, 0, 'j'},       {"delay", required_argument, 0, 'd'},
        {"retries", required_argument, 0, 'r'},    {"pg19", no_argument, 0, 'p'},
        {"no-clean", no_argument, 0, 'N'},         {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *ids_path = NULL, *cat_path = NULL;
    gb_select sel = {0};
    job j;
    memset(&j, 0, sizeof j);
    j.mirror = DEFAULT_MIRROR;
    j.do_clean = 1;
    j.delay_s = 1.0;
    gb_http_opts_default(&j.http);
    gb_zip_limits_default(&j.zip);
    int jobs = 2, c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "i:c:o:j:h", opts, NULL)) != -1) {
        char *endp = NULL;
        switch (c) {
        case 'i': ids_path = optarg; break;
        case 'c': cat_path = optarg; break;
        case 'L': sel.language = optarg; break;
        case 'T': sel.type = optarg; break;
        case 'Y': sel.max_issued_year = atoi(optarg); break;
        case 'D': sel.author_died_before = atoi(optarg); break;
        case 'n': sel.limit = atol(optarg); break;
        case 'w': j.min_words = strtoull(optarg, &endp, 10); break;
        case 'm': j.mirror = optarg; break;
        case 'o': j.out = optarg; break;
        case 'j': jobs = atoi(optarg); break;
        case 'd': j.delay_s = strtod(optarg, &endp); break;
        case 'r': j.http.retries = atoi(optarg); break;
        case 'p': j.mode = GB_CLEAN_PG19; break;
        case 'N': j.do_clean = 0; break;
        default: return gutenberg_usage();
        }
    }
    if (!j.out || !!ids_path == !!cat_path || optind != argc || jobs < 1 || jobs > 64 ||
        j.delay_s < 0 || j.delay_s > 3600 || j.http.retries < 0 || j.http.retries > 20)
        return gutenberg_usage();
    /* "https://host/" and "https://host" name the same mirror. */
    char mirror[1024];
    snprintf(mirror, sizeof mirror, "%s", j.mirror);
    size_t ml = strlen(mirror);
    while (ml && mirror[ml - 1] == '/')
        mirror[--ml] = '\0';
    j.mirror = mirror;

    pg_error err = {0};
    long *ids = NULL;
    size_t n = 0;
    int rc = ids_path ? gb_read_ids(ids_path, &ids, &n, &err)
                      : gb_catalog_select(cat_path, &sel, &ids, &n, &err);
    char sub[4096];
    if (rc == 0) {
        snprintf(sub, sizeof sub, "%s/raw", j.out);
        rc = pg_mkdirs(sub, &err);
    }
    if (rc == 0) {
        snprintf(sub, sizeof sub, "%s/clean", j.out);
        rc = pg_mkdirs(sub, &err);
    }
    if (rc < 0) {
        fprintf(stderr, "fetch gutenberg: %s\n", err.msg);
        free(ids);
        return 1;
    }
    j.books = calloc(n ? n : 1, sizeof *j.books);
    if (!j.books) {
        free(ids);
        fprintf(stderr, "fetch gutenberg: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < n; i++)
        j.books[i].id = ids[i];
    free(ids);
    j.n = n;
    pthread_mutex_init(&j.mu, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pg_progress_init(&j.prog, "gutenberg", "books", "B", n, 0);
    pthread_t th[64];
    int started = 0;
    for (int t = 0; t < jobs && (size_t)t < (n ? n : 1); t++) {
        if (pthread_create(&th[t], NULL, worker, &j) != 0)
            break;
        started++;
    }
    if (!started)
        worker(&j);
    for (int t = 0; t < started; t++)
        pthread_join(th[t], NULL);
    curl_global_cleanup();
    pthread_mutex_destroy(&j.mu);

    size_t ok = 0, missing = 0, failed = 0, other = 0;
    for (size_t i = 0; i < n; i++) {
        const book *b = &j.books[i];
        if (!strcmp(b->status, "ok")) {
            ok++;
            if (b->rep.replacements)
                fprintf(stderr, "fetch gutenberg: book %ld: %llu invalid byte(s) replaced (%s)\n",
                        b->id, (unsigned long long)b->rep.replacements, b->rep.encoding);
        } else if (!strcmp(b->status, "missing")) {
            missing++;
        } else if (!strcmp(b->status, "failed")) {
            failed++;
            fprintf(stderr, "fetch gutenberg: book %ld failed: %s\n", b->id, b->error);
        } else {
            other++;
        }
    }
    char extra[256];
    snprintf(extra, sizeof extra, "%zu ok, %zu missing, %zu failed, %zu filtered (short)",
             ok, missing, failed, other);
    pg_progress_finish(&j.prog, extra);
    rc = write_manifest(&j, &err);
    free(j.books);
    if (rc < 0) {
        fprintf(stderr, "fetch gutenberg: %s\n", err.msg);
        return 1;
    }
    return failed ? 1 : 0;
}
