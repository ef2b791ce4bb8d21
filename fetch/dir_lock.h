/* dir_lock.h - one writer per output folder.
 *
 * `fetch pg19` keeps partial files, a manifest and final files in one folder;
 * two runs into it would truncate each other's partial files and drop each
 * other's manifest entries. dir_lock_acquire() takes an exclusive flock() on
 * DIR/.fetch.lock (created if needed) without waiting, and writes the holder's
 * PID into it, so a second run can say which process holds the folder.
 * The kernel drops the lock when the holder exits, even on kill -9, so a
 * stale lock file never blocks a rerun. dir_lock_release() removes the file
 * while still holding the lock; a run that opened the old file meanwhile
 * notices (the path no longer names the file it locked) and starts over.
 */
#ifndef PG19_FETCH_DIR_LOCK_H
#define PG19_FETCH_DIR_LOCK_H

#include "common/error.h"

#define DIR_LOCK_NAME ".fetch.lock"

typedef struct dir_lock {
    int fd;          /* -1 when not held */
    char path[4096]; /* DIR/.fetch.lock */
} dir_lock;

/* PG_OK with the lock held; PG_EINVAL when another process holds it (the
 * message names its PID when known); PG_EIO when the file cannot be made. */
int dir_lock_acquire(dir_lock *l, const char *dir, pg_error *err);
/* Removes the lock file and drops the lock; a no-op when not held. */
void dir_lock_release(dir_lock *l);

#endif
