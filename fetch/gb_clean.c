/* gb_clean.c - decoding and licence-text removal for raw Gutenberg texts.
 * See gb_clean.h for the two output modes and DATASHEET.md for the rules. */
#include "fetch/gb_clean.h"

#include <ctype.h>
#include <pthread.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    case GB_MARK_ETEXT_HEADER: return "etext-header";
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

/* "End of ..." lines that open a footer: any "END OF ... PROJECT GUTENBERG"
 * line, the 1990s "End of this Etext of ..." / "End of the Etext ...", and the
 * 2004+ "START: FULL LICENSE". */
static int is_end_marker(const char *key)
{
    if (has_prefix(key, "END OF ")) {
        if (strstr(key, "PROJECT GUTENBERG"))
            return 1;
        static const char *const etext[] = {"END OF THIS ETEXT", "END OF THIS E-TEXT",
                                            "END OF THE ETEXT", "END OF THE E-TEXT",
                                            "END OF ETEXT", "END OF E-TEXT"};
        for (size_t i = 0; i < sizeof etext / sizeof etext[0]; i++)
            if (has_prefix(key, etext[i]))
                return 1;
        return 0;
    }
    return has_prefix(key, "START: FULL LICENSE") || has_prefix(key, "START FULL LICENSE");
}

/* The "*****This file should be named 4478.txt or 4478.zip*****" line of the
 * 1996-2003 etext header, repeated in the footer when the small print sits at
 * the end of the file. */
static int is_file_name_line(const char *key)
{
    return has_prefix(key, "THIS FILE SHOULD BE NAMED ");
}

/* ----------------------------------------------- credits and PG notices -- */

/* Paragraphs that open the body in some era but are not the book: producer
 * credits and Project Gutenberg's own notices. Each pattern is a POSIX ERE
 * matched against the key (line_key) of a paragraph's first line, anchored at
 * its start, so a book whose first line merely mentions an etext is kept.
 * Measured on the real files of $PG19_TEST_CORPUS (see GUTENBERG.md). */
static const char *const FRONT_PATTERNS[] = {
    /* "Produced by", "Transcribed from the 1913 ... edition by" (every era) */
    "^(PRODUCED|TRANSCRIBED|SCANNED|DIGITIZED) BY( |$)",
    "^TRANSCRIBED FROM THE ",
    /* "This etext was prepared by", "E-text revised by", "Etext prepared by",
     * "This eBook was produced by", "This file was produced from images" */
    "^(THIS )?(E-?TEXT|E-?BOOK|PROJECT GUTENBERG (E-?TEXT|E-?BOOK)|ELECTRONIC (TEXT|EDITION))"
    "( WAS| HAS BEEN| IS)?( ORIGINALLY| FIRST| KINDLY)? (PREPARED|PRODUCED|REVISED|CREATED|"
    "SCANNED|TRANSCRIBED|PROOFREAD|PROOFED|TYPED|EDITED|ENTERED|CONVERTED|CORRECTED|UPDATED|"
    "DIGITIZED|MADE|DONE|PROVIDED)( AND [A-Z]+)? BY( |$)",
    "^THIS (FILE|TEXT) (WAS |HAS BEEN |IS )?(PREPARED|PRODUCED|REVISED|CREATED|SCANNED|"
    "TRANSCRIBED|PROOFREAD|TYPED|EDITED|CONVERTED|DIGITIZED) (BY|FROM)( |$)",
    "^MANY THANKS TO .* WHO (TRANSCRIBED|PREPARED|PRODUCED|SCANNED|PROOFREAD) THIS E-?TEXT",
    /* "Project Gutenberg's Etext of ...", "The Project Gutenberg Etext of X"
     * (with the file name on the next line), "Project Gutenberg Etexts are
     * often created from several printed editions ..." */
    "^(THE )?PROJECT GUTENBERG('S)?( |$)",
    /* "NOTE: This work has been previously published in [Etext #2673]",
     * "Note: Project Gutenberg also has an HTML version of this file",
     * "[NOTE: There is a short list of bookmarks ... D.W.]" */
    "^\\[?NOTE: (PROJECT GUTENBERG|THIS (WORK|E-?TEXT|E-?BOOK|FILE|BOOK) (HAS BEEN|WAS) "
    "PREVIOUSLY PUBLISHED|THERE IS A SHORT LIST OF BOOKMARKS)",
    "^\\[?PORTIONS OF THIS HEADER ARE COPYRIGHT",
    "^THE \"?LEGAL SMALL PRINT\"? AND OTHER INFORMATION",
    "^THIS FILE SHOULD BE NAMED ",
    /* a file name alone: "tales10.txt", "2237.txt or 2237.zip" */
    "^[A-Z0-9_-]*[0-9][A-Z0-9_-]*\\.(TXT|ZIP)( OR [A-Z0-9_.-]+)?$",
    "^IMAGES OF THE ORIGINAL PAGES ARE AVAILABLE",
};
#define N_FRONT (sizeof FRONT_PATTERNS / sizeof FRONT_PATTERNS[0])

