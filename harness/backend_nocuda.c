/* backend_nocuda.c - the CUDA entry points of a harness built without nvcc
 * (see backend.h): opening the CUDA backend says so, and `--device auto`
 * falls back to the CPU. */
#include "harness/backend.h"

int pg_backend_cuda_open(const pg_model *m, const pg_backend_config *cfg, int batch,
                         int max_slots, int window, pg_backend **out, pg_error *err)
{
    (void)m, (void)cfg, (void)batch, (void)max_slots, (void)window;
    *out = NULL;
    return pg_fail(err, PG_ENOTFOUND, "this harness was built without CUDA (nvcc was not "
                   "found at build time)");
}

int pg_backend_cuda_built(void)
{
    return 0;
}
