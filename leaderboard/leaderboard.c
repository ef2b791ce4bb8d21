/* leaderboard.c - the `leaderboard` command: submit, check, verify, render.
 *
 *   leaderboard submit FILE [--entries DIR] [--source TEXT] [--notes TEXT]
 *                           [--reported CITATION] [--dry-run]
 *   leaderboard check [--entries DIR] [ENTRY.json ...]
 *   leaderboard verify ENTRY.json --nll FILE --shards DIR
 *                      [--weights FILE --model CONFIG [--sample N] [--threads N]]
 *   leaderboard render -o DIR [--entries DIR]
 *
 * Exit status: 0 success, 1 rejected or failed (the message says why),
 * 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "leaderboard/entries.h"
#include "leaderboard/reproduce.h"
#include "leaderboard/render.h"
#include "leaderboard/results.h"
#include "leaderboard/verify.h"

#define DEFAULT_ENTRIES "leaderboard/entries"

static int usage(void)
{
    fprintf(stderr,
            "usage:\n"
            "  leaderboard submit FILE [--entries DIR] [--source TEXT] [--notes TEXT]\n"
            "                          [--reported CITATION] [--dry-run]\n"
            "      validate a results JSON (harness/RESULTS.md) and store it as one entry\n"
            "      file in DIR (default " DEFAULT_ENTRIES "); --reported stores a published\n"
            "      result whose unknown fields are null\n"
            "  leaderboard check [--entries DIR] [ENTRY.json ...]\n"
            "      validate entry files (all of DIR when none is named)\n"
            "  leaderboard verify ENTRY.json --nll FILE --shards DIR\n"
            "                     [--weights FILE --model CONFIG [--sample N] [--threads N]]\n"
            "      recompute every metric from a per-token NLL dump against the shards:\n"
            "      the entry becomes \"consistent\" only if all agree; with --weights and\n"
            "      --model also re-run the harness on all books (or N of them, chosen by a\n"
            "      seed from the entry's hash): \"verified\" only if every per-token NLL\n"
            "      matches the dump within the documented tolerance\n"
            "  leaderboard render -o OUTDIR [--entries DIR] [--figures DIR]\n"
            "      write OUTDIR/index.html and OUTDIR/leaderboard.md; --figures shows the\n"
            "      SVG pictures of DIR (for example models/cards) on the page\n");
    return 2;
}

static int fail(const pg_error *err)
{
    fprintf(stderr, "leaderboard: %s\n", err->msg);
    return 1;
}

/* Takes the value of an option that needs one; NULL (after a message) if missing. */
static const char *optval(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "leaderboard: %s needs a value\n", argv[*i]);
        return NULL;
    }
    return argv[++*i];
}

static int cmd_submit(int argc, char **argv)
{
    const char *file = NULL, *entries = DEFAULT_ENTRIES, *source = NULL, *notes = NULL;
    const char *reported = NULL;
    int dry_run = 0;
    for (int i = 0; i < argc; i++) {
        const char **dst = NULL;
        if (strcmp(argv[i], "--entries") == 0) dst = &entries;
        else if (strcmp(argv[i], "--source") == 0) dst = &source;
        else if (strcmp(argv[i], "--notes") == 0) dst = &notes;
        else if (strcmp(argv[i], "--reported") == 0) dst = &reported;
        else if (strcmp(argv[i], "--dry-run") == 0) { dry_run = 1; continue; }
        else if (argv[i][0] == '-' || file) return usage();
        else { file = argv[i]; continue; }
        if (!(*dst = optval(argc, argv, &i)))
            return 2;
    }
    if (!file)
        return usage();
    if (reported && source) {
        fprintf(stderr, "leaderboard: --reported already names the source; drop --source\n");
        return 2;
    }
    pg_error err = {0};
    json_t *sub = NULL, *entry = NULL;
    int rc = lb_load_file(file, &sub, &err);
    if (!rc)
        rc = lb_validate(sub, reported ? LB_REPORTED_SUBMISSION : LB_SUBMISSION, file, &err);
    if (!rc)
        rc = lb_entry_from_submission(sub, reported != NULL, reported ? reported : source, notes,
                                      &entry, &err);
    /* the stored entry must itself be a valid entry (e.g. --source text limits) */
    if (!rc)
        rc = lb_validate(entry, LB_ENTRY, file, &err);
    if (!rc)
        rc = lb_entry_check_slug(entries, entry, &err);
    char path[4096] = "";
    if (!rc && dry_run) {
        char name[256];
        if (!(rc = lb_entry_filename(entry, name, sizeof name, &err)))
            printf("valid: %s would be stored as %s/%s\n", file, entries, name);
    } else if (!rc) {
        if (!(rc = lb_entry_store(entries, entry, path, sizeof path, &err)))
            printf("accepted: %s\n", path);
    }
    json_decref(sub);
    json_decref(entry);
    return rc ? fail(&err) : 0;
}

static int cmd_check(int argc, char **argv)
{
    const char *entries = DEFAULT_ENTRIES;
    int nfiles = 0, bad = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--entries") == 0) {
            if (!(entries = optval(argc, argv, &i)))
                return 2;
        } else if (argv[i][0] == '-') {
            return usage();
        }
    }
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--entries") == 0) {
            i++;
            continue;
        }
        nfiles++;
        pg_error err = {0};
        json_t *e = NULL;
        int rc = lb_load_file(argv[i], &e, &err);
        if (!rc)
            rc = lb_validate(e, LB_ENTRY, argv[i], &err);
        if (!rc)
            rc = lb_entry_check_name(argv[i], e, &err);
        json_decref(e);
        if (rc) {
            fail(&err);
            bad++;
        } else {
            printf("ok: %s\n", argv[i]);
        }
    }
    if (nfiles)
        return bad ? 1 : 0;
    pg_error err = {0};
    lb_entry_list l;
    if (lb_entries_load(entries, &l, &err))
        return fail(&err);
    printf("ok: %zu entries in %s\n", l.n, entries);
    lb_entries_free(&l);
    return 0;
}

