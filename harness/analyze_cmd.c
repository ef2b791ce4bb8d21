/* analyze_cmd.c - the command line of `harness analyze` (harness/analyze.h).
 *
 *   harness analyze rare RESULTS.json RESULTS.json ... [--label NAME ...] -o DIR
 *   harness analyze sweep --memory LIST --compressed-memory LIST -o DIR -- RUN-OPTIONS
 *   harness analyze memory --model M (--weights F | --random-init S) --split S --shards DIR
 *                          [--max-books N] [--max-tokens-per-book N] [--threads N] -o DIR
 *
 * The sweep runs `harness run RUN-OPTIONS --memory M --compressed-memory C`
 * as child processes of this binary (so every point goes through the one
 * evaluation path), writes each point's results JSON into DIR/runs/ and
 * reuses a point whose results JSON is already there: a killed sweep resumes.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "harness/safetensors.h"
#include "harness/shard_source.h"

#include "harness/analyze.h"
#include "harness/analyze_cmd.h"

static void analyze_usage(FILE *f)
{
    fprintf(f, "usage: harness analyze rare RESULTS.json [RESULTS.json ...] [--label NAME ...] "
               "-o DIR\n"
               "       harness analyze sweep --memory LIST --compressed-memory LIST -o DIR -- "
               "RUN-OPTIONS\n"
               "  rare:  word perplexity per rare-word bucket of each run, side by side\n"
               "         (DIR/rare-words.{csv,md,svg}); --label names the runs in order\n"
               "  sweep: `harness run RUN-OPTIONS` for every memory / compressed-memory size\n"
               "         of the grid (comma-separated lists), then DIR/sweep.{csv,svg}: word\n"
               "         perplexity against the tokens the memories represent\n"
               "       harness analyze memory --model M (--weights F | --random-init S) --split S "
               "--shards DIR\n"
               "                              [--max-books N] [--max-tokens-per-book N] -o DIR\n"
               "  memory: attention by memory position (DIR/attention.{csv,svg}) and reading\n"
               "         distance per window (DIR/distance.{csv,svg}) over a split\n");
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

/* "0,16,32" -> values; at most cap, each in [0, 2^20]. */
static int parse_list(const char *s, int *vals, int cap)
{
    int n = 0;
    while (*s) {
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (end == s || errno || v < 0 || v > (1 << 20) || n == cap || (*end && *end != ','))
            return -1;
        vals[n++] = (int)v;
        s = *end ? end + 1 : end;
    }
    return n;
}

/* Runs this binary with argv; 0 when it exited 0. */
static int run_child(char **argv)
{
    pid_t pid;
    extern char **environ;
    int rc = posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ);
    if (rc) {
        fprintf(stderr, "harness analyze sweep: cannot start harness: %s\n", strerror(rc));
        return -1;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int analyze_sweep(int argc, char **argv)
{
    enum { MAX_POINTS = 16 };
    int mem[MAX_POINTS], cmem[MAX_POINTS], n_mem = 0, n_cmem = 0;
    const char *out = NULL;
    int dash = -1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            dash = i;
            break;
        }
    for (int i = 1; i < (dash < 0 ? argc : dash); i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            analyze_usage(stdout);
            return 0;
        }
        if (!v) {
            analyze_usage(stderr);
            return 2;
        }
        if (!strcmp(a, "--memory"))
            n_mem = parse_list(v, mem, MAX_POINTS);
        else if (!strcmp(a, "--compressed-memory"))
            n_cmem = parse_list(v, cmem, MAX_POINTS);
        else if (!strcmp(a, "-o") || !strcmp(a, "--out"))
            out = v;
        else {
            fprintf(stderr, "harness analyze sweep: unknown option %s\n", a);
            return 2;
        }
        i++;
    }
    if (dash < 0 || !out || n_mem < 1 || n_cmem < 1 || n_mem * n_cmem > 64) {
        fprintf(stderr, "harness analyze sweep: --memory LIST, --compressed-memory LIST (at most "
                        "%d values each, 64 points), -o DIR and `-- RUN-OPTIONS` are required\n",
                MAX_POINTS);
        return 2;
    }
    for (int i = dash + 1; i < argc; i++)
        if (!strcmp(argv[i], "--out") || !strcmp(argv[i], "--memory") ||
            !strcmp(argv[i], "--compressed-memory")) {
            fprintf(stderr, "harness analyze sweep: %s is set by the sweep itself\n", argv[i]);
            return 2;
        }
    pg_error err = {0};
    char runs_dir[PATH_MAX];
    snprintf(runs_dir, sizeof runs_dir, "%s/runs", out);
    if (pg_mkdirs(runs_dir, &err)) {
        fprintf(stderr, "harness analyze sweep: %s\n", err.msg);
        return 1;
    }
    int n_points = n_mem * n_cmem, n_child = argc - dash - 1;
    pg_results_summary *runs = calloc((size_t)n_points, sizeof *runs);
    /* "harness run" + RUN-OPTIONS + 3 options with values + NULL */
    char **child = calloc((size_t)n_child + 9, sizeof *child);
    if (!runs || !child) {
        free(runs);
        free(child);
        fprintf(stderr, "harness analyze sweep: out of memory\n");
        return 1;
    }
    int rc = 0;
    for (int p = 0; p < n_points && !rc; p++) {
        int m = mem[p / n_cmem], c = cmem[p % n_cmem];
        char path[PATH_MAX], ms[16], cs[16];
        snprintf(path, sizeof path, "%s/m%d-cm%d.json", runs_dir, m, c);
        if (access(path, F_OK) == 0 && pg_results_summary_load(path, &runs[p], &err) == 0 &&
            runs[p].memory == m && runs[p].compressed_memory == c) {
            fprintf(stderr, "sweep %d/%d: memory %d, compressed memory %d: kept %s\n", p + 1,
                    n_points, m, c, path);
            continue;
        }
        fprintf(stderr, "sweep %d/%d: memory %d, compressed memory %d\n", p + 1, n_points, m, c);
        snprintf(ms, sizeof ms, "%d", m);
        snprintf(cs, sizeof cs, "%d", c);
        int k = 0;
        child[k++] = "harness";
        child[k++] = "run";
        for (int i = dash + 1; i < argc; i++)
            child[k++] = argv[i];
        child[k++] = "--memory";
        child[k++] = ms;
        child[k++] = "--compressed-memory";
        child[k++] = cs;
        child[k++] = "--out";
        child[k++] = path;
        child[k] = NULL;
        if (run_child(child) != 0) {
            fprintf(stderr, "harness analyze sweep: the run with memory %d, compressed memory %d "
                            "failed (its message is above)\n", m, c);
            rc = 1;
        } else if (pg_results_summary_load(path, &runs[p], &err)) {
            fprintf(stderr, "harness analyze sweep: %s\n", err.msg);
            rc = 1;
        }
    }
    if (!rc && pg_analyze_sweep(runs, n_points, out, &err)) {
        fprintf(stderr, "harness analyze sweep: %s\n", err.msg);
        rc = 1;
    }
    if (!rc)
        printf("wrote %s/sweep.csv, sweep.svg (%d points; results in %s)\n", out, n_points,
               runs_dir);
    free(runs);
    free(child);
    return rc;
}

