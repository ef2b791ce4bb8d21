/* dist.c - see dist.h. */
#include "harness/dist.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

int pg_dist_launched(void)
{
    /* Open MPI's mpirun, MPICH/Hydra and Slurm's srun (PMI/PMIx) */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return 1;
    return 0;
}

static int mpi_fail(pg_error *err, int rc, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING + 1];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
        len = 0;
    msg[len] = 0;
    return pg_fail(err, PG_EIO, "MPI %s: %s", what, len ? msg : "unknown error");
}

int pg_dist_init(int *argc, char ***argv, pg_dist *d, pg_error *err)
{
    memset(d, 0, sizeof *d);
    d->size = d->local_size = 1;
    if (!pg_dist_launched())
        return 0;
    int provided = 0;
    /* only the main thread calls MPI; OpenMP threads compute between calls */
    int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS)
        return pg_fail(err, PG_EIO, "MPI_Init_thread failed (code %d)", rc);
    d->active = 1;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_rank(MPI_COMM_WORLD, &d->rank)) != MPI_SUCCESS ||
        (rc = MPI_Comm_size(MPI_COMM_WORLD, &d->size)) != MPI_SUCCESS)
        return mpi_fail(err, rc, "rank/size");
    MPI_Comm local;
    if ((rc = MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL,
                                  &local)) != MPI_SUCCESS)
        return mpi_fail(err, rc, "split by machine");
    MPI_Comm_rank(local, &d->local_rank);
    MPI_Comm_size(local, &d->local_size);
    MPI_Comm_free(&local);
    return 0;
}

void pg_dist_finalize(pg_dist *d)
{
    if (d->active) {
        MPI_Finalize();
        d->active = 0;
    }
}

void pg_dist_abort(const pg_dist *d, int code)
{
    if (d->active && d->size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int pg_dist_barrier(const pg_dist *d, pg_error *err)
{
    if (!d->active)
        return 0;
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(err, rc, "barrier");
}

static int allreduce_sum(const pg_dist *d, void *buf, uint64_t n, MPI_Datatype type,
                         size_t elem, pg_error *err)
{
    if (!d->active || d->size == 1)
        return 0;
    for (uint64_t off = 0; off < n; off += PG_DIST_CHUNK) {
        uint64_t c = n - off < PG_DIST_CHUNK ? n - off : PG_DIST_CHUNK;
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * elem, (int)c, type, MPI_SUM,
                               MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_fail(err, rc, "all-reduce");
    }
    return 0;
}

int pg_dist_allreduce_sum_f32(const pg_dist *d, float *buf, uint64_t n, pg_error *err)
{
    return allreduce_sum(d, buf, n, MPI_FLOAT, sizeof *buf, err);
}

int pg_dist_allreduce_sum_f64(const pg_dist *d, double *buf, uint64_t n, pg_error *err)
{
    return allreduce_sum(d, buf, n, MPI_DOUBLE, sizeof *buf, err);
}

int pg_dist_allreduce_sum_u64(const pg_dist *d, uint64_t *buf, uint64_t n, pg_error *err)
{
    return allreduce_sum(d, buf, n, MPI_UINT64_T, sizeof *buf, err);
}

int pg_dist_all_ok(const pg_dist *d, int ok)
{
    if (!d->active || d->size == 1)
        return ok != 0;
    int mine = ok != 0, all = 0;
    if (MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS)
        return 0;
    return all;
}

int pg_dist_bcast(const pg_dist *d, void *buf, uint64_t bytes, int root, pg_error *err)
{
    if (!d->active || d->size == 1)
        return 0;
    if (root < 0 || root >= d->size)
        return pg_fail(err, PG_EINVAL, "broadcast from rank %d of %d", root, d->size);
    for (uint64_t off = 0; off < bytes; off += PG_DIST_CHUNK) {
        uint64_t c = bytes - off < PG_DIST_CHUNK ? bytes - off : PG_DIST_CHUNK;
        int rc = MPI_Bcast((char *)buf + off, (int)c, MPI_BYTE, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS)
            return mpi_fail(err, rc, "broadcast");
    }
    return 0;
}

enum { GATHER_TAG = 7001 };

int pg_dist_gather_bytes(const pg_dist *d, const void *buf, uint64_t n, uint8_t **all,
                         uint64_t *counts, pg_error *err)
{
    *all = NULL;
    if (!d->active || d->size == 1) {
        counts[0] = n;
        *all = malloc(n ? n : 1);
        if (!*all)
            return pg_fail(err, PG_ENOMEM, "gather: %llu bytes", (unsigned long long)n);
        if (n)
            memcpy(*all, buf, n);
        return 0;
    }
    uint64_t mine = n;
    int rc = MPI_Gather(&mine, 1, MPI_UINT64_T, counts, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS)
        return mpi_fail(err, rc, "gather of sizes");
    if (d->rank != 0) {
        for (uint64_t off = 0; off < n; off += PG_DIST_CHUNK) {
            uint64_t c = n - off < PG_DIST_CHUNK ? n - off : PG_DIST_CHUNK;
            rc = MPI_Send((const char *)buf + off, (int)c, MPI_BYTE, 0, GATHER_TAG,
                          MPI_COMM_WORLD);
            if (rc != MPI_SUCCESS)
                return mpi_fail(err, rc, "gather send");
        }
        return 0;
    }
    uint64_t total = 0;
    for (int r = 0; r < d->size; r++) {
        if (counts[r] > UINT64_MAX - total)
            return pg_fail(err, PG_ELIMIT, "gather: sizes overflow");
        total += counts[r];
    }
    uint8_t *out = malloc(total ? total : 1);
    if (!out)
        return pg_fail(err, PG_ENOMEM, "gather: %llu bytes", (unsigned long long)total);
    if (n)
        memcpy(out, buf, n);
    uint64_t at = n;
    for (int r = 1; r < d->size; r++) {
        for (uint64_t off = 0; off < counts[r]; off += PG_DIST_CHUNK) {
            uint64_t c = counts[r] - off < PG_DIST_CHUNK ? counts[r] - off : PG_DIST_CHUNK;
            rc = MPI_Recv(out + at + off, (int)c, MPI_BYTE, r, GATHER_TAG, MPI_COMM_WORLD,
                          MPI_STATUS_IGNORE);
            if (rc != MPI_SUCCESS) {
                free(out);
                return mpi_fail(err, rc, "gather receive");
            }
        }
        at += counts[r];
    }
    *all = out;
    return 0;
}
