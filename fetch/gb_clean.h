/* gb_clean.h - decode a raw Project Gutenberg text and cut its licence text.
 *
 * Two outputs from one raw file (bytes exactly as a mirror serves them):
 *
 *  GB_CLEAN_DEFAULT  UTF-8, LF line endings, NFC, with the licence header,
 *                    the producer credits and Project Gutenberg notices at the
 *                    top of the body ("This etext was prepared by", "E-text
 *                    revised by", "NOTE: This work has been previously
 *                    published in [Etext #N]", "Project Gutenberg <title>" with
 *                    its file name) and the whole footer (including the "End of
 *                    the Project Gutenberg EBook" line) removed, in every era;
 *                    leading/trailing blank lines dropped, one final LF.
 *  GB_CLEAN_PG19     the cut of DeepMind's PG-19 release: the bytes from just
 *                    after the line ending the "*** START OF TH(E|IS) PROJECT
 *                    GUTENBERG EBOOK ...***" marker (which may wrap onto a second
 *                    line and may lack the space after "***") to just before the
 *                    upper-case "END OF TH(IS|E) PROJECT GUTENBERG EBOOK". A file
 *                    without that START/END pair is kept whole, licence text
 *                    included, as PG-19 did. CRLF is kept; text that is not
 *                    UTF-8 is re-encoded from ISO-8859-1 (measured: PG-19 files
 *                    are UTF-8, see DATASHEET.md).
 *
 * Both modes refuse input that is not text (a binary magic number, a NUL, or
 * over 1% control characters; see check_text in gb_clean.c) and a result
 * that is empty or only white space: each is an error naming the file.
 *
 * Decoding (both modes): leading byte-order marks are dropped (some files carry
 * two); UTF-16 BOMs select UTF-16; valid UTF-8 stays UTF-8; otherwise the
 * header's "Character set encoding:" names the ICU converter, with ISO-8859-1 /
 * ASCII declarations read as windows-1252 in the default mode (C1 controls in
 * a Gutenberg text are always cp1252 punctuation) and as ISO-8859-1 in --pg19.
 * Invalid UTF-8 in a file that declares UTF-8 is replaced by U+FFFD and counted;
 * the output is always valid UTF-8.
 */
#ifndef PG19_GB_CLEAN_H
#define PG19_GB_CLEAN_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

enum { GB_CLEAN_DEFAULT = 0, GB_CLEAN_PG19 = 1 };

/* Which licence markers framed the text. */
enum {
    GB_MARK_NONE = 0,
    GB_MARK_START_THIS,      /* *** START OF THIS PROJECT GUTENBERG EBOOK */
    GB_MARK_START_THE,       /* *** START OF THE PROJECT GUTENBERG EBOOK (2006+, 2021+) */
    GB_MARK_SMALL_PRINT,     /* *END*THE SMALL PRINT! ... *END* (1990s) */
    GB_MARK_START_OTHER,     /* other "START OF ... PROJECT GUTENBERG" wording */
    GB_MARK_ETEXT_HEADER,    /* 1996-2003 etext header ending "This file should be named
                                ..." with no START marker (small print at the end) */
};

/* Hard cap on one raw text: the largest Gutenberg plain texts are ~60 MB. */
#define GB_MAX_RAW_BYTES ((size_t)256 << 20)

typedef struct gb_clean_report {
    char encoding[48];       /* the converter used: "UTF-8", "windows-1252", ... */
    char declared[48];       /* the header's "Character set encoding:" value, or "" */
    int boms;                /* byte-order marks dropped from the front */
    uint64_t replacements;   /* U+FFFD substitutions made while decoding */
    int start_kind;          /* GB_MARK_* of the header end, NONE if not found */
    int has_end;             /* a footer marker was found */
    int credits_removed;     /* producer-credit paragraphs dropped (default mode) */
    uint64_t out_bytes;
} gb_clean_report;

/* Cleans raw[0..len) into a malloc'd *out (NUL-terminated, *out_len bytes).
 * name is used in error messages. A file without markers is kept whole and
 * flagged through rep (start_kind/has_end) in both modes. Errors: PG_EINVAL
 * for input that is not text and for an empty result; decoding errors. */
int gb_clean(const char *name, const uint8_t *raw, size_t len, int mode,
             char **out, size_t *out_len, gb_clean_report *rep, pg_error *err);

/* Decodes raw to UTF-8 only (BOMs dropped, no cut, no normalisation). */
int gb_decode_utf8(const char *name, const uint8_t *raw, size_t len, int mode,
                   char **out, size_t *out_len, gb_clean_report *rep, pg_error *err);

/* 1 if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
int gb_utf8_valid(const uint8_t *s, size_t n);

const char *gb_mark_name(int kind);

#endif
