/* dct.h - the Dynamic Compressive Transformer around the CT forward: the
 * judge's view of each book stream, its decisions, and what REINFORCE needs.
 *
 * A DCT ("family": "dct", harness/model.h) is a Compressive Transformer
 * whose evicted memories are compressed or discarded, block by block, by a
 * judge p(a | s) = softmax(FC(BiLSTM(s))) (harness/dct_judge.h). Before each
 * window pg_dct_decide builds, for every slot,
 *     s = block representations of [compressed memory, memory, window]
 * and decides the blocks of c rows that the window will evict; the keep
 * masks go to the forward (pg_state_set_keep / pg_tstate_set_keep).
 *
 * Block representation: the mean of the block's layer-0 rows, that is of
 * the token embeddings E[t] of its c tokens (for a compressed-memory slot,
 * of the c tokens it was compressed from). Layer 0 because it is the only
 * layer whose rows exist before the window's forward: one decision per
 * evicted block is then made once, before any layer moves its memory, and
 * applied in every layer (the layers' memories stay aligned, as in the CT);
 * and because a compressed slot's original rows are recovered from token ids
 * alone, so the judge keeps no copy of the model's activations. The judge's
 * input carries no gradient (memories are constants for the CT as well).
 *
 * The judge's view of a slot is its own: token FIFOs that mirror the memory
 * (the last n_m input tokens) and the compressed memory (the tokens of the
 * kept blocks, n_cm blocks at most), updated by the decisions themselves.
 *
 * Policies: greedy (the most probable action; evaluation), sample (actions
 * drawn from p with a per-book generator seeded by (seed, the book's first
 * window), so a book's decisions do not depend on its batch neighbours;
 * training and `harness run --dct-sample SEED`), and the forced ones
 * (always compress: exactly the CT; always discard: a Transformer-XL with
 * the same memory), which the tests use.
 *
 * Training (harness train): decisions are recorded (the judge's input, the
 * decided positions and actions); the decisions made before window t are
 * rewarded by window t+1, the first window they change:
 *     advantage = (NLL_baseline(t+1) - NLL_dct(t+1)) / tokens(t+1)
 * with the baseline a frozen evaluator language model (txl-small) reading
 * the same book, and pg_dct_reinforce adds the gradient of
 *     -advantage * sum log p(a | s) - alpha * sum S[p(. | s)]
 * at the current weights (one optimizer step after the decision). A book's
 * last decisions have no next window and are dropped.
 */
#ifndef PG19_HARNESS_DCT_H
#define PG19_HARNESS_DCT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "harness/model.h"

enum pg_dct_policy {
    PG_DCT_GREEDY = 0,
    PG_DCT_SAMPLE,
    PG_DCT_FORCE_COMPRESS,
    PG_DCT_FORCE_DISCARD
};

typedef struct pg_dct pg_dct;

typedef struct pg_dct_stats {
    uint64_t decided;  /* evicted blocks judged */
    uint64_t kept;     /* of those, compressed into the compressed memory */
} pg_dct_stats;

/* A judge driver for n_slots streams of model m (family "dct"; m must
 * outlive it). record != 0 keeps the decisions for pg_dct_reinforce. */
int pg_dct_new(const pg_model *m, int n_slots, int window, int policy, uint64_t seed,
               int record, pg_dct **out, pg_error *err);
void pg_dct_free(pg_dct *d);
/* Start of a book in this slot (also drops its unrewarded decisions). */
void pg_dct_reset_slot(pg_dct *d, int slot);

/* Decides the blocks that each slot's next window (lens[b] tokens of
 * tokens[], slot after slot) evicts and advances the judge's view.
 * keep_out[b] points at slot b's mask (n_out[b] blocks), valid until the
 * next call. Token ids must be < vocab_size (PG_EINVAL). */
int pg_dct_decide(pg_dct *d, const uint32_t *tokens, const int *lens, const uint8_t **keep_out,
                  int *n_out, pg_error *err);

/* REINFORCE for slot b's decisions made one window ago (if any; returns 0
 * and leaves grad alone otherwise), see above: the gradient of
 * weight * (-A sum log p - alpha sum S), A the advantage (centred when
 * centring is on). Accumulates into grad->judge; *logp and *entropy (may be
 * NULL) get the sums over the decided blocks; *n_decided the number of
 * decisions used. */
int pg_dct_reinforce(pg_dct *d, pg_model *grad, int slot, double advantage, double weight,
                     double alpha, double *logp, double *entropy, int *n_decided);
/* Advantage centring (off by default): each stream's advantage minus its
 * running mean (exponential, this decay per rewarded window, started at the
 * first value; kept across books and in the slot state). The frozen
 * baseline model removes the window's difficulty, but not a steady offset:
 * a model that keeps training adapts to the books it reads and pulls ahead
 * of the frozen one, so every advantage comes out positive, and REINFORCE
 * then reinforces whatever was sampled until the policy collapses (seen in
 * training dct-small without it; models/README.md). */
void pg_dct_set_centering(pg_dct *d, double decay);

void pg_dct_stats_get(const pg_dct *d, pg_dct_stats *st);

/* Slot state as floats for training checkpoints (token ids are exact in a
 * float below 2^24; the generator state is split into 16-bit pieces). */
size_t pg_dct_slot_floats(const pg_dct *d);
void pg_dct_slot_get(const pg_dct *d, int slot, float *dst);
int pg_dct_slot_put(pg_dct *d, int slot, const float *src, pg_error *err);

/* Parses "greedy", "sample", "compress", "discard"; -1 otherwise. */
int pg_dct_parse_policy(const char *s);
const char *pg_dct_policy_name(int policy);

#endif
