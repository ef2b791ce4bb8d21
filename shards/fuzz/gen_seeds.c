/* Writes the fuzz seed corpus (small valid shards in both dtypes, with and
 * without word frequencies) with the real writer:
 *   cc -I. -D_GNU_SOURCE shards/fuzz/gen_seeds.c shards/shard_writer.c common/[a-z]*.c \
 *      -lxxhash -lcrypto -o /tmp/gen_seeds && /tmp/gen_seeds shards/fuzz/corpus */
#include <stdio.h>
#include <string.h>

#include "shards/shard_reader.h"
#include "shards/shard_writer.h"

static int seed(const char *dir, const char *name, int split, uint32_t vocab, int freqs,
                int n_books)
{
    pg_error err;
    pg_shard_writer *w;
    uint8_t sha[32];
    for (int i = 0; i < 32; i++)
        sha[i] = (uint8_t)(0xA5 ^ i);
    if (pg_shard_writer_new(&w, split, vocab, 0, sha, freqs, &err))
        goto fail;
    for (int b = 0; b < n_books; b++) {
        uint32_t tok[40];
        uint8_t st[40];
        uint64_t fr[40];
        int nt = (b * 13) % 41, nw = 0;
        for (int t = 0; t < nt; t++) {
            tok[t] = (uint32_t)(t * 2654435761u) % vocab;
            st[t] = t == 0 || (t * 7) % 3 == 0;
            if (st[t])
                fr[nw++] = (uint64_t)t * 97;
        }
        uint8_t text_sha[32];
        for (int i = 0; i < 32; i++)
            text_sha[i] = (uint8_t)(b * 31 + i * 7);
        if (pg_shard_writer_add_book(w, 100 + (uint64_t)b * 3, (uint64_t)nt * 4, text_sha, tok,
                                     st, (uint64_t)nt, freqs ? fr : NULL, (uint64_t)nw, &err))
            goto fail;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (pg_shard_writer_write(w, path, &err))
        goto fail;
    pg_shard_writer_free(w);
    return 0;
fail:
    fprintf(stderr, "%s: %s\n", name, err.msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds DIR\n");
        return 2;
    }
    int bad = 0;
    bad |= seed(argv[1], "valid-u16-freqs.pgs", 1, 300, 1, 4);
    bad |= seed(argv[1], "test-u16-freqs.pgs", 2, 65536, 1, 2);
    bad |= seed(argv[1], "train-u16.pgs", 0, 1000, 0, 3);
    bad |= seed(argv[1], "train-u32.pgs", 0, 70000, 0, 3);
    bad |= seed(argv[1], "empty.pgs", 2, 1, 1, 0);
    return bad;
}
