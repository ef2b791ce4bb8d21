/* plausible.h - what a PG-19 result can physically be.
 *
 * The validator (results.c) checks that the numbers of a result agree with
 * one another; a file can agree with itself and still be nonsense (a run
 * dated 2999, 2^50 tokens scored with NLL 0, a model name with a zero-width
 * character that looks like, and slugs like, another model's). These rules
 * bound what is possible; each has a short name that the error message
 * quotes, so a refused submitter knows which rule to argue with. The table
 * of rules and their reasons is in leaderboard/README.md.
 */
#ifndef PG19_LEADERBOARD_PLAUSIBLE_H
#define PG19_LEADERBOARD_PLAUSIBLE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

/* No book is larger than 1 GiB: PG-19's largest file is a few tens of MB, and
 * the shard format indexes books with 64-bit offsets, so this bounds only
 * nonsense. With tokens <= bytes it bounds the token count too. */
#define LB_MAX_BOOK_BYTES ((int64_t)1 << 30)

/* Bits per byte below this are refused: Shannon (1951) estimated English at
 * 0.6 to 1.3 bits per character and the best PG-19 models reach about 0.9
 * bits per byte; 0.05 is an order of magnitude below any of these, so a
 * subset of unusually repetitive books still passes, while an NLL of 0 (a
 * model certain of every token) does not. Prefix runs, whose bytes are
 * unknown, are held to the same bound per token (a token covers at least
 * one byte, so bits per token >= bits per byte). */
#define LB_MIN_BITS_PER_BYTE 0.05

/* Dates may be at most this far ahead of the validating machine's clock
 * (clock skew between the machine that ran the evaluation and this one). */
#define LB_DATE_SKEW_S 86400
/* PG-19 was published in November 2019 (Rae et al., arXiv:1911.05507): no
 * run on it is older. */
#define LB_EARLIEST_DATE "2019-11-01T00:00:00Z"

/* Rule names, quoted by the messages. */
#define LB_RULE_TOKENS_BYTES "tokens <= bytes"
#define LB_RULE_WORDS_TOKENS "words <= tokens"
#define LB_RULE_WORDS_BYTES "words <= bytes"
#define LB_RULE_BOOK_BYTES "bytes <= books x 1 GiB"
#define LB_RULE_PREFIX_TOKENS "prefix tokens <= books x chunk_tokens"
#define LB_RULE_MIN_BPB "bits per byte >= 0.05"
#define LB_RULE_DATE_FUTURE "date not in the future"
#define LB_RULE_DATE_PG19 "date not before PG-19"
#define LB_RULE_NAME_NFC "names in Unicode NFC"
#define LB_RULE_NAME_VISIBLE "names of visible characters"
#define LB_RULE_NAME_SLUG "one spelling per name slug"

/* Per-token tolerance of a re-run: |rerun - dump| <= abs + rel * |dump|.
 *
 * CPU, fp32 (the harness: OpenBLAS sgemm, float activations, NLLs written as
 * f32): abs 1e-4, rel 1e-5. A book's NLLs are bitwise the same for any batch
 * size, thread count and set of books evaluated beside it (harness/model.c
 * cuts every matrix product the same way; measured: 0 of 4,500 tokens
 * differ between batch 1 / 1 thread, batch 4 / 2 threads and a --books
 * subset), so a re-run on the same machine reproduces the dump exactly.
 * Another machine may get other OpenBLAS kernels (another summation order,
 * with or without FMA). Measured on the 4,500 tokens of the leaderboard test
 * shards, SkylakeX kernels against Haswell, Sandybridge and Prescott ones
 * (largest |difference| / largest ratio to this tolerance): random-init
 * ct-tiny 9.5e-7, bench-mid (8 layers) 1.9e-6, ct36 (36 layers, 768 tokens)
 * 2.9e-6 / 0.018; bench-mid with its output scaled 20x (logits near 80,
 * token perplexity 1e13, far sharper than a trained model) 4.8e-5 / 0.22.
 * The deviation grows with the logits' magnitude, not with depth, hence
 * the absolute part. Against tampering it is tight: changing every token by
 * as much as it allows (about 1.3e-4 nats at a typical NLL of 3) moves a
 * word perplexity by about 1.7e-4 relative (1.3 tokens per word), 0.006 at
 * a perplexity of 33. */
typedef struct lb_tolerance {
    const char *backend, *precision;
    double abs, rel;
} lb_tolerance;

/* The tolerance of a backend and precision, or NULL when none is documented
 * (such an entry cannot be verified). */
const lb_tolerance *lb_tolerance_for(const char *backend, const char *precision);
/* The backend and precision of the run that made a validated entry: "cpu"
 * when hardware.gpu is null, else "gpu"; "fp32" (the only precision the
 * harness and the PG19NLL1 dump have). */
void lb_entry_backend(const json_t *entry, const char **backend, const char **precision);

/* Seconds since the epoch of a valid "YYYY-MM-DDTHH:MM:SSZ" date. */
time_t lb_date_seconds(const char *date);

/* Checks a display name (model or tokenizer name; valid UTF-8 without
 * control characters, as results.c has checked): it must be in Unicode NFC,
 * hold only visible characters (no format, default-ignorable, unassigned,
 * private-use or separator characters other than U+0020) and neither start
 * nor end with a space nor start with a combining mark. Returns NULL when
 * it is fine, else the rule it breaks, with the reason in why. */
const char *lb_name_rule_broken(const char *name, char *why, size_t cap);

#endif
