/* train.h - `harness train`: training Transformer-XL and the Compressive
 * Transformer on the train split of the shards (CPU, fp32; data parallel
 * over MPI ranks through harness/dist.h), and `harness train-grad`, the
 * gradient dump the PyTorch equivalence test reads.
 *
 * See harness/README.md ("Training") for the data order, the optimizer, the
 * run directory and the checkpoint format.
 */
#ifndef PG19_HARNESS_TRAIN_H
#define PG19_HARNESS_TRAIN_H

#include <stddef.h>

#include "common/error.h"
#include "harness/model.h"

/* Resolves a model name to a config path (main.c's lookup). */
typedef int (*pg_find_config_fn)(const char *model, char *path, size_t cap, pg_error *err);

/* Entry point of `harness train` and `harness train-grad` (argv[1]); returns
 * the process exit code. */
int pg_train_main(int argc, char **argv, pg_find_config_fn find_config);

typedef struct pg_adam {
    float lr, beta1, beta2, eps;
} pg_adam;

/* One Adam step t (1-based) over n parameters: m, v updated in place. */
void pg_adam_update(float *w, const float *g, float *m, float *v, size_t n, const pg_adam *a,
                    long t, float lr);
/* Global L2 norm of g (summed in double, in index order). */
double pg_grad_norm(const float *g, size_t n);

#endif
