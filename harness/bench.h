/* bench.h - `harness bench`: the CPU forward against the sgemm limit.
 *
 * The baseline is a replay of the forward's own matrix products: the same
 * cblas_sgemm calls (shapes, leading dimensions, transposes, the model's
 * weight matrices) one steady-state window makes, with the same threading
 * (one slot per thread, or the threads sharing each product), and nothing
 * else. Its GFLOP/s is what the forward would reach if everything around
 * the products (LayerNorm, softmax, copies, memory updates) took no time.
 * Forward windows and replay rounds alternate after one warm-up of each, so
 * both see the same machine load; medians and spreads are printed, and the
 * fraction of the sgemm limit only when the replay's rates are stable
 * (interquartile range within 10% of the median).
 */
#ifndef PG19_HARNESS_BENCH_H
#define PG19_HARNESS_BENCH_H

#include <stdio.h>

#include "common/error.h"
#include "harness/model.h"

/* Times batch x window forwards for at least `seconds` (and 5 pairs),
 * prints the report to out. */
int pg_bench_forward(const pg_model *m, int batch, int window, double seconds, FILE *out,
                     pg_error *err);

#endif
