/* reproduce.c - see reproduce.h.
 *
 * The harness runs as a child process (posix_spawn, no shell) into a
 * private temporary directory: the leaderboard tool stays free of OpenBLAS
 * and OpenMP, and the re-run is exactly what `harness run` does for anyone.
 */
#include "leaderboard/reproduce.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/hash.h"
#include "leaderboard/results.h"

extern char **environ;

/* ---- the sample ---------------------------------------------------------- */

uint64_t lb_sample_seed(const uint8_t sha[32])
{
    uint64_t s = 0;
    for (int i = 0; i < 8; i++)
        s = s << 8 | sha[i];
    return s;
}

/* splitmix64 (Steele, Lea, Flood 2014): a documented generator anyone can
 * re-implement in a few lines to recompute a sample. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int lb_sample_books(const uint64_t *ids, size_t n, uint64_t seed, size_t n_sample,
                    uint64_t *out, pg_error *err)
{
    uint64_t *work = malloc((n ? n : 1) * sizeof *work);
    if (!work)
        return pg_fail(err, PG_ENOMEM, "out of memory choosing %zu of %zu books", n_sample, n);
    memcpy(work, ids, n * sizeof *work);
    uint64_t state = seed;
    for (size_t i = 0; i < n_sample; i++) {
        size_t j = i + (size_t)(splitmix64(&state) % (uint64_t)(n - i));
        uint64_t t = work[i];
        work[i] = work[j];
        work[j] = t;
    }
    memcpy(out, work, n_sample * sizeof *out);
    qsort(out, n_sample, sizeof *out, cmp_u64);
    free(work);
    return PG_OK;
}

/* ---- finding and running the harness ------------------------------------ */

int lb_find_harness(char *path, size_t cap, pg_error *err)
{
    const char *bin = getenv("PG19_BIN");
    if (bin && *bin) {
        snprintf(path, cap, "%s/harness", bin);
    } else {
        char exe[PATH_MAX];
        ssize_t r = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (r <= 0)
            return pg_fail(err, PG_EIO, "cannot find the harness: /proc/self/exe: %s",
                           strerror(errno));
        exe[r] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = '\0';
        snprintf(path, cap, "%s/harness", exe);
    }
    if (access(path, X_OK) != 0)
        return pg_fail(err, PG_ENOTFOUND, "%s: %s (build it with `make`, or set PG19_BIN to "
                       "the directory that holds it)", path, strerror(errno));
    return PG_OK;
}

static const json_t *jget(const json_t *root, const char *a, const char *b)
{
    const json_t *v = json_object_get(root, a);
    return b ? json_object_get(v, b) : v;
}

static int file_sha256_hex(const char *path, char hex[65], pg_error *err)
{
    uint8_t md5[16], sha[32];
    uint32_t crc;
    uint64_t size;
    int rc = pg_hash_file(path, md5, sha, &crc, &size, err);
    if (!rc)
        pg_hex(sha, 32, hex);
    return rc;
}

int lb_reproduce_precheck(const json_t *e, const lb_reproduce_opts *o, lb_reproduction *out,
                          pg_error *err)
{
    memset(out, 0, sizeof *out);
    const char *weights = json_string_value(jget(e, "model", "weights_sha256"));
    const char *config = json_string_value(jget(e, "model", "config_sha256"));
    if (!weights)
        return pg_fail(err, PG_EINVAL,
                       "the entry was run from random_init_seed %lld, not from weights: an entry "
                       "without weights can never be verified (it can be \"consistent\": verify "
                       "without --weights)",
                       (long long)json_integer_value(jget(e, "model", "random_init_seed")));
    const char *how = json_string_value(jget(e, "eval", "book_handling"));
    if (how && strcmp(how, "chunked") == 0)
        return pg_fail(err, PG_EINVAL, "book_handling \"chunked\": the harness scores whole "
                       "books (or prefixes), so it cannot reproduce this entry");
    const char *backend, *precision;
    lb_entry_backend(e, &backend, &precision);
    if (!lb_tolerance_for(backend, precision))
        return pg_fail(err, PG_EINVAL, "the entry ran on %s (hardware.gpu \"%s\"), %s: no "
                       "reproduction tolerance is documented for that backend "
                       "(leaderboard/README.md)", backend,
                       json_string_value(jget(e, "hardware", "gpu")), precision);
    int rc;
    if ((rc = file_sha256_hex(o->weights, out->weights_sha256, err)) ||
        (rc = file_sha256_hex(o->config, out->config_sha256, err)))
        return rc;
    if (strcmp(out->weights_sha256, weights) != 0)
        return pg_fail(err, PG_EINVAL, "%s: SHA-256 %s, but the entry's model.weights_sha256 is "
                       "%s: not the weights of this entry", o->weights, out->weights_sha256,
                       weights);
    if (!config || strcmp(out->config_sha256, config) != 0)
        return pg_fail(err, PG_EINVAL, "%s: SHA-256 %s, but the entry's model.config_sha256 is "
                       "%s: not the config of this entry", o->config, out->config_sha256,
                       config ? config : "null");
    return PG_OK;
}

