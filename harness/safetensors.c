/* safetensors.c - see safetensors.h */
#include "harness/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/hash.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

static int read_exact(int fd, void *buf, size_t len, uint64_t off, const char *path,
                      pg_error *err)
{
    char *p = buf;
    while (len) {
        ssize_t r = pread(fd, p, len, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return pg_fail(err, PG_EIO, "%s: read at offset %llu: %s", path,
                           (unsigned long long)off, r < 0 ? strerror(errno) : "unexpected end");
        p += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

static float half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* One tensor of the header, validated, before its bytes are read. */
typedef struct st_entry {
    int ti;              /* index in the model's tensor list */
    const char *name;    /* the header's key (owned by the JSON tree) */
    uint64_t begin, end; /* data_offsets, relative to the data section */
    size_t esize;        /* 4 (F32) or 2 (F16, BF16) */
    int bf16;
} st_entry;

static int cmp_begin(const void *a, const void *b)
{
    const st_entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->end < y->end ? -1
                                                               : x->end > y->end;
}

/* Sorts entries by offset and refuses two tensors that share a byte: each
 * tensor must own its bytes (the safetensors format says so, and an
 * overlap lets one stored block pose as several tensors). */
static int check_no_overlap(st_entry *e, int n, const char *path, pg_error *err)
{
    qsort(e, (size_t)n, sizeof *e, cmp_begin);
    int widest = -1; /* among e[0..i-1], the entry that ends last */
    for (int i = 0; i < n; i++) {
        if (widest >= 0 && e[i].begin < e[widest].end)
            return pg_fail(err, PG_ECORRUPT, "%s: tensors %s [%llu, %llu) and %s [%llu, %llu) "
                           "overlap in the file (each tensor must have bytes of its own)", path,
                           e[widest].name, (unsigned long long)e[widest].begin,
                           (unsigned long long)e[widest].end, e[i].name,
                           (unsigned long long)e[i].begin, (unsigned long long)e[i].end);
        if (widest < 0 || e[i].end > e[widest].end)
            widest = i;
    }
    return 0;
}

/* The first NaN or infinity of a loaded tensor, named with its index: such
 * a weight makes every score that depends on it meaningless, and without
 * this check it shows only at the end of a long run. */
static int check_finite(const pg_tensor_info *t, const char *path, pg_error *err)
{
    for (size_t i = 0; i < t->numel; i++) {
        if (isfinite(t->data[i]))
            continue;
        char idx[96];
        int len = 0;
        size_t rest = i, stride = t->numel;
        for (int k = 0; k < t->ndim && len < (int)sizeof idx; k++) {
            stride /= (size_t)t->shape[k];
            len += snprintf(idx + len, sizeof idx - (size_t)len, "%s%zu", k ? ", " : "",
                            rest / stride);
            rest %= stride;
        }
        return pg_fail(err, PG_ECORRUPT, "%s: tensor %s holds %s at [%s] (element %zu of %zu): "
                       "the weights are broken (a diverged or damaged checkpoint)", path,
                       t->name, isnan(t->data[i]) ? "NaN" : t->data[i] > 0 ? "+Inf" : "-Inf",
                       idx, i, t->numel);
    }
    return 0;
}

/* may_lack: a name prefix whose tensors may be absent (left as they are) */
static int load_impl(pg_model *m, const char *path, uint8_t vocab_sha256[32], int *has_vocab,
                     const char *may_lack, pg_error *err)
{
    if (has_vocab)
        *has_vocab = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return pg_fail(err, PG_ENOTFOUND,
                           "weights file %s not found. pg19 does not ship trained weights for "
                           "%s: train the model (tensor names and shapes in models/README.md) "
                           "and save it with safetensors.torch.save_file(model.state_dict(), "
                           "path), then pass --weights PATH; or run with --random-init SEED "
                           "(throughput and testing only)", path, m->cfg.name);
        return pg_fail(err, PG_EIO, "%s: open: %s", path, strerror(errno));
    }
    int rc = PG_ECORRUPT;
    json_t *root = NULL;
    char *hdr = NULL;
    unsigned char *seen = NULL;
    pg_tensor_info *info = NULL;
    st_entry *ent = NULL;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = pg_fail(err, PG_EIO, "%s: stat: %s", path, strerror(errno));
        goto done;
    }
    uint64_t fsize = (uint64_t)st.st_size, hlen;
    if (fsize < 8) {
        pg_fail(err, PG_ECORRUPT, "%s: %llu bytes, too short for a safetensors file", path,
                (unsigned long long)fsize);
        goto done;
    }
    uint8_t lenb[8];
    if ((rc = read_exact(fd, lenb, 8, 0, path, err)))
        goto done;
    rc = PG_ECORRUPT;
    hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = (hlen << 8) | lenb[i];
    if (hlen < 2 || hlen > fsize - 8 || hlen > PG_SAFETENSORS_MAX_HEADER) {
        pg_fail(err, PG_ECORRUPT, "%s: header length %llu does not fit the file (%llu bytes)",
                path, (unsigned long long)hlen, (unsigned long long)fsize);
        goto done;
    }
    uint64_t data_start = 8 + hlen, data_len = fsize - data_start;
    hdr = malloc((size_t)hlen);
    if (!hdr) {
        rc = pg_fail(err, PG_ENOMEM, "%s: header of %llu bytes", path, (unsigned long long)hlen);
        goto done;
    }
    if ((rc = read_exact(fd, hdr, (size_t)hlen, 8, path, err)))
        goto done;
    rc = PG_ECORRUPT;
    json_error_t jerr;
    root = json_loadb(hdr, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        pg_fail(err, PG_ECORRUPT, "%s: header is not a JSON object: %s", path,
                root ? "wrong type" : jerr.text);
        goto done;
    }
    int nt = pg_model_tensors(m, NULL, 0);
    info = calloc((size_t)nt, sizeof *info);
    seen = calloc((size_t)nt, 1);
    ent = calloc((size_t)nt, sizeof *ent);
    if (!info || !seen || !ent) {
        rc = pg_fail(err, PG_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    pg_model_tensors(m, info, nt);
    const char *name;
    json_t *t;
    int loaded = 0;
    json_object_foreach(root, name, t) {
        if (strcmp(name, "__metadata__") == 0) {
            json_t *vs = json_object_get(t, "vocab_sha256");
            if (vs && vocab_sha256) {
                if (!json_is_string(vs) || json_string_length(vs) != 64 ||
                    pg_unhex(json_string_value(vs), vocab_sha256, 32)) {
                    pg_fail(err, PG_ECORRUPT, "%s: metadata vocab_sha256 is not 64 hex digits",
                            path);
                    goto done;
                }
                if (has_vocab)
                    *has_vocab = 1;
            }
            continue;
        }
        int ti = -1;
        for (int i = 0; i < nt; i++)
            if (strcmp(info[i].name, name) == 0)
                ti = i;
        if (ti < 0) {
            pg_fail(err, PG_ECORRUPT, "%s: tensor \"%.200s\" is not part of model %s", path, name,
                    m->cfg.name);
            goto done;
        }
        pg_tensor_info *ti_ = &info[ti];
        json_t *dt = json_object_get(t, "dtype"), *shape = json_object_get(t, "shape");
        json_t *offs = json_object_get(t, "data_offsets");
        if (!json_is_object(t) || !json_is_string(dt) || !json_is_array(shape) ||
            !json_is_array(offs) || json_array_size(offs) != 2) {
            pg_fail(err, PG_ECORRUPT, "%s: tensor %s: needs dtype, shape and data_offsets[2]",
                    path, name);
            goto done;
        }
        size_t esize;
        const char *dts = json_string_value(dt);
        if (strcmp(dts, "F32") == 0)
            esize = 4;
        else if (strcmp(dts, "F16") == 0 || strcmp(dts, "BF16") == 0)
            esize = 2;
        else {
            pg_fail(err, PG_ECORRUPT, "%s: tensor %s: dtype %.20s (F32, F16 or BF16 expected)",
                    path, name, dts);
            goto done;
        }
        if ((int)json_array_size(shape) != ti_->ndim) {
            pg_fail(err, PG_ECORRUPT, "%s: tensor %s has %zu dimensions, model expects %d", path,
                    name, json_array_size(shape), ti_->ndim);
            goto done;
        }
        for (int k = 0; k < ti_->ndim; k++) {
            json_t *e = json_array_get(shape, (size_t)k);
            if (!json_is_integer(e) || json_integer_value(e) != ti_->shape[k]) {
                pg_fail(err, PG_ECORRUPT, "%s: tensor %s: dimension %d is not %lld as the "
                        "config implies", path, name, k, (long long)ti_->shape[k]);
                goto done;
            }
        }
        json_t *b = json_array_get(offs, 0), *e = json_array_get(offs, 1);
        if (!json_is_integer(b) || !json_is_integer(e) || json_integer_value(b) < 0 ||
            json_integer_value(e) < json_integer_value(b) ||
            (uint64_t)json_integer_value(e) > data_len) {
            pg_fail(err, PG_ECORRUPT, "%s: tensor %s: data_offsets outside the %llu data bytes",
                    path, name, (unsigned long long)data_len);
            goto done;
        }
        uint64_t nbytes = (uint64_t)json_integer_value(e) - (uint64_t)json_integer_value(b);
        if (ti_->numel > UINT64_MAX / esize || nbytes != ti_->numel * esize) {
            pg_fail(err, PG_ECORRUPT, "%s: tensor %s: %llu bytes for %zu elements of %s", path,
                    name, (unsigned long long)nbytes, ti_->numel, dts);
            goto done;
        }
        if (seen[ti]++) { /* JSON_REJECT_DUPLICATES makes this unreachable; kept as a guard */
            pg_fail(err, PG_ECORRUPT, "%s: tensor %s twice", path, name);
            goto done;
        }
        ent[loaded] = (st_entry){.ti = ti, .name = name,
                                 .begin = (uint64_t)json_integer_value(b),
                                 .end = (uint64_t)json_integer_value(e), .esize = esize,
                                 .bf16 = strcmp(dts, "BF16") == 0};
        loaded++;
    }
    if (loaded != nt) {
        for (int i = 0; i < nt; i++)
            if (!seen[i] &&
                !(may_lack && strncmp(info[i].name, may_lack, strlen(may_lack)) == 0)) {
                pg_fail(err, PG_ECORRUPT, "%s: tensor %s missing (%d of %d present)", path,
                        info[i].name, loaded, nt);
                goto done;
            }
    }
    if (check_no_overlap(ent, loaded, path, err))
        goto done;
    /* read in file order, converting halves and checking every value */
    for (int k = 0; k < loaded; k++) {
        pg_tensor_info *ti_ = &info[ent[k].ti];
        uint64_t off = data_start + ent[k].begin, nbytes = ent[k].end - ent[k].begin;
        if (ent[k].esize == 4) {
            if ((rc = read_exact(fd, ti_->data, (size_t)nbytes, off, path, err)))
                goto done;
            rc = PG_ECORRUPT;
        } else {
            /* convert in place: read the halves into the upper half of the tensor */
            uint16_t *h = (uint16_t *)(ti_->data) + ti_->numel;
            if ((rc = read_exact(fd, h, (size_t)nbytes, off, path, err)))
                goto done;
            rc = PG_ECORRUPT;
            for (size_t i = 0; i < ti_->numel; i++) {
                uint16_t x = h[i];
                float f;
                if (ent[k].bf16) {
                    uint32_t bits = (uint32_t)x << 16;
                    memcpy(&f, &bits, 4);
                } else {
                    f = half_to_float(x);
                }
                ti_->data[i] = f;
            }
        }
        if (check_finite(ti_, path, err))
            goto done;
    }
    rc = 0;
done:
    free(ent);
    free(seen);
    free(info);
    free(hdr);
    json_decref(root);
    close(fd);
    return rc;
}

/* fp32 -> bf16, round to nearest even; NaN stays NaN (quiet) */
static uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu))
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

int pg_safetensors_save_as(const pg_model *m, const char *path, int bf16,
                           const uint8_t *vocab_sha, pg_error *err)
{
    int nt = pg_model_tensors(m, NULL, 0);
    pg_tensor_info *info = calloc((size_t)nt, sizeof *info);
    json_t *root = json_object();
    char *hdr = NULL;
    int rc = PG_ENOMEM;
    if (!info || !root) {
        pg_fail(err, rc, "%s: out of memory", path);
        goto done;
    }
    pg_model_tensors(m, info, nt);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        json_t *shape = json_array();
        for (int k = 0; k < info[i].ndim; k++)
            json_array_append_new(shape, json_integer(info[i].shape[k]));
        size_t es = bf16 ? 2 : 4;
        json_t *t = json_pack("{s:s, s:o, s:[I, I]}", "dtype", bf16 ? "BF16" : "F32", "shape",
                              shape, "data_offsets", (json_int_t)off,
                              (json_int_t)(off + info[i].numel * es));
        if (!t || json_object_set_new(root, info[i].name, t)) {
            pg_fail(err, rc, "%s: out of memory", path);
            goto done;
        }
        off += info[i].numel * es;
    }
    json_t *meta = json_pack("{s:s, s:s}", "format", "pt", "model", m->cfg.name);
    if (meta && vocab_sha) {
        char hex[65];
        pg_hex(vocab_sha, 32, hex);
        json_object_set_new(meta, "vocab_sha256", json_string(hex));
    }
    json_object_set_new(root, "__metadata__", meta);
    hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!hdr) {
        pg_fail(err, rc, "%s: out of memory", path);
        goto done;
    }
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    pg_atomic_file af;
    if ((rc = pg_atomic_open(&af, path, err)))
        goto done;
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++)
        lenb[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenb, 1, 8, af.fp) == 8 && fwrite(hdr, 1, hl, af.fp) == hl;
    for (size_t i = hl; ok && i < padded; i++)
        ok = fputc(' ', af.fp) != EOF;
    for (int i = 0; ok && i < nt; i++) {
        if (!bf16) { /* little-endian host (the loader assumes it too) */
            ok = fwrite(info[i].data, 4, info[i].numel, af.fp) == info[i].numel;
            continue;
        }
        for (size_t j = 0; ok && j < info[i].numel; j++) {
            uint16_t b = to_bf16(info[i].data[j]);
            uint8_t le[2] = {(uint8_t)(b & 0xFF), (uint8_t)(b >> 8)};
            ok = fwrite(le, 1, 2, af.fp) == 2;
        }
    }
    if (!ok) {
        pg_atomic_abort(&af);
        rc = pg_fail(err, PG_EIO, "%s: write: %s", path, strerror(errno));
        goto done;
    }
    rc = pg_atomic_commit(&af, err);
done:
    free(hdr);
    json_decref(root);
    free(info);
    return rc;
}

int pg_safetensors_save(const pg_model *m, const char *path, pg_error *err)
{
    return pg_safetensors_save_as(m, path, 0, NULL, err);
}

int pg_safetensors_load(pg_model *m, const char *path, uint8_t vocab_sha256[32],
                        int *has_vocab, pg_error *err)
{
    return load_impl(m, path, vocab_sha256, has_vocab, NULL, err);
}

int pg_safetensors_load_init(pg_model *m, const char *path, pg_error *err)
{
    return load_impl(m, path, NULL, NULL, pg_model_is_dct(&m->cfg) ? "judge." : NULL, err);
}
