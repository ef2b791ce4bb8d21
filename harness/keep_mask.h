/* keep_mask.h - the DCT's per-slot keep masks, shared by the evaluation
 * state (model.h, pg_state_set_keep) and the training state (train_model.h,
 * pg_tstate_set_keep).
 *
 * A mask says, for each block of c rows a window evicts, whether its
 * compressed row enters the compressed memory. Masks are one-shot: set
 * before a window, checked against the window's evictions, applied in every
 * layer, and consumed after the window. A slot without a mask keeps every
 * block (the Compressive Transformer).
 */
#ifndef PG19_HARNESS_KEEP_MASK_H
#define PG19_HARNESS_KEEP_MASK_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct pg_keep_masks {
    uint8_t *keep;  /* [slots, cap] */
    int *n;         /* [slots] blocks in the mask; < 0: no mask */
    int slots, cap;
} pg_keep_masks;

/* Room for masks of at most cap - 1 blocks; PG_ENOMEM on failure. */
int pg_keep_masks_init(pg_keep_masks *k, int slots, int cap, pg_error *err);
void pg_keep_masks_free(pg_keep_masks *k);
int pg_keep_masks_set(pg_keep_masks *k, int slot, const uint8_t *keep, int n, pg_error *err);
/* Blocks of c rows evicted when len rows join a memory of mem_len of n_mem
 * rows (whole blocks only: a remainder after a partial window is dropped);
 * 0 without a compressed memory. */
int pg_keep_evicted_blocks(int mem_len, int len, int n_mem, int n_cmem, int rate);
/* PG_EINVAL (and every mask dropped) when slot's mask is not of `evicted`
 * blocks; `who` names the caller in the message. */
int pg_keep_masks_check(pg_keep_masks *k, int slot, int evicted, const char *who,
                        pg_error *err);
/* After a window: the masks of slots that had tokens are used up. */
void pg_keep_masks_consume(pg_keep_masks *k, const int *lens);
/* Moves slot's kept rows of rows[g, width] to the front, in order, and
 * returns how many (g when the slot has no mask). */
int pg_keep_masks_compact(const pg_keep_masks *k, int slot, float *rows, int g, size_t width);

#endif
