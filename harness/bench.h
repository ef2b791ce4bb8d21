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
 *
 * `harness bench --serve` (pg_bench_serve) is the same run driven from
 * another process, so that a benchmark script can alternate the harness
 * with a baseline window by window rather than run by run (on a shared
 * machine a busy spell then slows both sides of a pair alike). Protocol,
 * one line each way:
 *   after the warm-up it prints  "ready <tokens per window> <replay FLOP>";
 *   each line it reads is a count k (1..100000): it runs k pairs of a
 *   forward window and a replay round and prints k lines
 *   "<forward seconds> <forward FLOP> <replay seconds>";
 *   end of input ends it (exit 0); any other line is refused (exit 1).
 * `harness train-bench --serve` speaks the same protocol with training
 * steps: "ready <tokens per step> <FLOP per step>", then one line
 * "<step seconds>" per step.
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

/* `harness bench --serve`: the protocol above, reading counts from in and
 * writing to out. Returns 0 at the end of input. */
int pg_bench_serve(const pg_model *m, int batch, int window, FILE *in, FILE *out,
                   pg_error *err);

/* One unit of a --serve run (a window, a step): runs it and writes its
 * line to out. */
typedef int (*pg_bench_unit_fn)(void *ctx, FILE *out, pg_error *err);

/* The request loop of the --serve protocol, after the "ready" line: reads
 * counts k from in and runs `unit` k times for each, until the end of input
 * (returns 0) or an error (a malformed request names `who` and its line). */
int pg_bench_serve_loop(FILE *in, FILE *out, const char *who, pg_bench_unit_fn unit, void *ctx,
                        pg_error *err);

#endif
