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
    /* --pg19 keeps a file with no START/END pair whole, as PG-19 does. */
    out = clean_str(raw, sizeof raw - 1, GB_CLEAN_PG19, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.start_kind, GB_MARK_NONE);
    assert_int_equal(rep.has_end, 0);
    assert_string_equal(out, raw);
    free(out);

    const char plain[] = "Just a text\r\nwith no markers.\r\n";
    out = clean_str(plain, sizeof plain - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.start_kind, GB_MARK_NONE);
    assert_int_equal(rep.has_end, 0);
    assert_string_equal(out, "Just a text\nwith no markers.\n");
    free(out);
}

/* The credits block of a 1990s etext, in the forms found at the top of the
 * body: every paragraph here is the producer's or Project Gutenberg's. */
static void test_etext_credits_removed(void **state)
{
    (void)state;
    const char raw[] =
        "**The Project Gutenberg Etext of Tales of Wonder**\r\n\r\n"
        "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\r\nlawyers\r\n"
        "*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*\r\n\r\n"
        "[Portions of this header are copyright (C) 2001 by Michael Hart]\r\n\r\n"
        "This etext was prepared by A. Volunteer, Somewhere, Nebraska.\r\n"
        "E-text revised by B. Reviser.\r\n\r\n"
        "E-text revised by C. Second Reviser\r\n\r\n"
        "NOTE: This work has been previously published in [Etext #2673]\r\n\r\n\r\n"
        "Project Gutenberg Tales of Wonder\r\nwondr10.txt\r\n\r\n"
        "***\r\n\r\n"
        "TALES OF WONDER\r\n\r\nThe etext of the tale was lost.\r\n\r\n"
        "End of this Etext of Tales of Wonder\r\n";
    gb_clean_report rep;
    int rc;
    char *out = clean_str(raw, sizeof raw - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.start_kind, GB_MARK_SMALL_PRINT);
    assert_int_equal(rep.has_end, 1);
    assert_int_equal(rep.credits_removed, 6);
    assert_string_equal(out, "TALES OF WONDER\n\nThe etext of the tale was lost.\n");
    free(out);
}

/* A story whose first lines speak of an etext, a file and Project Gutenberg
 * in passing is the book: nothing is removed. */
static void test_story_mentioning_etext_kept(void **state)
{
    (void)state;
    const char *bodies[] = {
        "This etext was found in a drawer by my grandmother.\n\nShe read it twice.\n",
        "The etext prepared for the Duke lay open.\nHe did not read it.\n",
        "Etext, he said, was a word he had never heard.\n",
        "This file of letters, prepared by her sister, was all she had.\n",
        "Produced at last, the letter was read aloud.\n",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        char raw[1024];
        int n = snprintf(raw, sizeof raw,
                         "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n%s\n"
                         "*** END OF THE PROJECT GUTENBERG EBOOK X ***\n",
                         bodies[i]);
        gb_clean_report rep;
        int rc;
        char *out = clean_str(raw, (size_t)n, GB_CLEAN_DEFAULT, &rep, &rc);
        assert_int_equal(rc, 0);
        assert_int_equal(rep.credits_removed, 0);
        assert_string_equal(out, bodies[i]);
        free(out);
    }
}

/* 2001-2003 etexts with the small print at the end: the header ends at
 * "This file should be named ...", the footer starts at its second copy. */
