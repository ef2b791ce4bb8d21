/* transfer.c - see transfer.h */
#include "fetch/transfer.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "common/progress.h"

enum { JOB_PENDING = 0, JOB_ACTIVE, JOB_DONE, JOB_FAILED };

/* One transfer in flight. */
typedef struct active {
    xfer_job *job;
    CURL *easy;
    FILE *fp;
    pg_hasher *hasher;
    uint64_t have;         /* bytes of the file on disk (and hashed) */
    uint64_t range_start;  /* what we asked for; 0 = whole file */
    int64_t content_range_start; /* from the response, -1 if none */
    long status;
    int status_checked;
    int discard;           /* error response: swallow the body */
    int overflow;          /* more bytes than the listed size */
    int range_mismatch;
    int io_error;
    char ebuf[CURL_ERROR_SIZE];
    xfer_stats *stats;
} active;

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    active *a = ud;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) { /* a new response (redirect, 100) */
        a->content_range_start = -1;
        a->job->retry_after = -1;
    } else if (!retry_header_after(ptr, n, &a->job->retry_after) && n > 14 &&
               strncasecmp(ptr, "Content-Range:", 14) == 0) {
        char v[128];
        size_t k = n - 14 < sizeof v - 1 ? n - 14 : sizeof v - 1;
        memcpy(v, ptr + 14, k);
        v[k] = '\0';
        unsigned long long s, e;
        if (sscanf(v, " bytes %llu-%llu", &s, &e) == 2)
            a->content_range_start = (int64_t)s;
    }
    return n;
}

static int restart_file(active *a)
{
    if (fflush(a->fp) != 0 || ftruncate(fileno(a->fp), 0) != 0 || fseeko(a->fp, 0, SEEK_SET) != 0)
        return -1;
    pg_hasher_reset(a->hasher);
    a->have = 0;
    return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    active *a = ud;
    size_t n = size * nmemb;
    if (!a->status_checked) {
        a->status_checked = 1;
        curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &a->status);
        if (a->status == 206) {
            if (a->content_range_start != (int64_t)a->range_start) {
                a->range_mismatch = 1;
                return 0;
            }
        } else if (a->status == 200) {
            if (a->range_start > 0 && restart_file(a) != 0) { /* server ignored Range */
                a->io_error = errno ? errno : EIO;
                return 0;
            }
        } else {
            a->discard = 1;
        }
    }
    if (a->discard)
        return n;
    if (a->have + n > a->job->size) {
        a->overflow = 1;
        return 0;
    }
    if (fwrite(ptr, 1, n, a->fp) != n) {
        a->io_error = errno ? errno : EIO;
        return 0;
    }
    pg_hasher_update(a->hasher, ptr, n);
    a->have += n;
    a->stats->bytes_received += n;
    return n;
}

/* Re-hashes the bytes already in the partial file. */
static int hash_prefix(active *a, uint64_t len)
{
    char buf[1 << 16];
    if (fseeko(a->fp, 0, SEEK_SET) != 0)
        return -1;
    uint64_t left = len;
    while (left) {
        size_t want = left < sizeof buf ? (size_t)left : sizeof buf;
        size_t got = fread(buf, 1, want, a->fp);
        if (got != want)
            return -1;
        pg_hasher_update(a->hasher, buf, got);
        left -= got;
    }
    return fseeko(a->fp, 0, SEEK_END);
}

static void hex_of(const uint8_t *b, size_t n, char *out) { pg_hex(b, n, out); }

/* Checks the finished bytes against the expected checksums and closes the
 * file. Returns 0 if verified (it then waits for place_batch), 1 on a
 * checksum mismatch (partial file removed), -1 on an I/O error. */
