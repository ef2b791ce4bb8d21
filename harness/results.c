/* results.c - see results.h */
#include "harness/results.h"

#include <jansson.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "common/atomic_file.h"
#include "common/hash.h"

int pg_run_is_official(const pg_run_info *ri, const pg_eval_result *res)
{
    /* Book counts alone prove nothing (any 100 books are 100 books): the
     * books themselves must be PG-19's, which the classification checked
     * against PG-19's file list by id, bytes and SHA-256. */
    return !ri->prefix_tokens && ri->books.kind == PG19_BOOKS_OFFICIAL &&
           ri->books.n_books == res->n_books;
}

void pg_cpu_name(char *buf, size_t cap)
{
    snprintf(buf, cap, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10) == 0) {
            char *p = strchr(line, ':');
            if (p) {
                p++;
                while (*p == ' ' || *p == '\t')
                    p++;
                p[strcspn(p, "\n")] = 0;
                snprintf(buf, cap, "%s", p);
            }
            break;
        }
    }
    fclose(f);
}

static json_t *hex_or_null(const uint8_t sha[32], int present)
{
    if (!present)
        return json_null();
    char hex[65];
    pg_hex(sha, 32, hex);
    return json_string(hex);
}

/* exp(nll / n), or null for n = 0 */
static json_t *ppl(double nll, uint64_t n)
{
    return n ? json_real(exp(nll / (double)n)) : json_null();
}

static uint64_t normaliser_words(const pg_run_info *ri, const pg_eval_result *res,
                                 const char **label)
{
    if (pg_run_is_official(ri, res) && strcmp(ri->split, "train") != 0) {
        *label = "pg19-table2";
        return strcmp(ri->split, "test") == 0 ? PG19_TABLE2_TEST_WORDS
                                              : PG19_TABLE2_VALIDATION_WORDS;
    }
    *label = "exact";
    return res->tot.words;
}

