/* safetensors.h - model weights in the safetensors format (what PyTorch users
 * have: `safetensors.torch.save_file(model.state_dict(), path)`).
 *
 * File: u64 little-endian header length N, N bytes of JSON
 *   {"<name>": {"dtype": "F32"|"F16"|"BF16", "shape": [..], "data_offsets": [b, e]},
 *    "__metadata__": {"<k>": "<v>"}}
 * then the data; offsets are relative to the end of the header. Every field
 * is checked against the file size (overflow-checked) before any read; the
 * tensors must be exactly the model's (names and shapes, see models/README.md).
 */
#ifndef PG19_HARNESS_SAFETENSORS_H
#define PG19_HARNESS_SAFETENSORS_H

#include <stdint.h>

#include "common/error.h"
#include "harness/model.h"

/* Header cap: 100 MB of JSON is far beyond any real model. */
#define PG_SAFETENSORS_MAX_HEADER (100u << 20)

/* vocab_sha256 (may be NULL): set to the 32 bytes of the optional metadata
 * entry "vocab_sha256" (64 hex digits: the SHA-256 of the SentencePiece
 * model the weights were trained with), *has_vocab to 1 if present. */
int pg_safetensors_load(pg_model *m, const char *path, uint8_t vocab_sha256[32],
                        int *has_vocab, pg_error *err);
/* Initial weights of a training run: as pg_safetensors_load, except that a
 * DCT may start from a Compressive Transformer's file (the judge's "judge."
 * tensors, absent there, keep their values). */
int pg_safetensors_load_init(pg_model *m, const char *path, pg_error *err);
/* Writes every tensor of m as F32 (crash-safe: temp, fsync, rename). */
int pg_safetensors_save(const pg_model *m, const char *path, pg_error *err);
/* The same as F32 or (bf16 != 0) BF16, naming the vocabulary's SHA-256 in
 * the metadata when vocab_sha is given (`harness run` then checks it against
 * the shards it reads). */
int pg_safetensors_save_as(const pg_model *m, const char *path, int bf16,
                           const uint8_t *vocab_sha, pg_error *err);

#endif