static int finish_file(active *a)
{
    xfer_job *j = a->job;
    uint8_t md5[16];
    uint32_t crc;
    pg_hasher_final(a->hasher, md5, j->sha256, &crc);
    pg_hasher_reset(a->hasher);
    char want[65], got[65];
    const char *what = NULL;
    if (j->has_md5 && memcmp(md5, j->md5, 16) != 0) {
        hex_of(j->md5, 16, want);
        hex_of(md5, 16, got);
        what = "md5";
    } else if (j->has_crc32c && crc != j->crc32c) {
        snprintf(want, sizeof want, "%08x", j->crc32c);
        snprintf(got, sizeof got, "%08x", crc);
        what = "crc32c";
    } else if (j->has_sha256 && memcmp(j->sha256, j->sha256_expected, 32) != 0) {
        hex_of(j->sha256_expected, 32, want);
        hex_of(j->sha256, 32, got);
        what = "sha256";
    }
    if (what) {
        snprintf(j->error, sizeof j->error, "%s: %s mismatch: expected %s, got %s", j->label, what,
                 want, got);
        fclose(a->fp);
        a->fp = NULL;
        unlink(j->part_path);
        return 1;
    }
    /* Durability comes in place_batch(): one syncfs() for many files. */
    int rc = fflush(a->fp) != 0 ? -1 : 0;
    if (fclose(a->fp) != 0)
        rc = -1;
    a->fp = NULL;
    if (rc != 0) {
        snprintf(j->error, sizeof j->error, "%s: write: %s", j->part_path, strerror(errno));
        return -1;
    }
    return 0;
}

typedef struct engine {
    xfer_job *jobs;
    size_t n;
    const xfer_options *opt;
    xfer_stats *stats;
    CURLM *multi;
    active *slots;
    int n_active;
    unsigned seed;
    size_t next_fresh;     /* next job never started, in order */
    size_t *retry_q;       /* jobs waiting for another attempt */
    size_t n_retry;
    size_t settled;        /* done + failed */
    uint64_t done_bytes;
    size_t *placing;       /* verified jobs waiting for sync + rename */
    size_t n_placing;
    double first_placing_at;
    pg_hasher *check;      /* re-hashes files on disk before placement */
    char *check_buf;
} engine;

#define CHECK_BUF_BYTES (256u << 10)

static void mark_done(engine *e, xfer_job *j)
{
    j->state = JOB_DONE;
    j->ok = 1;
    j->error[0] = '\0';
    e->stats->files_ok++;
    e->settled++;
    e->done_bytes += j->size;
    if (e->opt->on_verified)
        e->opt->on_verified(j, e->opt->ud);
}

static void mark_failed(engine *e, xfer_job *j)
{
    j->state = JOB_FAILED;
    e->stats->files_failed++;
    e->settled++;
}

/* A verified file joins the next placement batch. */
static void queue_placement(engine *e, xfer_job *j)
{
    if (e->n_placing == 0)
        e->first_placing_at = pg_now();
    e->placing[e->n_placing++] = (size_t)(j - e->jobs);
}

static void schedule_retry(engine *e, xfer_job *j, int fatal);

/* Hashes the partial file as it is on disk and compares it with the bytes
 * that were received and verified (their SHA-256). 0 if they are the same;
 * otherwise sets j->error and returns -1. One hasher and buffer serve every
 * file: many small files are the common case. */
static int verify_on_disk(engine *e, xfer_job *j)
{
    int fd = open(j->part_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(j->error, sizeof j->error, "%s: %s", j->part_path,
                 errno == ENOENT ? "the verified partial file is gone before placement" : strerror(errno));
        return -1;
    }
    pg_hasher_reset(e->check);
    uint64_t size = 0;
    int read_errno = 0;
    for (;;) {
        ssize_t got = read(fd, e->check_buf, CHECK_BUF_BYTES);
        if (got < 0 && errno == EINTR)
            continue; /* Ctrl-C: this batch is still placed */
        if (got <= 0) {
            read_errno = got < 0 ? errno : 0;
            break;
        }
        pg_hasher_update(e->check, e->check_buf, (size_t)got);
        size += (uint64_t)got;
    }
    close(fd);
    uint8_t md5[16], sha[32];
    uint32_t crc;
    pg_hasher_final(e->check, md5, sha, &crc);
    if (read_errno) {
        snprintf(j->error, sizeof j->error, "%s: read: %s", j->part_path, strerror(read_errno));
        return -1;
    }
    if (size != j->size || memcmp(sha, j->sha256, 32) != 0) {
        char got_hex[65];
        pg_hex(sha, 32, got_hex);
        snprintf(j->error, sizeof j->error,
                 "%s: the file on disk (%llu bytes, sha256 %s) differs from the bytes received; "
                 "did another process write to it?",
                 j->part_path, (unsigned long long)size, got_hex);
        unlink(j->part_path);
        return -1;
    }
    return 0;
}

