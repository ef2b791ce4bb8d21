/* keep_mask.c - see keep_mask.h. */
#include "harness/keep_mask.h"

#include <stdlib.h>
#include <string.h>

int pg_keep_masks_init(pg_keep_masks *k, int slots, int cap, pg_error *err)
{
    k->slots = slots;
    k->cap = cap;
    k->keep = calloc((size_t)slots * (size_t)cap, 1);
    k->n = malloc((size_t)slots * sizeof(int));
    if (!k->keep || !k->n) {
        pg_keep_masks_free(k);
        return pg_fail(err, PG_ENOMEM, "keep masks: out of memory for %d slots", slots);
    }
    for (int b = 0; b < slots; b++)
        k->n[b] = -1;
    return 0;
}

void pg_keep_masks_free(pg_keep_masks *k)
{
    free(k->keep);
    free(k->n);
    k->keep = NULL;
    k->n = NULL;
}

int pg_keep_masks_set(pg_keep_masks *k, int slot, const uint8_t *keep, int n, pg_error *err)
{
    if (slot < 0 || slot >= k->slots || n < 0 || n >= k->cap)
        return pg_fail(err, PG_EINVAL, "keep mask: slot %d or %d blocks out of range", slot, n);
    memcpy(k->keep + (size_t)slot * k->cap, keep, (size_t)n);
    k->n[slot] = n;
    return 0;
}

int pg_keep_evicted_blocks(int mem_len, int len, int n_mem, int n_cmem, int rate)
{
    int ev = mem_len + len - n_mem;
    return n_cmem > 0 && ev > 0 ? ev / rate : 0;
}

int pg_keep_masks_check(pg_keep_masks *k, int slot, int evicted, const char *who,
                        pg_error *err)
{
    int n = k->n[slot];
    if (n < 0 || n == evicted)
        return 0;
    for (int b = 0; b < k->slots; b++)
        k->n[b] = -1;
    return pg_fail(err, PG_EINVAL, "%s: slot %d: a keep mask of %d blocks, but this window "
                   "evicts %d", who, slot, n, evicted);
}

void pg_keep_masks_consume(pg_keep_masks *k, const int *lens)
{
    for (int b = 0; b < k->slots; b++)
        if (lens[b] > 0)
            k->n[b] = -1;
}

int pg_keep_masks_compact(const pg_keep_masks *k, int slot, float *rows, int g, size_t width)
{
    if (k->n[slot] < 0)
        return g;
    const uint8_t *keep = k->keep + (size_t)slot * k->cap;
    int kept = 0;
    for (int j = 0; j < g; j++)
        if (keep[j]) {
            if (kept != j)
                memcpy(rows + (size_t)kept * width, rows + (size_t)j * width,
                       sizeof(float) * width);
            kept++;
        }
    return kept;
}
