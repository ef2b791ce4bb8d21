/* results.c - see results.h.
 *
 * The validator walks the document with a small set of typed getters; each
 * getter knows the JSON path of the field it reads, so the first error names
 * it precisely. Checks run in document order: shape and types first, then
 * ranges, then the identities between numbers.
 */
#include "leaderboard/results.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "leaderboard/plausible.h"
#include "shards/pg19_official.h"

const char *const lb_bucket_names[LB_BUCKETS] = {"frequent", "common", "medium", "rare"};
const int64_t lb_bucket_min[LB_BUCKETS] = {10000, 1000, 100, 0};
const int64_t lb_bucket_max[LB_BUCKETS] = {-1, 10000, 1000, 100};

/* ---- parsing ---------------------------------------------------------- */

/* Offset of the first byte that is not well-formed UTF-8 (RFC 3629: no
 * overlong forms, no surrogates, nothing above U+10FFFF), or len. */
static size_t utf8_invalid_at(const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (len - i <= n)
            return i;
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += n + 1;
    }
    return len;
}

int lb_parse(const char *buf, size_t len, const char *name, json_t **out, pg_error *err)
{
    *out = NULL;
    if (len > LB_MAX_JSON_BYTES)
        return pg_fail(err, PG_ELIMIT, "%s: %zu bytes, over the %zu-byte limit", name, len,
                       LB_MAX_JSON_BYTES);
    /* jansson checks UTF-8 and rejects \u0000 unless JSON_ALLOW_NUL; a raw NUL
     * byte would end the text early, so it is rejected here first. */
    if (memchr(buf, '\0', len))
        return pg_fail(err, PG_EINVAL, "%s: contains a NUL byte", name);
    size_t bad = utf8_invalid_at((const unsigned char *)buf, len);
    if (bad != len)
        return pg_fail(err, PG_EINVAL, "%s: invalid UTF-8 at byte %zu", name, bad);
    json_error_t je;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return pg_fail(err, PG_EINVAL, "%s: invalid JSON at line %d column %d: %s", name,
                       je.line, je.column, je.text);
    if (!json_is_object(root)) {
        json_decref(root);
        return pg_fail(err, PG_EINVAL, "%s: the top level must be a JSON object", name);
    }
    *out = root;
    return PG_OK;
}

int lb_load_file(const char *path, json_t **out, pg_error *err)
{
    char *buf;
    size_t len;
    *out = NULL;
    int rc = pg_read_file(path, LB_MAX_JSON_BYTES, &buf, &len, err);
    if (rc)
        return rc;
    rc = lb_parse(buf, len, path, out, err);
    free(buf);
    return rc;
}

size_t lb_utf8_len(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80)
            n++;
    return n;
}

int lb_close(double a, double b, double rel_tol)
{
    if (!isfinite(a) || !isfinite(b))
        return 0;
    double scale = fmax(fabs(a), fabs(b));
    return fabs(a - b) <= rel_tol * scale + 1e-12;
}

/* ---- typed getters ---------------------------------------------------- */

typedef struct vctx {
    const char *name;   /* file name for messages */
    pg_error *err;
    int reported;       /* measured-only fields may be null */
} vctx;

/* Fields marked MEASURED may be null only in a reported entry. */
enum { REQUIRED = 0, NULLABLE = 1, MEASURED = 2 };

static int vfail(vctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int vfail(vctx *c, const char *path, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return pg_fail(c->err, PG_EINVAL, "%s: %s: %s", c->name, path, msg);
}

/* A refusal by one of the plausibility rules of plausible.h, named in the message. */
static int implausible(vctx *c, const char *path, const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int implausible(vctx *c, const char *path, const char *rule, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vfail(c, path, "%s (refused by the plausibility rule \"%s\")", msg, rule);
}

static void join(char *out, size_t cap, const char *parent, const char *key)
{
    if (parent[0])
        snprintf(out, cap, "%s.%s", parent, key);
    else
        snprintf(out, cap, "%s", key);
}

static int null_ok(vctx *c, int nullable)
{
    return nullable == NULLABLE || (nullable == MEASURED && c->reported);
}

/* Rejects keys not in `allowed` (NULL-terminated). */
static int check_keys(vctx *c, const json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)obj, key, val) {
        int known = 0;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                known = 1;
        if (!known) {
            char p[256];
            join(p, sizeof p, path, key);
            /* the key may hold anything; print a bounded, printable form */
            char shown[80];
            size_t j = 0;
            for (const char *k = key; *k && j + 1 < sizeof shown; k++)
                shown[j++] = ((unsigned char)*k >= 0x20 && (unsigned char)*k < 0x7f) ? *k : '?';
            shown[j] = '\0';
            return vfail(c, path[0] ? path : "(top level)", "unknown key \"%s\"", shown);
        }
    }
    return PG_OK;
}

/* Looks up `key`; fails when absent. *is_null says whether it is JSON null
 * (and fails when null is not allowed). */
static int get_value(vctx *c, const json_t *obj, const char *path, const char *key, int nullable,
                     const json_t **out, int *is_null)
{
    char p[256];
    join(p, sizeof p, path, key);
    const json_t *v = json_object_get(obj, key);
    if (!v)
        return vfail(c, p, "missing (required%s)", null_ok(c, nullable) ? "; use null if unknown" : "");
    *is_null = json_is_null(v);
    if (*is_null && !null_ok(c, nullable))
        return vfail(c, p, "must not be null");
    *out = v;
    return PG_OK;
}

static int get_object(vctx *c, const json_t *obj, const char *path, const char *key, int nullable,
                      const json_t **out)
{
    int is_null;
    const json_t *v;
    *out = NULL;
    int rc = get_value(c, obj, path, key, nullable, &v, &is_null);
    if (rc || is_null)
        return rc;
    if (!json_is_object(v)) {
        char p[256];
        join(p, sizeof p, path, key);
        return vfail(c, p, "must be an object");
    }
    *out = v;
    return PG_OK;
}

/* An integer in [min, max]. */
static int get_int(vctx *c, const json_t *obj, const char *path, const char *key, int nullable,
                   int64_t min, int64_t max, int64_t *out, int *is_null)
{
    const json_t *v;
    int nul;
    *out = 0;
    int rc = get_value(c, obj, path, key, nullable, &v, &nul);
    if (is_null)
        *is_null = nul;
    if (rc || nul)
        return rc;
    char p[256];
    join(p, sizeof p, path, key);
    if (!json_is_integer(v))
        return vfail(c, p, "must be an integer%s", json_is_real(v) ? " (got a real number)" : "");
    int64_t x = (int64_t)json_integer_value(v);
    if (x < min || x > max)
        return vfail(c, p, "%lld is out of range [%lld, %lld]", (long long)x, (long long)min,
                     (long long)max);
    *out = x;
    return PG_OK;
}

