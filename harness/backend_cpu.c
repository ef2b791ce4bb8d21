/* backend_cpu.c - the CPU backend: model.c's forward (the reference) and
 * the NLL of each row computed from its fp32 logits. For a DCT the judge
 * (harness/dct.h) decides each window's evictions before the forward. */
#include "harness/backend.h"

#include "harness/dct.h"

#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct cpu_impl {
    const pg_model *m;
    pg_state *st;
    pg_dct *dct;      /* DCT models only */
} cpu_impl;

/* nll of row: logsumexp(logits) - logits[target]; float exponentials summed
 * in double (the CUDA backend's fused classifier does the same). */
static float row_nll(const float *row, int V, uint32_t target)
{
    float mx = row[0];
    for (int j = 1; j < V; j++)
        mx = row[j] > mx ? row[j] : mx;
    double sum = 0.0;
    for (int j = 0; j < V; j++)
        sum += (double)expf(row[j] - mx);
    return (float)(log(sum) + (double)mx - (double)row[target]);
}

static void cpu_reset_slot(pg_backend *be, int slot)
{
    cpu_impl *c = be->impl;
    pg_state_reset_slot(c->st, slot);
    if (c->dct)
        pg_dct_reset_slot(c->dct, slot);
}

/* The judge's keep masks for this window (DCT only). */
static int judge_window(cpu_impl *c, const uint32_t *tokens, const int *lens, int n_slots,
                        pg_error *err)
{
    if (!c->dct)
        return 0;
    const uint8_t *keep[4096];
    int n[4096];
    if (n_slots > 4096)
        return pg_fail(err, PG_EINVAL, "dct: at most 4096 slots");
    int rc = pg_dct_decide(c->dct, tokens, lens, keep, n, err);
    for (int b = 0; b < n_slots && !rc; b++)
        if (lens[b] > 0)
            rc = pg_state_set_keep(c->st, b, keep[b], n[b], err);
    return rc;
}

static int cpu_forward_logits(pg_backend *be, const uint32_t *tokens, const int *lens,
                              const float **logits, pg_error *err)
{
    cpu_impl *c = be->impl;
    int rc = judge_window(c, tokens, lens, be->n_slots, err);
    return rc ? rc : pg_forward(c->m, c->st, tokens, lens, logits, err);
}

static int cpu_forward_nll(pg_backend *be, const uint32_t *tokens, const int *lens,
                           const uint32_t *targets, float *nll, pg_error *err)
{
    cpu_impl *c = be->impl;
    int V = c->m->cfg.vocab_size, T = 0;
    for (int b = 0; b < be->n_slots; b++)
        T += lens[b];
    for (int i = 0; i < T; i++)
        if (targets[i] >= (uint32_t)V)
            return pg_fail(err, PG_EINVAL, "forward: target id %u >= vocabulary size %d",
                           targets[i], V);
    const float *lg;
    int rc = judge_window(c, tokens, lens, be->n_slots, err);
    if (!rc)
        rc = pg_forward(c->m, c->st, tokens, lens, &lg, err);
    if (rc)
        return rc;
#pragma omp parallel for num_threads(pg_get_threads()) schedule(static)
    for (int i = 0; i < T; i++)
        nll[i] = row_nll(lg + (size_t)i * V, V, targets[i]);
    return 0;
}

static double cpu_flops(const pg_backend *be)
{
    const cpu_impl *c = be->impl;
    return pg_state_flops(c->st);
}

static void cpu_free(pg_backend *be)
{
    cpu_impl *c = be->impl;
    pg_state_free(c->st);
    pg_dct_free(c->dct);
    free(c);
    free(be);
}

static const pg_backend_ops cpu_ops = {cpu_reset_slot, cpu_forward_nll, cpu_forward_logits,
                                       cpu_flops, cpu_free};

int pg_backend_cpu_open(const pg_model *m, int n_slots, int window, pg_backend **out,
                        pg_error *err)
{
    pg_backend *be = calloc(1, sizeof *be);
    cpu_impl *c = calloc(1, sizeof *c);
    if (!be || !c) {
        free(be);
        free(c);
        return pg_fail(err, PG_ENOMEM, "cpu backend: out of memory");
    }
    c->m = m;
    int rc = pg_state_new(m, n_slots, window, &c->st, err);
    if (rc) {
        free(be);
        free(c);
        return rc;
    }
    be->ops = &cpu_ops;
    be->n_slots = n_slots;
    be->window = window;
    be->precision = PG_PRECISION_FP32;
    be->batch_invariant = 1;
    snprintf(be->device, sizeof be->device, "cpu");
    be->impl = c;
    if (pg_model_is_dct(&m->cfg) &&
        (rc = pg_dct_new(m, n_slots, window, PG_DCT_GREEDY, 0, 0, &c->dct, err))) {
        cpu_free(be);
        return rc;
    }
    *out = be;
    return 0;
}

int pg_backend_cpu_set_dct(pg_backend *be, int policy, uint64_t seed, pg_error *err)
{
    cpu_impl *c = be->impl;
    if (be->ops != &cpu_ops || !c->dct)
        return pg_fail(err, PG_EINVAL, "--dct-*: the model is not a DCT (or not on the CPU)");
    pg_dct *d;
    int rc = pg_dct_new(c->m, be->n_slots, be->window, policy, seed, 0, &d, err);
    if (rc)
        return rc;
    pg_dct_free(c->dct);
    c->dct = d;
    return 0;
}

int pg_backend_dct_stats(const pg_backend *be, uint64_t *decided, uint64_t *kept)
{
    const cpu_impl *c = be->impl;
    if (be->ops != &cpu_ops || !c->dct)
        return 0;
    pg_dct_stats st;
    pg_dct_stats_get(c->dct, &st);
    *decided = st.decided;
    *kept = st.kept;
    return 1;
}
