/* main.c - the `harness` tool: evaluate Transformer-XL / Compressive
 * Transformer models on PG-19 shards (see harness/README.md).
 *
 *   harness run    --model NAME --split S --shards DIR [options]
 *   harness logits --model NAME --tokens FILE --out FILE [options]
 *   harness info   --model NAME
 *   harness init   --model NAME --random-init SEED --out FILE.safetensors
 *   harness bench  --model NAME [--seconds S] [--batch N]
 */
#include <cblas.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/atomic_file.h"
#include "common/hash.h"
#include "common/progress.h"
#include "harness/analyze_cmd.h"
#include "harness/backend.h"
#include "harness/bench.h"
#include "harness/blas_check.h"
#include "harness/eval_dist.h"
#include "harness/eval.h"
#include "harness/dct.h"
#include "harness/model.h"
#include "harness/results.h"
#include "harness/safetensors.h"
#include "harness/shard_source.h"
#include "harness/train.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: harness run --model NAME --split SPLIT --shards DIR [--weights FILE | "
            "--random-init SEED]\n"
            "                   [--out results.json] [--nll-dump FILE] [--batch N] "
            "[--threads N] [--window N]\n"
            "                   [--max-books N | --books ID,ID,...] [--max-tokens-per-book N] "
            "[--tokenizer-name NAME]\n"
            "                   [--device cpu|cuda[:N]|auto] [--precision fp32|bf16]\n"
            "                   [--memory N] [--compressed-memory N]\n"
            "                   [--dct-policy greedy|sample|compress|discard] [--dct-sample SEED]\n"
            "       harness logits --model NAME (--weights FILE | --random-init SEED) "
            "--tokens FILE --out FILE [--window N]\n"
            "                   [--device cpu|cuda[:N]|auto] [--precision fp32|bf16]\n"
            "       harness info --model NAME\n"
            "       harness init --model NAME --random-init SEED --out FILE.safetensors\n"
            "       harness bench --model NAME [--seconds S] [--batch N] [--threads N] "
            "[--device D] [--precision P] [--serve]\n"
            "       harness train --model NAME --shards DIR --out RUN_DIR [options] "
            "(harness train --help)\n"
            "NAME is a config in models/ (ct36, txl36, ct-tiny, txl-tiny, ...) or a path to "
            "a .json config.\n");
}

