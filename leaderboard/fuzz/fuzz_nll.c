/* fuzz_nll.c - libFuzzer target for the PG19NLL1 dump reader.
 *
 * Feeds arbitrary bytes to lb_nll_parse (the checks lb_nll_open runs after
 * mmap) and, when they pass, reads every book record and every NLL, so any
 * count or offset the checks failed to bound shows up as an ASan report.
 * Each input is tried twice: as given, and with its last four bytes replaced
 * by the right CRC32C, so the fuzzer gets past the checksum to the counts.
 * Built by `make leaderboard-fuzz`; the seeds in leaderboard/fuzz/nll_corpus
 * are replayed by tests/leaderboard/test_leaderboard.c.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/hash.h"
#include "leaderboard/nll_dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size >= 4) {
        uint8_t *copy = malloc(size);
        if (!copy)
            return 0;
        memcpy(copy, data, size);
        uint32_t crc = pg_crc32c_update(0, copy, size - 4);
        for (int i = 0; i < 4; i++)
            copy[size - 4 + i] = (uint8_t)(crc >> (8 * i));
        one(copy, size);
        free(copy);
    }
    return 0;
}

static void one(const uint8_t *data, size_t size)
{
    pg_error err;
    lb_nll_dump d;
    if (lb_nll_parse(data, size, "fuzz", &d, &err) != PG_OK)
        return;
    uint64_t sum = 0, id, n;
    for (uint64_t i = 0; i < d.n_books; i++) {
        lb_nll_book(&d, i, &id, &n);
        sum += n;
    }
    volatile float acc = 0;
    for (uint64_t t = 0; t < d.n_tokens; t++)
        acc += lb_nll_value(&d, t);
    (void)acc;
    if (sum != d.n_tokens)
        __builtin_trap(); /* the parser promised this */
}