static int cmd_render(int argc, char **argv)
{
    const char *entries = DEFAULT_ENTRIES, *out = NULL, *figdir = NULL;
    for (int i = 0; i < argc; i++) {
        const char **dst;
        if (strcmp(argv[i], "--entries") == 0) dst = &entries;
        else if (strcmp(argv[i], "--figures") == 0) dst = &figdir;
        else if (strcmp(argv[i], "-o") == 0) dst = &out;
        else return usage();
        if (!(*dst = optval(argc, argv, &i)))
            return 2;
    }
    if (!out)
        return usage();
    pg_error err = {0};
    lb_entry_list l;
    if (lb_entries_load(entries, &l, &err))
        return fail(&err);
    lb_figures figs = {0};
    if (figdir && lb_figures_load(figdir, &figs, &err)) {
        lb_entries_free(&l);
        return fail(&err);
    }
    int rc = lb_render_site_figures(&l, &figs, out, &err);
    if (!rc)
        printf("rendered %zu entries and %zu figures to %s/index.html and %s/leaderboard.md\n",
               l.n, figs.n, out, out);
    lb_figures_free(&figs);
    lb_entries_free(&l);
    return rc ? fail(&err) : 0;
}

static int parse_count(const char *opt, const char *s, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *s == '-' || *end || v == 0 || v > max) {
        fprintf(stderr, "leaderboard: %s: \"%s\" is not a number from 1 to %llu\n", opt, s,
                (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    const char *entry = NULL, *nll = NULL, *shards = NULL, *sample = NULL, *threads = NULL;
    lb_reproduce_opts ro = {0};
    for (int i = 0; i < argc; i++) {
        const char **dst;
        if (strcmp(argv[i], "--nll") == 0) dst = &nll;
        else if (strcmp(argv[i], "--shards") == 0) dst = &shards;
        else if (strcmp(argv[i], "--weights") == 0) dst = &ro.weights;
        else if (strcmp(argv[i], "--model") == 0) dst = &ro.config;
        else if (strcmp(argv[i], "--sample") == 0) dst = &sample;
        else if (strcmp(argv[i], "--threads") == 0) dst = &threads;
        else if (argv[i][0] == '-' || entry) return usage();
        else { entry = argv[i]; continue; }
        if (!(*dst = optval(argc, argv, &i)))
            return 2;
    }
    if (!entry || !nll || !shards)
        return usage();
    if (!ro.weights != !ro.config) {
        fprintf(stderr, "leaderboard: --weights and --model go together (the re-run needs both)\n");
        return 2;
    }
    if ((sample || threads) && !ro.weights) {
        fprintf(stderr, "leaderboard: --sample and --threads are for the re-run: give --weights "
                        "and --model\n");
        return 2;
    }
    uint64_t n;
    if (sample) {
        if (parse_count("--sample", sample, 1000000, &n))
            return 2;
        ro.sample = n;
    }
    if (threads) {
        if (parse_count("--threads", threads, 1024, &n))
            return 2;
        ro.threads = (int)n;
    }
    pg_error err = {0};
    lb_verify_report rep;
    int rc = lb_verify_entry_reproduce(entry, nll, shards, ro.weights ? &ro : NULL, &rep, &err);
    for (size_t i = 0; i < rep.n_mismatch; i++)
        fprintf(stderr, "mismatch: %s\n", rep.mismatch[i]);
    if (rc == PG_OK && rep.n_mismatch == 0) {
        printf("consistent: %s (%llu books, %llu tokens, %llu words; %zu checks agree)\n", entry,
               (unsigned long long)rep.books, (unsigned long long)rep.tokens,
               (unsigned long long)rep.words, rep.n_checks);
        if (rep.reproduced)
            printf("verified: %s (re-ran %llu of %llu books, %llu tokens; largest deviation "
                   "from the dump %.3g nats)\n", entry, (unsigned long long)rep.rerun_books,
                   (unsigned long long)rep.books, (unsigned long long)rep.rerun_tokens,
                   rep.max_abs_deviation);
        else if (strcmp(rep.status, "verified") == 0)
            printf("verified: %s (its earlier re-run of this same dump stands)\n", entry);
        else
            printf("not verified: %s is consistent; only a re-run of the model from its "
                   "weights (--weights, --model) makes an entry verified\n", entry);
        lb_verify_report_free(&rep);
        return 0;
    }
    if (rc == PG_OK && ro.weights && rep.rerun_books)
        fprintf(stderr, "leaderboard: %s: not verified: the re-run of %llu books does not "
                        "reproduce the dump (largest deviation %.3g nats); the entry is unchanged\n",
                entry, (unsigned long long)rep.rerun_books, rep.max_abs_deviation);
    else if (rc == PG_OK)
        fprintf(stderr, "leaderboard: %s: not consistent: %zu of %zu checks disagree\n", entry,
                rep.n_mismatch, rep.n_checks);
    lb_verify_report_free(&rep);
    return rc ? fail(&err) : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *cmd = argv[1];
    if (strcmp(cmd, "submit") == 0)
        return cmd_submit(argc - 2, argv + 2);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(cmd, "render") == 0)
        return cmd_render(argc - 2, argv + 2);
    if (strcmp(cmd, "verify") == 0)
        return cmd_verify(argc - 2, argv + 2);
    return usage();
}
