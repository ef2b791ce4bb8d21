/* dct_judge.c - see dct_judge.h. The DCT's compression judge: a one-layer
 * bidirectional LSTM over the block representations and a linear layer to
 * two logits per block, its backward through time, and the REINFORCE
 * gradient of its policy. CPU fp32, single-threaded, no allocation.
 *
 * Saved activations (act), per direction dir (0 forward, 1 reverse) and
 * position t, one record of R = 7H floats at act + (dir * N + t) * R:
 *     [ i | f | g | o ]  the gates after their nonlinearity   [4H]
 *     c                  the cell state c_t                    [H]
 *     h                  the hidden state h_t                  [H]
 *     tanh(c)            tanh(c_t)                             [H]
 * Records are indexed by position, not by step: the reverse direction's step
 * s writes position N-1-s, and its "previous" state is position t+1.
 *
 * The input projection W_ih x is one cblas_sgemm per chunk of positions
 * (chunks fixed by H alone, so the forward computes the same bits with and
 * without act), the recurrent one a cblas_sgemv per step; the weight
 * gradients of the backward are one cblas_sgemm per tensor over all steps.
 * Stack: 64 KiB for the projection chunk (16 H bytes if more), and without
 * act two step records (56 H bytes).
 */
#include "harness/dct_judge.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

/* floats per saved step record and the offsets inside it */
#define REC(H) (7 * (size_t)(H))
#define OFF_C(H) (4 * (size_t)(H))
#define OFF_H(H) (5 * (size_t)(H))
#define OFF_TC(H) (6 * (size_t)(H))

size_t pg_judge_act_floats(int N, int H)
{
    return 2 * (size_t)N * REC(H);
}

size_t pg_judge_scratch_floats(int N, int d, int H)
{
    (void)d;
    /* dgates of every step of one direction [N, 4H], dh, dh_next, dc_next [H] each */
    return (size_t)N * 4 * (size_t)H + 3 * (size_t)H;
}

static float sigmoidf(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

/* position of step s of direction dir */
static int step_pos(int dir, int N, int s)
{
    return dir ? N - 1 - s : s;
}

/* Positions per input-projection call: a function of H alone, so that the
 * forward cuts its sgemm calls the same way with and without act (OpenBLAS's
 * result for a row can change with the number of rows in the call), and the
 * stack buffer stays at 64 KiB (4H floats when 4H alone is larger). */
static int proj_rows(int H)
{
    int rows = 16384 / (4 * H);
    return rows > 0 ? rows : 1;
}

/* One LSTM step: rec (gates, c, h, tanh c) from the input projection
 * xproj_t = W_ih x_t [4H] and the previous record prev (NULL at the first
 * step: h_0 = c_0 = 0). */
static void lstm_step_fwd(const pg_judge_params *p, int dir, int H, const float *xproj_t,
                          const float *prev, float *rec)
{
    float *gate = rec;                  /* [4H] pre-activations, then activations */
    float *c = rec + OFF_C(H), *h = rec + OFF_H(H), *tc = rec + OFF_TC(H);
    /* gate = W_ih x_t + b_ih + b_hh (+ W_hh h_{t-1}) */
    for (int j = 0; j < 4 * H; j++)
        gate[j] = xproj_t[j] + p->b_ih[dir][j] + p->b_hh[dir][j];
    if (prev)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, 4 * H, H, 1.0f, p->w_hh[dir], H,
                    prev + OFF_H(H), 1, 1.0f, gate, 1);
    float *gi = gate, *gf = gate + H, *gg = gate + 2 * H, *go = gate + 3 * H;
    for (int j = 0; j < H; j++) {
        gi[j] = sigmoidf(gi[j]);
        gf[j] = sigmoidf(gf[j]);
        gg[j] = tanhf(gg[j]);
        go[j] = sigmoidf(go[j]);
        float c_prev = prev ? prev[OFF_C(H) + j] : 0.0f;
        c[j] = gf[j] * c_prev + gi[j] * gg[j];
        tc[j] = tanhf(c[j]);
        h[j] = go[j] * tc[j];
    }
}

