/* entries.h - the leaderboard's entry files: one validated JSON file per result.
 *
 * An accepted submission becomes `<split>-<model slug>-<id>.json` in the
 * entries directory, where <id> is the first 12 hex digits of the SHA-256 of
 * the submission's canonical form (compact, sorted keys), so submitting the
 * same result twice is refused instead of duplicated. Files are written whole
 * or not at all: a temp file is written and fsynced, then hard-linked to its
 * final name (which fails if the name exists) and the directory is fsynced.
 */
#ifndef PG19_LEADERBOARD_ENTRIES_H
#define PG19_LEADERBOARD_ENTRIES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"

#define LB_MAX_ENTRIES 10000

typedef struct lb_entry {
    char *path;   /* file path */
    char *id;     /* file name without ".json": the entry's stable id */
    json_t *json; /* validated entry */
} lb_entry;

typedef struct lb_entry_list {
    lb_entry *items;
    size_t n;
} lb_entry_list;

/* A new entry: a copy of a validated submission plus its provenance.
 * reported=0: {"kind":"measured","source":source or null,"verified":false}.
 * reported=1: {"kind":"reported","source":source,...}; source is required. */
int lb_entry_from_submission(const json_t *submission, int reported, const char *source,
                             const char *notes, json_t **entry, pg_error *err);
/* SHA-256 of the entry's canonical form (compact JSON, sorted keys, reals in
 * 17 digits, without provenance): the entry's id is its first 12 hex digits,
 * the --sample seed its first 8 bytes. */
int lb_entry_content_sha256(const json_t *entry, uint8_t sha[32], pg_error *err);
/* The file name an entry gets ("<split>-<slug>-<id12>.json"). */
int lb_entry_filename(const json_t *entry, char *out, size_t cap, pg_error *err);
/* The entry as written: 2-space indented JSON, reals in the fewest digits that
 * read back exactly, and a final newline. */
char *lb_entry_serialize(const json_t *entry);
/* Writes a new entry file in dir; fails (PG_EINVAL) if that name exists. */
int lb_entry_store(const char *dir, const json_t *entry, char *path_out, size_t cap,
                   pg_error *err);
/* Fails unless path's file name is the one lb_entry_filename gives the entry:
 * the name commits to the result's content, so a hand-edited number shows.
 * Also checks that a sampled reproduction's seed is the content's. */
int lb_entry_check_name(const char *path, const json_t *entry, pg_error *err);
/* Refuses an entry whose model name has the slug of an entry in dir with a
 * differently spelt name ("tiny-ct" and "Tiny CT", or a look-alike): one
 * slug, one spelling (plausibility rule "one spelling per name slug"). */
int lb_entry_check_slug(const char *dir, const json_t *entry, pg_error *err);
/* Atomically replaces an existing entry file (used by verify). */
int lb_entry_rewrite(const char *path, const json_t *entry, pg_error *err);
/* Loads and validates every *.json in dir, sorted by name. A single invalid
 * file fails the whole load, naming the file. */
int lb_entries_load(const char *dir, lb_entry_list *out, pg_error *err);
void lb_entries_free(lb_entry_list *list);

#endif