/* A finite number (integer or real) in [min, max]; min_open makes it (min, max]. */
static int get_num(vctx *c, const json_t *obj, const char *path, const char *key, int nullable,
                   double min, int min_open, double max, double *out, int *is_null)
{
    const json_t *v;
    int nul;
    *out = 0;
    int rc = get_value(c, obj, path, key, nullable, &v, &nul);
    if (is_null)
        *is_null = nul;
    if (rc || nul)
        return rc;
    char p[256];
    join(p, sizeof p, path, key);
    if (!json_is_number(v))
        return vfail(c, p, "must be a number");
    double x = json_number_value(v);
    if (!isfinite(x))
        return vfail(c, p, "must be finite");
    if (x < min || (min_open && x == min) || x > max)
        return vfail(c, p, "%.17g is out of range %s%g, %g]", x, min_open ? "(" : "[", min, max);
    *out = x;
    return PG_OK;
}

/* Free text: 1..max_chars code points, no control characters. */
static int check_text(vctx *c, const char *p, const char *s, size_t max_chars)
{
    size_t n = lb_utf8_len(s);
    if (n == 0)
        return vfail(c, p, "must not be empty");
    if (n > max_chars)
        return vfail(c, p, "%zu characters, over the limit of %zu", n, max_chars);
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; u[i]; i++) {
        if (u[i] < 0x20 || u[i] == 0x7f)
            return vfail(c, p, "contains a control character (byte %zu)", i);
        /* C1 controls U+0080..U+009F are C2 80..C2 9F in UTF-8 */
        if (u[i] == 0xC2 && u[i + 1] >= 0x80 && u[i + 1] <= 0x9F)
            return vfail(c, p, "contains a control character (byte %zu)", i);
        /* bidirectional overrides and isolates U+202A..U+202E, U+2066..U+2069
         * would let a name display as something it is not */
        if (u[i] == 0xE2 && u[i + 1] == 0x80 && u[i + 2] >= 0xAA && u[i + 2] <= 0xAE)
            return vfail(c, p, "contains a bidirectional control character (byte %zu)", i);
        if (u[i] == 0xE2 && u[i + 1] == 0x81 && u[i + 2] >= 0xA6 && u[i + 2] <= 0xA9)
            return vfail(c, p, "contains a bidirectional control character (byte %zu)", i);
    }
    return PG_OK;
}

static int get_str(vctx *c, const json_t *obj, const char *path, const char *key, int nullable,
                   size_t max_chars, const char **out)
{
    const json_t *v;
    int nul;
    *out = NULL;
    int rc = get_value(c, obj, path, key, nullable, &v, &nul);
    if (rc || nul)
        return rc;
    char p[256];
    join(p, sizeof p, path, key);
    if (!json_is_string(v))
        return vfail(c, p, "must be a string");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return vfail(c, p, "contains a NUL character");
    if ((rc = check_text(c, p, s, max_chars)))
        return rc;
    *out = s;
    return PG_OK;
}

static int get_enum(vctx *c, const json_t *obj, const char *path, const char *key, int nullable,
                    const char *const *choices, int *index)
{
    const char *s;
    *index = -1;
    int rc = get_str(c, obj, path, key, nullable, 64, &s);
    if (rc || !s)
        return rc;
    for (int i = 0; choices[i]; i++)
        if (strcmp(s, choices[i]) == 0) {
            *index = i;
            return PG_OK;
        }
    char p[256], list[256] = "";
    join(p, sizeof p, path, key);
    for (int i = 0; choices[i]; i++) {
        strncat(list, i ? ", \"" : "\"", sizeof list - strlen(list) - 1);
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
        strncat(list, "\"", sizeof list - strlen(list) - 1);
    }
    return vfail(c, p, "must be one of %s", list);
}

static int is_hex64(const char *s)
{
    if (strlen(s) != 64)
        return 0;
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int get_sha256(vctx *c, const json_t *obj, const char *path, const char *key, int nullable,
                      const char **out)
{
    int rc = get_str(c, obj, path, key, nullable, 64, out);
    if (rc || !*out)
        return rc;
    if (!is_hex64(*out)) {
        char p[256];
        join(p, sizeof p, path, key);
        return vfail(c, p, "must be 64 lower-case hex digits (a SHA-256)");
    }
    return PG_OK;
}

static int get_bool(vctx *c, const json_t *obj, const char *path, const char *key, int *out)
{
    const json_t *v;
    int nul;
    int rc = get_value(c, obj, path, key, REQUIRED, &v, &nul);
    if (rc)
        return rc;
    if (!json_is_boolean(v)) {
        char p[256];
        join(p, sizeof p, path, key);
        return vfail(c, p, "must be true or false");
    }
    *out = json_is_true(v);
    return PG_OK;
}

/* "YYYY-MM-DDTHH:MM:SSZ" with a real calendar date. */
static int valid_date(const char *s)
{
    int y, mo, d, h, mi, se;
    char z, tail;
    if (strlen(s) != 20)
        return 0;
    for (int i = 0; i < 20; i++) {
        int digit = s[i] >= '0' && s[i] <= '9';
        int want_digit = !(i == 4 || i == 7 || i == 10 || i == 13 || i == 16 || i == 19);
        if (digit != want_digit)
            return 0;
    }
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c%c", &y, &mo, &d, &h, &mi, &se, &z, &tail) != 7 ||
        z != 'Z')
        return 0;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || se > 60)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return 0;
    return 1;
}

static int get_date(vctx *c, const json_t *obj, const char *path, const char *key, int nullable,
                    const char **out)
{
    int rc = get_str(c, obj, path, key, nullable, 20, out);
    if (rc || !*out)
        return rc;
    if (!valid_date(*out)) {
        char p[256];
        join(p, sizeof p, path, key);
        return vfail(c, p, "must be a UTC time written YYYY-MM-DDTHH:MM:SSZ");
    }
    char p[256];
    join(p, sizeof p, path, key);
    time_t t = lb_date_seconds(*out);
    if (t > time(NULL) + LB_DATE_SKEW_S)
        return implausible(c, p, LB_RULE_DATE_FUTURE, "%s is in the future", *out);
    if (t < lb_date_seconds(LB_EARLIEST_DATE))
        return implausible(c, p, LB_RULE_DATE_PG19, "%s is before PG-19 was published (%s)",
                           *out, LB_EARLIEST_DATE);
    return PG_OK;
}