int pg_results_write_json(const char *path, const pg_run_info *ri, const pg_eval_result *res,
                          pg_error *err)
{
    const pg_eval_totals *t = &res->tot;
    const pg_model_config *c = ri->cfg;
    if (!isfinite(t->nll))
        return pg_fail(err, PG_EINVAL, "%s: the total NLL is not finite; no results written",
                       path);
    int is_ct = c->compressed_memory > 0;
    json_t *shards = json_array();
    for (size_t i = 0; i < ri->n_shards; i++)
        json_array_append_new(shards, json_pack("{s:s, s:o}", "file", ri->shard_files[i],
                                                "sha256", hex_or_null(ri->shard_sha[i], 1)));
    json_t *buckets = json_array();
    for (int k = 0; k < PG_N_BUCKETS; k++)
        json_array_append_new(
            buckets,
            json_pack("{s:s, s:I, s:o, s:I, s:I, s:f, s:o}", "name", pg_bucket_names[k],
                      "min_freq", (json_int_t)pg_bucket_min[k], "max_freq",
                      k == 0 ? json_null() : json_integer((json_int_t)pg_bucket_min[k - 1]),
                      "words", (json_int_t)t->bucket_words[k], "tokens",
                      (json_int_t)t->bucket_tokens[k], "nll", t->bucket_nll[k], "word_ppl",
                      ppl(t->bucket_nll[k], t->bucket_words[k])));
    const char *label;
    uint64_t nw = normaliser_words(ri, res, &label);
    char cpu[256], date[32];
    pg_cpu_name(cpu, sizeof cpu);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *root = json_object();
    json_object_set_new(root, "schema", json_string("pg19-results/1"));
    json_object_set_new(
        root, "model",
        json_pack("{s:s, s:s, s:I, s:o, s:o, s:o}", "name", c->name, "family", c->family,
                  "params", (json_int_t)ri->params, "config_sha256",
                  hex_or_null(ri->config_sha, 1), "weights_sha256",
                  hex_or_null(ri->weights_sha, ri->has_weights), "random_init_seed",
                  ri->has_weights ? json_null() : json_integer((json_int_t)ri->seed)));
    json_object_set_new(root, "tokenizer",
                        json_pack("{s:s, s:s, s:I, s:o}", "name", ri->tokenizer_name, "kind",
                                  "sentencepiece-unigram", "vocab_size",
                                  (json_int_t)ri->vocab_size, "vocab_sha256",
                                  hex_or_null(ri->vocab_sha, 1)));
    json_object_set_new(
        root, "context",
        json_pack("{s:i, s:i, s:i, s:o, s:i}", "window", ri->window, "memory", c->memory,
                  "compressed_memory", c->compressed_memory, "compression_rate",
                  is_ct ? json_integer(c->compression_rate) : json_null(), "attention_span",
                  ri->window + c->memory + c->compressed_memory));
    if (ri->dct) {
        json_t *ctx = json_object_get(root, "context");
        json_object_set_new(
            ctx, "judge",
            json_pack("{s:s, s:o, s:o, s:o}", "policy", ri->dct_policy, "seed",
                      ri->dct_has_seed ? json_integer((json_int_t)ri->dct_seed) : json_null(),
                      "blocks_decided",
                      ri->dct_decided ? json_integer((json_int_t)ri->dct_decided) : json_null(),
                      "blocks_kept",
                      ri->dct_decided ? json_integer((json_int_t)ri->dct_kept) : json_null()));
    }
    json_object_set_new(
        root, "eval",
        json_pack("{s:s, s:b, s:s, s:I, s:o, s:s, s:o, s:o}", "split", ri->split, "official",
                  pg_run_is_official(ri, res), "book_set", pg19_book_set_name(ri->books.kind),
                  "books", (json_int_t)res->n_books, "books_sha256",
                  hex_or_null(ri->books.digest, 1), "book_handling",
                  ri->prefix_tokens ? "prefix" : "whole", "chunk_tokens",
                  ri->prefix_tokens ? json_integer((json_int_t)ri->prefix_tokens)
                                    : json_null(),
                  "shards", shards));
    json_object_set_new(
        root, "totals",
        json_pack("{s:I, s:I, s:I, s:f, s:o, s:o}", "tokens", (json_int_t)t->tokens, "bytes",
                  (json_int_t)t->bytes, "words", (json_int_t)t->words, "nll", t->nll,
                  "token_ppl", ppl(t->nll, t->tokens), "bits_per_byte",
                  t->bytes ? json_real(t->nll / ((double)t->bytes * log(2.0))) : json_null()));
    json_object_set_new(root, "word_ppl",
                        json_pack("{s:s, s:I, s:o}", "normaliser", label, "words",
                                  (json_int_t)nw, "value", ppl(t->nll, nw)));
    json_object_set_new(root, "word_ppl_exact",
                        json_pack("{s:s, s:I, s:o}", "normaliser", "exact", "words",
                                  (json_int_t)t->words, "value", ppl(t->nll, t->words)));
    json_object_set_new(root, "buckets", buckets);
    json_object_set_new(root, "throughput",
                        json_pack("{s:f, s:f}", "tokens_per_s",
                                  res->seconds > 0 ? (double)t->tokens / res->seconds : 0.0,
                                  "seconds", res->seconds));
    json_object_set_new(root, "harness",
                        json_pack("{s:s, s:s}", "name", PG_HARNESS_NAME, "version",
                                  PG_HARNESS_VERSION));
    json_object_set_new(root, "date", json_string(date));
    json_object_set_new(root, "hardware",
                        json_pack("{s:s, s:i, s:o}", "cpu", cpu, "threads", ri->threads, "gpu",
                                  ri->gpu ? json_string(ri->gpu) : json_null()));
    if (ri->nll_dump_file)
        json_object_set_new(root, "nll_dump",
                            json_pack("{s:s, s:o}", "file", ri->nll_dump_file, "sha256",
                                      hex_or_null(ri->nll_dump_sha, 1)));
    char *text = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(17));
    json_decref(root);
    if (!text)
        return pg_fail(err, PG_ENOMEM, "%s: cannot format the results", path);
    size_t len = strlen(text);
    char *withnl = malloc(len + 2);
    if (!withnl) {
        free(text);
        return pg_fail(err, PG_ENOMEM, "%s: out of memory", path);
    }
    memcpy(withnl, text, len);
    withnl[len] = '\n';
    int rc = pg_write_file_atomic(path, withnl, len + 1, err);
    free(withnl);
    free(text);
    return rc;
}

