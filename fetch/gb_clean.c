/* gb_clean.c - decoding and licence-text removal for raw Gutenberg texts.
 * See gb_clean.h for the two output modes and DATASHEET.md for the rules. */
#include "fetch/gb_clean.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unicode/ucnv.h>
#include <unicode/ucnv_err.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

const char *gb_mark_name(int kind)
{
    switch (kind) {
    case GB_MARK_START_THIS: return "start-this";
    case GB_MARK_START_THE: return "start-the";
    case GB_MARK_SMALL_PRINT: return "small-print";
    case GB_MARK_START_OTHER: return "start-other";
    default: return "none";
    }
}

/* ---------------------------------------------------------------- UTF-8 -- */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is invalid. */
static size_t utf8_seq_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return (n >= 2 && (s[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0) return 0;   /* overlong */
        if (c == 0xED && s[1] >= 0xA0) return 0;  /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90) return 0;   /* overlong */
        if (c == 0xF4 && s[1] >= 0x90) return 0;  /* > U+10FFFF */
        return 4;
    }
    return 0;
}

int gb_utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] < 0x80) { i++; continue; }
        size_t k = utf8_seq_len(s + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

/* Copies UTF-8, replacing each invalid byte with U+FFFD (EF BF BD). */
static int utf8_repair(const uint8_t *s, size_t n, char **out, size_t *out_len, uint64_t *repl,
                       pg_error *err)
{
    if (n > GB_MAX_RAW_BYTES)
        return pg_fail(err, PG_ELIMIT, "text too large");
    char *o = malloc(3 * n + 1);
    if (!o)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    size_t j = 0, i = 0;
    while (i < n) {
        size_t k = s[i] < 0x80 ? 1 : utf8_seq_len(s + i, n - i);
        if (k) {
            memcpy(o + j, s + i, k);
            j += k;
            i += k;
        } else {
            memcpy(o + j, "\xEF\xBF\xBD", 3);
            j += 3;
            i++;
            (*repl)++;
        }
    }
    o[j] = '\0';
    *out = o;
    *out_len = j;
    return PG_OK;
}

/* ----------------------------------------------------------------- ICU -- */

typedef struct subst_counter { uint64_t n; } subst_counter;

/* Counts every substitution ICU makes, then substitutes as usual. */
static void U_CALLCONV count_and_substitute(const void *ctx, UConverterToUnicodeArgs *args,
                                            const char *units, int32_t length,
                                            UConverterCallbackReason reason, UErrorCode *status)
{
    if (reason == UCNV_UNASSIGNED || reason == UCNV_ILLEGAL || reason == UCNV_IRREGULAR)
        ((subst_counter *)ctx)->n++;
    UCNV_TO_U_CALLBACK_SUBSTITUTE(NULL, args, units, length, reason, status);
}

/* UTF-16 buffer -> malloc'd UTF-8. */
static int uchars_to_utf8(const UChar *u, int32_t ulen, char **out, size_t *out_len, pg_error *err)
{
    UErrorCode st = U_ZERO_ERROR;
    int32_t need = 0;
    u_strToUTF8(NULL, 0, &need, u, ulen, &st);
    if (st != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(st))
        return pg_fail(err, PG_EINVAL, "UTF-16 to UTF-8: %s", u_errorName(st));
    char *o = malloc((size_t)need + 1);
    if (!o)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    st = U_ZERO_ERROR;
    u_strToUTF8(o, need + 1, NULL, u, ulen, &st);
    if (U_FAILURE(st)) {
        free(o);
        return pg_fail(err, PG_EINVAL, "UTF-16 to UTF-8: %s", u_errorName(st));
    }
    o[need] = '\0';
    *out = o;
    *out_len = (size_t)need;
    return PG_OK;
}

/* Bytes in charset conv_name -> malloc'd UTF-8, substitutions counted.
 * ucnv_convertEx goes straight to UTF-8 (ICU pivots internally, with fast
 * paths for single-byte charsets); the output buffer starts at 2n and is
 * doubled if a charset needs more. */
static int icu_to_utf8(const char *conv_name, const uint8_t *in, size_t n, char **out,
                       size_t *out_len, uint64_t *repl, pg_error *err)
{
    if (n > GB_MAX_RAW_BYTES)
        return pg_fail(err, PG_ELIMIT, "text too large");
    UErrorCode st = U_ZERO_ERROR;
    UConverter *src = ucnv_open(conv_name, &st);
    if (U_FAILURE(st))
        return pg_fail(err, PG_EINVAL, "no converter for charset \"%s\": %s", conv_name,
                       u_errorName(st));
    UConverter *utf8 = ucnv_open("UTF-8", &st);
    if (U_FAILURE(st)) {
        ucnv_close(src);
        return pg_fail(err, PG_EINVAL, "no UTF-8 converter: %s", u_errorName(st));
    }
    subst_counter counter = {0};
    ucnv_setToUCallBack(src, count_and_substitute, &counter, NULL, NULL, &st);
    size_t cap = 2 * n + 64;
    int rc = PG_OK;
    char *o = NULL;
    for (;;) {
        char *g = realloc(o, cap + 1);
        if (!g) {
            rc = pg_fail(err, PG_ENOMEM, "out of memory");
            break;
        }
        o = g;
        counter.n = 0;
        st = U_ZERO_ERROR;
        char *t = o;
        const char *sp = (const char *)in;
        ucnv_convertEx(utf8, src, &t, o + cap, &sp, (const char *)in + n, NULL, NULL, NULL, NULL,
                       1 /* reset */, 1 /* flush */, &st);
        if (st == U_BUFFER_OVERFLOW_ERROR && cap < 8 * n + 64) {
            cap *= 2;
            continue;
        }
        if (U_FAILURE(st)) {
            rc = pg_fail(err, PG_EINVAL, "decoding %s: %s", conv_name, u_errorName(st));
            break;
        }
        *t = '\0';
        *out_len = (size_t)(t - o);
        break;
    }
    ucnv_close(src);
    ucnv_close(utf8);
    if (rc < 0) {
        free(o);
        return rc;
    }
    *out = o;
    *repl += counter.n;
    return PG_OK;
}

/* Valid UTF-8 -> NFC UTF-8 (malloc'd). ASCII text is already NFC. */
static int utf8_nfc(const char *s, size_t n, char **out, size_t *out_len, pg_error *err)
{
    int ascii = 1;
    for (size_t i = 0; i < n && ascii; i++)
        ascii = (uint8_t)s[i] < 0x80;
    if (ascii || n == 0) {
        char *o = malloc(n + 1);
        if (!o)
            return pg_fail(err, PG_ENOMEM, "out of memory");
        memcpy(o, s, n);
        o[n] = '\0';
        *out = o;
        *out_len = n;
        return PG_OK;
    }
    if (n > GB_MAX_RAW_BYTES)
        return pg_fail(err, PG_ELIMIT, "text too large");
    UErrorCode st = U_ZERO_ERROR;
    const UNormalizer2 *nfc = unorm2_getNFCInstance(&st);
    if (U_FAILURE(st))
        return pg_fail(err, PG_EINVAL, "ICU NFC: %s", u_errorName(st));
    /* Text whose every non-ASCII code point is NFC-inert (unchanged by NFC and
     * never combining with a neighbour) is already NFC: skip the UTF-16 trip.
     * An ASCII letter followed by a combining mark fails here, as the mark is
     * not inert. */
    int inert = 1;
    for (size_t i = 0; i < n && inert;) {
        uint8_t c = (uint8_t)s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq_len((const uint8_t *)s + i, n - i);
        if (!k)
            return pg_fail(err, PG_EINVAL, "invalid UTF-8 before NFC");
        UChar32 cp = k == 2 ? ((c & 0x1F) << 6) | (s[i + 1] & 0x3F)
                   : k == 3 ? ((c & 0x0F) << 12) | ((s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F)
                            : ((c & 0x07) << 18) | ((s[i + 1] & 0x3F) << 12) |
                                  ((s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
        inert = unorm2_isInert(nfc, cp);
        i += k;
    }
    if (inert) {
        char *o = malloc(n + 1);
        if (!o)
            return pg_fail(err, PG_ENOMEM, "out of memory");
        memcpy(o, s, n);
        o[n] = '\0';
        *out = o;
        *out_len = n;
        return PG_OK;
    }
    /* UTF-16 never needs more units than UTF-8 has bytes. */
    UChar *u = malloc((n + 1) * sizeof(UChar));
    if (!u)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    int32_t ulen = 0;
    u_strFromUTF8(u, (int32_t)n + 1, &ulen, s, (int32_t)n, &st);
    if (U_FAILURE(st)) {
        free(u);
        return pg_fail(err, PG_EINVAL, "UTF-8 to UTF-16: %s", u_errorName(st));
    }
    int32_t need = unorm2_normalize(nfc, u, ulen, NULL, 0, &st);
    if (st != U_BUFFER_OVERFLOW_ERROR && U_FAILURE(st)) {
        free(u);
        return pg_fail(err, PG_EINVAL, "ICU NFC: %s", u_errorName(st));
    }
    st = U_ZERO_ERROR;
    UChar *v = malloc(((size_t)need + 1) * sizeof(UChar));
    if (!v) {
        free(u);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    int32_t vlen = unorm2_normalize(nfc, u, ulen, v, need + 1, &st);
    free(u);
    if (U_FAILURE(st)) {
        free(v);
        return pg_fail(err, PG_EINVAL, "ICU NFC: %s", u_errorName(st));
    }
    int rc = uchars_to_utf8(v, vlen, out, out_len, err);
    free(v);
    return rc;
}

/* ------------------------------------------------------------ decoding -- */

static const char *memmem_ci(const char *h, size_t hn, const char *needle)
{
    size_t nn = strlen(needle);
    if (nn == 0 || hn < nn)
        return NULL;
    for (size_t i = 0; i + nn <= hn; i++) {
        size_t k = 0;
        while (k < nn && tolower((unsigned char)h[i + k]) == tolower((unsigned char)needle[k]))
            k++;
        if (k == nn)
            return h + i;
    }
    return NULL;
}

/* The header's "Character set encoding: X" (searched in the first 64 KiB). */
static void find_declared_charset(const uint8_t *s, size_t n, char *out, size_t cap)
{
    out[0] = '\0';
    size_t span = n < 65536 ? n : 65536;
    const char *p = memmem_ci((const char *)s, span, "character set encoding:");
    if (!p)
        return;
    p += strlen("character set encoding:");
    const char *end = (const char *)s + span;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    size_t k = 0;
    while (p < end && *p != '\r' && *p != '\n' && k + 1 < cap) {
        unsigned char c = (unsigned char)*p++;
        out[k++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    while (k > 0 && (out[k - 1] == ' ' || out[k - 1] == '\t'))
        k--;
    out[k] = '\0';
}

/* "ISO Latin-1" -> "isolatin1": lower-case alphanumerics only. */
static void charset_key(const char *name, char *key, size_t cap)
{
    size_t k = 0;
    for (; *name && k + 1 < cap; name++)
        if (isalnum((unsigned char)*name))
            key[k++] = (char)tolower((unsigned char)*name);
    key[k] = '\0';
}

enum { CS_NONE, CS_UTF8, CS_LATIN, CS_OTHER };

static int charset_class(const char *declared)
{
    char key[64];
    charset_key(declared, key, sizeof key);
    if (!key[0])
        return CS_NONE;
    if (!strcmp(key, "utf8") || !strcmp(key, "unicodeutf8"))
        return CS_UTF8;
    if (strstr(key, "ascii") || strstr(key, "latin1") || strstr(key, "88591") ||
        !strcmp(key, "isolatin") || !strcmp(key, "latin") || strstr(key, "1252"))
        return CS_LATIN;
    return CS_OTHER;
}

int gb_decode_utf8(const char *name, const uint8_t *raw, size_t len, int mode, char **out,
                   size_t *out_len, gb_clean_report *rep, pg_error *err)
{
    memset(rep, 0, sizeof *rep);
    if (len > GB_MAX_RAW_BYTES)
        return pg_fail(err, PG_ELIMIT, "%s: %zu bytes is over the %zu-byte cap for one text",
                       name, len, GB_MAX_RAW_BYTES);
    const uint8_t *s = raw;
    size_t n = len;
    while (n >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
        s += 3;
        n -= 3;
        rep->boms++;
    }
    find_declared_charset(s, n, rep->declared, sizeof rep->declared);
    int rc;
    if (n >= 2 && ((s[0] == 0xFF && s[1] == 0xFE) || (s[0] == 0xFE && s[1] == 0xFF))) {
        rep->boms++;
        snprintf(rep->encoding, sizeof rep->encoding, "%s", s[0] == 0xFF ? "UTF-16LE" : "UTF-16BE");
        rc = icu_to_utf8(rep->encoding, s + 2, n - 2, out, out_len, &rep->replacements, err);
    } else if (gb_utf8_valid(s, n)) {
        snprintf(rep->encoding, sizeof rep->encoding, "UTF-8");
        char *o = malloc(n + 1);
        if (!o)
            return pg_fail(err, PG_ENOMEM, "out of memory");
        memcpy(o, s, n);
        o[n] = '\0';
        *out = o;
        *out_len = n;
        rc = PG_OK;
    } else {
        int cls = charset_class(rep->declared);
        const char *conv = mode == GB_CLEAN_PG19 ? "ISO-8859-1" : "windows-1252";
        if (cls == CS_UTF8) {
            snprintf(rep->encoding, sizeof rep->encoding, "UTF-8");
            rc = utf8_repair(s, n, out, out_len, &rep->replacements, err);
        } else {
            if (cls == CS_OTHER) {
                UErrorCode st = U_ZERO_ERROR;
                UConverter *c = ucnv_open(rep->declared, &st);
                if (U_SUCCESS(st)) {
                    conv = rep->declared;
                    ucnv_close(c);
                }
            }
            snprintf(rep->encoding, sizeof rep->encoding, "%s", conv);
            rc = icu_to_utf8(conv, s, n, out, out_len, &rep->replacements, err);
        }
    }
    if (rc < 0)
        return pg_wrap(err, "%s", name);
    return PG_OK;
}

/* ----------------------------------------------------------- --pg19 cut -- */

/* PG-19's own rule, on the decoded text: after the line that ends the START
 * marker, up to the first upper-case "END OF TH(IS|E) PROJECT GUTENBERG EBOOK". */
static int pg19_cut(const char *t, size_t n, size_t *b, size_t *e, int *kind)
{
    static const char start[] = "START OF TH";
    size_t pos = 0;
    *kind = GB_MARK_NONE;
    while (pos < n) {
        const char *p = memmem(t + pos, n - pos, start, sizeof start - 1);
        if (!p)
            return 0;
        size_t at = (size_t)(p - t);
        pos = at + 1;
        size_t k = at + sizeof start - 1;
        int is_this;
        if (n - k >= 26 && !memcmp(t + k, "IS PROJECT GUTENBERG EBOOK", 26)) {
            is_this = 1;
            k += 26;
        } else if (n - k >= 25 && !memcmp(t + k, "E PROJECT GUTENBERG EBOOK", 25)) {
            is_this = 0;
            k += 25;
        } else {
            continue;
        }
        int stars = (at >= 3 && !memcmp(t + at - 3, "***", 3)) ||
                    (at >= 4 && !memcmp(t + at - 4, "*** ", 4));
        if (!stars)
            continue;
        const char *nl = memchr(t + k, '\n', n - k);
        if (!nl)
            return 0;
        size_t eol = (size_t)(nl - t);
        size_t begin = eol + 1;
        if (!memmem(t + k, eol - k, "***", 3)) {
            /* Wrapped marker: its closing *** is on the next line. */
            const char *nl2 = memchr(t + begin, '\n', n - begin);
            if (nl2 && memmem(t + begin, (size_t)(nl2 - t) - begin, "***", 3))
                begin = (size_t)(nl2 - t) + 1;
        }
        const char *e1 = memmem(t + begin, n - begin, "END OF THIS PROJECT GUTENBERG EBOOK", 35);
        const char *e2 = memmem(t + begin, n - begin, "END OF THE PROJECT GUTENBERG EBOOK", 34);
        const char *end = e1 && (!e2 || e1 < e2) ? e1 : e2;
        if (!end)
            return 0;
        *b = begin;
        *e = (size_t)(end - t);
        *kind = is_this ? GB_MARK_START_THIS : GB_MARK_START_THE;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------- default clean -- */

/* Upper-case ASCII key of a line with '*' and white space collapsed to one
 * space and leading ones dropped: "***START OF THE ..." -> "START OF THE ...". */
static void line_key(const char *l, size_t n, char *key, size_t cap)
{
    size_t k = 0;
    int sep = 1;
    for (size_t i = 0; i < n && k + 1 < cap; i++) {
        unsigned char c = (unsigned char)l[i];
        if (c == '*' || c == ' ' || c == '\t' || c == '\r') {
            if (!sep)
                key[k++] = ' ';
            sep = 1;
        } else {
            key[k++] = (char)toupper(c);
            sep = 0;
        }
    }
    key[k] = '\0';
}

static int has_prefix(const char *s, const char *p) { return !strncmp(s, p, strlen(p)); }

static int start_kind_of(const char *key)
{
    if (has_prefix(key, "START OF THIS PROJECT GUTENBERG"))
        return GB_MARK_START_THIS;
    if (has_prefix(key, "START OF THE PROJECT GUTENBERG"))
        return GB_MARK_START_THE;
    if (has_prefix(key, "END THE SMALL PRINT"))
        return GB_MARK_SMALL_PRINT;
    if (has_prefix(key, "START OF ") && strstr(key, "PROJECT GUTENBERG"))
        return GB_MARK_START_OTHER;
    return GB_MARK_NONE;
}

static int is_end_marker(const char *key)
{
    if (has_prefix(key, "END OF ") && strstr(key, "PROJECT GUTENBERG"))
        return 1;
    return has_prefix(key, "START: FULL LICENSE") || has_prefix(key, "START FULL LICENSE");
}

/* Producer credits and mirror notes that open the body in every era. */
static int is_credit(const char *key)
{
    static const char *const prefixes[] = {
        "PRODUCED BY", "E-TEXT PREPARED BY", "ETEXT PREPARED BY", "E-TEXT PRODUCED BY",
        "ETEXT PRODUCED BY", "THIS ETEXT WAS PREPARED BY", "THIS E-TEXT WAS PREPARED BY",
        "THIS EBOOK WAS PREPARED BY", "THIS EBOOK WAS PRODUCED BY", "THIS ETEXT WAS PRODUCED BY",
        "THIS E-TEXT WAS PRODUCED BY", "THIS TEXT WAS PREPARED BY", "TRANSCRIBED BY",
        "TRANSCRIBED FROM THE", "SCANNED BY", "DIGITIZED BY",
        "NOTE: PROJECT GUTENBERG ALSO HAS AN HTML VERSION", "[NOTE: PROJECT GUTENBERG",
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (has_prefix(key, prefixes[i]))
            return 1;
    return 0;
}

static int blank_line(const char *l, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (l[i] != ' ' && l[i] != '\t' && l[i] != '\r')
            return 0;
    return 1;
}

/* CRLF and lone CR -> LF, in place; returns the new length. */
static size_t to_lf(char *t, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '\r') {
            t[j++] = '\n';
            if (i + 1 < n && t[i + 1] == '\n')
                i++;
        } else {
            t[j++] = t[i];
        }
    }
    t[j] = '\0';
    return j;
}

/* Finds the body [*b, *e) of LF text t: after the last start marker that
 * precedes the first end marker, up to that end marker's line. */
static void default_cut(const char *t, size_t n, size_t *b, size_t *e, gb_clean_report *rep)
{
    char key[128];
    size_t body = 0, end = n;
    size_t ls = 0;
    while (ls < n) {
        const char *nl = memchr(t + ls, '\n', n - ls);
        size_t le = nl ? (size_t)(nl - t) : n;
        size_t next = nl ? le + 1 : n;
        /* Every marker's first letter is an S or an E: most lines are rejected
         * on one byte, without building their key. */
        size_t f = ls;
        while (f < le && (t[f] == '*' || t[f] == ' ' || t[f] == '\t'))
            f++;
        if (f == le || (t[f] != 'S' && t[f] != 's' && t[f] != 'E' && t[f] != 'e')) {
            ls = next;
            continue;
        }
        line_key(t + ls, le - ls, key, sizeof key);
        if (is_end_marker(key)) {
            end = ls;
            rep->has_end = 1;
            break;
        }
        int k = start_kind_of(key);
        if (k != GB_MARK_NONE) {
            rep->start_kind = k;
            body = next;
            /* A START line whose closing '*' is missing wraps onto the next line. */
            size_t tl = le;
            while (tl > ls && (t[tl - 1] == ' ' || t[tl - 1] == '\r'))
                tl--;
            if (k != GB_MARK_SMALL_PRINT && tl > ls && t[tl - 1] != '*' && next < n) {
                const char *nl2 = memchr(t + next, '\n', n - next);
                size_t le2 = nl2 ? (size_t)(nl2 - t) : n;
                size_t tl2 = le2;
                while (tl2 > next && (t[tl2 - 1] == ' ' || t[tl2 - 1] == '\r'))
                    tl2--;
                if (tl2 >= next + 3 && !memcmp(t + tl2 - 3, "***", 3)) {
                    body = nl2 ? le2 + 1 : n;
                    next = body;
                }
            }
        }
        ls = next;
    }
    *b = body;
    *e = end;
}

int gb_clean(const char *name, const uint8_t *raw, size_t len, int mode, char **out,
             size_t *out_len, gb_clean_report *rep, pg_error *err)
{
    char *t = NULL;
    size_t n = 0;
    int rc = gb_decode_utf8(name, raw, len, mode, &t, &n, rep, err);
    if (rc < 0)
        return rc;
    size_t b, e;
    if (mode == GB_CLEAN_PG19) {
        int kind;
        if (!pg19_cut(t, n, &b, &e, &kind)) {
            free(t);
            return pg_fail(err, PG_ENOTFOUND,
                           "%s: no \"*** START OF TH(E|IS) PROJECT GUTENBERG EBOOK\" ... "
                           "\"END OF TH(IS|E) PROJECT GUTENBERG EBOOK\" pair: not a PG-19-style text",
                           name);
        }
        rep->start_kind = kind;
        rep->has_end = 1;
        memmove(t, t + b, e - b);
        t[e - b] = '\0';
        *out = t;
        *out_len = e - b;
        rep->out_bytes = e - b;
        return PG_OK;
    }

    n = to_lf(t, n);
    default_cut(t, n, &b, &e, rep);
    /* Leading blank lines, then producer-credit paragraphs. */
    for (;;) {
        while (b < e) {
            const char *nl = memchr(t + b, '\n', e - b);
            size_t le = nl ? (size_t)(nl - t) : e;
            if (!blank_line(t + b, le - b))
                break;
            b = nl ? le + 1 : e;
        }
        if (b >= e)
            break;
        char key[128];
        const char *nl = memchr(t + b, '\n', e - b);
        size_t le = nl ? (size_t)(nl - t) : e;
        line_key(t + b, le - b, key, sizeof key);
        if (!is_credit(key) || rep->credits_removed >= 8)
            break;
        rep->credits_removed++;
        while (b < e) { /* drop the paragraph */
            const char *nl3 = memchr(t + b, '\n', e - b);
            size_t le3 = nl3 ? (size_t)(nl3 - t) : e;
            if (blank_line(t + b, le3 - b))
                break;
            b = nl3 ? le3 + 1 : e;
        }
    }
    /* Trailing white space and blank lines. */
    while (e > b && (t[e - 1] == '\n' || t[e - 1] == ' ' || t[e - 1] == '\t'))
        e--;
    char *nfc = NULL;
    size_t nfc_len = 0;
    rc = utf8_nfc(t + b, e - b, &nfc, &nfc_len, err);
    free(t);
    if (rc < 0)
        return pg_wrap(err, "%s", name);
    if (nfc_len > 0) {
        char *grown = realloc(nfc, nfc_len + 2);
        if (!grown) {
            free(nfc);
            return pg_fail(err, PG_ENOMEM, "out of memory");
        }
        nfc = grown;
        nfc[nfc_len++] = '\n';
        nfc[nfc_len] = '\0';
    }
    *out = nfc;
    *out_len = nfc_len;
    rep->out_bytes = nfc_len;
    return PG_OK;
}