/* A plain file name: no directory part, no leading dot, printable ASCII. */
static int valid_basename(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255 || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* ---- the sections ----------------------------------------------------- */

static const char *const split_names[] = {"train", "validation", "test", NULL};
enum { SPLIT_TRAIN, SPLIT_VALIDATION, SPLIT_TEST };

typedef struct summary {
    int split, official, reported;
    int prefix;          /* book_handling "prefix": only a prefix of each book scored */
    int have_totals;
    int64_t books, chunk_tokens; /* 0 when unknown (null) */
    int64_t tokens, bytes, words;
    double nll;
} summary;

/* A display name: NFC, visible characters only (plausible.h). */
static int check_name(vctx *c, const char *path, const char *name)
{
    char why[400];
    const char *rule = lb_name_rule_broken(name, why, sizeof why);
    return rule ? implausible(c, path, rule, "%s", why) : PG_OK;
}

static int check_model(vctx *c, const json_t *root)
{
    static const char *const keys[] = {"name", "family", "params", "config_sha256",
                                       "weights_sha256", "random_init_seed", NULL};
    static const char *const families[] = {"compressive-transformer", "transformer-xl", "dct",
                                           "other", NULL};
    const json_t *m;
    const char *s;
    int64_t x;
    int idx, seed_null;
    int rc = get_object(c, root, "", "model", REQUIRED, &m);
    if (!rc) rc = check_keys(c, m, "model", keys);
    if (!rc) rc = get_str(c, m, "model", "name", REQUIRED, 100, &s);
    if (!rc) rc = check_name(c, "model.name", s);
    if (!rc) rc = get_enum(c, m, "model", "family", REQUIRED, families, &idx);
    if (!rc) rc = get_int(c, m, "model", "params", MEASURED, 1, 10000000000000LL, &x, NULL);
    if (!rc) rc = get_sha256(c, m, "model", "config_sha256", MEASURED, &s);
    const char *weights = NULL;
    if (!rc) rc = get_sha256(c, m, "model", "weights_sha256", NULLABLE, &weights);
    if (!rc) rc = get_int(c, m, "model", "random_init_seed", NULLABLE, 0, INT64_MAX, &x, &seed_null);
    if (rc)
        return rc;
    /* A measured run either loads trained weights or starts from a seed. */
    if (!c->reported && (weights == NULL) == seed_null)
        return vfail(c, "model.weights_sha256",
                     "exactly one of weights_sha256 and random_init_seed must be set");
    if (c->reported && weights && !seed_null)
        return vfail(c, "model.weights_sha256",
                     "weights_sha256 and random_init_seed cannot both be set");
    return PG_OK;
}

static int check_tokenizer(vctx *c, const json_t *root)
{
    static const char *const keys[] = {"name", "kind", "vocab_size", "vocab_sha256", NULL};
    const json_t *t;
    const char *s;
    int64_t x;
    int rc = get_object(c, root, "", "tokenizer", REQUIRED, &t);
    if (!rc) rc = check_keys(c, t, "tokenizer", keys);
    if (!rc) rc = get_str(c, t, "tokenizer", "name", MEASURED, 64, &s);
    if (!rc && s) rc = check_name(c, "tokenizer.name", s);
    if (!rc) rc = get_str(c, t, "tokenizer", "kind", MEASURED, 64, &s);
    if (!rc) rc = get_int(c, t, "tokenizer", "vocab_size", MEASURED, 1, 1LL << 31, &x, NULL);
    if (!rc) rc = get_sha256(c, t, "tokenizer", "vocab_sha256", MEASURED, &s);
    return rc;
}

/* context.judge: a DCT's decision rule (its results depend on it, so a
 * re-run needs it) and what it kept; present exactly for family "dct". */
static int check_judge(vctx *c, const json_t *root, const json_t *ctx)
{
    static const char *const keys[] = {"policy", "seed", "blocks_decided", "blocks_kept", NULL};
    static const char *const policies[] = {"greedy", "sample", "compress", "discard", NULL};
    const char *family = json_string_value(json_object_get(json_object_get(root, "model"),
                                                           "family"));
    int is_dct = family && strcmp(family, "dct") == 0;
    const json_t *j = json_object_get(ctx, "judge");
    if (!j && !is_dct)
        return PG_OK;
    if (!is_dct)
        return vfail(c, "context.judge", "only a DCT (model.family \"dct\") has a judge");
    const json_t *jo;
    int policy, seed_null, dec_null, kept_null;
    int64_t seed, decided, kept;
    int rc = get_object(c, ctx, "context", "judge", REQUIRED, &jo);
    if (!rc) rc = check_keys(c, jo, "context.judge", keys);
    if (!rc) rc = get_enum(c, jo, "context.judge", "policy", REQUIRED, policies, &policy);
    if (!rc) rc = get_int(c, jo, "context.judge", "seed", NULLABLE, 0, INT64_MAX, &seed, &seed_null);
    if (!rc) rc = get_int(c, jo, "context.judge", "blocks_decided", NULLABLE, 0, INT64_MAX, &decided,
                          &dec_null);
    if (!rc) rc = get_int(c, jo, "context.judge", "blocks_kept", NULLABLE, 0, INT64_MAX, &kept,
                          &kept_null);
    if (rc)
        return rc;
    if ((policy == 1) == seed_null)
        return vfail(c, "context.judge.seed", "must be set for the \"sample\" policy and null "
                     "otherwise");
    if (dec_null != kept_null || (!dec_null && kept > decided))
        return vfail(c, "context.judge.blocks_kept", "must be null with blocks_decided, and at "
                     "most blocks_decided");
    return PG_OK;
}

static int check_context(vctx *c, const json_t *root)
{
    static const char *const keys[] = {"window", "memory", "compressed_memory",
                                       "compression_rate", "attention_span", "judge", NULL};
    const json_t *t;
    int64_t window, memory, cmem, rate, span;
    int window_null, cmem_null, rate_null, span_null;
    const int64_t big = 1LL << 40;
    int rc = get_object(c, root, "", "context", REQUIRED, &t);
    if (!rc) rc = check_keys(c, t, "context", keys);
    if (!rc) rc = get_int(c, t, "context", "window", MEASURED, 1, big, &window, &window_null);
    if (!rc) rc = get_int(c, t, "context", "memory", MEASURED, 0, big, &memory, NULL);
    if (!rc) rc = get_int(c, t, "context", "compressed_memory", MEASURED, 0, big, &cmem, &cmem_null);
    if (!rc) rc = get_int(c, t, "context", "compression_rate", NULLABLE, 1, 1 << 20, &rate, &rate_null);
    if (!rc) rc = get_int(c, t, "context", "attention_span", MEASURED, 1, big, &span, &span_null);
    if (rc)
        return rc;
    if (!cmem_null && cmem > 0 && rate_null && !c->reported)
        return vfail(c, "context.compression_rate", "must be set when compressed_memory > 0");
    if (!cmem_null && cmem == 0 && !rate_null)
        return vfail(c, "context.compression_rate", "must be null when compressed_memory is 0");
    if (!window_null && !span_null && span < window)
        return vfail(c, "context.attention_span", "%lld is shorter than the window %lld",
                     (long long)span, (long long)window);
    return check_judge(c, root, t);
}

/* "official" means exactly PG-19's books of the split, byte for byte: the
 * book set must say so, and its digest (books_sha256, shards/pg19_official.h)
 * must be that of PG-19's own books, computed here from the file list built
 * into this tool. A digest is a public constant, so this only stops claims
 * that are inconsistent; `verify` checks the books in the shards themselves. */
static int check_book_set(vctx *c, const json_t *e, const summary *sum)
{
    static const char *const sets[] = {"custom", "pg19-subset", "official", NULL};
    int set;
    const char *digest;
    int rc = get_enum(c, e, "eval", "book_set", MEASURED, sets, &set);
    if (!rc) rc = get_sha256(c, e, "eval", "books_sha256", MEASURED, &digest);
    if (rc)
        return rc;
    int is_official_set = set >= 0 && pg19_book_set_from_name(sets[set]) == PG19_BOOKS_OFFICIAL;
    if (sum->official && set >= 0 && !is_official_set)
        return vfail(c, "eval.official",
                     "true, but book_set is \"%s\": only exactly PG-19's books of the split "
                     "are the official split", sets[set]);
    if (is_official_set && !sum->official && !sum->prefix)
        return vfail(c, "eval.official",
                     "false, but book_set is \"official\" and every token was scored");
    if (!(sum->official || is_official_set) || !digest)
        return PG_OK;
    const pg19_file_list *list;
    uint8_t want[32];
    char hex[65];
    pg_error lerr = {0};
    if (pg19_file_list_builtin(&list, &lerr) ||
        pg19_split_digest(list, sum->split, want, &lerr))
        return vfail(c, "eval.books_sha256", "cannot check: %s", lerr.msg);
    pg_hex(want, 32, hex);
    if (strcmp(digest, hex) != 0)
        return vfail(c, "eval.books_sha256",
                     "is not the digest of PG-19's %llu %s books (%s): an official result must be "
                     "on exactly PG-19's books, byte for byte",
                     (unsigned long long)pg19_file_list_count(list, sum->split),
                     split_names[sum->split], hex);
    return PG_OK;
}

static int check_eval(vctx *c, const json_t *root, summary *sum)
{
    static const char *const keys[] = {"split", "official", "book_set", "books", "books_sha256",
                                       "book_handling", "chunk_tokens", "shards", NULL};
    static const char *const handling[] = {"whole", "chunked", "prefix", NULL};
    const json_t *e;
    int64_t books, chunk;
    int books_null, chunk_null, how;
    int rc = get_object(c, root, "", "eval", REQUIRED, &e);
    if (!rc) rc = check_keys(c, e, "eval", keys);
    if (!rc) rc = get_enum(c, e, "eval", "split", REQUIRED, split_names, &sum->split);
    if (!rc) rc = get_bool(c, e, "eval", "official", &sum->official);
    if (!rc) rc = get_int(c, e, "eval", "books", MEASURED, 1, 1000000, &books, &books_null);
    if (!rc) rc = get_enum(c, e, "eval", "book_handling", MEASURED, handling, &how);
    if (!rc) rc = get_int(c, e, "eval", "chunk_tokens", NULLABLE, 1, 1LL << 40, &chunk, &chunk_null);
    if (rc)
        return rc;
    sum->books = books_null ? 0 : books;
    sum->chunk_tokens = chunk_null ? 0 : chunk;
    if (how == 0 && !chunk_null)
        return vfail(c, "eval.chunk_tokens", "must be null when book_handling is \"whole\"");
    if (how >= 1 && chunk_null)
        return vfail(c, "eval.chunk_tokens", "must be set when book_handling is \"%s\"",
                     handling[how]);
    /* "prefix" (harness run --max-tokens-per-book) scores only the first
     * chunk_tokens tokens of each book: a quick run, never the benchmark. */
    sum->prefix = how == 2;
    if (sum->prefix && sum->official)
        return vfail(c, "eval.official",
                     "a run that scores only a prefix of each book is not the official split");
    if (sum->official && !books_null) {
        static const int64_t official_books[] = {LB_PG19_TRAIN_BOOKS, LB_PG19_VALIDATION_BOOKS,
                                                 LB_PG19_TEST_BOOKS};
        if (books != official_books[sum->split])
            return vfail(c, "eval.books",
                         "the official PG-19 %s split has %lld books, not %lld",
                         split_names[sum->split], (long long)official_books[sum->split],
                         (long long)books);
    }
    if (c->reported && (!sum->official || sum->split == SPLIT_TRAIN))
        return vfail(c, "eval.split",
                     "a reported result must be on the official validation or test split");
    if ((rc = check_book_set(c, e, sum)))
        return rc;

    /* shards: the exact files the run read, by content hash */
    const json_t *shards;
    int is_null;
    if ((rc = get_value(c, e, "eval", "shards", MEASURED, &shards, &is_null)) || is_null)
        return rc;
    if (!json_is_array(shards))
        return vfail(c, "eval.shards", "must be an array");
    size_t n = json_array_size(shards);
    if (n == 0)
        return vfail(c, "eval.shards", "must list at least one shard");
    if (n > LB_MAX_SHARDS)
        return vfail(c, "eval.shards", "%zu shards, over the limit of %d", n, LB_MAX_SHARDS);
    const char *split = split_names[sum->split];
    size_t slen = strlen(split);
    for (size_t i = 0; i < n; i++) {
        static const char *const skeys[] = {"file", "sha256", NULL};
        char p[64];
        snprintf(p, sizeof p, "eval.shards[%zu]", i);
        const json_t *sh = json_array_get(shards, i);
        if (!json_is_object(sh))
            return vfail(c, p, "must be an object");
        const char *file, *sha;
        if ((rc = check_keys(c, sh, p, skeys)) || (rc = get_str(c, sh, p, "file", REQUIRED, 255, &file)) ||
            (rc = get_sha256(c, sh, p, "sha256", REQUIRED, &sha)))
            return rc;
        /* "<split>-NNNNN.pgs" */
        int ok = strlen(file) == slen + 10 && strncmp(file, split, slen) == 0 && file[slen] == '-' &&
                 strcmp(file + slen + 6, ".pgs") == 0;
        for (size_t k = slen + 1; ok && k < slen + 6; k++)
            ok = file[k] >= '0' && file[k] <= '9';
        if (!ok)
            return vfail(c, p, "file \"%.64s\" is not named %s-NNNNN.pgs", file, split);
        for (size_t j = 0; j < i; j++)
            if (strcmp(json_string_value(json_object_get(json_array_get(shards, j), "file")),
                       file) == 0)
                return vfail(c, p, "file %s is listed twice", file);
    }
    return PG_OK;
}

static int check_totals(vctx *c, const json_t *root, summary *sum)
{
    static const char *const keys[] = {"tokens", "bytes", "words", "nll", "token_ppl",
                                       "bits_per_byte", NULL};
    const json_t *t;
    double token_ppl, bpb;
    int rc = get_object(c, root, "", "totals", MEASURED, &t);
    if (rc || !t)
        return rc;
    const int64_t big = 1LL << 50;
    /* Inside a present totals object every field is required: a run that
     * measured NLL knows its counts. */
    vctx strict = *c;
    strict.reported = 0;
    if (!rc) rc = check_keys(&strict, t, "totals", keys);
    if (!rc) rc = get_int(&strict, t, "totals", "tokens", REQUIRED, 1, big, &sum->tokens, NULL);
    /* the bytes of a book prefix are unknown: 0, and then bits_per_byte is null */
    int64_t min_bytes = sum->prefix ? 0 : 1, max_bytes = sum->prefix ? 0 : big;
    if (!rc) rc = get_int(&strict, t, "totals", "bytes", REQUIRED, min_bytes, max_bytes, &sum->bytes, NULL);
    if (!rc) rc = get_int(&strict, t, "totals", "words", REQUIRED, 1, big, &sum->words, NULL);
    if (!rc) rc = get_num(&strict, t, "totals", "nll", REQUIRED, 0, 0, 1e300, &sum->nll, NULL);
    if (!rc) rc = get_num(&strict, t, "totals", "token_ppl", REQUIRED, 1, 0, HUGE_VAL, &token_ppl, NULL);
    int bpb_null = 0;
    if (!rc) rc = get_num(&strict, t, "totals", "bits_per_byte", sum->prefix ? NULLABLE : REQUIRED,
                          0, 0, HUGE_VAL, &bpb, &bpb_null);
    if (!rc && sum->prefix && !bpb_null)
        rc = vfail(c, "totals.bits_per_byte", "must be null for a prefix run (bytes unknown)");
    if (rc)
        return rc;
    sum->have_totals = 1;
    if (sum->words > sum->tokens)
        return implausible(c, "totals.words", LB_RULE_WORDS_TOKENS,
                           "%lld words but only %lld tokens (every word has a token)",
                           (long long)sum->words, (long long)sum->tokens);
    if (!sum->prefix && sum->words > sum->bytes)
        return implausible(c, "totals.words", LB_RULE_WORDS_BYTES,
                           "%lld words but only %lld bytes", (long long)sum->words,
                           (long long)sum->bytes);
    if (!sum->prefix && sum->tokens > sum->bytes)
        return implausible(c, "totals.tokens", LB_RULE_TOKENS_BYTES,
                           "%lld tokens but only %lld bytes (every token covers at least one "
                           "byte of text)", (long long)sum->tokens, (long long)sum->bytes);
    if (sum->books && sum->bytes / sum->books >= LB_MAX_BOOK_BYTES)
        return implausible(c, "totals.bytes", LB_RULE_BOOK_BYTES,
                           "%lld bytes in %lld books: no book is 1 GiB long", (long long)sum->bytes,
                           (long long)sum->books);
    /* books <= 10^6 and chunk_tokens <= 2^40: the product fits */
    if (sum->prefix && sum->books && sum->chunk_tokens &&
        sum->tokens > sum->books * sum->chunk_tokens)
        return implausible(c, "totals.tokens", LB_RULE_PREFIX_TOKENS,
                           "%lld tokens, but %lld books scored to at most %lld tokens each",
                           (long long)sum->tokens, (long long)sum->books,
                           (long long)sum->chunk_tokens);
    /* per byte, or per token when the bytes of a prefix are unknown */
    double bits = sum->nll / M_LN2 / (double)(sum->prefix ? sum->tokens : sum->bytes);
    if (bits < LB_MIN_BITS_PER_BYTE)
        return implausible(c, "totals.nll", LB_RULE_MIN_BPB,
                           "%.17g nats over %lld %s is %.3g bits per %s: no model predicts text "
                           "that well", sum->nll,
                           (long long)(sum->prefix ? sum->tokens : sum->bytes),
                           sum->prefix ? "tokens" : "bytes", bits, sum->prefix ? "token" : "byte");
    double want = exp(sum->nll / (double)sum->tokens);
    if (!lb_close(token_ppl, want, LB_REL_TOL))
        return vfail(c, "totals.token_ppl", "%.17g but exp(nll / tokens) = %.17g", token_ppl, want);
    want = sum->nll / ((double)sum->bytes * M_LN2);
    if (!sum->prefix && !lb_close(bpb, want, LB_REL_TOL))
        return vfail(c, "totals.bits_per_byte", "%.17g but nll / (bytes * ln 2) = %.17g", bpb, want);
    return PG_OK;
}

/* word_ppl (headline) and word_ppl_exact */
static int check_word_ppl(vctx *c, const json_t *root, summary *sum)
{
    static const char *const keys[] = {"normaliser", "words", "value", NULL};
    static const char *const normalisers[] = {"pg19-table2", "exact", NULL};
    const json_t *w;
    int64_t words;
    double value;
    int norm;
    int rc = get_object(c, root, "", "word_ppl", REQUIRED, &w);
    if (!rc) rc = check_keys(c, w, "word_ppl", keys);
    if (!rc) rc = get_enum(c, w, "word_ppl", "normaliser", REQUIRED, normalisers, &norm);
    if (!rc) rc = get_int(c, w, "word_ppl", "words", REQUIRED, 1, 1LL << 50, &words, NULL);
    if (!rc) rc = get_num(c, w, "word_ppl", "value", REQUIRED, 1, 0, HUGE_VAL, &value, NULL);
    if (rc)
        return rc;
    /* The official validation and test splits are normalised by PG-19's own
     * word counts, so that numbers from different tokenizers compare. */
    int table2 = sum->official && sum->split != SPLIT_TRAIN;
    if (table2) {
        int64_t want = sum->split == SPLIT_TEST ? LB_PG19_TEST_WORDS : LB_PG19_VALIDATION_WORDS;
        if (norm != 0)
            return vfail(c, "word_ppl.normaliser",
                         "the official %s split must use \"pg19-table2\" (PG-19's word count), "
                         "not \"exact\"", split_names[sum->split]);
        if (words != want)
            return vfail(c, "word_ppl.words",
                         "the pg19-table2 normaliser of the %s split is %lld words, not %lld",
                         split_names[sum->split], (long long)want, (long long)words);
    } else {
        if (norm != 1)
            return vfail(c, "word_ppl.normaliser",
                         "\"pg19-table2\" only applies to the whole official validation or "
                         "test split; use \"exact\"");
        if (sum->have_totals && words != sum->words)
            return vfail(c, "word_ppl.words", "%lld, but the exact normaliser is totals.words = %lld",
                         (long long)words, (long long)sum->words);
    }
    if (sum->have_totals) {
        double want = exp(sum->nll / (double)words);
        if (!lb_close(value, want, LB_REL_TOL))
            return vfail(c, "word_ppl.value", "%.17g but exp(totals.nll / words) = %.17g", value,
                         want);
    }

    /* word_ppl_exact: always beside the headline in a measured result */
    if ((rc = get_object(c, root, "", "word_ppl_exact", MEASURED, &w)) || !w)
        return rc;
    if (!sum->have_totals)
        return vfail(c, "word_ppl_exact", "must be null when totals is null");
    static const char *const exact_only[] = {"exact", NULL};
    if (!rc) rc = check_keys(c, w, "word_ppl_exact", keys);
    if (!rc) rc = get_enum(c, w, "word_ppl_exact", "normaliser", REQUIRED, exact_only, &norm);
    if (!rc) rc = get_int(c, w, "word_ppl_exact", "words", REQUIRED, 1, 1LL << 50, &words, NULL);
    if (!rc) rc = get_num(c, w, "word_ppl_exact", "value", REQUIRED, 1, 0, HUGE_VAL, &value, NULL);
    if (rc)
        return rc;
    if (words != sum->words)
        return vfail(c, "word_ppl_exact.words", "%lld, but totals.words = %lld", (long long)words,
                     (long long)sum->words);
    double want = exp(sum->nll / (double)words);
    if (!lb_close(value, want, LB_REL_TOL))
        return vfail(c, "word_ppl_exact.value", "%.17g but exp(totals.nll / words) = %.17g", value,
                     want);
    return PG_OK;
}

static int check_buckets(vctx *c, const json_t *root, const summary *sum)
{
    static const char *const keys[] = {"name", "min_freq", "max_freq", "words", "tokens", "nll",
                                       "word_ppl", NULL};
    const json_t *b;
    int is_null;
    int rc = get_value(c, root, "", "buckets", MEASURED, &b, &is_null);
    if (rc || is_null)
        return rc;
    if (!sum->have_totals)
        return vfail(c, "buckets", "must be null when totals is null");
    if (!json_is_array(b))
        return vfail(c, "buckets", "must be an array");
    if (json_array_size(b) != LB_BUCKETS)
        return vfail(c, "buckets", "must hold the %d buckets frequent, common, medium, rare",
                     LB_BUCKETS);
    int64_t words_sum = 0, tokens_sum = 0;
    double nll_sum = 0;
    for (int i = 0; i < LB_BUCKETS; i++) {
        char p[32];
        snprintf(p, sizeof p, "buckets[%d]", i);
        const json_t *o = json_array_get(b, (size_t)i);
        if (!json_is_object(o))
            return vfail(c, p, "must be an object");
        static const char *const names[LB_BUCKETS + 1] = {"frequent", "common", "medium", "rare",
                                                          NULL};
        const char *const one[2] = {names[i], NULL};
        int idx, max_null, ppl_null;
        int64_t minf, maxf, words, tokens;
        double nll, ppl;
        const int64_t big = 1LL << 50;
        if ((rc = check_keys(c, o, p, keys)) || (rc = get_enum(c, o, p, "name", REQUIRED, one, &idx)) ||
            (rc = get_int(c, o, p, "min_freq", REQUIRED, 0, INT64_MAX, &minf, NULL)) ||
            (rc = get_int(c, o, p, "max_freq", NULLABLE, 0, INT64_MAX, &maxf, &max_null)) ||
            (rc = get_int(c, o, p, "words", REQUIRED, 0, big, &words, NULL)) ||
            (rc = get_int(c, o, p, "tokens", REQUIRED, 0, big, &tokens, NULL)) ||
            (rc = get_num(c, o, p, "nll", REQUIRED, 0, 0, 1e300, &nll, NULL)) ||
            (rc = get_num(c, o, p, "word_ppl", NULLABLE, 1, 0, HUGE_VAL, &ppl, &ppl_null)))
            return rc;
        if (minf != lb_bucket_min[i] || (lb_bucket_max[i] < 0) != max_null ||
            (!max_null && maxf != lb_bucket_max[i]))
            return vfail(c, p, "the %s bucket is min_freq %lld, max_freq %s%lld", names[i],
                         (long long)lb_bucket_min[i], lb_bucket_max[i] < 0 ? "null" : "",
                         lb_bucket_max[i] < 0 ? 0LL : (long long)lb_bucket_max[i]);
        if (tokens < words)
            return vfail(c, p, "%lld tokens for %lld words (every word has a token)",
                         (long long)tokens, (long long)words);
        if (words == 0) {
            if (tokens != 0 || nll != 0)
                return vfail(c, p, "a bucket without words has no tokens and no NLL");
            if (!ppl_null)
                return vfail(c, p, "word_ppl must be null for a bucket without words");
        } else {
            if (ppl_null)
                return vfail(c, p, "word_ppl must be set for a bucket with words");
            double want = exp(nll / (double)words);
            if (!lb_close(ppl, want, LB_REL_TOL))
                return vfail(c, p, "word_ppl %.17g but exp(nll / words) = %.17g", ppl, want);
        }
        words_sum += words; /* each < 2^50: no overflow */
        tokens_sum += tokens;
        nll_sum += nll;
    }
    if (words_sum != sum->words)
        return vfail(c, "buckets", "bucket words sum to %lld, totals.words is %lld",
                     (long long)words_sum, (long long)sum->words);
    if (tokens_sum != sum->tokens)
        return vfail(c, "buckets", "bucket tokens sum to %lld, totals.tokens is %lld",
                     (long long)tokens_sum, (long long)sum->tokens);
    if (!lb_close(nll_sum, sum->nll, LB_REL_TOL))
        return vfail(c, "buckets", "bucket NLLs sum to %.17g, totals.nll is %.17g", nll_sum,
                     sum->nll);
    return PG_OK;
}

static int check_run_info(vctx *c, const json_t *root)
{
    const json_t *o;
    const char *s;
    double x;
    int64_t n;
    int rc = get_object(c, root, "", "throughput", MEASURED, &o);
    if (!rc && o) {
        static const char *const keys[] = {"tokens_per_s", "seconds", NULL};
        if (!rc) rc = check_keys(c, o, "throughput", keys);
        if (!rc) rc = get_num(c, o, "throughput", "tokens_per_s", REQUIRED, 0, 0, 1e15, &x, NULL);
        if (!rc) rc = get_num(c, o, "throughput", "seconds", REQUIRED, 0, 0, 1e10, &x, NULL);
    }
    if (!rc) rc = get_object(c, root, "", "harness", MEASURED, &o);
    if (!rc && o) {
        static const char *const keys[] = {"name", "version", NULL};
        if (!rc) rc = check_keys(c, o, "harness", keys);
        if (!rc) rc = get_str(c, o, "harness", "name", REQUIRED, 64, &s);
        if (!rc) rc = get_str(c, o, "harness", "version", REQUIRED, 64, &s);
    }
    if (!rc) rc = get_date(c, root, "", "date", MEASURED, &s);
    if (!rc) rc = get_object(c, root, "", "hardware", MEASURED, &o);
    if (!rc && o) {
        static const char *const keys[] = {"cpu", "threads", "gpu", NULL};
        if (!rc) rc = check_keys(c, o, "hardware", keys);
        if (!rc) rc = get_str(c, o, "hardware", "cpu", REQUIRED, 200, &s);
        if (!rc) rc = get_int(c, o, "hardware", "threads", REQUIRED, 1, 1 << 24, &n, NULL);
        if (!rc) rc = get_str(c, o, "hardware", "gpu", NULLABLE, 200, &s);
    }
    /* nll_dump is optional: absent, null or the dump's name and hash */
    if (!rc && json_object_get(root, "nll_dump") && !json_is_null(json_object_get(root, "nll_dump"))) {
        static const char *const keys[] = {"file", "sha256", NULL};
        if (!rc) rc = get_object(c, root, "", "nll_dump", REQUIRED, &o);
        if (!rc) rc = check_keys(c, o, "nll_dump", keys);
        if (!rc) rc = get_str(c, o, "nll_dump", "file", REQUIRED, 255, &s);
        if (!rc && !valid_basename(s))
            rc = vfail(c, "nll_dump.file", "must be a plain file name (letters, digits, . - _)");
        if (!rc) rc = get_sha256(c, o, "nll_dump", "sha256", REQUIRED, &s);
    }
    return rc;
}

/* provenance.consistency: what `verify` recomputed from the dump. */
static int check_consistency(vctx *c, const json_t *v)
{
    static const char *const keys[] = {"date", "nll_sha256", "tool", NULL};
    const char *s;
    int rc = check_keys(c, v, "provenance.consistency", keys);
    if (!rc) rc = get_date(c, v, "provenance.consistency", "date", REQUIRED, &s);
    if (!rc) rc = get_sha256(c, v, "provenance.consistency", "nll_sha256", REQUIRED, &s);
    if (!rc) rc = get_str(c, v, "provenance.consistency", "tool", REQUIRED, 64, &s);
    return rc;
}

/* provenance.reproduction: what `verify --weights` re-ran, checked against
 * the rest of the (already validated) entry. */
static int check_reproduction(vctx *c, const json_t *root, const json_t *v)
{
    static const char *const keys[] = {"date", "tool", "harness", "weights_sha256",
                                       "config_sha256", "backend", "precision", "tolerance",
                                       "sample", "books", "tokens", "max_abs_deviation",
                                       "max_deviation_ratio", "nll_sha256", NULL};
    const char *P = "provenance.reproduction";
    const char *s, *weights, *config, *backend, *precision, *nll;
    const json_t *tol, *sample, *books;
    double x, tabs, trel;
    int64_t tokens, n_sample = 0, n;
    int is_null, rc = check_keys(c, v, P, keys);
    if (!rc) rc = get_date(c, v, P, "date", REQUIRED, &s);
    if (!rc) rc = get_str(c, v, P, "tool", REQUIRED, 64, &s);
    if (!rc) rc = get_str(c, v, P, "harness", REQUIRED, 80, &s);
    if (!rc) rc = get_sha256(c, v, P, "weights_sha256", REQUIRED, &weights);
    if (!rc) rc = get_sha256(c, v, P, "config_sha256", REQUIRED, &config);
    if (!rc) rc = get_str(c, v, P, "backend", REQUIRED, 16, &backend);
    if (!rc) rc = get_str(c, v, P, "precision", REQUIRED, 16, &precision);
    if (!rc) rc = get_object(c, v, P, "tolerance", REQUIRED, &tol);
    if (!rc) {
        static const char *const tkeys[] = {"abs", "rel", NULL};
        rc = check_keys(c, tol, "provenance.reproduction.tolerance", tkeys);
        if (!rc) rc = get_num(c, tol, "provenance.reproduction.tolerance", "abs", REQUIRED, 0, 0, 1, &tabs, NULL);
        if (!rc) rc = get_num(c, tol, "provenance.reproduction.tolerance", "rel", REQUIRED, 0, 0, 1, &trel, NULL);
    }
    if (!rc) rc = get_object(c, v, P, "sample", NULLABLE, &sample);
    if (!rc && sample) {
        static const char *const skeys[] = {"books", "seed", NULL};
        const char *seed;
        rc = check_keys(c, sample, "provenance.reproduction.sample", skeys);
        if (!rc) rc = get_int(c, sample, "provenance.reproduction.sample", "books", REQUIRED, 1, 1000000, &n_sample, NULL);
        if (!rc) rc = get_str(c, sample, "provenance.reproduction.sample", "seed", REQUIRED, 16, &seed);
        if (!rc && strspn(seed, "0123456789abcdef") != 16)
            rc = vfail(c, "provenance.reproduction.sample.seed", "must be 16 lower-case hex digits");
    }
    if (!rc) rc = get_value(c, v, P, "books", REQUIRED, &books, &is_null);
    if (!rc) rc = get_int(c, v, P, "tokens", REQUIRED, 1, 1LL << 50, &tokens, NULL);
    if (!rc) rc = get_num(c, v, P, "max_abs_deviation", REQUIRED, 0, 0, HUGE_VAL, &x, NULL);
    if (!rc) rc = get_num(c, v, P, "max_deviation_ratio", REQUIRED, 0, 0, 1, &x, NULL);
    if (!rc) rc = get_sha256(c, v, P, "nll_sha256", REQUIRED, &nll);
    if (rc)
        return rc;
    /* the re-run used this entry's model and its dump */
    const json_t *model = json_object_get(root, "model");
    const char *ew = json_string_value(json_object_get(model, "weights_sha256"));
    const char *ec = json_string_value(json_object_get(model, "config_sha256"));
    if (!ew)
        return vfail(c, "provenance.status",
                     "an entry without weights (random_init_seed) can never be verified; it "
                     "can at most be \"consistent\"");
    if (strcmp(ew, weights) != 0)
        return vfail(c, "provenance.reproduction.weights_sha256", "is not model.weights_sha256");
    if (!ec || strcmp(ec, config) != 0)
        return vfail(c, "provenance.reproduction.config_sha256", "is not model.config_sha256");
    const char *cn = json_string_value(
        json_object_get(json_object_get(json_object_get(root, "provenance"), "consistency"),
                        "nll_sha256"));
    if (!cn || strcmp(cn, nll) != 0)
        return vfail(c, "provenance.reproduction.nll_sha256",
                     "is not the dump of provenance.consistency.nll_sha256");
    const char *eb, *ep;
    lb_entry_backend(root, &eb, &ep);
    const lb_tolerance *t = lb_tolerance_for(eb, ep);
    if (strcmp(backend, eb) != 0 || strcmp(precision, ep) != 0)
        return vfail(c, "provenance.reproduction.backend",
                     "the entry's run was %s %s, not %s %s", eb, ep, backend, precision);
    if (!t)
        return vfail(c, "provenance.reproduction.backend",
                     "no reproduction tolerance is documented for %s %s", eb, ep);
    if (tabs != t->abs || trel != t->rel)
        return vfail(c, "provenance.reproduction.tolerance",
                     "the documented tolerance for %s %s is abs %g, rel %g", eb, ep, t->abs,
                     t->rel);
    /* the books: distinct, ascending, all of them or the sample's count */
    if (!json_is_array(books))
        return vfail(c, "provenance.reproduction.books", "must be an array of book ids");
    n = (int64_t)json_array_size(books);
    int64_t split_books = json_integer_value(json_object_get(json_object_get(root, "eval"), "books"));
    int64_t split_tokens = json_integer_value(json_object_get(json_object_get(root, "totals"), "tokens"));
    int64_t want = sample ? (n_sample < split_books ? n_sample : split_books) : split_books;
    if (n != want)
        return vfail(c, "provenance.reproduction.books",
                     "%lld books, but %s means %lld", (long long)n,
                     sample ? "the sample" : "no sample (all books)", (long long)want);
    for (size_t i = 0; i < (size_t)n; i++) {
        const json_t *b = json_array_get(books, i);
        if (!json_is_integer(b) || json_integer_value(b) < 0 ||
            (i && json_integer_value(b) <= json_integer_value(json_array_get(books, i - 1))))
            return vfail(c, "provenance.reproduction.books",
                         "must be distinct book ids in ascending order (item %zu)", i);
    }
    if (tokens > split_tokens || (!sample && tokens != split_tokens))
        return vfail(c, "provenance.reproduction.tokens", "%lld, but totals.tokens is %lld",
                     (long long)tokens, (long long)split_tokens);
    return PG_OK;
}

/* provenance: who measured the result and how far `verify` has checked it.
 * status "unchecked" -> "consistent" (the dump and the shards agree with the
 * numbers: a consistency record) -> "verified" (the harness re-ran the model
 * and reproduced the dump: also a reproduction record). */
static int check_provenance(vctx *c, const json_t *root, int *reported)
{
    static const char *const keys[] = {"kind", "source", "status", "consistency", "reproduction",
                                       "notes", NULL};
    static const char *const kinds[] = {"measured", "reported", NULL};
    static const char *const statuses[] = {"unchecked", "consistent", "verified", NULL};
    const json_t *p;
    const char *s;
    int kind, status;
    int rc = get_object(c, root, "", "provenance", REQUIRED, &p);
    if (!rc && json_object_get(p, "verified"))
        return vfail(c, "provenance.verified",
                     "replaced by provenance.status (\"unchecked\", \"consistent\" or "
                     "\"verified\", leaderboard/README.md): an entry whose dump was only "
                     "recomputed is \"consistent\"");
    if (!rc) rc = check_keys(c, p, "provenance", keys);
    if (!rc) rc = get_enum(c, p, "provenance", "kind", REQUIRED, kinds, &kind);
    if (rc)
        return rc;
    *reported = kind == 1;
    if (!rc) rc = get_str(c, p, "provenance", "source", *reported ? REQUIRED : NULLABLE, 500, &s);
    if (!rc) rc = get_enum(c, p, "provenance", "status", REQUIRED, statuses, &status);
    if (!rc) rc = get_str(c, p, "provenance", "notes", NULLABLE, 2000, &s);
    if (rc)
        return rc;
    if (*reported && status != 0)
        return vfail(c, "provenance.status", "a reported result cannot be checked: it has no "
                                             "measurements (\"unchecked\")");
    const json_t *cons, *repro;
    if ((rc = get_object(c, p, "provenance", "consistency", NULLABLE, &cons)) ||
        (rc = get_object(c, p, "provenance", "reproduction", NULLABLE, &repro)))
        return rc;
    if ((status >= 1) != (cons != NULL))
        return vfail(c, "provenance.consistency",
                     status >= 1 ? "a \"%s\" entry records the dump it was checked with"
                                 : "must be null in an \"%s\" entry", statuses[status]);
    if ((status == 2) != (repro != NULL))
        return vfail(c, "provenance.reproduction",
                     status == 2 ? "a \"%s\" entry records what was re-run"
                                 : "must be null in a \"%s\" entry (only \"verified\" "
                                   "entries were re-run)", statuses[status]);
    if (cons && (rc = check_consistency(c, cons)))
        return rc;
    return PG_OK; /* the reproduction is checked after the sections it refers to */
}

int lb_validate(const json_t *root, lb_mode mode, const char *name, pg_error *err)
{
    vctx c = {.name = name, .err = err, .reported = mode == LB_REPORTED_SUBMISSION};
    static const char *const keys_sub[] = {
        "schema", "model", "tokenizer", "context", "eval", "totals", "word_ppl", "word_ppl_exact",
        "buckets", "throughput", "harness", "date", "hardware", "nll_dump", NULL};
    static const char *const keys_entry[] = {
        "schema", "model", "tokenizer", "context", "eval", "totals", "word_ppl", "word_ppl_exact",
        "buckets", "throughput", "harness", "date", "hardware", "nll_dump", "provenance", NULL};
    if (!json_is_object(root))
        return pg_fail(err, PG_EINVAL, "%s: the top level must be a JSON object", name);
    int rc;
    if (mode != LB_ENTRY && json_object_get(root, "provenance"))
        return vfail(&c, "provenance",
                     "is set by the leaderboard, not by a submission (remove it)");
    if ((rc = check_keys(&c, root, "", mode == LB_ENTRY ? keys_entry : keys_sub)))
        return rc;
    const char *schema;
    if ((rc = get_str(&c, root, "", "schema", REQUIRED, 64, &schema)))
        return rc;
    if (strcmp(schema, LB_SCHEMA) != 0)
        return vfail(&c, "schema", "\"%.64s\" is not \"%s\"", schema, LB_SCHEMA);
    if (mode == LB_ENTRY && (rc = check_provenance(&c, root, &c.reported)))
        return rc;
    summary sum = {.reported = c.reported};
    if ((rc = check_model(&c, root)) || (rc = check_tokenizer(&c, root)) ||
        (rc = check_context(&c, root)) || (rc = check_eval(&c, root, &sum)) ||
        (rc = check_totals(&c, root, &sum)) || (rc = check_word_ppl(&c, root, &sum)) ||
        (rc = check_buckets(&c, root, &sum)) || (rc = check_run_info(&c, root)))
        return rc;
    const json_t *repro = json_object_get(json_object_get(root, "provenance"), "reproduction");
    if (mode == LB_ENTRY && json_is_object(repro) && (rc = check_reproduction(&c, root, repro)))
        return rc;
    /* A measured result must carry its measurements: totals can only be null
     * in a reported one, and then nothing derived from it may be present. */
    if (c.reported && !sum.have_totals && json_object_get(root, "nll_dump") &&
        !json_is_null(json_object_get(root, "nll_dump")))
        return vfail(&c, "nll_dump", "a result without totals has no NLL dump");
    return PG_OK;
}
