/* fuzz_gb.c - libFuzzer target for the untrusted-input parsers of the
 * Gutenberg subcommands: gb_clean (both modes), gb_zip_extract_text and
 * gb_catalog_parse_rdf. The first byte picks the target.
 * Run: make fuzz-gutenberg [FUZZ_SECONDS=60]. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>

#include "fetch/gb_catalog.h"
#include "fetch/gb_clean.h"
#include "fetch/gb_zip.h"

static int drop_line(void *ctx, long id, char *line)
{
    (void)ctx;
    (void)id;
    free(line);
    return 0;
}

static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    xmlSetGenericErrorFunc(NULL, quiet);
    uint8_t which = data[0] % 4;
    data++;
    size--;
    pg_error err = {0};
    char *out = NULL;
    size_t out_len = 0;
    if (which <= 1) {
        gb_clean_report rep;
        if (gb_clean("fuzz", data, size, which ? GB_CLEAN_PG19 : GB_CLEAN_DEFAULT, &out, &out_len,
                     &rep, &err) == 0) {
            if (!gb_utf8_valid((const uint8_t *)out, out_len))
                abort(); /* the one promise: valid UTF-8 out */
            free(out);
        }
    } else if (which == 2) {
        gb_zip_limits lim;
        gb_zip_limits_default(&lim);
        if (gb_zip_extract_text("fuzz", data, size, &lim, &out, &out_len, NULL, 0, &err) == 0)
            free(out);
    } else {
        gb_catalog_parse_rdf("fuzz", (const char *)data, size, drop_line, NULL, &err);
    }
    return 0;
}
