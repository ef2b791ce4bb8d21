/* analyze_cmd.c - the command line of `harness analyze` (harness/analyze.h).
 *
 *   harness analyze rare RESULTS.json RESULTS.json ... [--label NAME ...] -o DIR
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "harness/analyze.h"
#include "harness/analyze_cmd.h"

static void analyze_usage(FILE *f)
{
    fprintf(f, "usage: harness analyze rare RESULTS.json [RESULTS.json ...] [--label NAME ...] "
               "-o DIR\n"
               "  rare: word perplexity per rare-word bucket of each run, side by side\n"
               "        (DIR/rare-words.{csv,md,svg}); --label names the runs in order\n");
}

static int analyze_rare(int argc, char **argv)
{
    static const struct option lo[] = {{"label", required_argument, NULL, 'l'},
                                       {"out", required_argument, NULL, 'o'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *labels[16], *out = NULL;
    int n_labels = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        if (c == 'l') {
            if (n_labels == 16) {
                fprintf(stderr, "harness analyze rare: at most 16 --label\n");
                return 2;
            }
            labels[n_labels++] = optarg;
        } else if (c == 'o') {
            out = optarg;
        } else if (c == 'h') {
            analyze_usage(stdout);
            return 0;
        } else {
            analyze_usage(stderr);
            return 2;
        }
    }
    int n = argc - optind;
    if (!out || n < 1 || n > 16 || (n_labels && n_labels != n)) {
        fprintf(stderr, "harness analyze rare: 1 to 16 results files, -o DIR, and as many "
                        "--label as files (or none)\n");
        return 2;
    }
    pg_results_summary runs[16];
    pg_error err = {0};
    for (int i = 0; i < n; i++) {
        if (pg_results_summary_load(argv[optind + i], &runs[i], &err)) {
            fprintf(stderr, "harness analyze rare: %s\n", err.msg);
            return 1;
        }
        if (n_labels)
            snprintf(runs[i].label, sizeof runs[i].label, "%s", labels[i]);
    }
    if (pg_analyze_rare(runs, n, out, &err)) {
        fprintf(stderr, "harness analyze rare: %s\n", err.msg);
        return 1;
    }
    printf("wrote %s/rare-words.csv, rare-words.md, rare-words.svg\n", out);
    return 0;
}

int pg_analyze_main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        analyze_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "rare"))
        return analyze_rare(argc - 1, argv + 1);
    fprintf(stderr, "harness analyze: unknown analysis %s\n", argv[1]);
    analyze_usage(stderr);
    return 2;
}
