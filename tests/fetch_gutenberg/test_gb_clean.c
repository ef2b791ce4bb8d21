/* test_gb_clean.c - unit tests of the Gutenberg decoder/cutter and the zip guards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <archive.h>
#include <archive_entry.h>

#include "fetch/gb_clean.h"
#include "fetch/gb_zip.h"

static char *clean_str(const char *raw, size_t len, int mode, gb_clean_report *rep, int *rc)
{
    char *out = NULL;
    size_t out_len = 0;
    pg_error err = {0};
    *rc = gb_clean("fixture", (const uint8_t *)raw, len, mode, &out, &out_len, rep, &err);
    if (*rc == 0)
        assert_int_equal(strlen(out), out_len);
    return out;
}

static void test_utf8_valid(void **state)
{
    (void)state;
    assert_true(gb_utf8_valid((const uint8_t *)"plain", 5));
    assert_true(gb_utf8_valid((const uint8_t *)"\xC3\xA9\xE2\x80\x9C\xF0\x9F\x98\x80", 9));
    assert_false(gb_utf8_valid((const uint8_t *)"\xC0\xAF", 2));         /* overlong */
    assert_false(gb_utf8_valid((const uint8_t *)"\xED\xA0\x80", 3));     /* surrogate */
    assert_false(gb_utf8_valid((const uint8_t *)"\xF4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(gb_utf8_valid((const uint8_t *)"caf\xE9", 4));          /* Latin-1 */
    assert_false(gb_utf8_valid((const uint8_t *)"\xE2\x80", 2));         /* truncated */
}

static const char HEADER_2003[] =
    "The Project Gutenberg EBook of X, by Y\r\n\r\n"
    "Character set encoding: ISO-8859-1\r\n\r\n"
    "*** START OF THIS PROJECT GUTENBERG EBOOK X ***\r\n\r\n"
    "Produced by Some Volunteers\r\nand the PG Online Team\r\n\r\n\r\n";
static const char FOOTER_2003[] =
    "\r\n\r\nEnd of the Project Gutenberg EBook of X, by Y\r\n\r\n"
    "*** END OF THIS PROJECT GUTENBERG EBOOK X ***\r\n\r\nThe licence...\r\n";

static void test_latin1_both_modes(void **state)
{
    (void)state;
    char raw[1024];
    int n = snprintf(raw, sizeof raw, "%s%s%s", HEADER_2003,
                     "\x93" "Caf\xE9" "\x94 said he.\r\nSecond line.", FOOTER_2003);
    gb_clean_report rep;
    int rc;
    char *out = clean_str(raw, (size_t)n, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(rep.encoding, "windows-1252");
    assert_string_equal(rep.declared, "ISO-8859-1");
    assert_int_equal(rep.start_kind, GB_MARK_START_THIS);
    assert_int_equal(rep.has_end, 1);
    assert_int_equal(rep.credits_removed, 1);
    assert_string_equal(out, "\xE2\x80\x9C" "Caf\xC3\xA9" "\xE2\x80\x9D said he.\nSecond line.\n");
    free(out);

    out = clean_str(raw, (size_t)n, GB_CLEAN_PG19, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(rep.encoding, "ISO-8859-1");
    /* PG-19 keeps CRLF, the credits and the mixed-case closing line. */
    assert_string_equal(out, "\r\nProduced by Some Volunteers\r\nand the PG Online Team\r\n\r\n\r\n"
                             "\xC2\x93" "Caf\xC3\xA9" "\xC2\x94 said he.\r\nSecond line.\r\n\r\n"
                             "End of the Project Gutenberg EBook of X, by Y\r\n\r\n*** ");
    free(out);
}

static void test_wrapped_nospace_marker(void **state)
{
    (void)state;
    const char raw[] = "Title: A\n\n***START OF THE PROJECT GUTENBERG EBOOK A VERY LONG TITLE,\n"
                       "WRAPPED***\n\nBody text.\n\n***END OF THE PROJECT GUTENBERG EBOOK A***\n";
    gb_clean_report rep;
    int rc;
    char *out = clean_str(raw, sizeof raw - 1, GB_CLEAN_PG19, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, "\nBody text.\n\n***");
    free(out);
    out = clean_str(raw, sizeof raw - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.start_kind, GB_MARK_START_THE);
    assert_string_equal(out, "Body text.\n");
    free(out);
}

static void test_small_print_and_no_markers(void **state)
{
    (void)state;
    const char raw[] = "**The Project Gutenberg Etext of Z**\n\n"
                       "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\nlawyers\n"
                       "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\n\n"
                       "This etext was prepared by Someone.\n\nCHAPTER I\n\nText.\n";
    gb_clean_report rep;
    int rc;
    char *out = clean_str(raw, sizeof raw - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.start_kind, GB_MARK_SMALL_PRINT);
    assert_int_equal(rep.has_end, 0);
    assert_string_equal(out, "CHAPTER I\n\nText.\n");
    free(out);
    /* --pg19 refuses what PG-19 could not have contained. */
    out = clean_str(raw, sizeof raw - 1, GB_CLEAN_PG19, &rep, &rc);
    assert_int_equal(rc, PG_ENOTFOUND);
    assert_null(out);

    const char plain[] = "Just a text\r\nwith no markers.\r\n";
    out = clean_str(plain, sizeof plain - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.start_kind, GB_MARK_NONE);
    assert_int_equal(rep.has_end, 0);
    assert_string_equal(out, "Just a text\nwith no markers.\n");
    free(out);
}

static void test_bom_nfc_and_replacement(void **state)
{
    (void)state;
    /* Two BOMs (as in a real 2024 file), a post-2021 header, a decomposed é. */
    const char raw[] = "\xEF\xBB\xBF\xEF\xBB\xBF*** START OF THE PROJECT GUTENBERG EBOOK 11 ***\n"
                       "Cafe\xCC\x81\n*** END OF THE PROJECT GUTENBERG EBOOK 11 ***\n";
    gb_clean_report rep;
    int rc;
    char *out = clean_str(raw, sizeof raw - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.boms, 2);
    assert_string_equal(out, "Caf\xC3\xA9\n");
    free(out);

    const char bad[] = "Character set encoding: UTF-8\n*** START OF THE PROJECT GUTENBERG EBOOK Q ***\n"
                       "ok \xC3\xA9 bad \xFF\xFE end\n*** END OF THE PROJECT GUTENBERG EBOOK Q ***\n";
    out = clean_str(bad, sizeof bad - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.replacements, 2);
    assert_string_equal(out, "ok \xC3\xA9 bad \xEF\xBF\xBD\xEF\xBF\xBD end\n");
    free(out);

    /* UTF-16LE with BOM. */
    const char u16[] = "\xFF\xFE" "H\0i\0\n\0";
    out = clean_str(u16, sizeof u16 - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(rep.encoding, "UTF-16LE");
    assert_string_equal(out, "Hi\n");
    free(out);
}

/* ------------------------------------------------------------ zip guards -- */

typedef struct zmember { const char *path; int type; const char *link; size_t size; char fill; } zmember;

static void *make_zip(const zmember *m, int n, size_t *len)
{
    size_t cap = 64u << 20;
    void *buf = malloc(cap);
    assert_non_null(buf);
    struct archive *a = archive_write_new();
    archive_write_set_format_zip(a);
    archive_write_set_options(a, "zip:compression=deflate");
    size_t used = 0;
    assert_int_equal(archive_write_open_memory(a, buf, cap, &used), ARCHIVE_OK);
    for (int i = 0; i < n; i++) {
        struct archive_entry *e = archive_entry_new();
        archive_entry_set_pathname(e, m[i].path);
        archive_entry_set_filetype(e, (unsigned)m[i].type);
        archive_entry_set_perm(e, 0644);
        if (m[i].link)
            archive_entry_set_symlink(e, m[i].link);
        archive_entry_set_size(e, m[i].type == AE_IFREG ? (la_int64_t)m[i].size : 0);
        assert_int_equal(archive_write_header(a, e), ARCHIVE_OK);
        if (m[i].type == AE_IFREG && m[i].size) {
            char *data = malloc(m[i].size);
            memset(data, m[i].fill, m[i].size);
            archive_write_data(a, data, m[i].size);
            free(data);
        }
        archive_entry_free(e);
    }
    archive_write_close(a);
    archive_write_free(a);
    *len = used;
    return buf;
}

static int extract(const zmember *m, int n, char **out, size_t *out_len)
{
    size_t zl = 0;
    void *z = make_zip(m, n, &zl);
    gb_zip_limits lim;
    gb_zip_limits_default(&lim);
    pg_error err = {0};
    char member[256] = "";
    int rc = gb_zip_extract_text("test.zip", z, zl, &lim, out, out_len, member, sizeof member, &err);
    free(z);
    return rc;
}

static void test_zip_ok(void **state)
{
    (void)state;
    zmember m[] = {{"10001/", AE_IFDIR, NULL, 0, 0}, {"10001/10001.txt", AE_IFREG, NULL, 5000, 'a'}};
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(extract(m, 2, &out, &len), 0);
    assert_int_equal(len, 5000);
    assert_int_equal(out[4999], 'a');
    free(out);
}

static void test_zip_traversal_link_bomb(void **state)
{
    (void)state;
    char *out = NULL;
    size_t len = 0;
    zmember trav[] = {{"../../etc/evil.txt", AE_IFREG, NULL, 10, 'x'}};
    assert_int_equal(extract(trav, 1, &out, &len), PG_ECORRUPT);
    zmember abs[] = {{"/tmp/evil.txt", AE_IFREG, NULL, 10, 'x'}};
    assert_int_equal(extract(abs, 1, &out, &len), PG_ECORRUPT);
    zmember link[] = {{"a.txt", AE_IFLNK, "/etc/passwd", 0, 0}};
    assert_int_equal(extract(link, 1, &out, &len), PG_ECORRUPT);
    /* 40 MB of one byte deflates to ~40 KB: a 1000:1 ratio. */
    zmember bomb[] = {{"bomb.txt", AE_IFREG, NULL, 40u << 20, 'z'}};
    assert_int_equal(extract(bomb, 1, &out, &len), PG_ELIMIT);
    zmember none[] = {{"readme.html", AE_IFREG, NULL, 10, 'x'}};
    assert_int_equal(extract(none, 1, &out, &len), PG_ENOTFOUND);
    assert_null(out);
    pg_error err = {0};
    gb_zip_limits lim;
    gb_zip_limits_default(&lim);
    assert_int_equal(gb_zip_extract_text("junk", "not a zip at all", 16, &lim, &out, &len, NULL, 0,
                                         &err),
                     PG_ECORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_valid),
        cmocka_unit_test(test_latin1_both_modes),
        cmocka_unit_test(test_wrapped_nospace_marker),
        cmocka_unit_test(test_small_print_and_no_markers),
        cmocka_unit_test(test_bom_nfc_and_replacement),
        cmocka_unit_test(test_zip_ok),
        cmocka_unit_test(test_zip_traversal_link_bomb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
