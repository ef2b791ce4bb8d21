/* libFuzzer target for the harness's untrusted inputs: the first byte picks
 * the safetensors reader (weights of a tiny model, through a memfd) or the
 * model-config parser. Beyond "no crash, no sanitizer report", what either
 * accepts must hold up (abort() otherwise, which libFuzzer reports):
 *  - accepted weights are all finite, and no two tensors of the accepted
 *    header share a byte (checked here on the header, independently);
 *  - an accepted config has a layer_norm_eps that is a normal float in (0, 1].
 * Build and run with harness/fuzz/run.sh. */
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "harness/model.h"
#include "harness/safetensors.h"

static pg_model *model;
static int fd = -1;
static char path[64];

/* Properties of weights the reader accepted (see the header comment). */
static void check_accepted(const uint8_t *file, size_t size)
{
    pg_tensor_info info[64];
    int nt = pg_model_tensors(model, info, 64);
    for (int i = 0; i < nt && i < 64; i++)
        for (size_t k = 0; k < info[i].numel; k++)
            if (!isfinite(info[i].data[k]))
                abort(); /* accepted a NaN or an infinity */
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | file[i];
    json_t *h = json_loadb((const char *)file + 8, (size_t)hlen, 0, NULL);
    if (!h)
        abort(); /* accepted a header that is not JSON */
    uint64_t b[64], e[64];
    int n = 0;
    const char *name;
    json_t *t;
    json_object_foreach(h, name, t) {
        json_t *o = json_object_get(t, "data_offsets");
        if (strcmp(name, "__metadata__") == 0 || !o)
            continue;
        if (n == 64)
            abort();
        b[n] = (uint64_t)json_integer_value(json_array_get(o, 0));
        e[n] = (uint64_t)json_integer_value(json_array_get(o, 1));
        n++;
    }
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++)
            if (b[i] < e[j] && b[j] < e[i])
                abort(); /* accepted two tensors that share bytes */
    json_decref(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    pg_error err;
    if (data[0] & 1) {
        pg_model_config cfg;
        if (pg_model_config_parse((const char *)data + 1, size - 1, "fuzz.json", &cfg, &err) ==
                0 &&
            !(isnormal(cfg.ln_eps) && cfg.ln_eps >= FLT_MIN && cfg.ln_eps <= 1.0f))
            abort(); /* accepted an epsilon a float cannot hold */
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
    if (pg_safetensors_load(model, path, vocab, &has_vocab, &err) == 0)
        check_accepted(data + 1, size - 1);
    return 0;
}
