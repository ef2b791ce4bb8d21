/* hash.c - see hash.h */
#include "common/hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) ---- */

static uint32_t crc_table[8][256];
static int crc_table_ready;

static void crc_init_tables(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xff];
    crc_table_ready = 1;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const uint8_t *p,
                                                             size_t len)
{
    uint64_t c = crc;
    while (len && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        len--;
    }
    while (len >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        len -= 8;
    }
    while (len--)
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return (uint32_t)c;
}
#endif

static uint32_t crc32c_sw(uint32_t crc, const uint8_t *p, size_t len)
{
    if (!crc_table_ready)
        crc_init_tables();
    while (len >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= crc; /* little-endian hosts only; checked in the unit tests */
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xff] ^ crc_table[2][(hi >> 8) & 0xff] ^
              crc_table[1][(hi >> 16) & 0xff] ^ crc_table[0][hi >> 24];
        p += 8;
        len -= 8;
    }
    while (len--)
        crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
    return crc;
}

uint32_t pg_crc32c_update(uint32_t crc, const void *data, size_t len)
{
    crc = ~crc;
#if defined(__x86_64__)
    if (__builtin_cpu_supports("sse4.2"))
        return ~crc32c_hw(crc, data, len);
#endif
    return ~crc32c_sw(crc, data, len);
}

/* ---- combined hasher ---- */

struct pg_hasher {
    EVP_MD_CTX *md5;
    EVP_MD_CTX *sha;
    uint32_t crc;
};

pg_hasher *pg_hasher_new(void)
{
    pg_hasher *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    h->md5 = EVP_MD_CTX_new();
    h->sha = EVP_MD_CTX_new();
    if (!h->md5 || !h->sha) {
        pg_hasher_free(h);
        return NULL;
    }
    pg_hasher_reset(h);
    return h;
}

void pg_hasher_reset(pg_hasher *h)
{
    EVP_DigestInit_ex(h->md5, EVP_md5(), NULL);
    EVP_DigestInit_ex(h->sha, EVP_sha256(), NULL);
    h->crc = 0;
}

void pg_hasher_update(pg_hasher *h, const void *data, size_t len)
{
    EVP_DigestUpdate(h->md5, data, len);
    EVP_DigestUpdate(h->sha, data, len);
    h->crc = pg_crc32c_update(h->crc, data, len);
}

void pg_hasher_final(pg_hasher *h, uint8_t md5[16], uint8_t sha256[32], uint32_t *crc32c)
{
    uint8_t tmp[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    EVP_DigestFinal_ex(h->md5, tmp, &n);
    if (md5)
        memcpy(md5, tmp, 16);
    EVP_DigestFinal_ex(h->sha, tmp, &n);
    if (sha256)
        memcpy(sha256, tmp, 32);
    if (crc32c)
        *crc32c = h->crc;
}

void pg_hasher_free(pg_hasher *h)
{
    if (!h)
        return;
    EVP_MD_CTX_free(h->md5);
    EVP_MD_CTX_free(h->sha);
    free(h);
}

int pg_hash_file(const char *path, uint8_t md5[16], uint8_t sha256[32], uint32_t *crc32c,
                 uint64_t *size, pg_error *err)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return pg_fail(err, errno == ENOENT ? PG_ENOTFOUND : PG_EIO, "%s: open: %s", path,
                       strerror(errno));
    pg_hasher *h = pg_hasher_new();
    char *buf = malloc(1 << 20);
    if (!h || !buf) {
        fclose(fp);
        pg_hasher_free(h);
        free(buf);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    uint64_t total = 0;
    size_t got;
    while ((got = fread(buf, 1, 1 << 20, fp)) > 0) {
        pg_hasher_update(h, buf, got);
        total += got;
    }
    int rc = PG_OK;
    if (ferror(fp))
        rc = pg_fail(err, PG_EIO, "%s: read: %s", path, strerror(errno));
    fclose(fp);
    free(buf);
    pg_hasher_final(h, md5, sha256, crc32c);
    pg_hasher_free(h);
    if (size)
        *size = total;
    return rc;
}

void pg_sha256(const void *data, size_t len, uint8_t out[32])
{
    unsigned n = 0;
    EVP_Digest(data, len, out, &n, EVP_sha256(), NULL);
}

/* ---- encodings ---- */

void pg_hex(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int pg_unhex(const char *hex, uint8_t *out, size_t n)
{
    if (strlen(hex) != 2 * n)
        return PG_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int a = hexval(hex[2 * i]), b = hexval(hex[2 * i + 1]);
        if (a < 0 || b < 0)
            return PG_EINVAL;
        out[i] = (uint8_t)(a << 4 | b);
    }
    return PG_OK;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

int pg_base64_decode_exact(const char *b64, uint8_t *out, size_t n)
{
    size_t len = strlen(b64);
    if (len != 4 * ((n + 2) / 3))
        return PG_EINVAL;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = b64[i + k];
            if (c == '=' && i + 4 == len && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad) {
                return PG_EINVAL; /* data after padding */
            } else if ((v[k] = b64val(c)) < 0) {
                return PG_EINVAL;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        uint8_t bytes[3] = {(uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w};
        for (int k = 0; k < 3 - pad; k++) {
            if (o >= n)
                return PG_EINVAL;
            out[o++] = bytes[k];
        }
    }
    return o == n ? PG_OK : PG_EINVAL;
}

void pg_base64_encode(const uint8_t *in, size_t n, char *out)
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}