/* Makes every queued file durable with one syncfs() (instead of an fsync per
 * small file, which dominated the time of many small transfers), checks each
 * file as it is on disk, then renames it into place. A crash before the
 * rename leaves a complete partial file, which the next run verifies and
 * places without a request. A file that fails its check is retried alone. */
static void place_batch(engine *e)
{
    if (e->n_placing == 0)
        return;
    /* syncfs() through the partial files' folder: any file of the batch may be gone */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", e->jobs[e->placing[0]].part_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    else
        snprintf(dir, sizeof dir, ".");
    int sync_errno = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0)
        sync_errno = errno ? errno : EIO;
    if (fd >= 0)
        close(fd);
    for (size_t k = 0; k < e->n_placing; k++) {
        xfer_job *j = &e->jobs[e->placing[k]];
        if (sync_errno) {
            snprintf(j->error, sizeof j->error, "%s: sync: %s", dir, strerror(sync_errno));
            mark_failed(e, j);
        } else if (verify_on_disk(e, j) != 0) {
            schedule_retry(e, j, 0);
        } else if (rename(j->part_path, j->final_path) != 0) {
            snprintf(j->error, sizeof j->error, "%s: cannot place the verified file: %s", j->final_path,
                     strerror(errno));
            mark_failed(e, j);
        } else {
            mark_done(e, j); /* the caller fsyncs the directory before it records the file */
        }
    }
    e->n_placing = 0;
}

static void schedule_retry(engine *e, xfer_job *j, int fatal)
{
    if (fatal || j->attempts >= e->opt->retry.max_attempts) {
        mark_failed(e, j);
        return;
    }
    j->state = JOB_PENDING;
    j->next_at = pg_now() + retry_delay(&e->opt->retry, j->attempts, j->retry_after, &e->seed);
    e->retry_q[e->n_retry++] = (size_t)(j - e->jobs);
    e->stats->retries++;
}

static void release_slot(engine *e, active *a)
{
    if (a->easy) {
        curl_multi_remove_handle(e->multi, a->easy);
        curl_easy_cleanup(a->easy);
    }
    if (a->fp)
        fclose(a->fp);
    pg_hasher_free(a->hasher);
    memset(a, 0, sizeof *a);
    e->n_active--;
}

/* Starts job j in slot a. Returns 0 if a transfer was started or the job was
 * settled without one (a complete partial file), -1 on a local error. */
static int start_job(engine *e, active *a, xfer_job *j)
{
    memset(a, 0, sizeof *a);
    a->job = j;
    a->stats = e->stats;
    a->content_range_start = -1;
    j->retry_after = -1;
    j->attempts++;
    j->state = JOB_ACTIVE;
    e->n_active++;
    a->hasher = pg_hasher_new();
    if (!a->hasher)
        goto local_error;
    int fd = open(j->part_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0 || !(a->fp = fdopen(fd, "r+b"))) {
        if (fd >= 0)
            close(fd);
        goto local_error;
    }
    struct stat st;
    if (fstat(fileno(a->fp), &st) != 0)
        goto local_error;
    uint64_t have = (uint64_t)st.st_size;
    if (have > j->size) {
        if (restart_file(a) != 0)
            goto local_error;
        have = 0;
    }
    if (have > 0) {
        if (hash_prefix(a, have) != 0)
            goto local_error;
        a->have = have;
        e->stats->resumed++;
        if (have == j->size) { /* all bytes were there: verify without a request */
            int r = finish_file(a);
            if (r == 0) {
                queue_placement(e, j);
            } else {
                schedule_retry(e, j, r < 0);
            }
            release_slot(e, a);
            return 0;
        }
        a->range_start = have;
    }
    a->easy = curl_easy_init();
    if (!a->easy)
        goto local_error;
    CURL *c = a->easy;
    curl_easy_setopt(c, CURLOPT_URL, j->url);
    curl_easy_setopt(c, CURLOPT_PRIVATE, a);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, a->ebuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_USERAGENT, "pg19-fetch/0.1");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, e->opt->connect_timeout_s);
    speed_limits_apply(c, &e->opt->speed);
    curl_easy_setopt(c, CURLOPT_PIPEWAIT, 1L);
    if (a->range_start > 0) {
        char range[48];
        snprintf(range, sizeof range, "%llu-", (unsigned long long)a->range_start);
        curl_easy_setopt(c, CURLOPT_RANGE, range);
    }
    if (curl_multi_add_handle(e->multi, c) != CURLM_OK)
        goto local_error;
    return 0;