void pg_judge_forward(const pg_judge_params *p, int d, int H, const float *x, int N,
                      float *logits, float *act)
{
    const size_t R = REC(H);
    const int rows = proj_rows(H);
    const int n_chunks = (N + rows - 1) / rows;
    float xproj[(size_t)rows * 4 * H]; /* W_ih x for one chunk of positions [rows, 4H] */
    /* Without act only the current and the previous record are kept. */
    float ring[act ? 1 : 2 * R];
    /* logits[t] = b_fc, then each direction adds W_fc[:, dir*H : (dir+1)*H] h_dir_t */
    for (int t = 0; t < N; t++) {
        logits[2 * t] = p->fc_b[0];
        logits[2 * t + 1] = p->fc_b[1];
    }
    for (int dir = 0; dir < 2; dir++) {
        const float *prev = NULL;
        int s = 0; /* step */
        /* the forward direction walks the chunks and their positions up, the reverse down */
        for (int k = 0; k < n_chunks; k++) {
            int t0 = (dir ? n_chunks - 1 - k : k) * rows;
            int nt = N - t0 < rows ? N - t0 : rows;
            /* xproj [nt, 4H] = x[t0 : t0+nt] [nt, d] . W_ih^T [d, 4H] */
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nt, 4 * H, d, 1.0f,
                        x + (size_t)t0 * d, d, p->w_ih[dir], d, 0.0f, xproj, 4 * H);
            for (int i = 0; i < nt; i++, s++) {
                int t = dir ? t0 + nt - 1 - i : t0 + i;
                float *rec = act ? act + ((size_t)dir * N + t) * R : ring + (size_t)(s & 1) * R;
                lstm_step_fwd(p, dir, H, xproj + (size_t)(t - t0) * 4 * H, prev, rec);
                const float *h = rec + OFF_H(H);
                for (int o = 0; o < 2; o++) {
                    const float *w = p->fc_w + (size_t)o * 2 * H + (size_t)dir * H;
                    float acc = 0.0f;
                    for (int j = 0; j < H; j++)
                        acc += w[j] * h[j];
                    logits[2 * t + o] += acc;
                }
                prev = rec;
            }
        }
    }
}

void pg_judge_backward(const pg_judge_params *p, const pg_judge_params *g, int d, int H,
                       const float *x, int N, const float *act, const float *dlogits,
                       float *scratch)
{
    const size_t R = REC(H);
    float *dgates = scratch;                    /* [N, 4H], row t = position t */
    float *dh = dgates + (size_t)N * 4 * H;     /* [H] */
    float *dh_next = dh + H;                    /* [H] W_hh^T dgates of the later step */
    float *dc_next = dh_next + H;               /* [H] dc * f of the later step */

    /* fc: logits[t] = W_fc [h_fwd_t ; h_bwd_t] + b_fc */
    for (int t = 0; t < N; t++) {
        g->fc_b[0] += dlogits[2 * t];
        g->fc_b[1] += dlogits[2 * t + 1];
    }
    for (int dir = 0; dir < 2; dir++) {
        const float *rec0 = act + (size_t)dir * N * R;
        /* dW_fc[:, dir half] [2, H] += dlogits^T [2, N] . h_dir [N, H] (rows R apart) */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 2, H, N, 1.0f, dlogits, 2,
                    rec0 + OFF_H(H), (int)R, 1.0f, g->fc_w + (size_t)dir * H, 2 * H);

        /* backward through time, latest step first */
        memset(dh_next, 0, sizeof(float) * H);
        memset(dc_next, 0, sizeof(float) * H);
        for (int s = N - 1; s >= 0; s--) {
            int t = step_pos(dir, N, s);
            const float *rec = rec0 + (size_t)t * R;
            const float *prev = s > 0 ? rec0 + (size_t)step_pos(dir, N, s - 1) * R : NULL;
            const float *gi = rec, *gf = rec + H, *gg = rec + 2 * H, *go = rec + 3 * H;
            const float *tc = rec + OFF_TC(H);
            float *dg = dgates + (size_t)t * 4 * H;
            /* dh_t = W_fc[:, dir half]^T dlogits[t] + (from step s+1) W_hh^T dgates_{s+1} */
            for (int j = 0; j < H; j++)
                dh[j] = p->fc_w[(size_t)dir * H + j] * dlogits[2 * t] +
                        p->fc_w[2 * (size_t)H + (size_t)dir * H + j] * dlogits[2 * t + 1] +
                        dh_next[j];
            for (int j = 0; j < H; j++) {
                /* h = o * tanh(c); c = f * c_prev + i * g */
                float dc = dh[j] * go[j] * (1.0f - tc[j] * tc[j]) + dc_next[j];
                float d_o = dh[j] * tc[j];
                float d_i = dc * gg[j];
                float d_g = dc * gi[j];
                float c_prev = prev ? prev[OFF_C(H) + j] : 0.0f;
                float d_f = dc * c_prev;
                /* through the nonlinearities to the pre-activations */
                dg[j] = d_i * gi[j] * (1.0f - gi[j]);
                dg[H + j] = d_f * gf[j] * (1.0f - gf[j]);
                dg[2 * H + j] = d_g * (1.0f - gg[j] * gg[j]);
                dg[3 * H + j] = d_o * go[j] * (1.0f - go[j]);
                dc_next[j] = dc * gf[j];
            }
            /* dh_{t-1} = W_hh^T dgates_t  ([4H, H]^T [4H]) */
            if (prev)
                cblas_sgemv(CblasRowMajor, CblasTrans, 4 * H, H, 1.0f, p->w_hh[dir], H, dg, 1,
                            0.0f, dh_next, 1);
        }

        /* biases: both receive sum_t dgates_t */
        for (int t = 0; t < N; t++)
            for (int j = 0; j < 4 * H; j++) {
                g->b_ih[dir][j] += dgates[(size_t)t * 4 * H + j];
                g->b_hh[dir][j] += dgates[(size_t)t * 4 * H + j];
            }
        /* dW_ih [4H, d] += dgates^T [4H, N] . x [N, d] */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 4 * H, d, N, 1.0f, dgates, 4 * H,
                    x, d, 1.0f, g->w_ih[dir], d);
        /* dW_hh [4H, H] += sum over steps s >= 1 of dgates_s h_{s-1}^T: the forward
         * direction pairs dgates rows 1..N-1 with h rows 0..N-2, the reverse
         * direction dgates rows 0..N-2 with h rows 1..N-1. */
        if (N > 1) {
            const float *dg_rows = dgates + (dir ? 0 : 4 * (size_t)H);
            const float *h_rows = rec0 + OFF_H(H) + (dir ? R : 0);
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, 4 * H, H, N - 1, 1.0f, dg_rows,
                        4 * H, h_rows, (int)R, 1.0f, g->w_hh[dir], H);
        }
    }
}