typedef struct opts {
    const char *model, *split, *shards, *weights, *out, *nll_dump, *tokens, *tokenizer_name;
    const char *books; /* --books: comma-separated book ids (leaderboard verify --sample) */
    int has_seed;
    uint64_t seed, max_books, max_tokens_per_book;
    int batch, threads, window;
    int memory, compressed_memory; /* evaluation-time overrides; -1: the config's */
    double seconds;
    int serve;                 /* bench --serve (harness/bench.h) */
    pg_backend_config backend; /* --device, --precision, --dct-policy, --dct-sample */
    int dct_set;               /* a --dct-* option was given */
} opts;

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    uint64_t v;
    if (parse_u64(s, &v) || v < (uint64_t)lo || v > (uint64_t)hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int parse_args(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"model", 1, 0, 'm'},        {"split", 1, 0, 's'},     {"shards", 1, 0, 'd'},
        {"weights", 1, 0, 'w'},      {"random-init", 1, 0, 'r'}, {"out", 1, 0, 'o'},
        {"nll-dump", 1, 0, 'n'},     {"batch", 1, 0, 'b'},     {"threads", 1, 0, 't'},
        {"window", 1, 0, 'W'},       {"max-books", 1, 0, 'B'}, {"max-tokens-per-book", 1, 0, 'P'},
        {"tokens", 1, 0, 'T'},       {"seconds", 1, 0, 'S'},   {"tokenizer-name", 1, 0, 'k'},
        {"device", 1, 0, 'D'},       {"precision", 1, 0, 'X'},
        {"memory", 1, 0, 'M'},       {"compressed-memory", 1, 0, 'C'},
        {"books", 1, 0, 'K'},        {"help", 0, 0, 'h'},       {"serve", 0, 0, 'V'},
        {"dct-policy", 1, 0, 'J'},   {"dct-sample", 1, 0, 'j'}, {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->memory = o->compressed_memory = -1;
    o->batch = 0;
    o->seconds = 20.0;
    int c;
    optind = 2;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        int bad = 0;
        switch (c) {
        case 'm': o->model = optarg; break;
        case 's': o->split = optarg; break;
        case 'd': o->shards = optarg; break;
        case 'w': o->weights = optarg; break;
        case 'r': o->has_seed = 1; bad = parse_u64(optarg, &o->seed); break;
        case 'o': o->out = optarg; break;
        case 'n': o->nll_dump = optarg; break;
        case 'b': bad = parse_int(optarg, 1, 4096, &o->batch); break;
        case 't': bad = parse_int(optarg, 1, 1024, &o->threads); break;
        case 'W': bad = parse_int(optarg, 1, 1 << 16, &o->window); break;
        case 'B': bad = parse_u64(optarg, &o->max_books) || o->max_books == 0; break;
        case 'P': bad = parse_u64(optarg, &o->max_tokens_per_book) || !o->max_tokens_per_book;
            break;
        case 'T': o->tokens = optarg; break;
        case 'k': o->tokenizer_name = optarg; break;
        case 'D': bad = pg_backend_parse_device(optarg, &o->backend); break;
        case 'X': bad = pg_backend_parse_precision(optarg, &o->backend); break;
        case 'M': bad = parse_int(optarg, 0, 1 << 20, &o->memory); break;
        case 'C': bad = parse_int(optarg, 0, 1 << 20, &o->compressed_memory); break;
        case 'K': o->books = optarg; break;
        case 'V': o->serve = 1; break;
        case 'J':
            o->backend.dct_policy = pg_dct_parse_policy(optarg);
            bad = o->backend.dct_policy < 0;
            o->dct_set = 1;
            break;
        case 'j': /* --dct-sample SEED: actions drawn from the judge, seeded */
            o->backend.dct_policy = PG_DCT_SAMPLE;
            bad = parse_u64(optarg, &o->backend.dct_seed);
            o->dct_set = 1;
            break;
        case 'S': {
            char *end;
            o->seconds = strtod(optarg, &end);
            bad = *end || !(o->seconds > 0 && o->seconds < 1e6);
            break;
        }
        case 'h': usage(stdout); exit(0);
        default: return -1;
        }
        if (bad) {
            fprintf(stderr, "harness: bad value: %s\n", optarg);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "harness: unexpected argument %s\n", argv[optind]);
        return -1;
    }
    if (!o->model) {
        fprintf(stderr, "harness: --model is required\n");
        return -1;
    }
    if (o->books && o->max_books) {
        fprintf(stderr, "harness: --books and --max-books exclude each other\n");
        return -1;
    }
    if (o->weights && o->has_seed) {
        fprintf(stderr, "harness: --weights and --random-init exclude each other\n");
        return -1;
    }
    return 0;
}

/* Finds a model config: a path (contains '/' or ends in .json), else
 * NAME.json in $PG19_MODELS, next to the binary (../models, ../../models)
 * or ./models. */
static int find_config(const char *model, char *path, size_t cap, pg_error *err)
{
    size_t n = strlen(model);
    if (strchr(model, '/') || (n > 5 && strcmp(model + n - 5, ".json") == 0)) {
        snprintf(path, cap, "%s", model);
        return 0;
    }
    char exe[PATH_MAX] = "";
    ssize_t r = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (r > 0) {
        exe[r] = 0;
        char *slash = strrchr(exe, '/');
        if (slash)
            *slash = 0;
    }
    const char *env = getenv("PG19_MODELS");
    char cand[4][PATH_MAX];
    int nc = 0;
    if (env && *env)
        snprintf(cand[nc++], PATH_MAX, "%s/%s.json", env, model);
    if (r > 0) {
        snprintf(cand[nc++], PATH_MAX, "%s/../models/%s.json", exe, model);
        snprintf(cand[nc++], PATH_MAX, "%s/../../models/%s.json", exe, model);
    }
    snprintf(cand[nc++], PATH_MAX, "models/%s.json", model);
    for (int i = 0; i < nc; i++)
        if (access(cand[i], R_OK) == 0) {
            snprintf(path, cap, "%s", cand[i]);
            return 0;
        }
    return pg_fail(err, PG_ENOTFOUND, "model \"%s\": no %s.json in $PG19_MODELS, next to the "
                   "binary or in ./models (give a path to a config to use another)", model,
                   model);
}