local_error:
    snprintf(j->error, sizeof j->error, "%s: %s", j->part_path, strerror(errno ? errno : EIO));
    mark_failed(e, j);
    release_slot(e, a);
    return -1;
}

static void on_transfer_done(engine *e, active *a, CURLcode cc)
{
    xfer_job *j = a->job;
    long status = 0;
    curl_easy_getinfo(a->easy, CURLINFO_RESPONSE_CODE, &status);
    int fatal = 0;
    if (a->io_error) {
        snprintf(j->error, sizeof j->error, "%s: write: %s", j->part_path, strerror(a->io_error));
        fatal = 1;
    } else if (a->overflow) {
        snprintf(j->error, sizeof j->error, "%s: server sent more than the listed %llu bytes",
                 j->label, (unsigned long long)j->size);
        fclose(a->fp);
        a->fp = NULL;
        unlink(j->part_path);
    } else if (a->range_mismatch) {
        snprintf(j->error, sizeof j->error, "%s: server answered a range request with the wrong range",
                 j->label);
        fclose(a->fp);
        a->fp = NULL;
        unlink(j->part_path);
    } else if (status == 416 && a->range_start > 0) {
        /* the partial file does not fit the object any more: start over */
        snprintf(j->error, sizeof j->error, "%s: server refused the range from byte %llu (HTTP 416)",
                 j->label, (unsigned long long)a->range_start);
        fclose(a->fp);
        a->fp = NULL;
        unlink(j->part_path);
    } else if (cc != CURLE_OK || a->discard || (status != 200 && status != 206)) {
        failure_class fc = retry_classify(cc, status);
        if (cc != CURLE_OK)
            snprintf(j->error, sizeof j->error, "%s: %s", j->label, a->ebuf[0] ? a->ebuf : curl_easy_strerror(cc));
        else
            snprintf(j->error, sizeof j->error, "%s: HTTP %ld", j->label, status);
        fatal = fc != FAIL_RETRY;
    } else if (a->have != j->size) {
        snprintf(j->error, sizeof j->error, "%s: body ended after %llu of %llu bytes", j->label,
                 (unsigned long long)a->have, (unsigned long long)j->size);
    } else {
        int r = finish_file(a);
        if (r == 0) {
            queue_placement(e, j);
            release_slot(e, a);
            return;
        }
        fatal = r < 0;
    }
    /* keep what we have (the partial file) for a Range resume */
    if (a->fp && fflush(a->fp) != 0)
        fatal = 1;
    release_slot(e, a);
    schedule_retry(e, j, fatal);
}

static active *free_slot(engine *e, int slots)
{
    for (int s = 0; s < slots; s++)
        if (!e->slots[s].job)
            return &e->slots[s];
    return NULL;
}

/* Starts due retries first (oldest first), then fresh jobs in order. */
static void fill_slots(engine *e, int slots)
{
    double now = pg_now();
    for (size_t k = 0; k < e->n_retry && e->n_active < slots;) {
        xfer_job *j = &e->jobs[e->retry_q[k]];
        if (j->next_at > now) {
            k++;
            continue;
        }
        memmove(&e->retry_q[k], &e->retry_q[k + 1], (e->n_retry - k - 1) * sizeof *e->retry_q);
        e->n_retry--;
        start_job(e, free_slot(e, slots), j);
    }
    while (e->next_fresh < e->n && e->n_active < slots)
        start_job(e, free_slot(e, slots), &e->jobs[e->next_fresh++]);
}

