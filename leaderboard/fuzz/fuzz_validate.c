/* fuzz_validate.c - libFuzzer target for the results/entry JSON validation.
 *
 * Feeds arbitrary bytes through lb_parse and, when they parse, through
 * lb_validate in every mode. The validator must never crash, hang, leak or
 * trip a sanitizer, whatever the input. Built by `make leaderboard-fuzz`;
 * tests/leaderboard/test_leaderboard.c replays the seed corpus in the normal
 * (sanitizer) test build.
 */
#include <stddef.h>
#include <stdint.h>

#include "leaderboard/results.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_error err;
    json_t *root = NULL;
    if (lb_parse((const char *)data, size, "fuzz", &root, &err) == PG_OK) {
        lb_validate(root, LB_SUBMISSION, "fuzz", &err);
        lb_validate(root, LB_REPORTED_SUBMISSION, "fuzz", &err);
        lb_validate(root, LB_ENTRY, "fuzz", &err);
        json_decref(root);
    }
    return 0;
}
