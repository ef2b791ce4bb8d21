/* spm_shim.h - the C face of SentencePiece (spm_shim.cc is the one C++ file).
 *
 * Loading a model, encoding a UTF-8 string to ids, reading the pieces, and
 * training a unigram model from (sentence, frequency) pairs handed over by a
 * C callback. Nothing here normalises or splits text: the callers do that.
 */
#ifndef PG19_SPM_SHIM_H
#define PG19_SPM_SHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#include "common/error.h" /* inside extern "C": common/ headers are plain C */

typedef struct pg_spm pg_spm;

int pg_spm_load(const char *model_path, pg_spm **out, pg_error *err);
void pg_spm_free(pg_spm *m);
uint32_t pg_spm_vocab_size(const pg_spm *m);
/* Piece text of id (as stored: spaces appear as U+2581). */
const char *pg_spm_piece(const pg_spm *m, uint32_t id, size_t *len);
/* -1 when the piece is absent. */
int64_t pg_spm_piece_id(const pg_spm *m, const char *piece);
int pg_spm_is_byte(const pg_spm *m, uint32_t id);
int pg_spm_is_control(const pg_spm *m, uint32_t id);
int pg_spm_is_unknown(const pg_spm *m, uint32_t id);
int64_t pg_spm_bos_id(const pg_spm *m);
float pg_spm_score(const pg_spm *m, uint32_t id); /* the piece's log probability */ /* -1 when the model has none */
/* Encodes text[0..len) (which must be valid UTF-8) and appends the ids to
 * *ids (grown with realloc, *cap its capacity, *n its length). Thread-safe. */
int pg_spm_encode(const pg_spm *m, const char *text, size_t len, uint32_t **ids, size_t *n,
                  size_t *cap, pg_error *err);

/* Training: next() returns 1 and sets sentence, len and freq for each training
 * sentence, 0 at the end; sentences contain no tab. Options are
 * SentencePiece trainer flags (name, value) pairs, NULL-terminated. The model
 * bytes are returned in *model (malloc'ed). */
typedef int (*pg_spm_next_fn)(void *ctx, const char **sentence, size_t *len, uint64_t *freq);
int pg_spm_train(const char *const *options, pg_spm_next_fn next, void *ctx, char **model,
                 size_t *model_len, pg_error *err);

#ifdef __cplusplus
}
#endif
#endif