/* Runs argv[0] with stdout sent to stderr (the caller's stdout stays its
 * own report); fails unless it exits 0. */
static int run_child(char *const argv[], pg_error *err)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa) != 0 ||
        posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO) != 0)
        return pg_fail(err, PG_ENOMEM, "posix_spawn_file_actions: out of memory");
    pid_t pid;
    int e = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0)
        return pg_fail(err, PG_EIO, "%s: cannot start: %s", argv[0], strerror(e));
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return pg_fail(err, PG_EIO, "%s: wait: %s", argv[0], strerror(errno));
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return PG_OK;
    if (WIFSIGNALED(status))
        return pg_fail(err, PG_EIO, "%s run: killed by signal %d", argv[0], WTERMSIG(status));
    return pg_fail(err, PG_EIO, "%s run failed (exit status %d; its message is above)", argv[0],
                   WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* ---- comparison --------------------------------------------------------- */

static void add_line(char ***lines, size_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_line(char ***lines, size_t *n, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char **v = realloc(*lines, (*n + 1) * sizeof *v);
    char *copy = strdup(buf);
    if (!v || !copy) {
        if (v)
            *lines = v;
        free(copy);
        return;
    }
    *lines = v;
    v[(*n)++] = copy;
}

/* The re-run's own results must describe the same model and context. */
static void compare_results(const json_t *e, const json_t *r, char ***lines, size_t *n)
{
    static const char *const same[][2] = {
        {"model", "config_sha256"}, {"model", "weights_sha256"}, {"model", "params"},
        {"model", "family"},        {"tokenizer", "vocab_size"}, {"tokenizer", "vocab_sha256"},
        {"context", "window"},      {"context", "memory"},       {"context", "compressed_memory"},
        {"context", "compression_rate"}, {"context", "attention_span"}};
    static const char *const judge_same[] = {"policy", "seed"};
    const json_t *je = jget(e, "context", "judge"), *jr = jget(r, "context", "judge");
    for (size_t i = 0; i < 2 && (je || jr); i++)
        if (!json_equal(json_object_get(je, judge_same[i]), json_object_get(jr, judge_same[i])))
            add_line(lines, n, "re-run context.judge.%s differs from the entry's",
                     judge_same[i]);
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        const json_t *a = jget(e, same[i][0], same[i][1]), *b = jget(r, same[i][0], same[i][1]);
        if (!json_equal((json_t *)a, (json_t *)b)) {
            char *sa = json_dumps(a, JSON_ENCODE_ANY), *sb = json_dumps(b, JSON_ENCODE_ANY);
            add_line(lines, n, "re-run %s.%s: entry says %.80s, the harness says %.80s",
                     same[i][0], same[i][1], sa ? sa : "?", sb ? sb : "?");
            free(sa);
            free(sb);
        }
    }
}

typedef struct dump_book {
    uint64_t id, first, n; /* first token in the dump, token count */
} dump_book;

static int cmp_dump_book(const void *a, const void *b)
{
    const dump_book *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

static dump_book *index_dump(const lb_nll_dump *d)
{
    dump_book *b = malloc((d->n_books ? d->n_books : 1) * sizeof *b);
    if (!b)
        return NULL;
    uint64_t t = 0;
    for (uint64_t i = 0; i < d->n_books; i++) {
        lb_nll_book(d, i, &b[i].id, &b[i].n);
        b[i].first = t;
        t += b[i].n;
    }
    qsort(b, d->n_books, sizeof *b, cmp_dump_book);
    return b;
}

/* Every token of every re-run book against the dump. */
static void compare_dumps(const lb_nll_dump *dump, const lb_nll_dump *rerun,
                          const lb_tolerance *tol, lb_reproduction *out, char ***lines,
                          size_t *n_lines)
{
    dump_book *orig = index_dump(dump);
    if (!orig) {
        add_line(lines, n_lines, "out of memory comparing the dumps");
        return;
    }
    uint64_t t = 0, bad = 0;
    for (uint64_t i = 0; i < rerun->n_books; i++) {
        dump_book key;
        lb_nll_book(rerun, i, &key.id, &key.n);
        const dump_book *o = bsearch(&key, orig, dump->n_books, sizeof *orig, cmp_dump_book);
        if (!o || o->n != key.n) {
            add_line(lines, n_lines, "re-run book %llu: %llu tokens, the dump has %llu",
                     (unsigned long long)key.id, (unsigned long long)key.n,
                     o ? (unsigned long long)o->n : 0ull);
            t += key.n;
            continue;
        }
        for (uint64_t k = 0; k < key.n; k++) {
            double a = lb_nll_value(dump, o->first + k), b = lb_nll_value(rerun, t + k);
            double dev = isfinite(b) ? fabs(a - b) : HUGE_VAL;
            double allow = tol->abs + tol->rel * fabs(a);
            if (dev > out->max_abs_deviation)
                out->max_abs_deviation = dev;
            if (dev / allow > out->max_ratio)
                out->max_ratio = dev / allow;
            if (dev > allow && bad++ < 5)
                add_line(lines, n_lines,
                         "book %llu token %llu: the dump says NLL %.9g, the re-run %.9g "
                         "(|difference| %.3g > tolerance %.3g)",
                         (unsigned long long)key.id, (unsigned long long)k, a, b, dev, allow);
        }
        out->tokens += key.n;
        t += key.n;
    }
    if (bad > 5)
        add_line(lines, n_lines, "... %llu tokens in all outside the tolerance",
                 (unsigned long long)bad);
    free(orig);
}

/* ---- the whole re-run ----------------------------------------------------- */

static char *join_ids(const uint64_t *ids, size_t n)
{
    size_t cap = n * 21 + 1, len = 0;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s%llu", i ? "," : "",
                                (unsigned long long)ids[i]);
    return s;
}

int lb_reproduce(const json_t *e, const uint8_t content_sha[32], const lb_nll_dump *dump,
                 const char *shards_dir, const lb_reproduce_opts *o, lb_reproduction *out,
                 char ***lines, size_t *n_lines, pg_error *err)
{
    const char *backend, *precision;
    lb_entry_backend(e, &backend, &precision);
    const lb_tolerance *tol = lb_tolerance_for(backend, precision);
    if (!tol)
        return pg_fail(err, PG_EINVAL, "no tolerance for %s %s", backend, precision);
    char harness[PATH_MAX], weights[PATH_MAX], config[PATH_MAX], shards[PATH_MAX];
    int rc = lb_find_harness(harness, sizeof harness, err);
    if (rc)
        return rc;
    /* absolute paths: the harness reads a config by path only when it looks like one */
    if (!realpath(o->weights, weights) || !realpath(o->config, config) ||
        !realpath(shards_dir, shards))
        return pg_fail(err, PG_EIO, "%s / %s / %s: %s", o->weights, o->config, shards_dir,
                       strerror(errno));

    /* the books: all of the dump's (checked to be the split's), or a sample */
    uint64_t *all = malloc((dump->n_books ? dump->n_books : 1) * sizeof *all);
    if (!all)
        return pg_fail(err, PG_ENOMEM, "out of memory");
    for (uint64_t i = 0; i < dump->n_books; i++) {
        uint64_t nt;
        lb_nll_book(dump, i, &all[i], &nt);
    }
    qsort(all, dump->n_books, sizeof *all, cmp_u64);
    out->seed = lb_sample_seed(content_sha);
    out->n_books = o->sample && o->sample < dump->n_books ? o->sample : dump->n_books;
    out->books = malloc((out->n_books ? out->n_books : 1) * sizeof *out->books);
    if (!out->books) {
        free(all);
        return pg_fail(err, PG_ENOMEM, "out of memory");
    }
    if (o->sample)
        rc = lb_sample_books(all, dump->n_books, out->seed, out->n_books, out->books, err);
    else
        memcpy(out->books, all, out->n_books * sizeof *out->books);
    free(all);
    if (rc)
        return rc;
    char *ids = join_ids(out->books, out->n_books);
    char tmpl[] = "/tmp/pg19-verify-XXXXXX";
    char *tmp = getenv("TMPDIR") ? NULL : tmpl;
    char tdir[PATH_MAX];
    if (!tmp) {
        snprintf(tdir, sizeof tdir, "%s/pg19-verify-XXXXXX", getenv("TMPDIR"));
        tmp = tdir;
    }
    if (!ids || !mkdtemp(tmp)) {
        free(ids);
        return pg_fail(err, PG_EIO, "temporary directory: %s", ids ? strerror(errno) : "out of memory");
    }
    char nll_path[PATH_MAX + 16], json_path[PATH_MAX + 16], window[32], prefix[32], threads[16];
    char memory[32], cmemory[32];
    snprintf(nll_path, sizeof nll_path, "%s/rerun.nll", tmp);
    snprintf(json_path, sizeof json_path, "%s/rerun.json", tmp);
    snprintf(window, sizeof window, "%lld", (long long)json_integer_value(jget(e, "context", "window")));
    /* the memories the entry was evaluated with (harness run --memory and
     * --compressed-memory may differ from the config's) */
    snprintf(memory, sizeof memory, "%lld", (long long)json_integer_value(jget(e, "context", "memory")));
    snprintf(cmemory, sizeof cmemory, "%lld",
             (long long)json_integer_value(jget(e, "context", "compressed_memory")));
    const char *how = json_string_value(jget(e, "eval", "book_handling"));
    snprintf(prefix, sizeof prefix, "%lld", (long long)json_integer_value(jget(e, "eval", "chunk_tokens")));
    snprintf(threads, sizeof threads, "%d", o->threads);
    char *argv[32];
    int a = 0;
    argv[a++] = harness;
    argv[a++] = "run";
    argv[a++] = "--model";
    argv[a++] = config;
    argv[a++] = "--weights";
    argv[a++] = weights;
    argv[a++] = "--split";
    argv[a++] = (char *)json_string_value(jget(e, "eval", "split"));
    argv[a++] = "--shards";
    argv[a++] = shards;
    argv[a++] = "--window";
    argv[a++] = window;
    argv[a++] = "--memory";
    argv[a++] = memory;
    argv[a++] = "--compressed-memory";
    argv[a++] = cmemory;
    argv[a++] = "--books";
    argv[a++] = ids;
    if (how && strcmp(how, "prefix") == 0) {
        argv[a++] = "--max-tokens-per-book";
        argv[a++] = prefix;
    }
    if (o->threads) {
        argv[a++] = "--threads";
        argv[a++] = threads;
    }
    /* a DCT's decision rule: its NLLs depend on it (a book's decisions are
     * a function of the book and the seed, so a subset re-runs exactly) */
    char seed[32];
    const json_t *judge = jget(e, "context", "judge");
    if (json_is_object(judge)) {
        const char *policy = json_string_value(json_object_get(judge, "policy"));
        const json_t *js = json_object_get(judge, "seed");
        if (json_is_integer(js)) {
            snprintf(seed, sizeof seed, "%lld", (long long)json_integer_value(js));
            argv[a++] = "--dct-sample";
            argv[a++] = seed;
        } else if (policy) {
            argv[a++] = "--dct-policy";
            argv[a++] = (char *)policy;
        }
    }
    argv[a++] = "--nll-dump";
    argv[a++] = nll_path;
    argv[a++] = "--out";
    argv[a++] = json_path;
    argv[a] = NULL;
    fprintf(stderr, "leaderboard: re-running %llu of %llu books with %s\n",
            (unsigned long long)out->n_books, (unsigned long long)dump->n_books, harness);
    rc = run_child(argv, err);
    free(ids);
    json_t *r = NULL;
    lb_nll_dump rerun;
    int have_dump = 0;
    if (!rc)
        rc = lb_load_file(json_path, &r, err);
    if (!rc && !(rc = lb_nll_open(nll_path, &rerun, err)))
        have_dump = 1;
    if (!rc) {
        const char *hn = json_string_value(jget(r, "harness", "name"));
        const char *hv = json_string_value(jget(r, "harness", "version"));
        snprintf(out->harness, sizeof out->harness, "%.40s %.30s", hn ? hn : "?", hv ? hv : "?");
        compare_results(e, r, lines, n_lines);
        if (rerun.n_books != out->n_books)
            add_line(lines, n_lines, "the re-run scored %llu books, not the %llu asked for",
                     (unsigned long long)rerun.n_books, (unsigned long long)out->n_books);
        compare_dumps(dump, &rerun, tol, out, lines, n_lines);
    }
    if (have_dump)
        lb_nll_close(&rerun);
    json_decref(r);
    unlink(nll_path);
    unlink(json_path);
    rmdir(tmp);
    return rc;
}

void lb_reproduction_free(lb_reproduction *r)
{
    free(r->books);
    r->books = NULL;
}
