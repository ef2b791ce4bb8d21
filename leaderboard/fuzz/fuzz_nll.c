/* fuzz_nll.c - libFuzzer target for the PG19NLL1 dump reader.
 *
 * Feeds arbitrary bytes to lb_nll_parse (the checks lb_nll_open runs after
 * mmap) and, when they pass, reads every book record and every NLL, so any
 * count or offset the checks failed to bound shows up as an ASan report.
 * Built by `make leaderboard-fuzz`; the seeds in leaderboard/fuzz/nll_corpus
 * are replayed by tests/leaderboard/test_leaderboard.c.
 */
#include <stddef.h>
#include <stdint.h>

#include "leaderboard/nll_dump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_error err;
    lb_nll_dump d;
    if (lb_nll_parse(data, size, "fuzz", &d, &err) != PG_OK)
        return 0;
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
    return 0;
}
