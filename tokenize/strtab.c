/* strtab.c - open addressing (linear probing) over an index of u32 entry
 * numbers; entries hold the full hash, so probes rarely touch the arena. */
#include "tokenize/strtab.h"

#include <stdlib.h>
#include <string.h>
#define XXH_INLINE_ALL /* header-only xxh3: the hash of a short key inlines */
#include <xxhash.h>

typedef struct entry {
    uint64_t hash, key_off, value;
    uint32_t key_len;
} entry;

struct pg_strtab {
    entry *e;
    size_t n, cap_e;
    uint64_t *slot; /* high 32 bits: hash tag; low 32: entry index + 1; 0 = empty */
    size_t n_slots; /* power of two */
    uint8_t *arena;
    size_t arena_len, arena_cap;
};

pg_strtab *pg_strtab_new(void)
{
    pg_strtab *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->n_slots = 1024;
    if (!(t->slot = calloc(t->n_slots, sizeof *t->slot))) {
        free(t);
        return NULL;
    }
    return t;
}

void pg_strtab_free(pg_strtab *t)
{
    if (!t)
        return;
    free(t->e);
    free(t->slot);
    free(t->arena);
    free(t);
}

void pg_strtab_clear(pg_strtab *t)
{
    t->n = 0;
    t->arena_len = 0;
    memset(t->slot, 0, t->n_slots * sizeof *t->slot);
}

#define TAG(h) ((h) >> 32 << 32)

static int grow_slots(pg_strtab *t)
{
    size_t ns = t->n_slots * 2;
    uint64_t *s = calloc(ns, sizeof *s);
    if (!s)
        return -1;
    for (size_t i = 0; i < t->n; i++) {
        size_t j = t->e[i].hash & (ns - 1);
        while (s[j])
            j = (j + 1) & (ns - 1);
        s[j] = TAG(t->e[i].hash) | (uint64_t)(i + 1);
    }
    free(t->slot);
    t->slot = s;
    t->n_slots = ns;
    return 0;
}

static size_t probe(const pg_strtab *t, const void *key, size_t len, uint64_t h)
{
    size_t j = h & (t->n_slots - 1);
    for (;;) {
        uint64_t s = t->slot[j];
        if (!s)
            return j;
        if (TAG(s) == TAG(h)) {
            const entry *e = &t->e[(uint32_t)s - 1];
            if (e->hash == h && e->key_len == len &&
                memcmp(t->arena + e->key_off, key, len) == 0)
                return j;
        }
        j = (j + 1) & (t->n_slots - 1);
    }
}

uint64_t *pg_strtab_find(const pg_strtab *t, const void *key, size_t len)
{
    uint64_t h = XXH3_64bits(key, len);
    size_t j = probe(t, key, len, h);
    return t->slot[j] ? &t->e[(uint32_t)t->slot[j] - 1].value : NULL;
}

uint64_t *pg_strtab_upsert(pg_strtab *t, const void *key, size_t len, int *is_new)
{
    if (len > UINT32_MAX || t->n >= UINT32_MAX - 1)
        return NULL;
    uint64_t h = XXH3_64bits(key, len);
    size_t j = probe(t, key, len, h);
    if (t->slot[j]) {
        *is_new = 0;
        return &t->e[(uint32_t)t->slot[j] - 1].value;
    }
    if (t->n == t->cap_e) {
        size_t nc = t->cap_e ? t->cap_e * 2 : 1024;
        entry *ne = realloc(t->e, nc * sizeof *ne);
        if (!ne)
            return NULL;
        t->e = ne;
        t->cap_e = nc;
    }
    if (t->arena_len + len > t->arena_cap) {
        size_t nc = t->arena_cap ? t->arena_cap : 65536;
        while (nc < t->arena_len + len)
            nc *= 2;
        uint8_t *na = realloc(t->arena, nc);
        if (!na)
            return NULL;
        t->arena = na;
        t->arena_cap = nc;
    }
    memcpy(t->arena + t->arena_len, key, len);
    entry *e = &t->e[t->n];
    e->hash = h;
    e->key_off = t->arena_len;
    e->key_len = (uint32_t)len;
    e->value = 0;
    t->arena_len += len;
    t->slot[j] = TAG(h) | (uint64_t)(t->n + 1);
    t->n++;
    *is_new = 1;
    if (2 * t->n > t->n_slots && grow_slots(t) != 0) {
        /* keep the table consistent: undo the insert */
        t->n--;
        t->arena_len -= len;
        t->slot[probe(t, key, len, h)] = 0;
        return NULL;
    }
    return &t->e[t->n - 1].value;
}

size_t pg_strtab_count(const pg_strtab *t) { return t->n; }

size_t pg_strtab_bytes(const pg_strtab *t)
{
    return t->arena_cap + t->cap_e * sizeof(entry) + t->n_slots * sizeof(uint64_t);
}

const uint8_t *pg_strtab_key(const pg_strtab *t, size_t i, size_t *len)
{
    *len = t->e[i].key_len;
    return t->arena + t->e[i].key_off;
}

uint64_t pg_strtab_value(const pg_strtab *t, size_t i) { return t->e[i].value; }

static int cmp_keys(const void *a, const void *b, void *ctx)
{
    const pg_strtab *sort_tab = ctx;
    const entry *x = &sort_tab->e[*(const size_t *)a], *y = &sort_tab->e[*(const size_t *)b];
    size_t m = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(sort_tab->arena + x->key_off, sort_tab->arena + y->key_off, m);
    if (c)
        return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

size_t *pg_strtab_sorted(const pg_strtab *t)
{
    size_t *idx = malloc((t->n ? t->n : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    for (size_t i = 0; i < t->n; i++)
        idx[i] = i;
    qsort_r(idx, t->n, sizeof *idx, cmp_keys, (void *)t);
    return idx;
}
