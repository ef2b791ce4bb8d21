/* gb_clean_cmd.c - `fetch clean`: decode raw Gutenberg texts and strip the
 * licence text, one file or a whole directory, with a per-file report. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/progress.h"
#include "fetch/gb_clean.h"
#include "fetch/gutenberg_cmds.h"

static int clean_usage(void)
{
    fprintf(stderr,
            "usage: fetch clean [--pg19] RAW -o OUT [--report FILE]\n"
            "       fetch clean [--pg19] --dir RAWDIR -o OUTDIR [--report FILE]\n"
            "  default  UTF-8, LF, NFC, licence header/footer and producer credits removed\n"
            "  --pg19   PG-19's own cut: raw bytes between the START and END markers\n"
            "           (the whole file when it has no such pair, as in PG-19),\n"
            "           CRLF kept, non-UTF-8 text re-encoded to UTF-8 from ISO-8859-1\n"
            "  input that is not text, or that leaves an empty book, fails (exit 1)\n"
            "  --report one TSV line per file: file, encoding, declared charset, BOMs,\n"
            "           replacements, start marker, end marker, credits removed, bytes, flags\n");
    return 2;
}

static const char REPORT_HEADER[] =
    "file\tencoding\tdeclared\tboms\treplacements\tstart\tend\tcredits\tout_bytes\tflags\n";

static void report_line(FILE *fp, const char *file, const gb_clean_report *r)
{
    const char *flags = r->start_kind == GB_MARK_NONE && !r->has_end ? "no-markers"
                        : r->start_kind == GB_MARK_NONE              ? "no-start"
                        : !r->has_end                                ? "no-end"
                                                                     : "-";
    fprintf(fp, "%s\t%s\t%s\t%d\t%llu\t%s\t%s\t%d\t%llu\t%s\n", file, r->encoding,
            r->declared[0] ? r->declared : "-", r->boms, (unsigned long long)r->replacements,
            gb_mark_name(r->start_kind), r->has_end ? "end" : "none", r->credits_removed,
            (unsigned long long)r->out_bytes, flags);
}

/* Cleans one file into out_path; fills rep. */
static int clean_one(const char *in_path, const char *out_path, int mode, gb_clean_report *rep,
                     uint64_t *in_bytes, pg_error *err)
{
    char *raw = NULL;
    size_t len = 0;
    int rc = pg_read_file(in_path, GB_MAX_RAW_BYTES, &raw, &len, err);
    if (rc < 0)
        return rc;
    *in_bytes = len;
    char *out = NULL;
    size_t out_len = 0;
    rc = gb_clean(in_path, (const uint8_t *)raw, len, mode, &out, &out_len, rep, err);
    free(raw);
    if (rc < 0) {
        remove(out_path); /* no stale book from an earlier run under this name */
        return rc;
    }
    rc = pg_write_file_atomic(out_path, out, out_len, err);
    free(out);
    return rc;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int fetch_cmd_clean(int argc, char **argv)
{
    static const struct option opts[] = {
        {"pg19", no_argument, 0, 'p'},   {"dir", required_argument, 0, 'd'},
        {"output", required_argument, 0, 'o'}, {"report", required_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},   {0, 0, 0, 0},
    };
    int mode = GB_CLEAN_DEFAULT;
    const char *dir = NULL, *out = NULL, *report = NULL;
    int c;
    optind = 0;
    while ((c = getopt_long(argc, argv, "pd:o:r:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p': mode = GB_CLEAN_PG19; break;
        case 'd': dir = optarg; break;
        case 'o': out = optarg; break;
        case 'r': report = optarg; break;
        default: return clean_usage();
        }
    }
    if (!out || (dir && optind != argc) || (!dir && optind != argc - 1))
        return clean_usage();

    pg_error err = {0};
    pg_atomic_file rep_file = {0};
    FILE *rep_fp = NULL;
    if (report) {
        if (pg_atomic_open(&rep_file, report, &err) < 0) {
            fprintf(stderr, "fetch clean: %s\n", err.msg);
            return 1;
        }
        rep_fp = rep_file.fp;
        fputs(REPORT_HEADER, rep_fp);
    }

    int failed = 0;
    if (!dir) {
        gb_clean_report rep;
        uint64_t in_bytes = 0;
        if (clean_one(argv[optind], out, mode, &rep, &in_bytes, &err) < 0) {
            fprintf(stderr, "fetch clean: %s\n", err.msg);
            failed = 1;
        } else {
            if (rep_fp)
                report_line(rep_fp, argv[optind], &rep);
            if (rep.replacements)
                fprintf(stderr, "fetch clean: %s: %llu invalid byte(s) replaced by U+FFFD (%s)\n",
                        argv[optind], (unsigned long long)rep.replacements, rep.encoding);
            if (rep.start_kind == GB_MARK_NONE && !rep.has_end)
                fprintf(stderr, "fetch clean: %s: no Project Gutenberg markers; text kept whole%s\n",
                        argv[optind],
                        mode == GB_CLEAN_PG19 ? ", licence text included, as in PG-19" : "");
        }
    } else {
        if (pg_mkdirs(out, &err) < 0) {
            fprintf(stderr, "fetch clean: %s\n", err.msg);
            if (rep_fp)
                pg_atomic_abort(&rep_file);
            return 1;
        }
        DIR *d = opendir(dir);
        if (!d) {
            fprintf(stderr, "fetch clean: %s: %s\n", dir, strerror(errno));
            if (rep_fp)
                pg_atomic_abort(&rep_file);
            return 1;
        }
        size_t cap = 64, count = 0;
        char **names = malloc(cap * sizeof *names);
        struct dirent *de;
        while (names && (de = readdir(d))) {
            size_t nl = strlen(de->d_name);
            if (nl < 5 || strcmp(de->d_name + nl - 4, ".txt") || de->d_name[0] == '.')
                continue;
            if (count == cap) {
                char **g = realloc(names, 2 * cap * sizeof *names);
                if (!g)
                    break;
                names = g;
                cap *= 2;
            }
            names[count++] = strdup(de->d_name);
        }
        closedir(d);
        if (!names) {
            fprintf(stderr, "fetch clean: out of memory\n");
            return 1;
        }
        qsort(names, count, sizeof *names, name_cmp);
        pg_progress prog;
        pg_progress_init(&prog, "clean", "files", "B", count, 0);
        uint64_t done_bytes = 0;
        for (size_t i = 0; i < count; i++) {
            char in_path[4096], out_path[4096];
            snprintf(in_path, sizeof in_path, "%s/%s", dir, names[i]);
            snprintf(out_path, sizeof out_path, "%s/%s", out, names[i]);
            gb_clean_report rep;
            uint64_t in_bytes = 0;
            if (!names[i] || clean_one(in_path, out_path, mode, &rep, &in_bytes, &err) < 0) {
                fprintf(stderr, "fetch clean: %s\n", names[i] ? err.msg : "out of memory");
                failed++;
            } else if (rep_fp) {
                report_line(rep_fp, names[i], &rep);
            }
            done_bytes += in_bytes;
            pg_progress_update(&prog, i + 1, done_bytes);
            free(names[i]);
        }
        free(names);
        char extra[128];
        snprintf(extra, sizeof extra, "%d failed", failed);
        pg_progress_finish(&prog, extra);
    }
    if (rep_fp) {
        if (pg_atomic_commit(&rep_file, &err) < 0) {
            fprintf(stderr, "fetch clean: %s\n", err.msg);
            return 1;
        }
    }
    return failed ? 1 : 0;
}
