/* libFuzzer target for the harness's untrusted inputs: the first byte picks
 * the safetensors reader (weights of a tiny model, through a memfd) or the
 * model-config parser. Build and run with harness/fuzz/run.sh. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness/model.h"
#include "harness/safetensors.h"

static pg_model *model;
static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    pg_error err;
    if (data[0] & 1) {
        pg_model_config cfg;
        pg_model_config_parse((const char *)data + 1, size - 1, "fuzz.json", &cfg, &err);
        return 0;
    }
    if (!model) {
        /* the model of harness/fuzz/tiny.json */
        pg_model_config c = {.vocab_size = 5, .d_model = 4, .n_layer = 1, .n_head = 1,
                             .d_head = 4, .d_ff = 4, .window = 2, .memory = 2,
                             .compressed_memory = 2, .compression_rate = 2,
                             .compression = PG_COMPRESS_CONV, .dilation = 2, .ln_eps = 1e-5f};
        snprintf(c.name, sizeof c.name, "tiny");
        snprintf(c.family, sizeof c.family, "compressive-transformer");
        if (pg_model_new(&c, &model, &err))
            return 0;
        fd = memfd_create("weights", 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) || pwrite(fd, data + 1, size - 1, 0) != (ssize_t)(size - 1))
        return 0;
    uint8_t vocab[32];
    int has_vocab;
    pg_safetensors_load(model, path, vocab, &has_vocab, &err);
    return 0;
}