/* Loads config and weights (or random init). */
static int load_model(const opts *o, pg_model **out, pg_run_info *ri, pg_model_config *cfg,
                      int need_weights, pg_error *err)
{
    char path[PATH_MAX];
    int rc = find_config(o->model, path, sizeof path, err);
    if (rc)
        return rc;
    if ((rc = pg_model_config_load(path, cfg, ri->config_sha, err)))
        return rc;
    /* Memory sizes are evaluation-time choices (Rae et al. 2020 tune the
     * compressed memory at evaluation); the weights do not depend on them.
     * The results JSON's "context" records the sizes actually used. */
    if (o->memory >= 0)
        cfg->memory = o->memory;
    if (o->compressed_memory >= 0) {
        if (cfg->compression == PG_COMPRESS_NONE && o->compressed_memory > 0)
            return pg_fail(err, PG_EINVAL, "model %s has no compression function: "
                           "--compressed-memory must be 0", cfg->name);
        cfg->compressed_memory = o->compressed_memory;
    }
    ri->cfg = cfg;
    ri->params = pg_model_param_count(cfg);
    if (!need_weights)
        return 0;
    if ((rc = pg_model_new(cfg, out, err)))
        return rc;
    if (o->has_seed) {
        ri->seed = o->seed;
        return pg_model_random_init(*out, o->seed, err);
    }
    char wpath[PATH_MAX];
    if (o->weights) {
        snprintf(wpath, sizeof wpath, "%s", o->weights);
    } else { /* NAME.safetensors next to the config */
        snprintf(wpath, sizeof wpath, "%s", path);
        size_t n = strlen(wpath);
        if (n > 5 && strcmp(wpath + n - 5, ".json") == 0)
            wpath[n - 5] = 0;
        strncat(wpath, ".safetensors", sizeof wpath - strlen(wpath) - 1);
    }
    if ((rc = pg_safetensors_load(*out, wpath, ri->weights_vocab_sha, &ri->has_weights_vocab,
                                  err)))
        return rc;
    uint8_t md5[16];
    uint32_t crc;
    uint64_t size;
    if ((rc = pg_hash_file(wpath, md5, ri->weights_sha, &crc, &size, err)))
        return rc;
    ri->has_weights = 1;
    return 0;
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    return s ? s + 1 : p;
}

/* The first line of a run: what runs where (with --device auto: why). */
static void say_device(const pg_model_config *cfg, const char *split, uint64_t nb,
                       const pg_backend *be, const char *note, const pg_dist *dist)
{
    fprintf(stderr, "harness: %s on %s (%llu books), device %s, batch %d", cfg->name, split,
            (unsigned long long)nb, be->device, be->n_slots);
    if (be->gpu[0])
        fprintf(stderr, " (%s, %s)", be->gpu, pg_precision_name(be->precision));
    else
        fprintf(stderr, " (fp32, %d threads, OpenBLAS %s)", pg_get_threads(),
                openblas_get_corename());
    if (dist->size > 1)
        fprintf(stderr, "; %d processes (MPI), each with its own %s", dist->size,
                be->gpu[0] ? "GPU" : "threads");
    fprintf(stderr, "%s%s\n", note[0] ? "; auto: " : "", note);
}

