/* backend.c - see backend.h: choosing and opening a backend. */
#include "harness/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int pg_backend_parse_device(const char *s, pg_backend_config *cfg)
{
    if (!s)
        return -1;
    if (strcmp(s, "cpu") == 0) {
        cfg->device = PG_DEVICE_CPU;
        return 0;
    }
    if (strcmp(s, "auto") == 0) {
        cfg->device = PG_DEVICE_AUTO;
        cfg->device_index = -1;
        return 0;
    }
    if (strcmp(s, "cuda") == 0) {
        cfg->device = PG_DEVICE_CUDA;
        cfg->device_index = -1;
        return 0;
    }
    if (strncmp(s, "cuda:", 5) == 0 && s[5] >= '0' && s[5] <= '9') {
        char *end;
        long n = strtol(s + 5, &end, 10);
        if (*end || n < 0 || n > 1023)
            return -1;
        cfg->device = PG_DEVICE_CUDA;
        cfg->device_index = (int)n;
        return 0;
    }
    return -1;
}

int pg_backend_parse_precision(const char *s, pg_backend_config *cfg)
{
    if (s && strcmp(s, "fp32") == 0)
        cfg->precision = PG_PRECISION_FP32;
    else if (s && strcmp(s, "bf16") == 0)
        cfg->precision = PG_PRECISION_BF16;
    else
        return -1;
    return 0;
}

const char *pg_precision_name(int precision)
{
    return precision == PG_PRECISION_BF16 ? "bf16" : precision == PG_PRECISION_FP32 ? "fp32"
                                                                                 : "default";
}

int pg_backend_open(const pg_model *m, const pg_backend_config *cfg, int batch, int max_slots,
                    int window, pg_backend **out, char *note, size_t note_cap, pg_error *err)
{
    static const pg_backend_config cpu_default = {PG_DEVICE_CPU, 0, PG_PRECISION_DEFAULT, 0, 0};
    if (!cfg)
        cfg = &cpu_default;
    if (note && note_cap)
        note[0] = 0;
    *out = NULL;
    if (max_slots < 1)
        max_slots = 1;
    int is_dct = pg_model_is_dct(&m->cfg);
    if (is_dct && cfg->device == PG_DEVICE_CUDA)
        return pg_fail(err, PG_EINVAL, "model %s: the DCT's judge runs on the CPU backend only "
                       "(use --device cpu)", m->cfg.name);
    if (is_dct && cfg->device == PG_DEVICE_AUTO && note && note_cap)
        snprintf(note, note_cap, "the DCT's judge runs on the CPU backend only");
    if (!is_dct && (cfg->device == PG_DEVICE_CUDA || cfg->device == PG_DEVICE_AUTO)) {
        int rc = pg_backend_cuda_open(m, cfg, batch, max_slots, window, out, err);
        if (rc == 0 || cfg->device == PG_DEVICE_CUDA)
            return rc;
        if (note && note_cap)
            snprintf(note, note_cap, "no usable GPU (%s)", err ? err->msg : "?");
    }
    if (cfg->precision == PG_PRECISION_BF16)
        return pg_fail(err, PG_EINVAL, "the CPU backend computes in fp32 only (--precision bf16 "
                       "needs --device cuda)");
    if (batch <= 0)
        batch = pg_get_threads() > 2 ? pg_get_threads() : 2;
    if (batch > max_slots)
        batch = max_slots;
    int rc = pg_backend_cpu_open(m, batch, window, out, err);
    if (!rc && is_dct && cfg->dct_policy != 0 &&
        (rc = pg_backend_cpu_set_dct(*out, cfg->dct_policy, cfg->dct_seed, err))) {
        pg_backend_free(*out);
        *out = NULL;
    }
    return rc;
}

void pg_backend_free(pg_backend *be)
{
    if (be)
        be->ops->free(be);
}