/* log-softmax of two logits, stably: logp[j] = l[j] - logsumexp(l) */
static void log_softmax2(const float *l, double logp[2])
{
    double a = l[0], b = l[1];
    double m = a > b ? a : b;
    double lse = m + log(exp(a - m) + exp(b - m));
    logp[0] = a - lse;
    logp[1] = b - lse;
}

void pg_judge_reinforce_dlogits(const float *logits, int N, const int *pos,
                                const uint8_t *action, int n, double advantage, double alpha,
                                float *dlogits, double *logp_sum, double *entropy_sum)
{
    double lp_sum = 0.0, s_sum = 0.0;
    memset(dlogits, 0, sizeof(float) * 2 * (size_t)N);
    for (int k = 0; k < n; k++) {
        int t = pos[k], a = action[k] ? 1 : 0;
        double logp[2], pr[2];
        log_softmax2(logits + 2 * (size_t)t, logp);
        pr[0] = exp(logp[0]);
        pr[1] = exp(logp[1]);
        double S = -(pr[0] * logp[0] + pr[1] * logp[1]);
        lp_sum += logp[a];
        s_sum += S;
        for (int j = 0; j < 2; j++) {
            /* d(-A log p_a)/dl_j = -A (1[j = a] - p_j);  dS/dl_j = -p_j (log p_j + S) */
            double dl = -advantage * ((j == a ? 1.0 : 0.0) - pr[j]) +
                        alpha * pr[j] * (logp[j] + S);
            dlogits[2 * (size_t)t + j] += (float)dl;
        }
    }
    if (logp_sum)
        *logp_sum = lp_sum;
    if (entropy_sum)
        *entropy_sum = s_sum;
}

float pg_judge_p_compress(const float *logits_row)
{
    /* softmax(l)[1] = 1 / (1 + exp(l0 - l1)); exp overflows to inf -> 0, never NaN */
    return (float)(1.0 / (1.0 + exp((double)logits_row[0] - (double)logits_row[1])));
}
