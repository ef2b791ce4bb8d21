/* plausible.c - see plausible.h. Names are judged with ICU (libicu-dev):
 * its NFC normaliser and its character properties. */
#include "leaderboard/plausible.h"

#include <stdio.h>
#include <string.h>

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>
#include <unicode/utf16.h>

time_t lb_date_seconds(const char *date)
{
    struct tm tm = {0};
    if (sscanf(date, "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec) != 6)
        return (time_t)-1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return timegm(&tm);
}

/* "U+200B ZERO WIDTH SPACE" */
static void describe(UChar32 cp, char *out, size_t cap)
{
    char name[128];
    UErrorCode st = U_ZERO_ERROR;
    int32_t n = u_charName(cp, U_UNICODE_CHAR_NAME, name, (int32_t)sizeof name, &st);
    if (U_FAILURE(st) || n <= 0)
        snprintf(out, cap, "U+%04X", (unsigned)cp);
    else
        snprintf(out, cap, "U+%04X %s", (unsigned)cp, name);
}

/* Why cp cannot be seen, or NULL when it can. */
static const char *invisible(UChar32 cp)
{
    if (cp == 0x20)
        return NULL;
    if (u_hasBinaryProperty(cp, UCHAR_DEFAULT_IGNORABLE_CODE_POINT))
        return "an invisible (default-ignorable) character";
    switch (u_charType(cp)) {
    case U_CONTROL_CHAR: return "a control character";
    case U_FORMAT_CHAR: return "an invisible format character";
    case U_UNASSIGNED: return "an unassigned code point";
    case U_PRIVATE_USE_CHAR: return "a private-use character";
    case U_SURROGATE: return "a surrogate";
    case U_SPACE_SEPARATOR: return "a space other than U+0020";
    case U_LINE_SEPARATOR:
    case U_PARAGRAPH_SEPARATOR: return "a line or paragraph separator";
    default: break;
    }
    if (u_isUWhiteSpace(cp))
        return "white space other than U+0020";
    return NULL;
}

const char *lb_name_rule_broken(const char *name, char *why, size_t cap)
{
    UChar buf[512];
    int32_t len = 0;
    UErrorCode st = U_ZERO_ERROR;
    u_strFromUTF8(buf, (int32_t)(sizeof buf / sizeof buf[0]), &len, name, -1, &st);
    if (U_FAILURE(st)) {
        snprintf(why, cap, "is not valid UTF-8 or is too long (%s)", u_errorName(st));
        return LB_RULE_NAME_VISIBLE;
    }
    char what[200];
    for (int32_t i = 0; i < len;) {
        int32_t at = i;
        UChar32 cp;
        U16_NEXT(buf, i, len, cp);
        const char *bad = invisible(cp);
        if (!bad && at == 0 && (U_GET_GC_MASK(cp) & U_GC_M_MASK))
            bad = "a combining mark with nothing before it";
        if (!bad && cp == 0x20 && (at == 0 || i == len))
            bad = "a leading or trailing space";
        if (bad) {
            describe(cp, what, sizeof what);
            snprintf(why, cap, "contains %s (%s) at character %d", what, bad, (int)u_countChar32(buf, at));
            return LB_RULE_NAME_VISIBLE;
        }
    }
    const UNormalizer2 *nfc = unorm2_getNFCInstance(&st);
    if (U_FAILURE(st)) {
        snprintf(why, cap, "cannot be checked: ICU has no NFC normaliser (%s)", u_errorName(st));
        return LB_RULE_NAME_NFC;
    }
    UBool normal = unorm2_isNormalized(nfc, buf, len, &st);
    if (U_FAILURE(st) || !normal) {
        snprintf(why, cap, "is not in Unicode normalisation form C (NFC): the same text is "
                           "written with other code points; normalise it (e.g. "
                           "`uconv -x any-nfc`)");
        return LB_RULE_NAME_NFC;
    }
    return NULL;
}

static const lb_tolerance tolerances[] = {
    {"cpu", "fp32", 1e-4, 1e-5}, /* measured margins: plausible.h */
};

const lb_tolerance *lb_tolerance_for(const char *backend, const char *precision)
{
    for (size_t i = 0; i < sizeof tolerances / sizeof tolerances[0]; i++)
        if (backend && precision && strcmp(tolerances[i].backend, backend) == 0 &&
            strcmp(tolerances[i].precision, precision) == 0)
            return &tolerances[i];
    return NULL;
}

void lb_entry_backend(const json_t *entry, const char **backend, const char **precision)
{
    const json_t *gpu = json_object_get(json_object_get(entry, "hardware"), "gpu");
    *backend = json_is_string(gpu) ? "gpu" : "cpu";
    *precision = "fp32";
}