static void test_small_print_at_end(void **state)
{
    (void)state;
    const char raw[] =
        "The Project Gutenberg Etext of Lord X, v2\n\nCopyright laws are changing.\n\n"
        "Title: Lord X\n\nRelease Date: September, 2003 [Etext #4478]\n\n"
        "The Project Gutenberg Etext Lord X, v2, by Meredith\n"
        "*********This file should be named 4478.txt or 4478.zip**********\n\n\n"
        "Project Gutenberg Etexts are often created from several printed\neditions.\n\n"
        "The \"legal small print\" and other information about this book\n"
        "may now be found at the end of this file.\n\n\n\n"
        "This etext was produced by Pat Castevans  <patcat@ctnet.net>\n"
        "and David Widger  <widger@cecomet.net>\n\n"
        "[NOTE: There is a short list of bookmarks, or pointers, at the end of the\n"
        "file for those who may wish to sample the author's ideas.  D.W.]\n\n\n"
        "BOOK 2.\n\nThe text of the book.\n\n[The End]\n\n\n\n"
        "***********************************************************************\n"
        "The Project Gutenberg Etext Lord X, v2, by Meredith\n"
        "*********This file should be named gm84v10.txt or gm84v10.zip**********\n\n"
        "Corrected EDITIONS of our etexts get a new NUMBER, gm84v11.txt\n\n"
        "***START**THE SMALL PRINT!**FOR PUBLIC DOMAIN ETEXTS**START***\nlawyers\n"
        "*END THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.10/04/01*END*\n\n"
        "End of the Project Gutenberg etext of Lord X, v2\n";
    gb_clean_report rep;
    int rc;
    char *out = clean_str(raw, sizeof raw - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(rep.start_kind, GB_MARK_ETEXT_HEADER);
    assert_int_equal(rep.has_end, 1);
    assert_int_equal(rep.credits_removed, 4);
    assert_string_equal(out, "BOOK 2.\n\nThe text of the book.\n\n[The End]\n");
    free(out);
}

/* Input that is not text is refused in both modes, with the file named. */
static void test_not_text_refused(void **state)
{
    (void)state;
    static const char elf[] = "\x7F" "ELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0>\0";
    static const char zip[] = "PK\x03\x04\x14\0\0\0\x08\0";
    static const char nul[] = "*** START OF THE PROJECT GUTENBERG EBOOK X ***\nA\0B\n"
                              "*** END OF THE PROJECT GUTENBERG EBOOK X ***\n";
    char ctl[400];
    for (size_t i = 0; i < sizeof ctl; i++)
        ctl[i] = i % 10 == 0 ? '\x01' : 'a'; /* 10% control characters */
    struct { const char *s; size_t n; const char *msg; } cases[] = {
        {elf, sizeof elf - 1, "an ELF executable"},
        {zip, sizeof zip - 1, "a zip archive"},
        {nul, sizeof nul - 1, "NUL character"},
        {ctl, sizeof ctl, "control characters"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int mode = 0; mode < 2; mode++) {
            char *out = NULL;
            size_t out_len = 0;
            gb_clean_report rep;
            pg_error err = {0};
            int rc = gb_clean("bad.txt", (const uint8_t *)cases[i].s, cases[i].n, mode, &out,
                              &out_len, &rep, &err);
            assert_int_equal(rc, PG_EINVAL);
            assert_null(out);
            assert_non_null(strstr(err.msg, "bad.txt: not text"));
            assert_non_null(strstr(err.msg, cases[i].msg));
        }
    }
    /* A few stray controls (form feeds, a DOS ^Z at the end) are text. */
    const char ok[] = "Chapter I\f\nText \x1B of the book.\n\x1A";
    gb_clean_report rep;
    int rc;
    char *out = clean_str(ok, sizeof ok - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    free(out);
    /* Text that begins like a magic number is still text. */
    const char bzh[] = "BZhdanov was a name.\nPK. said so.\n";
    out = clean_str(bzh, sizeof bzh - 1, GB_CLEAN_DEFAULT, &rep, &rc);
    assert_int_equal(rc, 0);
    assert_string_equal(out, bzh);
    free(out);
}

/* A file that is only licence text leaves an empty book: an error. */
static void test_empty_result_is_error(void **state)
{
    (void)state;
    const char *raws[] = {
        "*** START OF THE PROJECT GUTENBERG EBOOK X ***\n\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK X ***\nlicence\n",
        "*** START OF THE PROJECT GUTENBERG EBOOK X ***\nProduced by A. Volunteer\n\n"
        "*** END OF THE PROJECT GUTENBERG EBOOK X ***\n",
        "",
        "  \r\n\r\n",
    };
    for (size_t i = 0; i < sizeof raws / sizeof raws[0]; i++) {
        for (int mode = 0; mode < 2; mode++) {
            if (i == 1 && mode == GB_CLEAN_PG19)
                continue; /* PG-19 keeps the credits: not empty */
            char *out = NULL;
            size_t out_len = 0;
            gb_clean_report rep;
            pg_error err = {0};
            int rc = gb_clean("lic.txt", (const uint8_t *)raws[i], strlen(raws[i]), mode, &out,
                              &out_len, &rep, &err);
            assert_int_equal(rc, PG_EINVAL);
            assert_null(out);
            assert_non_null(strstr(err.msg, "lic.txt: empty book"));
        }
    }
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
        cmocka_unit_test(test_etext_credits_removed),
        cmocka_unit_test(test_story_mentioning_etext_kept),
        cmocka_unit_test(test_small_print_at_end),
        cmocka_unit_test(test_not_text_refused),
        cmocka_unit_test(test_empty_result_is_error),
        cmocka_unit_test(test_bom_nfc_and_replacement),
        cmocka_unit_test(test_zip_ok),
        cmocka_unit_test(test_zip_traversal_link_bomb),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