int xfer_run(xfer_job *jobs, size_t n, const xfer_options *opt, xfer_stats *stats, pg_error *err)
{
    engine e = {.jobs = jobs, .n = n, .opt = opt, .stats = stats};
    e.seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int slots = opt->jobs > 0 ? opt->jobs : 1;
    e.slots = calloc((size_t)slots, sizeof *e.slots);
    e.retry_q = calloc(n ? n : 1, sizeof *e.retry_q);
    e.placing = calloc(n ? n : 1, sizeof *e.placing);
    e.multi = curl_multi_init();
    e.check = pg_hasher_new();
    e.check_buf = malloc(CHECK_BUF_BYTES);
    if (!e.slots || !e.multi || !e.retry_q || !e.placing || !e.check || !e.check_buf) {
        free(e.slots);
        free(e.retry_q);
        free(e.placing);
        pg_hasher_free(e.check);
        free(e.check_buf);
        if (e.multi)
            curl_multi_cleanup(e.multi);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    uint64_t total_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        total_bytes += jobs[i].size;
        jobs[i].state = JOB_PENDING;
        jobs[i].next_at = 0;
    }
    pg_progress prog;
    if (opt->progress_label)
        pg_progress_init(&prog, opt->progress_label, "files", "B", n, total_bytes);
    int interrupted = 0;
    while (e.settled < n) {
        if (opt->stop && *opt->stop) {
            interrupted = 1;
            break;
        }
        fill_slots(&e, slots);
        int running = 0;
        curl_multi_perform(e.multi, &running);
        CURLMsg *msg;
        int left, finished = 0;
        while ((msg = curl_multi_info_read(e.multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            finished++;
            active *a = NULL;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&a);
            on_transfer_done(&e, a, msg->data.result);
        }
        if (e.n_placing && (e.n_placing >= 256 || e.n_active == 0 || pg_now() - e.first_placing_at > 0.5))
            place_batch(&e);
        if (opt->progress_label) {
            uint64_t in_flight = 0;
            for (int s = 0; s < slots; s++)
                if (e.slots[s].job)
                    in_flight += e.slots[s].have;
            pg_progress_update(&prog, stats->files_ok, e.done_bytes + in_flight);
        }
        /* refill freed slots at once; otherwise sleep until a socket is ready */
        if (e.settled < n && !finished)
            curl_multi_poll(e.multi, NULL, 0, e.n_active ? 100 : 20, NULL);
    }
    place_batch(&e); /* verified files are placed even when interrupted */
    for (int s = 0; s < slots; s++)
        if (e.slots[s].job) {
            xfer_job *j = e.slots[s].job;
            if (e.slots[s].fp)
                fflush(e.slots[s].fp); /* partial bytes stay for a resume */
            j->state = JOB_PENDING;
            release_slot(&e, &e.slots[s]);
        }
    if (opt->progress_label) {
        char extra[160];
        snprintf(extra, sizeof extra, "%llu failed, %llu retries, %llu resumed%s",
                 (unsigned long long)stats->files_failed, (unsigned long long)stats->retries,
                 (unsigned long long)stats->resumed, interrupted ? ", interrupted" : "");
        pg_progress_finish(&prog, extra);
    }
    curl_multi_cleanup(e.multi);
    free(e.slots);
    free(e.retry_q);
    free(e.placing);
    pg_hasher_free(e.check);
    free(e.check_buf);
    if (interrupted)
        return pg_fail(err, PG_EINTR, "interrupted; partial files are kept and a rerun resumes them");
    if (stats->files_failed)
        return pg_fail(err, PG_ENET, "%llu of %zu files failed", (unsigned long long)stats->files_failed, n);
    return PG_OK;
}