static int analyze_memory(int argc, char **argv, pg_find_config_fn find_config)
{
    static const struct option lo[] = {
        {"model", 1, 0, 'm'},     {"weights", 1, 0, 'w'},   {"random-init", 1, 0, 'r'},
        {"split", 1, 0, 's'},     {"shards", 1, 0, 'd'},    {"max-books", 1, 0, 'B'},
        {"max-tokens-per-book", 1, 0, 'P'}, {"threads", 1, 0, 't'}, {"out", 1, 0, 'o'},
        {"help", 0, 0, 'h'},      {0, 0, 0, 0}};
    const char *model = NULL, *weights = NULL, *split = NULL, *shards = NULL, *out = NULL;
    unsigned long long seed = 0, max_books = 0, max_tokens = 0;
    int has_seed = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        char *end = NULL;
        switch (c) {
        case 'm': model = optarg; break;
        case 'w': weights = optarg; break;
        case 'r': has_seed = 1; seed = strtoull(optarg, &end, 10); break;
        case 's': split = optarg; break;
        case 'd': shards = optarg; break;
        case 'B': max_books = strtoull(optarg, &end, 10); break;
        case 'P': max_tokens = strtoull(optarg, &end, 10); break;
        case 't': {
            int n = (int)strtol(optarg, &end, 10);
            if (n > 0 && n <= 1024)
                pg_set_threads(n);
            else
                end = optarg;
            break;
        }
        case 'o': out = optarg; break;
        case 'h': analyze_usage(stdout); return 0;
        default: analyze_usage(stderr); return 2;
        }
        if (end && (*end || end == optarg)) {
            fprintf(stderr, "harness analyze memory: bad value: %s\n", optarg);
            return 2;
        }
    }
    if (!model || !split || !shards || !out || optind != argc || (!!weights == has_seed)) {
        fprintf(stderr, "harness analyze memory: --model, --split, --shards, -o and one of "
                        "--weights or --random-init are required\n");
        return 2;
    }
    pg_error err = {0};
    char path[PATH_MAX];
    pg_model_config cfg;
    pg_model *m = NULL;
    pg_shard_source *src = NULL;
    pg_memory_analysis a = {0};
    int rc = find_config(model, path, sizeof path, &err);
    if (!rc)
        rc = pg_model_config_load(path, &cfg, NULL, &err);
    if (!rc)
        rc = pg_model_new(&cfg, &m, &err);
    if (!rc)
        rc = has_seed ? pg_model_random_init(m, seed, &err)
                      : pg_safetensors_load(m, weights, NULL, NULL, &err);
    if (!rc)
        rc = pg_shard_source_open(shards, split, max_books, &src, &err);
    if (!rc)
        rc = pg_analyze_memory(m, pg_shard_source_books(src), max_tokens, &a, &err);
    if (!rc)
        rc = pg_memory_analysis_write(&a, cfg.name, out, &err);
    if (rc)
        fprintf(stderr, "harness analyze memory: %s\n", err.msg);
    else
        printf("wrote %s/attention.csv, attention.svg, distance.csv, distance.svg (%llu windows)\n",
               out, (unsigned long long)a.n_windows);
    pg_memory_analysis_free(&a);
    pg_shard_source_close(src);
    pg_model_free(m);
    return rc ? 1 : 0;
}

int pg_analyze_main(int argc, char **argv, pg_find_config_fn find_config)
{
    if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        analyze_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "rare"))
        return analyze_rare(argc - 1, argv + 1);
    if (!strcmp(argv[1], "sweep"))
        return analyze_sweep(argc - 1, argv + 1);
    if (!strcmp(argv[1], "memory"))
        return analyze_memory(argc - 1, argv + 1, find_config);
    fprintf(stderr, "harness analyze: unknown analysis %s\n", argv[1]);
    analyze_usage(stderr);
    return 2;
}