static void fmt_ppl(char *buf, size_t cap, double nll, uint64_t n)
{
    if (n)
        snprintf(buf, cap, "%.4g", exp(nll / (double)n));
    else
        snprintf(buf, cap, "-");
}

void pg_results_print_table(FILE *f, const pg_run_info *ri, const pg_eval_result *res)
{
    const pg_eval_totals *t = &res->tot;
    const pg_model_config *c = ri->cfg;
    char buf[64];
    fprintf(f, "model    %s (%s, %.2fM parameters, %s", c->name, c->family,
            (double)ri->params / 1e6, ri->has_weights ? "trained weights" : "random init");
    if (!ri->has_weights)
        fprintf(f, " seed %llu", (unsigned long long)ri->seed);
    fprintf(f, ")\ncontext  window %d, memory %d", ri->window, c->memory);
    if (c->compressed_memory)
        fprintf(f, ", compressed memory %d (%s, rate %d)", c->compressed_memory,
                pg_compression_name(c->compression), c->compression_rate);
    if (ri->dct) {
        fprintf(f, "\njudge    %s", ri->dct_policy);
        if (ri->dct_has_seed)
            fprintf(f, " (seed %llu)", (unsigned long long)ri->dct_seed);
        if (ri->dct_decided)
            fprintf(f, ": kept %llu of %llu evicted blocks (%.1f%%)",
                    (unsigned long long)ri->dct_kept, (unsigned long long)ri->dct_decided,
                    100.0 * (double)ri->dct_kept / (double)ri->dct_decided);
    }
    fprintf(f, "\nsplit    %s: %llu books, %s%s%s%s\n", ri->split,
            (unsigned long long)res->n_books, pg19_book_set_name(ri->books.kind),
            ri->books.reason[0] ? " (" : "", ri->books.reason, ri->books.reason[0] ? ")" : "");
    if (ri->prefix_tokens)
        fprintf(f, "         prefix of each book only: not the official evaluation\n");
    fprintf(f, "\n%-10s %12s %12s %16s %12s\n", "bucket", "words", "tokens", "NLL (nats)",
            "word ppl");
    for (int k = 0; k < PG_N_BUCKETS; k++) {
        fmt_ppl(buf, sizeof buf, t->bucket_nll[k], t->bucket_words[k]);
        fprintf(f, "%-10s %12llu %12llu %16.3f %12s\n", pg_bucket_names[k],
                (unsigned long long)t->bucket_words[k], (unsigned long long)t->bucket_tokens[k],
                t->bucket_nll[k], buf);
    }
    fmt_ppl(buf, sizeof buf, t->nll, t->words);
    fprintf(f, "%-10s %12llu %12llu %16.3f %12s\n\n", "total", (unsigned long long)t->words,
            (unsigned long long)t->tokens, t->nll, buf);
    const char *label;
    uint64_t nw = normaliser_words(ri, res, &label);
    fmt_ppl(buf, sizeof buf, t->nll, nw);
    fprintf(f, "word-level perplexity   %s (%s, %llu words)\n", buf, label,
            (unsigned long long)nw);
    fmt_ppl(buf, sizeof buf, t->nll, t->words);
    fprintf(f, "word-level ppl, exact   %s (%llu words)\n", buf, (unsigned long long)t->words);
    fmt_ppl(buf, sizeof buf, t->nll, t->tokens);
    fprintf(f, "token perplexity        %s\n", buf);
    if (t->bytes)
        fprintf(f, "bits per byte           %.4f\n", t->nll / ((double)t->bytes * log(2.0)));
    fprintf(f, "throughput              %.1f tokens/s (%.1f s, %d threads, %.2f GFLOP/s)\n",
            res->seconds > 0 ? (double)t->tokens / res->seconds : 0.0, res->seconds,
            ri->threads, res->seconds > 0 ? res->flops / res->seconds / 1e9 : 0.0);
}
