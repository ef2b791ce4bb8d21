/* atomic_file.h - crash-safe file writes: temp file, fsync, rename, fsync dir.
 *
 * A reader never sees a half-written file under its final name: data goes to
 * "<path>.tmp.<pid>" in the same directory, is fsynced, renamed over <path>,
 * and the directory is fsynced so the rename itself survives a crash.
 */
#ifndef PG19_ATOMIC_FILE_H
#define PG19_ATOMIC_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "common/error.h"

typedef struct pg_atomic_file {
    FILE *fp;          /* write through this */
    char *final_path;
    char *tmp_path;
} pg_atomic_file;

int pg_atomic_open(pg_atomic_file *af, const char *path, pg_error *err);
/* Flushes, fsyncs, renames into place and fsyncs the directory. Closes af. */
int pg_atomic_commit(pg_atomic_file *af, pg_error *err);
/* Drops the temp file; the final path is untouched. Safe after commit. */
void pg_atomic_abort(pg_atomic_file *af);

/* Whole-buffer convenience wrapper. */
int pg_write_file_atomic(const char *path, const void *data, size_t len, pg_error *err);

/* fsync the directory containing path (after a rename into it). */
int pg_fsync_parent_dir(const char *path, pg_error *err);
/* mkdir -p */
int pg_mkdirs(const char *dir, pg_error *err);
/* Reads a whole file, capped at max_bytes (PG_ELIMIT beyond). NUL-terminated. */
int pg_read_file(const char *path, size_t max_bytes, char **out, size_t *len, pg_error *err);

#endif
