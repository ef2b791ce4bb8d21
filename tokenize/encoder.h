/* encoder.h - lossless book <-> token ids on top of a SentencePiece model.
 *
 * A book is cut into units (words.h); each unit is encoded on its own, so a
 * word's tokens never depend on its neighbours and a per-unit memo is exact.
 * Inside a unit, runs that SentencePiece cannot carry losslessly (bytes that
 * are not valid UTF-8, NUL, and U+2581 which SentencePiece uses for the
 * space) become byte-fallback tokens <0xNN>; everything else goes through
 * SentencePiece. Decoding is a table lookup per id (byte pieces to their
 * byte, U+2581 to a space), so decode(encode(book)) == book byte for byte.
 */
#ifndef PG19_ENCODER_H
#define PG19_ENCODER_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

typedef struct pg_encoder pg_encoder;  /* shared, read-only after open */
typedef struct pg_encode_ctx pg_encode_ctx; /* one per thread: memo + scratch */

int pg_encoder_open(const char *model_path, pg_encoder **out, pg_error *err);
void pg_encoder_free(pg_encoder *e);
uint32_t pg_encoder_vocab_size(const pg_encoder *e);
uint32_t pg_encoder_bos_id(const pg_encoder *e);
const uint8_t *pg_encoder_model_sha256(const pg_encoder *e); /* of the model file */

/* memo_cap_bytes = 0 disables the memo. */
pg_encode_ctx *pg_encode_ctx_new(const pg_encoder *e, size_t memo_cap_bytes);
void pg_encode_ctx_free(pg_encode_ctx *c);

typedef struct pg_encoded {
    uint32_t *ids;
    uint8_t *starts; /* 1 where the token opens a word */
    size_t n, cap;
    uint64_t n_words;
} pg_encoded;
void pg_encoded_free(pg_encoded *o);

/* Encodes a whole book into out (reset first). */
int pg_encode_book(pg_encode_ctx *c, const uint8_t *text, size_t len, pg_encoded *out,
                   pg_error *err);
/* Decodes ids into *text (malloc'ed). */
int pg_decode(const pg_encoder *e, const uint32_t *ids, size_t n, uint8_t **text, size_t *len,
              pg_error *err);
/* SentencePiece on plain text only: valid UTF-8 with no NUL and no U+2581. */
int pg_encoder_is_plain(const uint8_t *text, size_t len);
/* Byte length of the plain character at s[i], or 0 when it is not plain. */
size_t pg_plain_char_len(const uint8_t *s, size_t len, size_t i);
/* Same; when not plain, *bad_len = the bytes that go as byte tokens. */
size_t pg_plain_char_len_or_bad(const uint8_t *s, size_t len, size_t i, size_t *bad_len);

/* The --check-spm comparison, streamed: SentencePiece runs over the plain text
 * in spans of about PG_SPM_CHECK_SPAN bytes, each cut just before an ASCII
 * space/TAB/CR/LF that follows a printable ASCII character (a word end). No
 * vocabulary piece crosses a word end (tokenize/README.md), so the Viterbi
 * lattice of the whole text splits there and the spans together are exactly
 * the whole-text lattice, while memory stays that of one span (SentencePiece
 * holds ~200 bytes of lattice per input byte: 12 GB for a 50 MB book in one
 * call). A span with no word end runs to the next one, as long as a unit.
 * Each span's SentencePiece ids are compared with ids[] (our encoding of the
 * same text); where they differ, the spans' scores (pg_encoder_score) decide:
 * within tolerance a tie, ours higher = SentencePiece lost float resolution,
 * SentencePiece higher = a real error in ours. */
#define PG_SPM_CHECK_SPAN ((size_t)64 << 10)
typedef struct pg_spm_check {
    uint64_t spans, equal, ties, ours_better, spm_better;
} pg_spm_check;
int pg_check_against_spm(const pg_encoder *e, const uint8_t *text, size_t len,
                         const uint32_t *ids, size_t n, pg_spm_check *out, pg_error *err);

/* Sum of the pieces' log probabilities (the unigram objective), in double. */
double pg_encoder_score(const pg_encoder *e, const uint32_t *ids, size_t n);

#endif
