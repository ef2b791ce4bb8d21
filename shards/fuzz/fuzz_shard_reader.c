/* libFuzzer target for the shard reader: the input bytes become a shard file
 * (an in-memory memfd, opened by its /proc path) that is opened without and
 * with checksum verification; every book is then read back in full and in a
 * few odd windows. Build and run: shards/fuzz/run.sh (see shards/README.md). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "shards/shard_reader.h"

static void read_all(pg_shard *s)
{
    pg_error err;
    uint64_t n = pg_shard_num_books(s);
    (void)pg_shard_vocab_size(s);
    (void)pg_shard_bos_id(s);
    (void)pg_shard_vocab_sha256(s);
    for (uint64_t i = 0; i <= n; i++) { /* i == n exercises the range check */
        pg_shard_book b;
        if (pg_shard_get_book(s, i, &b, &err) != 0)
            continue;
        uint64_t nt = b.n_tokens < (1u << 20) ? b.n_tokens : (1u << 20);
        uint64_t nw = b.n_words < (1u << 20) ? b.n_words : (1u << 20);
        uint32_t *t = malloc((nt + 1) * sizeof *t);
        uint8_t *st = malloc(nt + 1);
        uint64_t *f = malloc((nw + 1) * sizeof *f);
        if (t && st && f) {
            (void)pg_shard_tokens(s, i, 0, nt, t, &err);
            (void)pg_shard_word_starts(s, i, 0, nt, st, &err);
            (void)pg_shard_word_freqs(s, i, 0, nw, f, &err);
            if (nt > 3) {
                (void)pg_shard_tokens(s, i, nt / 3, nt - nt / 3, t, &err);
                (void)pg_shard_word_starts(s, i, 3, nt - 3, st, &err);
            }
            (void)pg_shard_tokens(s, i, nt, 1, t, &err);
            (void)pg_shard_word_freqs(s, i, UINT64_MAX, 2, f, &err);
        }
        free(t);
        free(st);
        free(f);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("pgs-fuzz", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        for (int verify = 0; verify <= 1; verify++) {
            pg_shard *s = NULL;
            pg_error err;
            if (pg_shard_open(path, verify, &s, &err) == 0) {
                read_all(s);
                pg_shard_close(s);
            }
        }
    }
    close(fd);
    return 0;
}
