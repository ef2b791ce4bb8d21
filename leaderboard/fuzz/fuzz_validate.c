/* fuzz_validate.c - libFuzzer target for the results/entry JSON validation.
 *
 * Feeds arbitrary bytes through lb_parse and, when they parse, through
 * lb_validate in every mode; an input that is a valid entry is also rendered
 * (HTML and Markdown). None of it may crash, hang, leak or trip a sanitizer,
 * whatever the input. Built by `make leaderboard-fuzz`;
 * tests/leaderboard/test_leaderboard.c replays the seed corpus in the normal
 * (sanitizer) test build.
 */
#include <stddef.h>
#include <stdint.h>

#include "leaderboard/render.h"
#include "leaderboard/results.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pg_error err;
    json_t *root = NULL;
    if (lb_parse((const char *)data, size, "fuzz", &root, &err) == PG_OK) {
        lb_validate(root, LB_SUBMISSION, "fuzz", &err);
        lb_validate(root, LB_REPORTED_SUBMISSION, "fuzz", &err);
        if (lb_validate(root, LB_ENTRY, "fuzz", &err) == PG_OK) {
            lb_entry e = {.path = "fuzz.json", .id = "fuzz", .json = root};
            lb_entry_list l = {.items = &e, .n = 1};
            lb_buf b;
            if (lb_render_html(&l, &b, &err) == PG_OK)
                lb_buf_free(&b);
            if (lb_render_markdown(&l, &b, &err) == PG_OK)
                lb_buf_free(&b);
        }
        json_decref(root);
    }
    return 0;
}
