/* fetch_pg19.c - see fetch_pg19.h */
#include "fetch/fetch_pg19.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "common/progress.h"
#include "fetch/dir_lock.h"
#include "fetch/gcs_listing.h"
#include "fetch/manifest.h"
#include "fetch/transfer.h"

#define DEFAULT_BASE "https://storage.googleapis.com"
#define DEFAULT_BUCKET "deepmind-gutenberg"
#define SHA_LIST_MAX_BYTES (64u << 20)

static const char *const all_splits[] = {"train", "validation", "test"};

typedef struct pg19_opts {
    const char *out, *base, *bucket, *sha_list;
    int want[3];
    int jobs, retries, recheck;
    long limit;
    speed_limits speed;
} pg19_opts;

/* ---- expected SHA-256 per file (optional, e.g. pg19_files_derived.tsv) ---- */

typedef struct sha_entry {
    char key[96]; /* "split/id" */
    uint64_t bytes;
    uint8_t sha256[32];
} sha_entry;

typedef struct sha_list {
    sha_entry *e;
    size_t n;
} sha_list;

static int sha_cmp(const void *a, const void *b)
{
    return strcmp(((const sha_entry *)a)->key, ((const sha_entry *)b)->key);
}

/* TSV with a header: split, book_id, num_bytes, sha256. */
static int sha_list_load(const char *path, sha_list *out, pg_error *err)
{
    memset(out, 0, sizeof *out);
    char *data;
    size_t len;
    int rc = pg_read_file(path, SHA_LIST_MAX_BYTES, &data, &len, err);
    if (rc)
        return rc;
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += data[i] == '\n';
    out->e = calloc(lines, sizeof *out->e);
    if (!out->e) {
        free(data);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    size_t lineno = 0;
    char *save = NULL;
    for (char *line = strtok_r(data, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
        lineno++;
        if (lineno == 1)
            continue; /* header */
        char split[32], id[40], sha[80];
        unsigned long long bytes;
        int used = 0;
        if (sscanf(line, "%31[^\t]\t%39[^\t]\t%llu\t%79[^\t]%n", split, id, &bytes, sha, &used) != 4 ||
            line[used] != '\0') {
            rc = pg_fail(err, PG_ECORRUPT, "%s: line %zu: expected split, id, bytes, sha256", path, lineno);
            break;
        }
        sha_entry *e = &out->e[out->n];
        snprintf(e->key, sizeof e->key, "%s/%s", split, id);
        e->bytes = bytes;
        if (pg_unhex(sha, e->sha256, 32) != 0) {
            rc = pg_fail(err, PG_ECORRUPT, "%s: line %zu: bad sha256", path, lineno);
            break;
        }
        out->n++;
    }
    free(data);
    if (rc) {
        free(out->e);
        out->e = NULL;
        return rc;
    }
    qsort(out->e, out->n, sizeof *out->e, sha_cmp);
    return PG_OK;
}

static const sha_entry *sha_list_find(const sha_list *l, const char *split, const char *id)
{
    sha_entry key;
    snprintf(key.key, sizeof key.key, "%s/%s", split, id);
    return l->n ? bsearch(&key, l->e, l->n, sizeof *l->e, sha_cmp) : NULL;
}

/* ---- selection ---- */

typedef struct wanted {
    char split[16];
    char id[64];     /* decimal book id, or "metadata.csv" */
    uint64_t num_id;
    gcs_object obj;
} wanted;

/* "train/10006.txt" -> id "10006"; anything else is not a book. */
static int parse_book_name(const char *name, const char *split, char *id, size_t idcap, uint64_t *num)
{
    size_t sl = strlen(split);
    if (strncmp(name, split, sl) != 0 || name[sl] != '/')
        return -1;
    const char *p = name + sl + 1, *dot = strrchr(p, '.');
    if (!dot || strcmp(dot, ".txt") != 0 || dot == p || (size_t)(dot - p) > 12 || (size_t)(dot - p) >= idcap)
        return -1;
    uint64_t v = 0;
    for (const char *q = p; q < dot; q++) {
        if (*q < '0' || *q > '9')
            return -1;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    memcpy(id, p, (size_t)(dot - p));
    id[dot - p] = '\0';
    *num = v;
    return 0;
}

static int wanted_cmp(const void *a, const void *b)
{
    const wanted *x = a, *y = b;
    return x->num_id < y->num_id ? -1 : x->num_id > y->num_id;
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

/* Records verified files in the manifest and checkpoints it every few
 * seconds, so a killed run loses at most the re-hash of a few files. */
typedef struct run_ctx {
    manifest *man;
    const char *man_path;
    const char *out;
    const int *want;
    xfer_job *jobs;
    wanted **job_items;
    double last_save;
    int save_failed;
    pg_error save_err;
} run_ctx;

static manifest_entry entry_of(const wanted *w, const uint8_t sha256[32])
{
    manifest_entry e;
    memset(&e, 0, sizeof e);
    snprintf(e.split, sizeof e.split, "%s", w->split);
    snprintf(e.id, sizeof e.id, "%s", w->id);
    e.bytes = w->obj.size;
    memcpy(e.md5, w->obj.md5, 16);
    e.crc32c = w->obj.crc32c;
    memcpy(e.sha256, sha256, 32);
    return e;
}

/* Makes the renames into the output folders durable, then records them:
 * the manifest never lists a file a crash could still take away. */
static int checkpoint(const char *out, const int *want, const manifest *man, const char *man_path,
                      pg_error *err)
{
    char probe[4096];
    for (int s = 0; s < 3; s++) {
        if (!want[s])
            continue;
        snprintf(probe, sizeof probe, "%s/%s/x", out, all_splits[s]);
        int rc = pg_fsync_parent_dir(probe, err);
        if (rc)
            return rc;
    }
    snprintf(probe, sizeof probe, "%s/x", out);
    int rc = pg_fsync_parent_dir(probe, err);
    return rc ? rc : manifest_save(man, man_path, err);
}

static void on_verified(xfer_job *job, void *ud)
{
    run_ctx *c = ud;
    const wanted *w = c->job_items[job - c->jobs];
    manifest_entry e = entry_of(w, job->sha256);
    if (manifest_put(c->man, &e, &c->save_err) != PG_OK) {
        c->save_failed = 1;
        return;
    }
    double now = pg_now();
    if (now - c->last_save >= 5.0) {
        c->last_save = now;
        if (checkpoint(c->out, c->want, c->man, c->man_path, &c->save_err) != PG_OK)
            c->save_failed = 1;
    }
}

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: fetch pg19 [options]\n"
            "  Downloads the official PG-19 release (metadata.csv and the books) and\n"
            "  verifies every file against the bucket listing (size, MD5, CRC32C).\n"
            "  --out DIR            output folder (default data/pg19)\n"
            "  --split LIST         comma-separated subset of train,validation,test (default all)\n"
            "  --jobs N             concurrent transfers (default 16)\n"
            "  --limit N            only the first N books (by id) of each split\n"
            "  --base-url URL       storage endpoint (default " DEFAULT_BASE ")\n"
            "  --bucket NAME        bucket (default " DEFAULT_BUCKET ")\n"
            "  --sha256-list TSV    also require SHA-256 from a list (split, book_id, bytes, sha256)\n"
            "  --retries N          attempts per file (default 8)\n"
            "  --stall-timeout S    abort a transfer that moves less than --min-rate over S\n"
            "                       seconds, then retry (default 60)\n"
            "  --min-rate B         bytes per second a transfer must keep up (default 1024)\n"
            "  --deadline S         give up one attempt at a file after S seconds; the next\n"
            "                       attempt resumes where it stopped (default 1800)\n"
            "  --recheck            re-hash files the manifest already lists as verified\n");
}

/* A whole number in [min, max]; prints why not and returns -1. */
static int int_arg(const char *name, const char *text, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno || end == text || *end || v < min || v > max) {
        fprintf(stderr, "fetch pg19: %s must be a whole number from %ld to %ld\n", name, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_opts(int argc, char **argv, pg19_opts *o)
{
    memset(o, 0, sizeof *o);
    o->out = "data/pg19";
    o->base = DEFAULT_BASE;
    o->bucket = DEFAULT_BUCKET;
    o->jobs = 16;
    o->retries = 8;
    o->limit = -1;
    o->speed = (speed_limits){.min_rate = 1024, .window_s = 60, .deadline_s = 1800};
    o->want[0] = o->want[1] = o->want[2] = 1;
    static const struct option longopts[] = {
        {"out", required_argument, 0, 'o'},        {"split", required_argument, 0, 's'},
        {"jobs", required_argument, 0, 'j'},       {"limit", required_argument, 0, 'l'},
        {"base-url", required_argument, 0, 'b'},   {"bucket", required_argument, 0, 'B'},
        {"sha256-list", required_argument, 0, 'S'}, {"retries", required_argument, 0, 'r'},
        {"stall-timeout", required_argument, 0, 't'}, {"recheck", no_argument, 0, 'R'},
        {"min-rate", required_argument, 0, 'm'},   {"deadline", required_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'},             {0, 0, 0, 0}};
    int ch;
    optind = 1;
    long v;
    while ((ch = getopt_long(argc, argv, "o:j:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': o->out = optarg; break;
        case 'b': o->base = optarg; break;
        case 'B': o->bucket = optarg; break;
        case 'S': o->sha_list = optarg; break;
        case 'R': o->recheck = 1; break;
        case 'j': if (int_arg("--jobs", optarg, 1, 256, &v)) return 2; o->jobs = (int)v; break;
        case 'r': if (int_arg("--retries", optarg, 1, 100, &v)) return 2; o->retries = (int)v; break;
        case 'l': if (int_arg("--limit", optarg, 0, LONG_MAX, &v)) return 2; o->limit = v; break;
        case 't': if (int_arg("--stall-timeout", optarg, 1, 86400, &v)) return 2; o->speed.window_s = v; break;
        case 'm': if (int_arg("--min-rate", optarg, 1, 1L << 30, &v)) return 2; o->speed.min_rate = v; break;
        case 'D': if (int_arg("--deadline", optarg, 1, 7 * 86400, &v)) return 2; o->speed.deadline_s = v; break;
        case 's': {
            o->want[0] = o->want[1] = o->want[2] = 0;
            char *copy = strdup(optarg), *save = NULL;
            if (!copy)
                return 2;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                int k = -1;
                for (int i = 0; i < 3; i++)
                    if (strcmp(t, all_splits[i]) == 0)
                        k = i;
                if (k < 0) {
                    fprintf(stderr, "fetch pg19: unknown split '%s' (use train, validation, test)\n", t);
                    free(copy);
                    return 2;
                }
                o->want[k] = 1;
            }
            free(copy);
            break;
        }
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "fetch pg19: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    size_t bl = strlen(o->base);
    while (bl > 0 && o->base[bl - 1] == '/')
        bl--;
    if (bl == 0) {
        fprintf(stderr, "fetch pg19: empty --base-url\n");
        return 2;
    }
    return 0;
}

/* Lists one prefix and appends the matching objects to *items. */
static int list_split(const pg19_opts *o, const char *base, const char *split, const retry_policy *rp,
                      wanted **items, size_t *n, pg_error *err)
{
    gcs_object_list l = {0};
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s/", split);
    int rc = gcs_list(base, o->bucket, prefix, rp, &o->speed, &l, err);
    if (rc) {
        gcs_object_list_free(&l);
        return rc;
    }
    wanted *arr = calloc(l.n ? l.n : 1, sizeof *arr);
    if (!arr) {
        gcs_object_list_free(&l);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    size_t k = 0, odd = 0;
    for (size_t i = 0; i < l.n; i++) {
        wanted w;
        memset(&w, 0, sizeof w);
        if (strcmp(l.items[i].name, prefix) == 0)
            continue; /* the folder placeholder object */
        if (parse_book_name(l.items[i].name, split, w.id, sizeof w.id, &w.num_id) != 0) {
            if (odd++ < 5)
                fprintf(stderr, "fetch pg19: skipping unexpected object '%s'\n", l.items[i].name);
            continue;
        }
        if (!l.items[i].has_md5 && !l.items[i].has_crc32c) {
            rc = pg_fail(err, PG_ECORRUPT, "listing: %s has neither md5Hash nor crc32c to verify against",
                         l.items[i].name);
            break;
        }
        snprintf(w.split, sizeof w.split, "%s", split);
        w.obj = l.items[i];
        arr[k++] = w;
    }
    gcs_object_list_free(&l);
    if (rc) {
        free(arr);
        return rc;
    }
    qsort(arr, k, sizeof *arr, wanted_cmp);
    for (size_t i = 1; i < k; i++)
        if (arr[i].num_id == arr[i - 1].num_id) {
            rc = pg_fail(err, PG_ECORRUPT, "listing: book %s of %s is listed twice", arr[i].id, split);
            free(arr);
            return rc;
        }
    if (k == 0)
        fprintf(stderr, "fetch pg19: warning: no books listed under %s\n", prefix);
    if (*n + k > GCS_MAX_ITEMS) {
        free(arr);
        return pg_fail(err, PG_ELIMIT, "listing: more than %d objects in all (PG-19 has 28,753)",
                       GCS_MAX_ITEMS);
    }
    if (o->limit >= 0 && (size_t)o->limit < k)
        k = (size_t)o->limit;
    wanted *grown = realloc(*items, (*n + k + 1) * sizeof **items);
    if (!grown) {
        free(arr);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    *items = grown;
    memcpy(*items + *n, arr, k * sizeof *arr);
    *n += k;
    free(arr);
    return PG_OK;
}

static int list_metadata(const pg19_opts *o, const char *base, const retry_policy *rp, wanted *out,
                         pg_error *err)
{
    gcs_object_list l = {0};
    int rc = gcs_list(base, o->bucket, "metadata.csv", rp, &o->speed, &l, err);
    if (rc == PG_OK) {
        rc = pg_fail(err, PG_ENOTFOUND, "listing: metadata.csv is not in bucket %s", o->bucket);
        for (size_t i = 0; i < l.n; i++)
            if (strcmp(l.items[i].name, "metadata.csv") == 0) {
                memset(out, 0, sizeof *out);
                strcpy(out->split, "-");
                strcpy(out->id, "metadata.csv");
                out->obj = l.items[i];
                rc = out->obj.has_md5 || out->obj.has_crc32c
                         ? PG_OK
                         : pg_fail(err, PG_ECORRUPT, "listing: metadata.csv has no checksum");
                break;
            }
    }
    gcs_object_list_free(&l);
    return rc;
}

static void paths_of(const char *out, const wanted *w, char *final, char *part, size_t cap)
{
    if (strcmp(w->split, "-") == 0) {
        snprintf(final, cap, "%s/%s", out, w->id);
        snprintf(part, cap, "%s/.partial/%s", out, w->id);
    } else {
        snprintf(final, cap, "%s/%s/%s.txt", out, w->split, w->id);
        snprintf(part, cap, "%s/.partial/%s/%s.txt", out, w->split, w->id);
    }
}

static int matches_listing(const wanted *w, const uint8_t md5[16], uint32_t crc, uint64_t size)
{
    return size == w->obj.size && (!w->obj.has_md5 || memcmp(md5, w->obj.md5, 16) == 0) &&
           (!w->obj.has_crc32c || crc == w->obj.crc32c);
}

int fetch_cmd_pg19(int argc, char **argv)
{
    pg19_opts o;
    int prc = parse_opts(argc, argv, &o);
    if (prc)
        return prc == 1 ? 0 : 2;
    char *base = strdup(o.base);
    if (!base)
        return 1;
    for (size_t bl = strlen(base); bl > 0 && base[bl - 1] == '/'; bl--)
        base[bl - 1] = '\0';
    pg_error err = {0};
    int rc = PG_OK, exit_code = 1;
    sha_list shas = {0};
    manifest man = {0};
    wanted *items = NULL;
    size_t n_items = 0;
    xfer_job *jobs = NULL;
    wanted **job_items = NULL;
    size_t n_jobs = 0;
    char man_path[4096];
    snprintf(man_path, sizeof man_path, "%s/MANIFEST.tsv", o.out);
    dir_lock lock = {.fd = -1};

    curl_global_init(CURL_GLOBAL_DEFAULT);
    retry_policy rp;
    retry_policy_default(&rp);
    rp.max_attempts = o.retries;

    if (o.sha_list && (rc = sha_list_load(o.sha_list, &shas, &err)))
        goto done;
    /* 0. one run per output folder, before anything in it is read or written */
    if ((rc = pg_mkdirs(o.out, &err)) || (rc = dir_lock_acquire(&lock, o.out, &err)))
        goto done;
    /* 1. the listing */
    items = calloc(1, sizeof *items);
    if (!items) {
        rc = pg_fail(&err, PG_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = list_metadata(&o, base, &rp, &items[0], &err)))
        goto done;
    n_items = 1;
    for (int s = 0; s < 3; s++)
        if (o.want[s] && (rc = list_split(&o, base, all_splits[s], &rp, &items, &n_items, &err)))
            goto done;

    /* 2. folders and what is already verified */
    char dir[4096];
    for (int s = 0; s < 3; s++) {
        if (!o.want[s])
            continue;
        snprintf(dir, sizeof dir, "%s/%s", o.out, all_splits[s]);
        if ((rc = pg_mkdirs(dir, &err)))
            goto done;
        snprintf(dir, sizeof dir, "%s/.partial/%s", o.out, all_splits[s]);
        if ((rc = pg_mkdirs(dir, &err)))
            goto done;
    }
    snprintf(dir, sizeof dir, "%s/.partial", o.out);
    if ((rc = pg_mkdirs(dir, &err)))
        goto done;
    rc = manifest_load(&man, man_path, &err);
    if (rc == PG_ECORRUPT || rc == PG_ELIMIT) {
        /* Every file it could list is on disk: start from an empty manifest;
         * the loop below re-hashes each file present against the listing and
         * records those that match (the rest are downloaded again). */
        fprintf(stderr,
                "fetch pg19: warning: %s; rebuilding it from the files on disk (each is re-hashed "
                "against the listing)\n",
                err.msg);
        rc = PG_OK;
    } else if (rc) {
        pg_wrap(&err, "cannot read the manifest (remove it, and a rerun rebuilds it from the files "
                      "on disk)");
        goto done;
    }
    jobs = calloc(n_items, sizeof *jobs);
    job_items = calloc(n_items, sizeof *job_items);
    if (!jobs || !job_items) {
        rc = pg_fail(&err, PG_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t skipped = 0, adopted = 0, listing_problems = 0;
    for (size_t i = 0; i < n_items; i++) {
        wanted *w = &items[i];
        char final[4096], part[4096];
        paths_of(o.out, w, final, part, sizeof final);
        const sha_entry *se = NULL;
        if (o.sha_list && strcmp(w->split, "-") != 0) {
            se = sha_list_find(&shas, w->split, w->id);
            if (!se || se->bytes != w->obj.size) {
                fprintf(stderr, "fetch pg19: FAILED %s/%s.txt: %s\n", w->split, w->id,
                        se ? "listed size differs from the SHA-256 list" : "not in the SHA-256 list");
                listing_problems++;
                continue;
            }
        }
        const manifest_entry *me = manifest_find(&man, w->split, w->id);
        struct stat st;
        int present = stat(final, &st) == 0 && S_ISREG(st.st_mode);
        if (present && me && !o.recheck && (uint64_t)st.st_size == w->obj.size &&
            matches_listing(w, me->md5, me->crc32c, me->bytes) &&
            (!se || memcmp(se->sha256, me->sha256, 32) == 0)) {
            skipped++;
            continue;
        }
        if (present && (uint64_t)st.st_size == w->obj.size) {
            /* placed by a run that died before its manifest checkpoint, or --recheck */
            uint8_t md5[16], sha[32];
            uint32_t crc;
            uint64_t size;
            if (pg_hash_file(final, md5, sha, &crc, &size, &err) == PG_OK &&
                matches_listing(w, md5, crc, size) && (!se || memcmp(se->sha256, sha, 32) == 0)) {
                manifest_entry e = entry_of(w, sha);
                if ((rc = manifest_put(&man, &e, &err)))
                    goto done;
                adopted++;
                continue;
            }
        }
        xfer_job *j = &jobs[n_jobs];
        size_t ulen = strlen(base) + strlen(o.bucket) + strlen(w->obj.name) + 4;
        j->url = malloc(ulen);
        j->final_path = strdup(final);
        j->part_path = strdup(part);
        if (!j->url || !j->final_path || !j->part_path) {
            free(j->url);
            free(j->final_path);
            free(j->part_path);
            rc = pg_fail(&err, PG_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(j->url, ulen, "%s/%s/%s", base, o.bucket, w->obj.name);
        snprintf(j->label, sizeof j->label, "%s", w->obj.name);
        j->size = w->obj.size;
        memcpy(j->md5, w->obj.md5, 16);
        j->crc32c = w->obj.crc32c;
        j->has_md5 = w->obj.has_md5;
        j->has_crc32c = w->obj.has_crc32c;
        if (se) {
            memcpy(j->sha256_expected, se->sha256, 32);
            j->has_sha256 = 1;
        }
        job_items[n_jobs++] = w;
    }
    if (skipped || adopted)
        fprintf(stderr, "fetch pg19: %llu files already verified, %llu verified on disk now, %zu to download\n",
                (unsigned long long)skipped, (unsigned long long)adopted, n_jobs);
    if ((rc = manifest_save(&man, man_path, &err)))
        goto done;

    /* 3. the transfers */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    run_ctx ctx = {.man = &man, .man_path = man_path, .out = o.out, .want = o.want, .jobs = jobs,
                   .job_items = job_items, .last_save = pg_now()};
    xfer_options xo = {.jobs = o.jobs, .speed = o.speed, .connect_timeout_s = 30, .retry = rp,
                       .stop = &stop_flag, .progress_label = "fetch pg19",
                       .on_verified = on_verified, .ud = &ctx};
    xfer_stats stats = {0};
    int xrc = xfer_run(jobs, n_jobs, &xo, &stats, &err);
    /* each failure first: a manifest that cannot be saved (a full disk) must not hide them */
    for (size_t i = 0; i < n_jobs; i++)
        if (!jobs[i].ok && jobs[i].error[0] && xrc != PG_EINTR)
            fprintf(stderr, "fetch pg19: FAILED %s after %d attempt(s): %s\n", jobs[i].label,
                    jobs[i].attempts, jobs[i].error);
    int src = checkpoint(o.out, o.want, &man, man_path, ctx.save_failed ? &ctx.save_err : &err);
    if (ctx.save_failed || src) {
        rc = src ? src : PG_EIO;
        if (ctx.save_failed)
            err = ctx.save_err;
        goto done;
    }
    rc = xrc;
    if (rc == PG_OK && listing_problems)
        rc = pg_fail(&err, PG_ECORRUPT, "%llu files could not be checked against the SHA-256 list",
                     (unsigned long long)listing_problems);
    if (rc == PG_OK) {
        fprintf(stderr, "fetch pg19: %zu files verified in %s (%llu downloaded, %llu bytes received)\n",
                n_items, o.out, (unsigned long long)stats.files_ok,
                (unsigned long long)stats.bytes_received);
        exit_code = 0;
    } else if (rc == PG_EINTR) {
        exit_code = 130;
    }

done:
    if (rc)
        fprintf(stderr, "fetch pg19: error: %s\n", err.msg);
    for (size_t i = 0; i < n_jobs; i++) {
        free(jobs[i].url);
        free(jobs[i].final_path);
        free(jobs[i].part_path);
    }
    free(jobs);
    free(job_items);
    free(items);
    free(shas.e);
    manifest_free(&man);
    dir_lock_release(&lock);
    free(base);
    curl_global_cleanup();
    return exit_code;
}
