/* synth_shards.c - the `synth-shards` tool: a split of random-token books,
 * shaped like a real one, for benchmarks and GPU/MPI checks that need the
 * PG-19 test split's book lengths but not its text.
 *
 *   synth-shards --out DIR [--split test] [--lengths FILE.tsv] [--books N]
 *                [--tokens-per-book N] [--bytes-per-token X] [--vocab V] [--seed S]
 *
 * --lengths reads PG-19's file table (pg19_files_derived.tsv: split, book_id,
 * num_bytes, ...) and makes one book per row of the split, of num_bytes /
 * bytes-per-token tokens (at least 1); otherwise --books books of
 * N/2 + 1 + (7919 i mod N) tokens (N = --tokens-per-book: lengths vary). Tokens are uniform over [1, V) (0 is BOS),
 * about 3 of 4 tokens start a word, word frequencies are log-uniform over
 * [0, 10^6) so that every rare-word bucket is populated. The vocabulary
 * SHA-256 is that of the text "synthetic-<V>". Deterministic in the seed.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"
#include "common/hash.h"
#include "shards/shard_reader.h"
#include "shards/shard_writer.h"

#define BOOKS_PER_SHARD 20

static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

typedef struct book_len {
    uint64_t id, tokens, bytes;
} book_len;

/* Rows of `split` in a pg19_files_derived.tsv. */
static int read_lengths(const char *path, const char *split, double bpt, book_len **out,
                        uint64_t *n, pg_error *err)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return pg_fail(err, PG_EIO, "%s: %s", path, strerror(errno));
    char line[1024];
    uint64_t cap = 0, k = 0, lineno = 0;
    book_len *v = NULL;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char sp[64];
        unsigned long long id, bytes;
        if (lineno == 1 && strncmp(line, "split\t", 6) == 0)
            continue;
        if (sscanf(line, "%63[^\t]\t%llu\t%llu", sp, &id, &bytes) != 3) {
            rc = pg_fail(err, PG_EINVAL, "%s: line %llu: expected split, book_id, num_bytes",
                         path, (unsigned long long)lineno);
            break;
        }
        if (strcmp(sp, split) != 0)
            continue;
        if (bytes > ((uint64_t)1 << 36)) {
            rc = pg_fail(err, PG_EINVAL, "%s: line %llu: %llu bytes is implausible", path,
                         (unsigned long long)lineno, bytes);
            break;
        }
        if (k == cap) {
            cap = cap ? 2 * cap : 128;
            book_len *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                rc = pg_fail(err, PG_ENOMEM, "out of memory");
                break;
            }
            v = nv;
        }
        uint64_t t = (uint64_t)((double)bytes / bpt);
        v[k++] = (book_len){id, t ? t : 1, bytes};
    }
    fclose(f);
    if (!rc && k == 0)
        rc = pg_fail(err, PG_EINVAL, "%s: no book of split %s", path, split);
    if (rc) {
        free(v);
        return rc;
    }
    /* the writer wants increasing ids */
    for (uint64_t i = 1; i < k; i++)
        for (uint64_t j = i; j > 0 && v[j - 1].id > v[j].id; j--) {
            book_len t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *out = v;
    *n = k;
    return 0;
}

static int split_code(const char *s)
{
    return strcmp(s, "train") == 0 ? PG_SPLIT_TRAIN
           : strcmp(s, "validation") == 0 ? PG_SPLIT_VALIDATION
           : strcmp(s, "test") == 0      ? PG_SPLIT_TEST
                                         : -1;
}

