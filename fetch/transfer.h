/* transfer.h - many verified downloads at once (libcurl multi interface).
 *
 * Each job downloads `url` into a partial file, hashing as bytes arrive, and
 * is renamed to its final name only after its size, MD5, CRC32C (and, when
 * given, SHA-256) match what was expected, it is synced, and the file as it
 * is on disk hashes to what was received (another writer, or a disk that
 * lost bytes, is caught before the rename). So a bad or partial file never
 * sits under a final name. Syncs are batched (one syncfs() for many files);
 * directory fsyncs are left to the caller (before it records files as
 * verified), not paid once per file. A file that cannot be placed (its
 * partial file went missing or changed) is retried on its own; the rest of
 * its batch is placed.
 *
 * - Resume: a partial file left by an interrupted run (Ctrl-C, kill -9, a
 *   reset) is continued with an HTTP Range request; its bytes are re-hashed
 *   first. A server that ignores Range (200) restarts the file; a checksum
 *   mismatch discards the partial file, since its bytes cannot be trusted.
 * - Faults: timeouts, resets, truncated bodies, transfers slower than
 *   `speed` allows (a stall, a trickle, past the deadline), 408/429/5xx are retried with exponential backoff and jitter, honouring
 *   Retry-After; other 4xx fail at once. Each job records its last error.
 * - Bounds: a body longer than the expected size is cut off and retried.
 */
#ifndef PG19_FETCH_TRANSFER_H
#define PG19_FETCH_TRANSFER_H

#include <signal.h>
#include <stdint.h>

#include "common/error.h"
#include "fetch/retry.h"

typedef struct xfer_job {
    /* in */
    char *url;
    char *final_path;
    char *part_path;           /* its directory must exist */
    char label[128];           /* for messages: "train/10006.txt" */
    uint64_t size;
    uint8_t md5[16];
    uint32_t crc32c;
    uint8_t sha256_expected[32];
    int has_md5, has_crc32c, has_sha256;
    /* out */
    int ok;
    int attempts;
    uint8_t sha256[32];
    char error[512];
    /* engine state */
    int state;
    double next_at;
    double retry_after;
} xfer_job;

typedef struct xfer_options {
    int jobs;                  /* concurrent transfers */
    speed_limits speed;        /* abort (and retry) a transfer slower than this */
    long connect_timeout_s;
    retry_policy retry;
    volatile sig_atomic_t *stop;  /* set by a signal handler: stop, keep partial files */
    const char *progress_label;   /* NULL: no progress output */
    /* Called after each job is verified and renamed into place (e.g. to
     * checkpoint a manifest, after fsyncing the directories it renamed into). */
    void (*on_verified)(xfer_job *job, void *ud);
    void *ud;
} xfer_options;

typedef struct xfer_stats {
    uint64_t files_ok, files_failed, bytes_received, retries, resumed;
} xfer_stats;

/* Runs every job. PG_OK when all are verified; PG_ENET when some failed
 * (see each job's `error`); PG_EINTR when stopped by *stop. */
int xfer_run(xfer_job *jobs, size_t n, const xfer_options *opt, xfer_stats *stats, pg_error *err);

#endif