/* --books ID,ID,...: evaluate only these books, in this order. */
static int select_books(pg_shard_source *src, const char *list, pg_error *err)
{
    uint64_t n = 1, *ids;
    for (const char *p = list; *p; p++)
        n += *p == ',';
    if (!(ids = malloc(n * sizeof *ids)))
        return pg_fail(err, PG_ENOMEM, "out of memory");
    char *copy = strdup(list), *save = NULL, *tok;
    uint64_t k = 0;
    int rc = copy ? 0 : pg_fail(err, PG_ENOMEM, "out of memory");
    for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !rc;
         tok = strtok_r(NULL, ",", &save))
        if (parse_u64(tok, &ids[k++]))
            rc = pg_fail(err, PG_EINVAL, "--books: \"%s\" is not a book id", tok);
    if (!rc && k != n)
        rc = pg_fail(err, PG_EINVAL, "--books: empty item in \"%s\"", list);
    if (!rc)
        rc = pg_shard_source_select(src, ids, k, err);
    free(copy);
    free(ids);
    return rc;
}

static int cmd_run(const opts *o, pg_error *err)
{
    if (!o->split || !o->shards) {
        fprintf(stderr, "harness run: --split and --shards are required\n");
        return PG_EINVAL;
    }
    pg_run_info ri;
    memset(&ri, 0, sizeof ri);
    pg_model_config cfg;
    pg_model *m = NULL;
    pg_backend *be = NULL;
    pg_shard_source *src = NULL;
    pg_eval_result res;
    memset(&res, 0, sizeof res);
    const char **files = NULL;
    pg_dist dist; /* under mpirun: the books are split over the ranks (eval_dist.h) */
    int rc = pg_dist_init(NULL, NULL, &dist, err);
    if (rc)
        return rc;
    if ((rc = load_model(o, &m, &ri, &cfg, 1, err)))
        goto done;
    if ((rc = pg_shard_source_open(o->shards, o->split, o->max_books, &src, err)))
        goto done;
    if (o->books && (rc = select_books(src, o->books, err)))
        goto done;
    const pg_book_source *bs = pg_shard_source_books(src);
    if (ri.has_weights_vocab &&
        memcmp(ri.weights_vocab_sha, pg_shard_source_vocab_sha256(src), 32) != 0) {
        char a[65], b[65];
        pg_hex(ri.weights_vocab_sha, 32, a);
        pg_hex(pg_shard_source_vocab_sha256(src), 32, b);
        rc = pg_fail(err, PG_EINVAL, "the weights were trained with vocabulary %s, the shards in "
                     "%s use %s", a, o->shards, b);
        goto done;
    }
    /* official only if the books are PG-19's own, byte for byte */
    if ((rc = pg_shard_source_classify(src, o->split, bs->n_books, &ri.books, err)))
        goto done;
    char note[700], gpu[256];
    uint64_t nb = bs->n_books;
    if ((rc = pg_backend_open(m, &o->backend, o->batch, nb > 4096 ? 4096 : nb ? (int)nb : 1,
                              o->window ? o->window : cfg.window, &be, note, sizeof note, err)))
        goto done;
    if (o->dct_set && !pg_model_is_dct(&cfg)) {
        rc = pg_fail(err, PG_EINVAL, "--dct-policy/--dct-sample: model %s is not a DCT", cfg.name);
        goto done;
    }
    pg_eval_opts eo = {.batch = be->n_slots,
                       .window = o->window,
                       .max_tokens_per_book = o->max_tokens_per_book,
                       .keep_nll = o->nll_dump != NULL,
                       .progress = 1,
                       .backend = be};
    if (dist.rank == 0) {
        say_device(&cfg, o->split, nb, be, note, &dist);
        if (ri.books.kind != PG19_BOOKS_OFFICIAL)
            fprintf(stderr, "harness: books: %s (%s): not the official split; word perplexity "
                    "uses the exact word count\n", pg19_book_set_name(ri.books.kind),
                    ri.books.reason);
    }
    if ((rc = pg_evaluate_dist(&dist, m, bs, &eo, &res, err)) ||
        (rc = pg_shard_source_check_unchanged(src, err)) || dist.rank != 0)
        goto done;
    if (be->gpu[0]) { /* hardware.gpu: the card, and the precision its numbers depend on */
        snprintf(gpu, sizeof gpu, "%s (%s)", be->gpu, pg_precision_name(be->precision));
        ri.gpu = gpu;
    }
    ri.split = o->split;
    if (pg_model_is_dct(&cfg)) { /* the judge's rule and what it kept (this process's books) */
        ri.dct = 1;
        ri.dct_policy = pg_dct_policy_name(o->backend.dct_policy);
        ri.dct_seed = o->backend.dct_seed;
        ri.dct_has_seed = o->backend.dct_policy == PG_DCT_SAMPLE;
        pg_backend_dct_stats(be, &ri.dct_decided, &ri.dct_kept);
        if (dist.size > 1)
            ri.dct_decided = ri.dct_kept = 0; /* per rank only: not reported */
    }
    ri.split_books = pg_shard_source_total_books(src);
    ri.window = o->window ? o->window : cfg.window;
    ri.prefix_tokens = o->max_tokens_per_book;
    ri.vocab_size = bs->vocab_size;
    memcpy(ri.vocab_sha, pg_shard_source_vocab_sha256(src), 32);
    char tokname[64];
    if (o->tokenizer_name)
        snprintf(tokname, sizeof tokname, "%s", o->tokenizer_name);
    else if (bs->vocab_size == 32000)
        snprintf(tokname, sizeof tokname, "pg19-32k");
    else
        snprintf(tokname, sizeof tokname, "pg19-%u", bs->vocab_size);
    ri.tokenizer_name = tokname;
    ri.n_shards = pg_shard_source_num_files(src);
    files = calloc(ri.n_shards + 1, sizeof *files);
    uint8_t(*shas)[32] = calloc(ri.n_shards + 1, 32);
    if (!files || !shas) {
        free(shas);
        rc = pg_fail(err, PG_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < ri.n_shards; i++) {
        files[i] = base_name(pg_shard_source_file(src, i));
        memcpy(shas[i], pg_shard_source_file_sha256(src, i), 32);
    }
    ri.shard_files = files;
    ri.shard_sha = (const uint8_t(*)[32])shas;
    ri.threads = pg_get_threads();
    if (o->nll_dump) {
        if ((rc = pg_nll_dump_write(o->nll_dump, &res, ri.nll_dump_sha, err)))
            goto done_shas;
        ri.nll_dump_file = base_name(o->nll_dump);
    }
    pg_results_print_table(stdout, &ri, &res);
    if (o->out) {
        if ((rc = pg_results_write_json(o->out, &ri, &res, err)))
            goto done_shas;
        fprintf(stderr, "harness: wrote %s\n", o->out);
    }
done_shas:
    free(shas);
done:
    free(files);
    pg_eval_result_free(&res);
    pg_backend_free(be);
    pg_shard_source_close(src);
    pg_model_free(m);
    if (rc && dist.size > 1) { /* end every rank: none may wait in a collective */
        fprintf(stderr, "harness: rank %d: %s\n", dist.rank, err->msg);
        pg_dist_abort(&dist, 1);
    }
    pg_dist_finalize(&dist);
    return rc;
}

/* Logits of one token sequence, window by window with memories carried:
 * the debugging and reference-test entry point. */
static int cmd_logits(const opts *o, pg_error *err)
{
    if (!o->tokens || !o->out) {
        fprintf(stderr, "harness logits: --tokens and --out are required\n");
        return PG_EINVAL;
    }
    pg_run_info ri;
    memset(&ri, 0, sizeof ri);
    pg_model_config cfg;
    pg_model *m = NULL;
    pg_backend *be = NULL;
    char *buf = NULL;
    size_t len;
    float *all = NULL;
    int rc = load_model(o, &m, &ri, &cfg, 1, err);
    if (rc)
        goto done;
    if ((rc = pg_read_file(o->tokens, (size_t)1 << 30, &buf, &len, err)))
        goto done;
    if (len % 4) {
        rc = pg_fail(err, PG_EINVAL, "%s: %zu bytes is not a whole number of u32 tokens",
                     o->tokens, len);
        goto done;
    }
    size_t n = len / 4;
    int W = o->window ? o->window : cfg.window;
    uint32_t *tok = malloc(n * 4 + 4);
    all = malloc(n * (size_t)cfg.vocab_size * sizeof(float) + 4);
    if (!tok || !all) {
        free(tok);
        rc = pg_fail(err, PG_ENOMEM, "out of memory for %zu tokens", n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = (const uint8_t *)buf + 4 * i;
        tok[i] = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    }
    char note[700];
    if ((rc = pg_backend_open(m, &o->backend, 1, 1, W, &be, note, sizeof note, err))) {
        free(tok);
        goto done;
    }
    if (note[0] || be->gpu[0])
        fprintf(stderr, "harness: logits on %s%s%s%s%s\n", be->device, be->gpu[0] ? " " : "",
                be->gpu, note[0] ? "; auto: " : "", note);
    for (size_t pos = 0; pos < n; pos += (size_t)W) {
        int L = n - pos < (size_t)W ? (int)(n - pos) : W;
        const float *lg;
        if ((rc = be->ops->forward_logits(be, tok + pos, &L, &lg, err))) {
            free(tok);
            goto done;
        }
        memcpy(all + pos * cfg.vocab_size, lg, sizeof(float) * (size_t)L * cfg.vocab_size);
    }
    free(tok);
    rc = pg_write_file_atomic(o->out, all, n * (size_t)cfg.vocab_size * sizeof(float), err);
done:
    free(all);
    free(buf);
    pg_backend_free(be);
    pg_model_free(m);
    return rc;
}

static int cmd_info(const opts *o, pg_error *err)
{
    pg_run_info ri;
    memset(&ri, 0, sizeof ri);
    pg_model_config c;
    int rc = load_model(o, NULL, &ri, &c, 0, err);
    if (rc)
        return rc;
    char sha[65];
    pg_hex(ri.config_sha, 32, sha);
    size_t emb = (size_t)c.vocab_size * c.d_model;
    printf("name               %s\nfamily             %s\nlayers             %d\n"
           "d_model            %d\nheads x d_head     %d x %d\nd_ff               %d\n"
           "vocabulary         %d (embedding tied with the output layer)\n"
           "window             %d\nmemory             %d\n",
           c.name, c.family, c.n_layer, c.d_model, c.n_head, c.d_head, c.d_ff, c.vocab_size,
           c.window, c.memory);
    if (c.compressed_memory)
        printf("compressed memory  %d (%s, rate %d)\n", c.compressed_memory,
               pg_compression_name(c.compression), c.compression_rate);
    printf("attention span     %d\nparameters         %zu (%.1fM; %.1fM without the embedding)\n"
           "config sha256      %s\n",
           c.window + c.memory + c.compressed_memory, (size_t)ri.params, ri.params / 1e6,
           (ri.params - emb) / 1e6, sha);
    return 0;
}

static int cmd_init(const opts *o, pg_error *err)
{
    if (!o->has_seed || !o->out) {
        fprintf(stderr, "harness init: --random-init SEED and --out FILE are required\n");
        return PG_EINVAL;
    }
    pg_run_info ri;
    memset(&ri, 0, sizeof ri);
    pg_model_config c;
    pg_model *m = NULL;
    int rc = load_model(o, &m, &ri, &c, 1, err);
    if (!rc)
        rc = pg_safetensors_save(m, o->out, err);
    pg_model_free(m);
    return rc;
}

/* `harness bench --device cuda|auto`: the forward through the backend, NLLs
 * computed as `run` does, steady state (memories and compressed memory
 * full); the GPU's baseline is its datasheet peak (scripts/gpu-check.sh). */
static int bench_device(const opts *o, const pg_model *m, const pg_model_config *cfg,
                        const pg_run_info *ri, pg_error *err)
{
    int W = o->window ? o->window : cfg->window, rc;
    char note[700];
    pg_backend *be = NULL;
    if ((rc = pg_backend_open(m, &o->backend, o->batch, 4096, W, &be, note, sizeof note, err)))
        return rc;
    int B = be->n_slots;
    uint32_t *tok = malloc(sizeof *tok * (size_t)B * W * 2), *tgt = tok + (size_t)B * W;
    float *nll = malloc(sizeof *nll * (size_t)B * W);
    int *lens = malloc(sizeof *lens * (size_t)B);
    if (!tok || !nll || !lens) {
        rc = pg_fail(err, PG_ENOMEM, "out of memory");
        goto done;
    }
    uint64_t x = 12345;
    for (size_t i = 0; i < (size_t)B * W; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        tok[i] = (uint32_t)((x >> 33) % (uint64_t)cfg->vocab_size);
        tgt[i] = (uint32_t)((x >> 13) % (uint64_t)cfg->vocab_size);
    }
    for (int b = 0; b < B; b++)
        lens[b] = W;
    printf("device: %s%s%s%s%s%s%s\n", be->device, be->gpu[0] ? ", " : "", be->gpu,
           be->gpu[0] ? ", " : "", be->gpu[0] ? pg_precision_name(be->precision) : "",
           note[0] ? "; auto: " : "", note);
    int warm = cfg->compressed_memory ? 2 + (cfg->compressed_memory * cfg->compression_rate) / W
                                      : 1;
    for (int i = 0; i < warm; i++)
        if ((rc = be->ops->forward_nll(be, tok, lens, tgt, nll, err)))
            goto done;
    double f0 = be->ops->flops(be), t0 = pg_now(), t = 0;
    uint64_t tokens = 0;
    int steps = 0;
    while ((t = pg_now() - t0) < o->seconds || steps < 2) {
        if ((rc = be->ops->forward_nll(be, tok, lens, tgt, nll, err)))
            goto done;
        tokens += (uint64_t)B * W;
        steps++;
    }
    printf("harness forward: %s (%.1fM params), batch %d x window %d, %d windows: "
           "%.1f tokens/s, %.1f GFLOP/s\n",
           cfg->name, ri->params / 1e6, B, W, steps, tokens / t,
           (be->ops->flops(be) - f0) / t / 1e9);
done:
    free(tok);
    free(nll);
    free(lens);
    pg_backend_free(be);
    return rc;
}

static int cmd_bench(const opts *o, pg_error *err)
{
    pg_run_info ri;
    memset(&ri, 0, sizeof ri);
    pg_model_config c;
    pg_model *m = NULL;
    opts oo = *o;
    oo.has_seed = 1;
    int rc = load_model(&oo, &m, &ri, &c, 1, err);
    if (rc)
        return rc;
    if (o->serve && o->backend.device != PG_DEVICE_CPU) {
        pg_model_free(m);
        return pg_fail(err, PG_EINVAL, "bench: --serve times the CPU forward only");
    }
    if (o->backend.device != PG_DEVICE_CPU) { /* --device cuda|auto */
        rc = bench_device(o, m, &c, &ri, err);
        pg_model_free(m);
        return rc;
    }
    const char *core = openblas_get_corename();
    const char *env = getenv("OPENBLAS_CORETYPE"), *wait = getenv("OMP_WAIT_POLICY");
    printf("machine: %d threads, OpenBLAS core %s (OPENBLAS_CORETYPE=%s), OMP_WAIT_POLICY=%s; "
           "%s: %.1fM params\n",
           pg_get_threads(), core ? core : "?", env ? env : "unset", wait ? wait : "unset",
           c.name, ri.params / 1e6);
    if (o->serve)
        rc = pg_bench_serve(m, o->batch ? o->batch : 2, o->window ? o->window : c.window,
                            stdin, stdout, err);
    else
        rc = pg_bench_forward(m, o->batch ? o->batch : 2, o->window ? o->window : c.window,
                              o->seconds, stdout, err);
    pg_model_free(m);
    return rc;
}

/* OpenBLAS and libgomp read their environment when they are loaded, so the
 * harness applies its defaults by executing itself once more with them set:
 *  - OPENBLAS_CORETYPE: on CPUs with AVX-512, a setting of Haswell or Zen
 *    (what some sites export for AMD CPUs) becomes SkylakeX, whose sgemm
 *    kernels measured 1.9x faster on an AMD EPYC (Zen 5) VM; unset is left
 *    to OpenBLAS's own detection. PG19_KEEP_OPENBLAS_CORETYPE=1 keeps it.
 *  - OMP_WAIT_POLICY=passive unless set: idle OpenMP threads sleep instead
 *    of spinning, which on a busy machine slows the threads that work. */
static void apply_env_defaults(char **argv)
{
    if (getenv("PG19_HARNESS_ENV_APPLIED"))
        return;
    int change = 0;
    const char *ct = getenv("OPENBLAS_CORETYPE");
    __builtin_cpu_init();
    int avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                 __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
    if (avx512 && ct && (strcasecmp(ct, "Haswell") == 0 || strcasecmp(ct, "Zen") == 0) &&
        !getenv("PG19_KEEP_OPENBLAS_CORETYPE")) {
        /* what to fall back to if the self-check fails (check_coretype_switch) */
        setenv("PG19_HARNESS_CORETYPE_WAS", ct, 1);
        setenv("OPENBLAS_CORETYPE", "SkylakeX", 1);
        change = 1;
    }
    if (!getenv("OMP_WAIT_POLICY")) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        change = 1;
    }
    if (!change)
        return;
    setenv("PG19_HARNESS_ENV_APPLIED", "1", 1);
    execv("/proc/self/exe", argv);
    /* exec failed: go on with the inherited settings (nothing was switched) */
    unsetenv("PG19_HARNESS_CORETYPE_WAS");
}

/* In the process that apply_env_defaults switched to SkylakeX kernels: keep
 * them only if sgemm agrees with a plain loop (harness/blas_check.h), else
 * execute once more on the kernels the environment asked for, saying so.
 * PG19_TEST_SGEMM_SELFCHECK_PERTURB (tests only) makes the check fail. */
static int check_coretype_switch(char **argv)
{
    const char *was = getenv("PG19_HARNESS_CORETYPE_WAS");
    if (!was)
        return 0;
    char orig[64];
    snprintf(orig, sizeof orig, "%s", was);
    unsetenv("PG19_HARNESS_CORETYPE_WAS");
    openblas_set_num_threads(1); /* as the model calls it */
    pg_error err = {0};
    if (pg_sgemm_selfcheck(getenv("PG19_TEST_SGEMM_SELFCHECK_PERTURB") != NULL, &err) == 0)
        return 0;
    const char *core = openblas_get_corename();
    fprintf(stderr, "harness: OpenBLAS %s kernels disagree with a plain loop (%s); falling back "
            "to OPENBLAS_CORETYPE=%s\n", core ? core : "?", err.msg, orig);
    setenv("OPENBLAS_CORETYPE", orig, 1);
    execv("/proc/self/exe", argv);
    fprintf(stderr, "harness: cannot execute itself again to fall back: %s\n", strerror(errno));
    return -1;
}

int main(int argc, char **argv)
{
    apply_env_defaults(argv);
    if (check_coretype_switch(argv))
        return 1;
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "train") == 0 || strcmp(cmd, "train-grad") == 0 ||
        strcmp(cmd, "train-bench") == 0 || strcmp(cmd, "train-export") == 0)
        return pg_train_main(argc, argv, find_config); /* harness/train.c */
    if (strcmp(cmd, "analyze") == 0)
        return pg_analyze_main(argc - 1, argv + 1, find_config);
    opts o;
    if (parse_args(argc, argv, &o)) {
        usage(stderr);
        return 2;
    }
    /* OpenBLAS runs single-threaded inside our OpenMP loops (model.c). */
    openblas_set_num_threads(1);
    pg_set_threads(o.threads ? o.threads : omp_get_max_threads());
    pg_error err = {0};
    int rc;
    if (strcmp(cmd, "run") == 0)
        rc = cmd_run(&o, &err);
    else if (strcmp(cmd, "logits") == 0)
        rc = cmd_logits(&o, &err);
    else if (strcmp(cmd, "info") == 0)
        rc = cmd_info(&o, &err);
    else if (strcmp(cmd, "init") == 0)
        rc = cmd_init(&o, &err);
    else if (strcmp(cmd, "bench") == 0)
        rc = cmd_bench(&o, &err);
    else {
        fprintf(stderr, "harness: unknown command %s\n", cmd);
        usage(stderr);
        return 2;
    }
    if (rc) {
        if (err.msg[0])
            fprintf(stderr, "harness: %s\n", err.msg);
        return 1;
    }
    return 0;
}