static int synth(const char *out, const char *split, const book_len *books, uint64_t nb,
                 uint32_t V, uint64_t seed, pg_error *err)
{
    uint8_t sha[32];
    char text[64];
    snprintf(text, sizeof text, "synthetic-%u", V);
    pg_sha256(text, strlen(text), sha);
    if (mkdir(out, 0777) && errno != EEXIST)
        return pg_fail(err, PG_EIO, "%s: %s", out, strerror(errno));
    uint64_t st = seed;
    int rc = 0, shard = 0;
    for (uint64_t b0 = 0; !rc && b0 < nb; b0 += BOOKS_PER_SHARD, shard++) {
        pg_shard_writer *w;
        if ((rc = pg_shard_writer_new(&w, split_code(split), V, 0, sha, 1, err)))
            return rc;
        for (uint64_t b = b0; !rc && b < nb && b < b0 + BOOKS_PER_SHARD; b++) {
            uint64_t n = books[b].tokens, nw = 0;
            uint32_t *tok = malloc(n * 4 + 4);
            uint8_t *ws = malloc(n + 1);
            uint64_t *fr = malloc(n * 8 + 8);
            if (!tok || !ws || !fr)
                rc = pg_fail(err, PG_ENOMEM, "book %llu: out of memory",
                             (unsigned long long)books[b].id);
            for (uint64_t i = 0; !rc && i < n; i++) {
                uint64_t x = next_u64(&st);
                tok[i] = 1 + (uint32_t)((x >> 20) % (V - 1));
                ws[i] = i == 0 || (x & 3) != 0;
                if (ws[i])
                    fr[nw++] = (uint64_t)pow(10.0, (double)(x >> 40) / (double)(1ull << 24) * 6.0);
            }
            uint8_t text_sha[32]; /* no text: the tokens' hash (never a PG-19 book's) */
            if (!rc)
                pg_sha256(tok, n * 4, text_sha);
            if (!rc)
                rc = pg_shard_writer_add_book(w, books[b].id, books[b].bytes, text_sha, tok, ws,
                                              n, fr, nw, err);
            free(tok);
            free(ws);
            free(fr);
        }
        char path[4200];
        snprintf(path, sizeof path, "%s/%s-%05d.pgs", out, split, shard);
        if (!rc)
            rc = pg_shard_writer_write(w, path, err);
        pg_shard_writer_free(w);
    }
    return rc;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: synth-shards --out DIR [--split test] [--lengths pg19_files_derived.tsv] "
               "[--books N]\n"
               "                    [--tokens-per-book N] [--bytes-per-token X] [--vocab V] "
               "[--seed S]\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"out", 1, 0, 'o'},   {"split", 1, 0, 's'},           {"lengths", 1, 0, 'l'},
        {"books", 1, 0, 'b'}, {"tokens-per-book", 1, 0, 't'}, {"bytes-per-token", 1, 0, 'x'},
        {"vocab", 1, 0, 'v'}, {"seed", 1, 0, 'S'},            {"help", 0, 0, 'h'},
        {0, 0, 0, 0}};
    const char *out = NULL, *split = "test", *lengths = NULL;
    unsigned long long n_books = 10, per_book = 1000, vocab = 32000, seed = 1;
    double bpt = 3.9;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        char *end = NULL;
        errno = 0;
        switch (c) {
        case 'o': out = optarg; break;
        case 's': split = optarg; break;
        case 'l': lengths = optarg; break;
        case 'b': n_books = strtoull(optarg, &end, 10); break;
        case 't': per_book = strtoull(optarg, &end, 10); break;
        case 'x': bpt = strtod(optarg, &end); break;
        case 'v': vocab = strtoull(optarg, &end, 10); break;
        case 'S': seed = strtoull(optarg, &end, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
        if (end && (*end || errno)) {
            fprintf(stderr, "synth-shards: bad value: %s\n", optarg);
            return 2;
        }
    }
    if (!out || optind != argc || split_code(split) < 0 || !(bpt > 0.1 && bpt < 100) ||
        vocab < 2 || vocab > (1u << 22) || n_books < 1 || n_books > 1000000 || per_book < 1 ||
        per_book > (1ull << 32)) {
        usage(stderr);
        return 2;
    }
    pg_error err = {0};
    book_len *books = NULL;
    uint64_t nb = 0;
    int rc = 0;
    if (lengths) {
        rc = read_lengths(lengths, split, bpt, &books, &nb, &err);
    } else {
        nb = n_books;
        books = calloc(nb, sizeof *books);
        if (!books)
            rc = pg_fail(&err, PG_ENOMEM, "out of memory");
        for (uint64_t i = 0; !rc && i < nb; i++)
            books[i] = (book_len){i + 1, per_book / 2 + 1 + (i * 7919) % per_book, 0};
        for (uint64_t i = 0; !rc && i < nb; i++)
            books[i].bytes = (uint64_t)((double)books[i].tokens * bpt);
    }
    if (!rc)
        rc = synth(out, split, books, nb, (uint32_t)vocab, seed, &err);
    if (rc) {
        fprintf(stderr, "synth-shards: %s\n", err.msg);
        free(books);
        return 1;
    }
    uint64_t total = 0;
    for (uint64_t i = 0; i < nb; i++)
        total += books[i].tokens;
    fprintf(stderr, "synth-shards: %s: %llu books, %llu tokens in %s\n", split,
            (unsigned long long)nb, (unsigned long long)total, out);
    free(books);
    return 0;
}
