/* Unit tests for harness/dist.c. Run directly they check the one-process
 * path; tests/harness/test_dist.py runs the same binary under
 * `mpirun -np 2`, where every collective really crosses processes (the
 * expected rank count comes from PG19_EXPECT_RANKS). Only rank 0 prints TAP. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/dist.h"

static pg_dist D;

static void test_rank_count(void **state)
{
    (void)state;
    const char *want = getenv("PG19_EXPECT_RANKS");
    assert_int_equal(D.size, want ? atoi(want) : 1);
    assert_true(D.rank >= 0 && D.rank < D.size);
    assert_int_equal(D.active, pg_dist_launched());
    assert_true(D.local_rank >= 0 && D.local_rank < D.local_size);
}

static void test_allreduce(void **state)
{
    (void)state;
    pg_error err;
    /* more than one chunk would need 2^28 floats; check the sums instead */
    enum { N = 1000 };
    float f[N];
    double g[N];
    uint64_t u[N];
    for (int i = 0; i < N; i++) {
        f[i] = (float)(D.rank + 1) * (float)i;
        g[i] = (D.rank + 1) * 0.5 * i;
        u[i] = (uint64_t)(D.rank + 1) << 40;
    }
    assert_int_equal(pg_dist_allreduce_sum_f32(&D, f, N, &err), 0);
    assert_int_equal(pg_dist_allreduce_sum_f64(&D, g, N, &err), 0);
    assert_int_equal(pg_dist_allreduce_sum_u64(&D, u, N, &err), 0);
    double tri = D.size * (D.size + 1) / 2.0;
    for (int i = 0; i < N; i++) {
        assert_true(f[i] == (float)(tri * i));
        assert_true(g[i] == tri * 0.5 * i);
        assert_true(u[i] == (uint64_t)tri << 40);
    }
}

static void test_all_ok(void **state)
{
    (void)state;
    assert_int_equal(pg_dist_all_ok(&D, 1), 1);
    /* one rank failing makes every rank see the failure */
    assert_int_equal(pg_dist_all_ok(&D, D.rank != D.size - 1), 0);
}

static void test_bcast(void **state)
{
    (void)state;
    pg_error err;
    char buf[64];
    snprintf(buf, sizeof buf, "from rank %d", D.rank);
    int root = D.size - 1;
    assert_int_equal(pg_dist_bcast(&D, buf, sizeof buf, root, &err), 0);
    char want[64];
    snprintf(want, sizeof want, "from rank %d", root);
    assert_string_equal(buf, want);
    assert_int_equal(pg_dist_bcast(&D, buf, 1, D.size, &err) != 0, D.active && D.size > 1);
}

static void test_gather(void **state)
{
    (void)state;
    pg_error err;
    /* rank r sends r+1 bytes of value r (rank 0 one byte: zero-size parts
     * are covered by the empty gather below) */
    uint8_t mine[64];
    memset(mine, D.rank, sizeof mine);
    uint64_t counts[64];
    uint8_t *all = NULL;
    assert_int_equal(pg_dist_gather_bytes(&D, mine, (uint64_t)D.rank + 1, &all, counts, &err), 0);
    if (D.rank == 0) {
        assert_non_null(all);
        uint64_t at = 0;
        for (int r = 0; r < D.size; r++) {
            assert_int_equal(counts[r], (uint64_t)r + 1);
            for (int i = 0; i <= r; i++)
                assert_int_equal(all[at + i], r);
            at += counts[r];
        }
    } else {
        assert_null(all);
    }
    free(all);
    assert_int_equal(pg_dist_gather_bytes(&D, mine, 0, &all, counts, &err), 0);
    if (D.rank == 0)
        for (int r = 0; r < D.size; r++)
            assert_int_equal(counts[r], 0);
    free(all);
}

int main(int argc, char **argv)
{
    pg_error err;
    if (pg_dist_init(&argc, &argv, &D, &err) != 0) {
        fprintf(stderr, "dist init: %s\n", err.msg);
        return 1;
    }
    if (D.size > 64) {
        fprintf(stderr, "test_dist: at most 64 ranks\n");
        pg_dist_abort(&D, 1);
    }
    /* TAP from rank 0 only; a failure on another rank still fails the run */
    if (D.rank != 0 && !freopen("/dev/null", "w", stdout))
        pg_dist_abort(&D, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_count), cmocka_unit_test(test_allreduce),
        cmocka_unit_test(test_all_ok),     cmocka_unit_test(test_bcast),
        cmocka_unit_test(test_gather),
    };
    int failed = cmocka_run_group_tests_name("dist", tests, NULL, NULL);
    int ok = pg_dist_all_ok(&D, failed == 0);
    pg_dist_finalize(&D);
    return ok ? 0 : 1;
}