static regex_t front_re[N_FRONT];
static int front_re_ok;
static pthread_once_t front_once = PTHREAD_ONCE_INIT;

static void front_compile(void)
{
    for (size_t i = 0; i < N_FRONT; i++)
        if (regcomp(&front_re[i], FRONT_PATTERNS[i], REG_EXTENDED | REG_NOSUB) != 0)
            return;
    front_re_ok = 1;
}

static int is_front_notice(const char *key)
{
    for (size_t i = 0; i < N_FRONT; i++)
        if (regexec(&front_re[i], key, 0, NULL, 0) == 0)
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

/* End of the line that starts at ls (index of its '\n', or e). */
static size_t line_end(const char *t, size_t ls, size_t e)
{
    const char *nl = memchr(t + ls, '\n', e - ls);
    return nl ? (size_t)(nl - t) : e;
}

/* Start of the paragraph after the one at b (the first blank line after it,
 * or e). */
static size_t skip_paragraph(const char *t, size_t b, size_t e)
{
    while (b < e) {
        size_t le = line_end(t, b, e);
        if (blank_line(t + b, le - b))
            break;
        b = le < e ? le + 1 : e;
    }
    return b;
}

/* 1 if every line of the paragraph at b is only '*' and white space. */
static int separator_paragraph(const char *t, size_t b, size_t e)
{
    while (b < e) {
        size_t le = line_end(t, b, e);
        if (blank_line(t + b, le - b))
            return 1;
        for (size_t i = b; i < le; i++)
            if (t[i] != '*' && t[i] != ' ' && t[i] != '\t')
                return 0;
        b = le < e ? le + 1 : e;
    }
    return 1;
}

/* The "Executive Director's Notes:" block of the 1990s Shakespeare etexts:
 * from that line to the paragraph signed "Executive Director". Returns the
 * position after the block, or b when no signature follows within 32 KiB. */
static size_t skip_director_notes(const char *t, size_t b, size_t e)
{
    size_t limit = e - b > 32768 ? b + 32768 : e;
    char key[128];
    for (size_t ls = b; ls < limit;) {
        size_t le = line_end(t, ls, e);
        line_key(t + ls, le - ls, key, sizeof key);
        if (!strcmp(key, "EXECUTIVE DIRECTOR"))
            return skip_paragraph(t, ls, e);
        ls = le < e ? le + 1 : e;
    }
    return b;
}

/* Drops, from the top of the body [*b, e), blank lines and up to 16
 * paragraphs of producer credits and Project Gutenberg notices; counts them. */
static void drop_front_notices(const char *t, size_t *b, size_t e, gb_clean_report *rep)
{
    char key[128];
    size_t p = *b;
    for (int dropped = 0; dropped < 16;) {
        while (p < e) {
            size_t le = line_end(t, p, e);
            if (!blank_line(t + p, le - p))
                break;
            p = le < e ? le + 1 : e;
        }
        if (p >= e)
            break;
        size_t le = line_end(t, p, e);
        line_key(t + p, le - p, key, sizeof key);
        size_t next = p;
        if (separator_paragraph(t, p, e) || is_front_notice(key))
            next = skip_paragraph(t, p, e);
        else if (has_prefix(key, "EXECUTIVE DIRECTOR'S NOTES"))
            next = skip_director_notes(t, p, e);
        if (next == p)
            break;
        p = next;
        rep->credits_removed++;
        dropped++;
    }
    *b = p;
}

/* First non-blank line at or after ls and before e; 1 if there is one. */
static int has_text(const char *t, size_t ls, size_t e)
{
    for (size_t i = ls; i < e; i++)
        if (t[i] != ' ' && t[i] != '\t' && t[i] != '\n' && t[i] != '*')
            return 1;
    return 0;
}

/* Start of the footer that begins with the file-name line at ls: up to two
 * lines above it that are a "The Project Gutenberg Etext of ..." title or a
 * row of asterisks belong to it. */
static size_t footer_start(const char *t, size_t ls)
{
    char key[128];
    for (int k = 0; k < 2 && ls > 0; k++) {
        size_t prev = ls - 1; /* the '\n' ending the line above */
        size_t ps = prev;
        while (ps > 0 && t[ps - 1] != '\n')
            ps--;
        line_key(t + ps, prev - ps, key, sizeof key);
        if (key[0] && !has_prefix(key, "THE PROJECT GUTENBERG") &&
            !has_prefix(key, "PROJECT GUTENBERG"))
            break;
        if (blank_line(t + ps, prev - ps))
            break;
        ls = ps;
    }
    return ls;
}

/* Finds the body [*b, *e) of LF text t: after the last start marker that
 * precedes the first end marker, up to that end marker's line.
 *
 * Start markers: "*** START OF TH(E|IS) PROJECT GUTENBERG ...", the 1990s
 * "*END*THE SMALL PRINT!" line, and the etext header's "This file should be
 * named ..." line (a header without markers; the small print, if any, comes
 * later). End markers: is_end_marker, and a second "This file should be
 * named" line after book text: the footer of the 2001-2003 etexts that put
 * their small print at the end of the file. */
static void default_cut(const char *t, size_t n, size_t *b, size_t *e, gb_clean_report *rep)
{
    char key[128];
    size_t body = 0, end = n;
    size_t ls = 0;
    while (ls < n) {
        const char *nl = memchr(t + ls, '\n', n - ls);
        size_t le = nl ? (size_t)(nl - t) : n;
        size_t next = nl ? le + 1 : n;
        /* Every marker starts with an S, an E or "This file": most lines are
         * rejected on a byte or two, without building their key. */
        size_t f = ls;
        while (f < le && (t[f] == '*' || t[f] == ' ' || t[f] == '\t'))
            f++;
        unsigned char c0 = f < le ? (unsigned char)toupper((unsigned char)t[f]) : 0;
        if (c0 != 'S' && c0 != 'E' &&
            (c0 != 'T' || le - f < 9 || strncasecmp(t + f, "this file", 9) != 0)) {
            ls = next;
            continue;
        }
        line_key(t + ls, le - ls, key, sizeof key);
        if (is_end_marker(key)) {
            end = ls;
            rep->has_end = 1;
            break;
        }
        if (is_file_name_line(key)) {
            if (rep->start_kind != GB_MARK_NONE && has_text(t, body, ls)) {
                end = footer_start(t, ls);
                rep->has_end = 1;
                break;
            }
            if (rep->start_kind == GB_MARK_NONE)
                rep->start_kind = GB_MARK_ETEXT_HEADER;
            body = next;
            ls = next;
            continue;
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
    if (end < body) /* an end marker before any book text */
        end = body;
    *b = body;
    *e = end;
}

/* ------------------------------------------------------- text or not -- */

/* Magic numbers of the binary formats a mirror or a user may hand us. */
static const char *binary_magic(const uint8_t *s, size_t n)
{
    static const struct { const char *magic; size_t len; const char *what; } m[] = {
        {"\x7F" "ELF", 4, "an ELF executable"},
        {"PK\x03\x04", 4, "a zip archive (extract its .txt member first)"},
        {"PK\x05\x06", 4, "an empty zip archive"},
        {"\x1F\x8B", 2, "a gzip file"},
        {"BZh", 3, "a bzip2 file"},
        {"\xFD" "7zXZ", 6, "an xz file"},
        {"\x28\xB5\x2F\xFD", 4, "a zstd file"},
        {"7z\xBC\xAF\x27\x1C", 6, "a 7-zip archive"},
        {"Rar!\x1A\x07", 6, "a RAR archive"},
        {"%PDF-", 5, "a PDF document"},
        {"\x89PNG\r\n\x1A\n", 8, "a PNG image"},
        {"\xFF\xD8\xFF", 3, "a JPEG image"},
        {"GIF87a", 6, "a GIF image"},
        {"GIF89a", 6, "a GIF image"},
        {"\xCF\xFA\xED\xFE", 4, "a Mach-O executable"},
        {"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1", 8, "an OLE2 document (.doc)"},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        size_t l = m[i].len;
        if (n >= l && !memcmp(s, m[i].magic, l)) {
            /* "BZh" is also three letters of text: require the block size digit
             * and the block magic that follow. */
            int bzip2 = m[i].magic[0] == 'B';
            if (bzip2 && (n < 10 || s[3] < '1' || s[3] > '9' || memcmp(s + 4, "1AY&SY", 6)))
                continue;
            return m[i].what;
        }
    }
    return NULL;
}

/* The rule for "is this text" (GUTENBERG.md): refused are raw files that
 * start with a binary magic number, and decoded texts that hold a NUL, or in
 * which more than 1% of the bytes (and at least 8) are control characters
 * other than TAB, LF, VT, FF, CR and SUB (DOS end-of-file, found at the end
 * of old etexts): C0 controls and DEL. Decoded text is UTF-8, so C0/DEL are
 * single bytes and never part of a multi-byte character. */
static int check_text(const char *name, const uint8_t *raw, size_t len, const char *t, size_t n,
                      pg_error *err)
{
    const uint8_t *s = raw;
    size_t rn = len;
    while (rn >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF) {
        s += 3;
        rn -= 3;
    }
    const char *what = binary_magic(s, rn);
    if (what)
        return pg_fail(err, PG_EINVAL, "%s: not text: the file is %s", name, what);
    const char *nul = memchr(t, '\0', n);
    if (nul)
        return pg_fail(err, PG_EINVAL,
                       "%s: not text: NUL character at byte %zu of the decoded text", name,
                       (size_t)(nul - t));
    size_t controls = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if ((c < 0x20 && c != '\t' && c != '\n' && c != '\v' && c != '\f' && c != '\r' &&
             c != 0x1A) ||
            c == 0x7F)
            controls++;
    }
    if (controls >= 8 && controls > n / 100)
        return pg_fail(err, PG_EINVAL,
                       "%s: not text: %zu of %zu bytes are control characters (over 1%%)", name,
                       controls, n);
    return PG_OK;
}

/* 1 if t holds nothing but white space and asterisks: an empty book (the
 * --pg19 cut of an empty body is "\r\n\r\n*** "). */
static int no_text(const char *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (t[i] != ' ' && t[i] != '\t' && t[i] != '\n' && t[i] != '\r' && t[i] != '\f' &&
            t[i] != '\v' && t[i] != '*')
            return 0;
    return 1;
}

int gb_clean(const char *name, const uint8_t *raw, size_t len, int mode, char **out,
             size_t *out_len, gb_clean_report *rep, pg_error *err)
{
    *out = NULL;
    *out_len = 0;
    pthread_once(&front_once, front_compile);
    if (!front_re_ok)
        return pg_fail(err, PG_EINVAL, "%s: internal error: a credit pattern does not compile",
                       name);
    char *t = NULL;
    size_t n = 0;
    int rc = gb_decode_utf8(name, raw, len, mode, &t, &n, rep, err);
    if (rc < 0)
        return rc;
    if ((rc = check_text(name, raw, len, t, n, err)) < 0) {
        free(t);
        return rc;
    }
    size_t b, e;
    if (mode == GB_CLEAN_PG19) {
        int kind;
        if (pg19_cut(t, n, &b, &e, &kind)) {
            rep->start_kind = kind;
            rep->has_end = 1;
        } else {
            /* PG-19 keeps a file with no START/END pair whole, licence text
             * and all (DATASHEET.md: 1286, 2237, 3961 match byte for byte). */
            b = 0;
            e = n;
        }
        if (no_text(t + b, e - b)) {
            free(t);
            return pg_fail(err, PG_EINVAL, "%s: empty book: nothing between the START and END "
                                           "markers", name);
        }
        memmove(t, t + b, e - b);
        t[e - b] = '\0';
        *out = t;
        *out_len = e - b;
        rep->out_bytes = e - b;
        return PG_OK;
    }

    n = to_lf(t, n);
    default_cut(t, n, &b, &e, rep);
    drop_front_notices(t, &b, e, rep);
    /* Trailing white space, blank lines and rows of asterisks. */
    for (;;) {
        while (e > b && (t[e - 1] == '\n' || t[e - 1] == ' ' || t[e - 1] == '\t'))
            e--;
        size_t ls = e;
        while (ls > b && t[ls - 1] != '\n')
            ls--;
        if (ls == e || !separator_paragraph(t, ls, e))
            break;
        e = ls;
    }
    if (no_text(t + b, e - b)) {
        free(t);
        return pg_fail(err, PG_EINVAL,
                       "%s: empty book: nothing is left once the Project Gutenberg licence, "
                       "header and credits are removed",
                       name);
    }
    char *nfc = NULL;
    size_t nfc_len = 0;
    rc = utf8_nfc(t + b, e - b, &nfc, &nfc_len, err);
    free(t);
    if (rc < 0)
        return pg_wrap(err, "%s", name);
    char *grown = realloc(nfc, nfc_len + 2);
    if (!grown) {
        free(nfc);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    nfc = grown;
    nfc[nfc_len++] = '\n';
    nfc[nfc_len] = '\0';
    *out = nfc;
    *out_len = nfc_len;
    rep->out_bytes = nfc_len;
    return PG_OK;
}
