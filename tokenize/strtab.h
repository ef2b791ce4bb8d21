/* strtab.h - a hash map from byte strings to a u64 value, keys copied into
 * one arena, entries kept in insertion order (so iteration is deterministic).
 * Used for word-type counts, unit counts for training, and the encoder memo. */
#ifndef PG19_STRTAB_H
#define PG19_STRTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct pg_strtab pg_strtab;

pg_strtab *pg_strtab_new(void);
void pg_strtab_free(pg_strtab *t);
void pg_strtab_clear(pg_strtab *t);
/* The value slot of key (0 if new, *is_new set); NULL when out of memory or
 * the key is longer than 4 GB. The pointer is valid until the next upsert. */
uint64_t *pg_strtab_upsert(pg_strtab *t, const void *key, size_t len, int *is_new);
uint64_t *pg_strtab_find(const pg_strtab *t, const void *key, size_t len);
size_t pg_strtab_count(const pg_strtab *t);
/* Bytes held (arena + tables), for memory caps. */
size_t pg_strtab_bytes(const pg_strtab *t);
/* Entry i in insertion order. */
const uint8_t *pg_strtab_key(const pg_strtab *t, size_t i, size_t *len);
uint64_t pg_strtab_value(const pg_strtab *t, size_t i);
/* Entry indices sorted by key bytes (memcmp order, shorter first on ties);
 * caller frees. NULL when out of memory. */
size_t *pg_strtab_sorted(const pg_strtab *t);

#endif
