/* train_model.c - see train_model.h. Layer functions come in forward /
 * backward pairs with shape comments; T = window rows of all slots stacked,
 * Kt = rows attended over by all slots stacked (per slot: compressed memory,
 * memory, window), HD = n_head * d_head.
 *
 * Determinism: every matrix product is cut into fixed tasks (chunks of
 * output columns, each one single-threaded sgemm over all rows), and every
 * sum across rows, slots or heads runs in a fixed order, so results are
 * bitwise identical for any thread count and from run to run. */
#include "harness/train_model.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "common/huge_pages.h"
#include "harness/keep_mask.h"

#define CHUNK 128

static int nthreads(void)
{
    return pg_get_threads();
}

/* ------------------------------------------------------------- matmul */

/* out[T, N] (+)= in[T, K] W[N, K]^T (+ bias[N]) */
static void matmul_fwd(float *out, const float *in, const float *w, const float *bias, int T,
                       int K, int N, int accumulate)
{
    if (T <= 0)
        return;
    int nch = (N + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(nthreads()) schedule(dynamic, 1)
    for (int ch = 0; ch < nch; ch++) {
        int n0 = ch * CHUNK, n1 = n0 + CHUNK < N ? n0 + CHUNK : N;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, n1 - n0, K, 1.0f, in, K,
                    w + (size_t)n0 * K, K, accumulate ? 1.0f : 0.0f, out + n0, N);
        if (bias)
            for (int t = 0; t < T; t++)
                for (int n = n0; n < n1; n++)
                    out[(size_t)t * N + n] += bias[n];
    }
}

void pg_tm_matmul_forward(float *out, const float *in, const float *w, const float *bias, int T,
                          int K, int N)
{
    matmul_fwd(out, in, w, bias, T, K, N, 0);
}

void pg_tm_matmul_backward(float *din, float *dw, float *dbias, const float *dout,
                           const float *in, const float *w, int T, int K, int N)
{
    if (T <= 0)
        return;
    int nt = nthreads();
    if (din) { /* din[:, k0:k1] += dout[T, N] W[N, k0:k1] */
        int nch = (K + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int ch = 0; ch < nch; ch++) {
            int k0 = ch * CHUNK, k1 = k0 + CHUNK < K ? k0 + CHUNK : K;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, T, k1 - k0, N, 1.0f, dout, N,
                        w + k0, K, 1.0f, din + k0, K);
        }
    }
    if (dw) { /* dW[n0:n1, :] += dout[:, n0:n1]^T in[T, K] */
        int nch = (N + CHUNK - 1) / CHUNK;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int ch = 0; ch < nch; ch++) {
            int n0 = ch * CHUNK, n1 = n0 + CHUNK < N ? n0 + CHUNK : N;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n1 - n0, K, T, 1.0f, dout + n0,
                        N, in, K, 1.0f, dw + (size_t)n0 * K, K);
            if (dbias)
                for (int n = n0; n < n1; n++) {
                    float acc = 0.0f;
                    for (int t = 0; t < T; t++)
                        acc += dout[(size_t)t * N + n];
                    dbias[n] += acc;
                }
        }
    } else if (dbias) {
        for (int n = 0; n < N; n++) {
            float acc = 0.0f;
            for (int t = 0; t < T; t++)
                acc += dout[(size_t)t * N + n];
            dbias[n] += acc;
        }
    }
}

/* ---------------------------------------------------------- layernorm */

void pg_tm_layernorm_forward(float *out, float *mean, float *rstd, const float *in,
                             const float *w, const float *b, int T, int d, float eps)
{
#pragma omp parallel for num_threads(nthreads()) schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = in + (size_t)t * d;
        float *y = out + (size_t)t * d;
        float mu = 0.0f, var = 0.0f;
        for (int i = 0; i < d; i++)
            mu += x[i];
        mu /= (float)d;
        for (int i = 0; i < d; i++)
            var += (x[i] - mu) * (x[i] - mu);
        var /= (float)d;
        float rs = 1.0f / sqrtf(var + eps);
        for (int i = 0; i < d; i++)
            y[i] = (x[i] - mu) * rs * w[i] + b[i];
        mean[t] = mu;
        rstd[t] = rs;
    }
}

/* xhat = (x - mean) rstd; dxhat = dout w;
 * din += rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)) */
void pg_tm_layernorm_backward(float *din, float *dw, float *db, const float *dout,
                              const float *in, const float *w, const float *mean,
                              const float *rstd, int T, int d)
{
    int nt = nthreads();
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = in + (size_t)t * d, *dy = dout + (size_t)t * d;
        float *dx = din + (size_t)t * d;
        float mu = mean[t], rs = rstd[t], m1 = 0.0f, m2 = 0.0f;
        for (int i = 0; i < d; i++) {
            float dxh = dy[i] * w[i];
            m1 += dxh;
            m2 += dxh * (x[i] - mu) * rs;
        }
        m1 /= (float)d;
        m2 /= (float)d;
        for (int i = 0; i < d; i++) {
            float xh = (x[i] - mu) * rs;
            dx[i] += rs * (dy[i] * w[i] - m1 - xh * m2);
        }
    }
    if (!dw)
        return;
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int i = 0; i < d; i++) {
        float aw = 0.0f, ab = 0.0f;
        for (int t = 0; t < T; t++) {
            float dy = dout[(size_t)t * d + i];
            aw += dy * (in[(size_t)t * d + i] - mean[t]) * rstd[t];
            ab += dy;
        }
        dw[i] += aw;
        db[i] += ab;
    }
}

/* ---------------------------------------------------------- attention */

/* s[i, j] = ((q_i + u) . k_j + (q_i + vb) . r_{j + L-1-i}) / sqrt(dh), j <= M + i;
 * p = softmax_j(s); out_i = sum_j p[i, j] v_j. */
void pg_tm_attention_forward(float *out, float *p, const float *q, const float *k,
                             const float *v, const float *r, const float *u, const float *vb,
                             int L, int M, int dh, int ldq, int ldk, float *scratch)
{
    int K = M + L;
    float *qu = scratch, *qv = qu + (size_t)L * dh, *bd = qv + (size_t)L * dh;
    for (int i = 0; i < L; i++)
        for (int e = 0; e < dh; e++) {
            qu[(size_t)i * dh + e] = q[(size_t)i * ldq + e] + u[e];
            qv[(size_t)i * dh + e] = q[(size_t)i * ldq + e] + vb[e];
        }
    /* ac[L, K] = qu k^T (into p), bd[L, K] = qv r^T */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, K, dh, 1.0f, qu, dh, k, ldk, 0.0f, p,
                K);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, K, dh, 1.0f, qv, dh, r, ldk, 0.0f,
                bd, K);
    float scale = 1.0f / sqrtf((float)dh);
    for (int i = 0; i < L; i++) {
        float *row = p + (size_t)i * K;
        const float *shifted = bd + (size_t)i * K + (L - 1 - i);
        int last = M + i;
        float mx = -INFINITY, sum = 0.0f;
        for (int j = 0; j <= last; j++) {
            row[j] = (row[j] + shifted[j]) * scale;
            mx = row[j] > mx ? row[j] : mx;
        }
        for (int j = 0; j <= last; j++) {
            row[j] = expf(row[j] - mx);
            sum += row[j];
        }
        float inv = 1.0f / sum;
        for (int j = 0; j <= last; j++)
            row[j] *= inv;
        for (int j = last + 1; j < K; j++)
            row[j] = 0.0f;
    }
    /* out[L, dh] = p[L, K] v[K, dh] */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, dh, K, 1.0f, p, K, v, ldk, 0.0f,
                out, ldq);
}

/* dp = dout v^T; dv += p^T dout; ds = p (dp - rowsum(p dp)) / sqrt(dh);
 * dac = ds; dbd[i, j + L-1-i] = ds[i, j] (the shift is a bijection on the
 * kept entries: a gather, no scatter-add); dq = dac k + dbd r;
 * dk += dac^T (q + u); dr += dbd^T (q + vb); du, dvb: column sums. */
void pg_tm_attention_backward(float *dq, float *dk, float *dv, float *dr, float *du, float *dvb,
                              const float *dout, const float *p, const float *q,
                              const float *k, const float *v, const float *r, const float *u,
                              const float *vb, int L, int M, int dh, int ldq, int ldk,
                              float *scratch)
{
    int K = M + L;
    float *ds = scratch, *dbd = ds + (size_t)L * K, *qu = dbd + (size_t)L * K;
    float *qv = qu + (size_t)L * dh, *dqu = qv + (size_t)L * dh, *dqv = dqu + (size_t)L * dh;
    for (int i = 0; i < L; i++)
        for (int e = 0; e < dh; e++) {
            qu[(size_t)i * dh + e] = q[(size_t)i * ldq + e] + u[e];
            qv[(size_t)i * dh + e] = q[(size_t)i * ldq + e] + vb[e];
        }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, K, dh, 1.0f, dout, ldq, v, ldk, 0.0f,
                ds, K);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, dh, L, 1.0f, p, K, dout, ldq, 1.0f,
                dv, ldk);
    float scale = 1.0f / sqrtf((float)dh);
    memset(dbd, 0, sizeof(float) * (size_t)L * K);
    for (int i = 0; i < L; i++) {
        const float *pr = p + (size_t)i * K;
        float *row = ds + (size_t)i * K;
        int last = M + i;
        float dot = 0.0f;
        for (int j = 0; j <= last; j++)
            dot += pr[j] * row[j];
        for (int j = 0; j <= last; j++)
            row[j] = pr[j] * (row[j] - dot) * scale;
        for (int j = last + 1; j < K; j++)
            row[j] = 0.0f;
        float *shifted = dbd + (size_t)i * K + (L - 1 - i);
        for (int j = 0; j <= last; j++)
            shifted[j] = row[j];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, dh, K, 1.0f, ds, K, k, ldk, 0.0f,
                dqu, dh);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, dh, K, 1.0f, dbd, K, r, ldk, 0.0f,
                dqv, dh);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, dh, L, 1.0f, ds, K, qu, dh, 1.0f, dk,
                ldk);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, dh, L, 1.0f, dbd, K, qv, dh, 1.0f, dr,
                ldk);
    for (int i = 0; i < L; i++)
        for (int e = 0; e < dh; e++) {
            float a = dqu[(size_t)i * dh + e], b = dqv[(size_t)i * dh + e];
            dq[(size_t)i * ldq + e] += a + b;
            du[e] += a;
            dvb[e] += b;
        }
}

/* Content-only multi-head attention of the reconstruction loss:
 * out[L, HD] = softmax(q_h k_h^T / sqrt(dh)) v_h per head; p [H, L, n] saved. */
static void content_attention_forward(float *out, float *p, const float *q, const float *k,
                                      const float *v, int L, int n, int H, int dh)
{
    int HD = H * dh;
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < H; h++) {
        float *ph = p + (size_t)h * L * n;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, n, dh, scale, q + h * dh, HD,
                    k + h * dh, HD, 0.0f, ph, n);
        for (int i = 0; i < L; i++) {
            float *row = ph + (size_t)i * n, mx = -INFINITY, sum = 0.0f;
            for (int j = 0; j < n; j++)
                mx = row[j] > mx ? row[j] : mx;
            for (int j = 0; j < n; j++) {
                row[j] = expf(row[j] - mx);
                sum += row[j];
            }
            for (int j = 0; j < n; j++)
                row[j] /= sum;
        }
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, L, dh, n, 1.0f, ph, n, v + h * dh,
                    HD, 0.0f, out + h * dh, HD);
    }
}

/* Gradients of k and v only (q is under a stopped gradient). dp scratch [L, n]. */
static void content_attention_backward(float *dk, float *dv, const float *dout, const float *p,
                                       const float *q, const float *v, int L, int n, int H,
                                       int dh, float *dp)
{
    int HD = H * dh;
    float scale = 1.0f / sqrtf((float)dh);
    for (int h = 0; h < H; h++) {
        const float *ph = p + (size_t)h * L * n;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, L, n, dh, 1.0f, dout + h * dh, HD,
                    v + h * dh, HD, 0.0f, dp, n);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dh, L, 1.0f, ph, n, dout + h * dh,
                    HD, 1.0f, dv + h * dh, HD);
        for (int i = 0; i < L; i++) {
            const float *pr = ph + (size_t)i * n;
            float *row = dp + (size_t)i * n, dot = 0.0f;
            for (int j = 0; j < n; j++)
                dot += pr[j] * row[j];
            for (int j = 0; j < n; j++)
                row[j] = pr[j] * (row[j] - dot) * scale;
        }
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, dh, L, 1.0f, dp, n, q + h * dh,
                    HD, 1.0f, dk + h * dh, HD);
    }
}

/* ------------------------------------------------------ cross-entropy */

double pg_tm_crossentropy_forward_backward(float *dlogits, float *nll, const float *logits,
                                           const uint32_t *targets, int T, int V)
{
#pragma omp parallel for num_threads(nthreads()) schedule(static)
    for (int t = 0; t < T; t++) {
        const float *x = logits + (size_t)t * V;
        float mx = -INFINITY;
        for (int i = 0; i < V; i++)
            mx = x[i] > mx ? x[i] : mx;
        /* one float exponential per logit (summed in double, as the
         * evaluation's row_nll does); with dlogits the exponentials are kept
         * and scaled into the softmax (in place over x when dlogits == x) */
        float xt = x[targets[t]];
        double sum = 0.0;
        if (dlogits) {
            float *g = dlogits + (size_t)t * V;
            for (int i = 0; i < V; i++) {
                g[i] = expf(x[i] - mx);
                sum += (double)g[i];
            }
            float inv = (float)(1.0 / sum);
            for (int i = 0; i < V; i++)
                g[i] *= inv;
            g[targets[t]] -= 1.0f;
        } else {
            for (int i = 0; i < V; i++)
                sum += (double)expf(x[i] - mx);
        }
        nll[t] = (float)((double)mx + log(sum) - (double)xt);
    }
    double total = 0.0;
    for (int t = 0; t < T; t++)
        total += nll[t];
    return total;
}

/* ------------------------------------------------------- compression */

/* Source row of kernel tap t for output j: j c + c-1 - (c-1-t) D (D = 1: the
 * plain strided conv, j c + t); negative rows are the dilated conv's zero
 * left padding. */
static long conv_src(int j, int t, int c, int D)
{
    return (long)j * c + (c - 1) - (long)(c - 1 - t) * D;
}

/* x_t [g, d]: row j = in[src(j, t)] (zeros in the padding) */
static void conv_gather(float *xt, const float *in, int g, int d, int t, int c, int D)
{
    for (int j = 0; j < g; j++) {
        long src = conv_src(j, t, c, D);
        if (src >= 0)
            memcpy(xt + (size_t)j * d, in + (size_t)src * d, sizeof(float) * (size_t)d);
        else
            memset(xt + (size_t)j * d, 0, sizeof(float) * (size_t)d);
    }
}

/* out[j, o] = b[o] + sum_t sum_i W[o, i, t] in[src(j, t), i]   in [n, d], out [n/c, d]:
 * per tap t, out += x_t W_t^T with W_t[o, i] = W[o, i, t]. */
void pg_tm_conv_compress_forward(float *out, const float *in, const float *w, const float *b,
                                 int n, int d, int c, int D)
{
    int g = n / c;
    float *xt = malloc(sizeof(float) * ((size_t)g * d + (size_t)d * d));
    if (!xt) { /* no scratch: the plain loop */
        for (int j = 0; j < g; j++)
            for (int o = 0; o < d; o++) {
                float acc = b[o];
                for (int t = 0; t < c; t++) {
                    long src = conv_src(j, t, c, D);
                    for (int i = 0; src >= 0 && i < d; i++)
                        acc += w[((size_t)o * d + i) * c + t] * in[(size_t)src * d + i];
                }
                out[(size_t)j * d + o] = acc;
            }
        return;
    }
    float *wt = xt + (size_t)g * d;
    for (int j = 0; j < g; j++)
        memcpy(out + (size_t)j * d, b, sizeof(float) * (size_t)d);
    for (int t = 0; t < c; t++) {
        conv_gather(xt, in, g, d, t, c, D);
        for (size_t k = 0; k < (size_t)d * d; k++)
            wt[k] = w[k * c + t];
        matmul_fwd(out, xt, wt, NULL, g, d, d, 1);
    }
    free(xt);
}

/* dW[o, i, t] += sum_j dout[j, o] in[src(j, t), i]; db[o] += sum_j dout[j, o] */
void pg_tm_conv_compress_backward(float *dw, float *db, const float *dout, const float *in,
                                  int n, int d, int c, int D)
{
    int g = n / c;
    float *xt = malloc(sizeof(float) * ((size_t)g * d + (size_t)d * d));
    if (!xt) { /* no scratch: the plain loop */
        for (int o = 0; o < d; o++)
            for (int j = 0; j < g; j++)
                for (int t = 0; t < c; t++) {
                    long src = conv_src(j, t, c, D);
                    for (int i = 0; src >= 0 && i < d; i++)
                        dw[((size_t)o * d + i) * c + t] +=
                            dout[(size_t)j * d + o] * in[(size_t)src * d + i];
                }
    } else {
        float *dwt = xt + (size_t)g * d;
        for (int t = 0; t < c; t++) {
            conv_gather(xt, in, g, d, t, c, D);
            memset(dwt, 0, sizeof(float) * (size_t)d * d);
            pg_tm_matmul_backward(NULL, dwt, NULL, dout, xt, NULL, g, d, d);
            for (size_t k = 0; k < (size_t)d * d; k++)
                dw[k * c + t] += dwt[k];
        }
        free(xt);
    }
    for (int o = 0; o < d; o++) {
        float acc = 0.0f;
        for (int j = 0; j < g; j++)
            acc += dout[(size_t)j * d + o];
        db[o] += acc;
    }
}

/* Weightless compression functions (forward only: nothing to train). */
static void pool_compress(const pg_model_config *cfg, float *out, const float *in, int n,
                          const float *usage, int *taken)
{
    int c = cfg->compression_rate, d = cfg->d_model, g = n / c;
    if (cfg->compression == PG_COMPRESS_MOST_USED) {
        /* the g most attended rows, in order; ties to the older row */
        for (int i = 0; i < n; i++)
            taken[i] = 0;
        for (int sel = 0; sel < g; sel++) {
            int best = -1;
            for (int i = 0; i < n; i++)
                if (!taken[i] && (best < 0 || usage[i] > usage[best]))
                    best = i;
            taken[best] = 1;
        }
        int k = 0;
        for (int i = 0; i < n; i++)
            if (taken[i])
                memcpy(out + (size_t)(k++) * d, in + (size_t)i * d, sizeof(float) * d);
        return;
    }
    for (int j = 0; j < g; j++)
        for (int i = 0; i < d; i++) {
            float acc = in[(size_t)j * c * d + i];
            for (int t = 1; t < c; t++) {
                float x = in[((size_t)j * c + t) * d + i];
                if (cfg->compression == PG_COMPRESS_MAX_POOL)
                    acc = x > acc ? x : acc;
                else
                    acc += x;
            }
            out[(size_t)j * d + i] = cfg->compression == PG_COMPRESS_MAX_POOL ? acc : acc / c;
        }
}

/* ------------------------------------------------------------- state */

struct pg_tstate {
    pg_model_config cfg;
    int B, W, nm, ncm, span, d, HD, dff, V, L;
    int *mem_len, *cmem_len;     /* [L][B] */
    float *mem, *cmem, *usage;   /* [L][B][nm][d], [L][B][ncm][d], [L][B][nm] */
    /* per window */
    int *row0, *len, *cat0, *catlen, *cm, *mm; /* row0, len [B]; others [L][B] */
    int *ktot;                   /* [L] */
    float *pos;                  /* [span, d] row t = sinusoid(span-1-t) */
    float *r;                    /* [L][span, HD] */
    float *cat, *lncat, *mean1, *rstd1, *k, *v; /* [L][B span, d|HD] */
    float *lnq, *q, *p, *att;    /* [L][T, d], [L][T, HD], [L][B H W span], [L][T, HD] */
    float *xmid, *ln2, *mean2, *rstd2, *ffpre, *ffact;
    float *x, *lnf, *meanf, *rstdf, *logits, *nll;
    /* backward buffers */
    float *dx, *dxmid, *dln, *dffb, *datt, *dq, *dk, *dv, *dlncat, *dcat, *drpart, *dr, *dupart,
        *dvbpart;
    float *scratch;              /* per thread (n_threads of them) */
    size_t scratch_per_thread;
    int n_threads;
    float *comp_in, *comp_out, *comp_usage;
    int *comp_idx;
    pg_keep_masks keep;          /* DCT keep masks for the next window */
    float *block;
};

int pg_tstate_new(const pg_model *m, int n_slots, pg_tstate **out, pg_error *err)
{
    const pg_model_config *c = &m->cfg;
    if (n_slots < 1 || n_slots > 4096)
        return pg_fail(err, PG_EINVAL, "train state: bad batch %d", n_slots);
    pg_tstate *s = calloc(1, sizeof *s);
    if (!s)
        return pg_fail(err, PG_ENOMEM, "train state: out of memory");
    s->cfg = *c;
    s->B = n_slots;
    s->W = c->window;
    s->nm = c->memory;
    s->ncm = c->compressed_memory;
    s->span = s->ncm + s->nm + s->W;
    s->d = c->d_model;
    s->HD = c->n_head * c->d_head;
    s->dff = c->d_ff;
    s->V = c->vocab_size;
    s->L = c->n_layer;
    size_t B = (size_t)s->B, W = (size_t)s->W, L = (size_t)s->L, d = (size_t)s->d;
    size_t HD = (size_t)s->HD, nm = (size_t)s->nm, ncm = (size_t)s->ncm, span = (size_t)s->span;
    size_t T = B * W, KT = B * span, H = (size_t)c->n_head, dh = (size_t)c->d_head;
    size_t dff = (size_t)s->dff, V = (size_t)s->V, nt = (size_t)omp_get_max_threads();
    if ((size_t)pg_get_threads() > nt)
        nt = (size_t)pg_get_threads();
    s->n_threads = (int)nt;
    size_t rows = nm + W;
    /* attention scratch (2 L K + 4 L dh) and reconstruction scratch */
    s->scratch_per_thread = 2 * W * span + 4 * W * dh;
    size_t recon = W * d + 4 * rows * d + 2 * rows + 3 * W * HD + 6 * rows * HD +
                   2 * H * W * rows + W * rows; /* the carving in recon_loss */
    if (recon > s->scratch_per_thread)
        s->scratch_per_thread = recon;
    size_t sizes[] = {
        L * B * nm * d, L * B * ncm * d, L * B * nm,
        span * d, L * span * HD,
        L * KT * d, L * KT * d, L * KT, L * KT, L * KT * HD, L * KT * HD,
        L * T * d, L * T * HD, L * B * H * W * span, L * T * HD,
        L * T * d, L * T * d, L * T, L * T, L * T * dff, L * T * dff,
        T * d, T * d, T, T, T * V, T,
        T * d, T * d, T * d, T * dff, T * HD, T * HD, KT * HD, KT * HD, KT * d, KT * d,
        B * span * HD, span * HD, B * HD, B * HD,
        nt * s->scratch_per_thread, rows * d, rows * d, rows};
    float **ptrs[] = {
        &s->mem, &s->cmem, &s->usage, &s->pos, &s->r,
        &s->cat, &s->lncat, &s->mean1, &s->rstd1, &s->k, &s->v,
        &s->lnq, &s->q, &s->p, &s->att,
        &s->xmid, &s->ln2, &s->mean2, &s->rstd2, &s->ffpre, &s->ffact,
        &s->x, &s->lnf, &s->meanf, &s->rstdf, &s->logits, &s->nll,
        &s->dx, &s->dxmid, &s->dln, &s->dffb, &s->datt, &s->dq, &s->dk, &s->dv, &s->dlncat,
        &s->dcat, &s->drpart, &s->dr, &s->dupart, &s->dvbpart,
        &s->scratch, &s->comp_in, &s->comp_out, &s->comp_usage};
    size_t n = sizeof sizes / sizeof sizes[0], total = 0;
    for (size_t i = 0; i < n; i++)
        total += sizes[i];
    s->mem_len = calloc(6 * L * B + 2 * B + L, sizeof(int));
    s->comp_idx = calloc(rows, sizeof(int));
    s->block = total < ((size_t)1 << 38) ? pg_calloc_huge(total, sizeof(float)) : NULL;
    if (!s->mem_len || !s->comp_idx || !s->block ||
        pg_keep_masks_init(&s->keep, n_slots, (int)(rows / (size_t)c->compression_rate + 1),
                           err)) {
        pg_tstate_free(s);
        return pg_fail(err, PG_ENOMEM, "train state: cannot allocate %zu floats (%d slots)",
                       total, n_slots);
    }
    s->cmem_len = s->mem_len + L * B;
    s->cat0 = s->cmem_len + L * B;
    s->catlen = s->cat0 + L * B;
    s->cm = s->catlen + L * B;
    s->mm = s->cm + L * B;
    s->row0 = s->mm + L * B;
    s->len = s->row0 + B;
    s->ktot = s->len + B;
    float *p = s->block;
    for (size_t i = 0; i < n; i++) {
        *ptrs[i] = p;
        p += sizes[i];
    }
    for (size_t t = 0; t < span; t++)
        for (size_t k = 0; k < d / 2; k++) {
            double f = pow(10000.0, -(double)(2 * k) / (double)d), ps = (double)(span - 1 - t);
            s->pos[t * d + k] = (float)sin(ps * f);
            s->pos[t * d + d / 2 + k] = (float)cos(ps * f);
        }
    *out = s;
    return 0;
}

void pg_tstate_free(pg_tstate *s)
{
    if (!s)
        return;
    free(s->mem_len);
    free(s->comp_idx);
    pg_keep_masks_free(&s->keep);
    free(s->block);
    free(s);
}

void pg_tstate_reset_slot(pg_tstate *s, int slot)
{
    for (int l = 0; l < s->L; l++) {
        size_t i = (size_t)l * s->B + (size_t)slot;
        s->mem_len[i] = 0;
        s->cmem_len[i] = 0;
        memset(s->usage + i * s->nm, 0, sizeof(float) * (size_t)s->nm);
    }
}

int pg_tstate_evicted_blocks(const pg_tstate *s, int slot, int len)
{
    if (slot < 0 || slot >= s->B)
        return 0;
    return pg_keep_evicted_blocks(s->mem_len[slot], len, s->nm, s->ncm, /* layer 0 */
                                  s->cfg.compression_rate);
}

int pg_tstate_set_keep(pg_tstate *s, int slot, const uint8_t *keep, int n, pg_error *err)
{
    return pg_keep_masks_set(&s->keep, slot, keep, n, err);
}

size_t pg_tstate_slot_floats(const pg_tstate *s)
{
    return (size_t)s->L * ((size_t)s->nm * s->d + (size_t)s->ncm * s->d + s->nm + 2);
}

void pg_tstate_slot_get(const pg_tstate *s, int slot, float *dst)
{
    size_t nm = (size_t)s->nm, ncm = (size_t)s->ncm, d = (size_t)s->d;
    for (int l = 0; l < s->L; l++) {
        size_t i = (size_t)l * s->B + (size_t)slot;
        memcpy(dst, s->mem + i * nm * d, sizeof(float) * nm * d);
        dst += nm * d;
        memcpy(dst, s->cmem + i * ncm * d, sizeof(float) * ncm * d);
        dst += ncm * d;
        memcpy(dst, s->usage + i * nm, sizeof(float) * nm);
        dst += nm;
    }
    for (int l = 0; l < s->L; l++) {
        size_t i = (size_t)l * s->B + (size_t)slot;
        *dst++ = (float)s->mem_len[i];
        *dst++ = (float)s->cmem_len[i];
    }
}

int pg_tstate_slot_put(pg_tstate *s, int slot, const float *src, pg_error *err)
{
    size_t nm = (size_t)s->nm, ncm = (size_t)s->ncm, d = (size_t)s->d;
    const float *lens = src + (size_t)s->L * (nm * d + ncm * d + nm);
    for (int l = 0; l < s->L; l++) {
        float a = lens[2 * l], b = lens[2 * l + 1];
        if (!(a >= 0 && a <= (float)nm && a == floorf(a)) ||
            !(b >= 0 && b <= (float)ncm && b == floorf(b)))
            return pg_fail(err, PG_EINVAL, "memory state of slot %d: bad lengths %g, %g", slot,
                           (double)a, (double)b);
    }
    for (int l = 0; l < s->L; l++) {
        size_t i = (size_t)l * s->B + (size_t)slot;
        memcpy(s->mem + i * nm * d, src, sizeof(float) * nm * d);
        src += nm * d;
        memcpy(s->cmem + i * ncm * d, src, sizeof(float) * ncm * d);
        src += ncm * d;
        memcpy(s->usage + i * nm, src, sizeof(float) * nm);
        src += nm;
        s->mem_len[i] = (int)lens[2 * l];
        s->cmem_len[i] = (int)lens[2 * l + 1];
    }
    return 0;
}

/* buf[0, len) = concat(buf[0, len), rows[0, n))[-cap:] (rows NULL: zeros) */
static int fifo_append(float *buf, int len, int cap, const float *rows, int n, size_t width)
{
    if (cap == 0)
        return 0;
    if (n >= cap) {
        if (rows)
            memcpy(buf, rows + (size_t)(n - cap) * width, sizeof(float) * (size_t)cap * width);
        else
            memset(buf, 0, sizeof(float) * (size_t)cap * width);
        return cap;
    }
    int drop = len + n - cap > 0 ? len + n - cap : 0;
    memmove(buf, buf + (size_t)drop * width, sizeof(float) * (size_t)(len - drop) * width);
    len -= drop;
    if (rows)
        memcpy(buf + (size_t)len * width, rows, sizeof(float) * (size_t)n * width);
    else
        memset(buf + (size_t)len * width, 0, sizeof(float) * (size_t)n * width);
    return len + n;
}

/* ------------------------------------------ attention reconstruction */

/* Algorithm 2 of Rae et al. 2020 for one layer and slot: h [L, d] the
 * window's layer input, old [n, d] the evicted memories, co [n/c, d] their
 * compression f_c(old). Adds the loss (sum over rows of ||.||^2 / HD) to
 * *loss and, with glp, the gradient of the compression weights. */
static void recon_loss(const pg_tstate *s, const pg_layer_params *lp, pg_layer_params *glp,
                       const float *h, int L, const float *old, int n, const float *co,
                       float *scr, double *loss)
{
    const pg_model_config *c = &s->cfg;
    int d = s->d, HD = s->HD, H = c->n_head, dh = c->d_head, g = n / c->compression_rate;
    size_t rows = (size_t)s->nm + s->W;
    float *lnh = scr, *tmp = lnh + (size_t)s->W * d, *mv = tmp + rows * d;
    float *q = mv + 2 * rows, *ko = q + (size_t)s->W * HD, *vo = ko + rows * HD;
    float *kc = vo + rows * HD, *vc = kc + rows * HD, *dkc = vc + rows * HD, *dvc = dkc + rows * HD;
    float *ao = dvc + rows * HD, *an = ao + (size_t)s->W * HD;
    float *po = an + (size_t)s->W * HD, *pn = po + (size_t)H * s->W * rows;
    float *dp = pn + (size_t)H * s->W * rows, *lnc = dp + (size_t)s->W * rows;
    float *dlnc = lnc + rows * d, *dco = dlnc + rows * d;
    /* q = LN1(h) Wq^T; old keys/values; new keys/values (all stop-gradient
     * except through co) */
    pg_tm_layernorm_forward(lnh, mv, mv + rows, h, lp->ln1_w, lp->ln1_b, L, d, c->ln_eps);
    matmul_fwd(q, lnh, lp->wq, NULL, L, d, HD, 0);
    pg_tm_layernorm_forward(tmp, mv, mv + rows, old, lp->ln1_w, lp->ln1_b, n, d, c->ln_eps);
    matmul_fwd(ko, tmp, lp->wk, NULL, n, d, HD, 0);
    matmul_fwd(vo, tmp, lp->wv, NULL, n, d, HD, 0);
    pg_tm_layernorm_forward(lnc, mv, mv + rows, co, lp->ln1_w, lp->ln1_b, g, d, c->ln_eps);
    matmul_fwd(kc, lnc, lp->wk, NULL, g, d, HD, 0);
    matmul_fwd(vc, lnc, lp->wv, NULL, g, d, HD, 0);
    content_attention_forward(ao, po, q, ko, vo, L, n, H, dh);
    content_attention_forward(an, pn, q, kc, vc, L, g, H, dh);
    double acc = 0.0;
    for (size_t i = 0; i < (size_t)L * HD; i++) {
        float df = an[i] - ao[i];
        acc += (double)df * df;
        an[i] = 2.0f * df / (float)HD; /* d loss / d new_attn */
    }
    *loss += acc / HD;
    if (!glp)
        return;
    memset(dkc, 0, sizeof(float) * (size_t)g * HD);
    memset(dvc, 0, sizeof(float) * (size_t)g * HD);
    content_attention_backward(dkc, dvc, an, pn, q, vc, L, g, H, dh, dp);
    memset(dlnc, 0, sizeof(float) * (size_t)g * d);
    pg_tm_matmul_backward(dlnc, NULL, NULL, dkc, lnc, lp->wk, g, d, HD);
    pg_tm_matmul_backward(dlnc, NULL, NULL, dvc, lnc, lp->wv, g, d, HD);
    memset(dco, 0, sizeof(float) * (size_t)g * d); /* mv holds LN1(co)'s statistics */
    pg_tm_layernorm_backward(dco, NULL, NULL, dlnc, co, lp->ln1_w, mv, mv + rows, g, d);
    int D = c->compression == PG_COMPRESS_DILATED_CONV ? c->dilation : 1;
    pg_tm_conv_compress_backward(glp->cw, glp->cb, dco, old, n, d, c->compression_rate, D);
}

/* After layer l has attended: slide slot b's layer input h [L, d] into its
 * memory; evicted rows are compressed into the compressed memory (with the
 * reconstruction loss and its gradient when the compressor has weights). */
static void update_memory(pg_tstate *s, const pg_layer_params *lp, pg_layer_params *glp, int l,
                          int b, const float *h, int L, double *recon)
{
    const pg_model_config *c = &s->cfg;
    size_t li = (size_t)l * s->B + (size_t)b;
    int d = s->d, nm = s->nm, ncm = s->ncm, cr = c->compression_rate;
    float *mem = s->mem + li * (size_t)nm * d, *usage = s->usage + li * (size_t)nm;
    int m = s->mem_len[li];
    int n_evict = m + L - nm > 0 ? m + L - nm : 0;
    if (ncm > 0 && n_evict >= cr) {
        float *ev = s->comp_in, *evu = s->comp_usage, *co = s->comp_out;
        int from_mem = n_evict < m ? n_evict : m;
        memcpy(ev, mem, sizeof(float) * (size_t)from_mem * d);
        memcpy(ev + (size_t)from_mem * d, h, sizeof(float) * (size_t)(n_evict - from_mem) * d);
        for (int i = 0; i < n_evict; i++)
            evu[i] = i < from_mem ? usage[i] : 0.0f;
        int g = n_evict / cr;
        if (c->compression == PG_COMPRESS_CONV || c->compression == PG_COMPRESS_DILATED_CONV) {
            int D = c->compression == PG_COMPRESS_DILATED_CONV ? c->dilation : 1;
            pg_tm_conv_compress_forward(co, ev, lp->cw, lp->cb, g * cr, d, cr, D);
            recon_loss(s, lp, glp, h, L, ev, g * cr, co, s->scratch, recon);
        } else {
            pool_compress(c, co, ev, g * cr, evu, s->comp_idx);
        }
        /* DCT: only the kept blocks enter the compressed memory */
        g = pg_keep_masks_compact(&s->keep, b, co, g, (size_t)d);
        s->cmem_len[li] = fifo_append(s->cmem + li * (size_t)ncm * d, s->cmem_len[li], ncm, co,
                                      g, (size_t)d);
    }
    if (nm == 0)
        return;
    fifo_append(mem, m, nm, h, L, (size_t)d);
    s->mem_len[li] = fifo_append(usage, m, nm, NULL, L, 1);
}

/* ------------------------------------------------------ whole window */

static float *layer_ptr(float *base, int l, size_t per_layer)
{
    return base + (size_t)l * per_layer;
}

int pg_train_window(const pg_model *m, pg_model *grad, pg_tstate *s, const uint32_t *inputs,
                    const uint32_t *targets, const int *lens, pg_window_stats *st,
                    pg_error *err)
{
    const pg_model_config *c = &m->cfg;
    int B = s->B, W = s->W, d = s->d, HD = s->HD, H = c->n_head, dh = c->d_head, dff = s->dff;
    int V = s->V, span = s->span, nt = nthreads();
    if (nt > s->n_threads) /* more threads than when the state was made: no scratch */
        nt = s->n_threads;
    size_t T_all = (size_t)B * W, KT_all = (size_t)B * span;
    int T = 0;
    for (int b = 0; b < B; b++) {
        if (lens[b] < 0 || lens[b] > W)
            return pg_fail(err, PG_EINVAL, "train: slot %d: %d tokens, window is %d", b, lens[b],
                           W);
        s->row0[b] = T;
        s->len[b] = lens[b];
        T += lens[b];
    }
    for (int t = 0; t < T; t++)
        if (inputs[t] >= (uint32_t)V || targets[t] >= (uint32_t)V)
            return pg_fail(err, PG_EINVAL, "train: token id %u >= vocabulary size %d",
                           inputs[t] >= (uint32_t)V ? inputs[t] : targets[t], V);
    for (int b = 0; b < B; b++) {
        int rc = lens[b] > 0 ? pg_keep_masks_check(&s->keep, b,
                                                   pg_tstate_evicted_blocks(s, b, lens[b]),
                                                   "train", err)
                             : 0;
        if (rc)
            return rc;
    }
    if (T == 0)
        return 0;
    int want_usage = c->compression == PG_COMPRESS_MOST_USED;
    double recon = 0.0;
    /* x[T, d] = E[inputs] */
    for (int t = 0; t < T; t++)
        memcpy(s->x + (size_t)t * d, m->tok_emb + (size_t)inputs[t] * d, sizeof(float) * d);

    /* ------------------------------------------------------ forward */
    for (int l = 0; l < s->L; l++) {
        const pg_layer_params *lp = &m->layers[l];
        pg_layer_params *glp = grad ? &grad->layers[l] : NULL;
        float *cat = layer_ptr(s->cat, l, KT_all * d), *lncat = layer_ptr(s->lncat, l, KT_all * d);
        float *mean1 = layer_ptr(s->mean1, l, KT_all), *rstd1 = layer_ptr(s->rstd1, l, KT_all);
        float *k = layer_ptr(s->k, l, KT_all * HD), *v = layer_ptr(s->v, l, KT_all * HD);
        float *lnq = layer_ptr(s->lnq, l, T_all * d), *q = layer_ptr(s->q, l, T_all * HD);
        float *p = layer_ptr(s->p, l, (size_t)B * H * W * span);
        float *att = layer_ptr(s->att, l, T_all * HD), *xmid = layer_ptr(s->xmid, l, T_all * d);
        float *ln2 = layer_ptr(s->ln2, l, T_all * d), *mean2 = layer_ptr(s->mean2, l, T_all);
        float *rstd2 = layer_ptr(s->rstd2, l, T_all);
        float *ffpre = layer_ptr(s->ffpre, l, T_all * dff);
        float *ffact = layer_ptr(s->ffact, l, T_all * dff);
        float *r = layer_ptr(s->r, l, (size_t)span * HD);
        int *cat0 = s->cat0 + (size_t)l * B, *catlen = s->catlen + (size_t)l * B;
        int *cm = s->cm + (size_t)l * B, *mm = s->mm + (size_t)l * B;
        /* cat per slot = concat(cmem, mem, x window rows) [K_b, d], slots stacked */
        int kt = 0;
        for (int b = 0; b < B; b++) {
            size_t li = (size_t)l * B + b;
            cat0[b] = kt;
            cm[b] = mm[b] = catlen[b] = 0;
            if (!lens[b])
                continue;
            cm[b] = s->cmem_len[li];
            mm[b] = s->mem_len[li];
            float *dst = cat + (size_t)kt * d;
            memcpy(dst, s->cmem + li * (size_t)s->ncm * d, sizeof(float) * (size_t)cm[b] * d);
            dst += (size_t)cm[b] * d;
            memcpy(dst, s->mem + li * (size_t)s->nm * d, sizeof(float) * (size_t)mm[b] * d);
            dst += (size_t)mm[b] * d;
            memcpy(dst, s->x + (size_t)s->row0[b] * d, sizeof(float) * (size_t)lens[b] * d);
            catlen[b] = cm[b] + mm[b] + lens[b];
            kt += catlen[b];
        }
        s->ktot[l] = kt;
        /* lncat = LN1(cat); k, v [Kt, HD] = lncat Wk^T, lncat Wv^T */
        pg_tm_layernorm_forward(lncat, mean1, rstd1, cat, lp->ln1_w, lp->ln1_b, kt, d, c->ln_eps);
        matmul_fwd(k, lncat, lp->wk, NULL, kt, d, HD, 0);
        matmul_fwd(v, lncat, lp->wv, NULL, kt, d, HD, 0);
        /* q [T, HD] = LN1(window rows) Wq^T */
        for (int b = 0; b < B; b++)
            if (lens[b])
                memcpy(lnq + (size_t)s->row0[b] * d,
                       lncat + (size_t)(cat0[b] + cm[b] + mm[b]) * d,
                       sizeof(float) * (size_t)lens[b] * d);
        matmul_fwd(q, lnq, lp->wq, NULL, T, d, HD, 0);
        /* r [span, HD] = pos Wr^T */
        matmul_fwd(r, s->pos, lp->wr, NULL, span, d, HD, 0);
        /* attention, one task per (slot, head) */
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int task = 0; task < B * H; task++) {
            int b = task / H, h = task % H;
            if (!lens[b])
                continue;
            float *scr = s->scratch + (size_t)omp_get_thread_num() * s->scratch_per_thread;
            pg_tm_attention_forward(att + (size_t)s->row0[b] * HD + h * dh,
                                    p + (size_t)task * W * span,
                                    q + (size_t)s->row0[b] * HD + h * dh,
                                    k + (size_t)cat0[b] * HD + h * dh,
                                    v + (size_t)cat0[b] * HD + h * dh,
                                    r + (size_t)(span - catlen[b]) * HD + h * dh,
                                    lp->r_w_bias + h * dh, lp->r_r_bias + h * dh, lens[b],
                                    catlen[b] - lens[b], dh, HD, HD, scr);
        }
        /* usage of memory rows += attention received (most_used), then the
         * memory update, which takes this layer's input */
        for (int b = 0; b < B; b++) {
            if (!lens[b])
                continue;
            size_t li = (size_t)l * B + b;
            if (want_usage)
                for (int h = 0; h < H; h++) {
                    const float *ph = p + ((size_t)b * H + h) * W * span;
                    for (int t = 0; t < mm[b]; t++) {
                        float u = 0.0f;
                        for (int i = 0; i < lens[b]; i++)
                            u += ph[(size_t)i * catlen[b] + cm[b] + t];
                        s->usage[li * s->nm + t] += u;
                    }
                }
            update_memory(s, lp, glp, l, b, s->x + (size_t)s->row0[b] * d, lens[b], &recon);
        }
        /* xmid = x + att Wo^T */
        memcpy(xmid, s->x, sizeof(float) * (size_t)T * d);
        matmul_fwd(xmid, att, lp->wo, NULL, T, HD, d, 1);
        /* x = xmid + W2 relu(W1 LN2(xmid) + b1) + b2 */
        pg_tm_layernorm_forward(ln2, mean2, rstd2, xmid, lp->ln2_w, lp->ln2_b, T, d, c->ln_eps);
        matmul_fwd(ffpre, ln2, lp->w1, lp->b1, T, d, dff, 0);
        for (size_t i = 0; i < (size_t)T * dff; i++)
            ffact[i] = ffpre[i] > 0.0f ? ffpre[i] : 0.0f;
        memcpy(s->x, xmid, sizeof(float) * (size_t)T * d);
        matmul_fwd(s->x, ffact, lp->w2, lp->b2, T, dff, d, 1);
    }
    /* logits [T, V] = LNf(x) E^T; NLL; dlogits in place */
    pg_tm_layernorm_forward(s->lnf, s->meanf, s->rstdf, s->x, m->lnf_w, m->lnf_b, T, d,
                            c->ln_eps);
    matmul_fwd(s->logits, s->lnf, m->tok_emb, NULL, T, d, V, 0);
    double nll = pg_tm_crossentropy_forward_backward(grad ? s->logits : NULL, s->nll, s->logits,
                                                     targets, T, V);
    pg_keep_masks_consume(&s->keep, lens); /* masks are one-shot */
    if (st && st->slot_nll)
        for (int b = 0; b < B; b++) {
            double acc = 0.0;
            for (int i = 0; i < lens[b]; i++)
                acc += (double)s->nll[s->row0[b] + i];
            st->slot_nll[b] += acc;
        }
    if (st) {
        st->nll_sum += nll;
        st->recon_sum += recon;
        st->n_tokens += (uint64_t)T;
    }
    if (!grad)
        return 0;

    /* ----------------------------------------------------- backward */
    float *dx = s->dx, *dln = s->dln;
    memset(dln, 0, sizeof(float) * (size_t)T * d);
    pg_tm_matmul_backward(dln, grad->tok_emb, NULL, s->logits, s->lnf, m->tok_emb, T, d, V);
    memset(dx, 0, sizeof(float) * (size_t)T * d);
    pg_tm_layernorm_backward(dx, grad->lnf_w, grad->lnf_b, dln, s->x, m->lnf_w, s->meanf,
                             s->rstdf, T, d);
    for (int l = s->L - 1; l >= 0; l--) {
        const pg_layer_params *lp = &m->layers[l];
        pg_layer_params *glp = &grad->layers[l];
        float *cat = layer_ptr(s->cat, l, KT_all * d), *lncat = layer_ptr(s->lncat, l, KT_all * d);
        float *mean1 = layer_ptr(s->mean1, l, KT_all), *rstd1 = layer_ptr(s->rstd1, l, KT_all);
        float *k = layer_ptr(s->k, l, KT_all * HD), *v = layer_ptr(s->v, l, KT_all * HD);
        float *lnq = layer_ptr(s->lnq, l, T_all * d), *q = layer_ptr(s->q, l, T_all * HD);
        float *p = layer_ptr(s->p, l, (size_t)B * H * W * span);
        float *att = layer_ptr(s->att, l, T_all * HD), *xmid = layer_ptr(s->xmid, l, T_all * d);
        float *ln2 = layer_ptr(s->ln2, l, T_all * d), *mean2 = layer_ptr(s->mean2, l, T_all);
        float *rstd2 = layer_ptr(s->rstd2, l, T_all);
        float *ffpre = layer_ptr(s->ffpre, l, T_all * dff);
        float *ffact = layer_ptr(s->ffact, l, T_all * dff);
        float *r = layer_ptr(s->r, l, (size_t)span * HD);
        int *cat0 = s->cat0 + (size_t)l * B, *catlen = s->catlen + (size_t)l * B;
        int *cm = s->cm + (size_t)l * B, *mm = s->mm + (size_t)l * B;
        int kt = s->ktot[l];
        /* x_out = xmid + ffact W2^T + b2 */
        memcpy(s->dxmid, dx, sizeof(float) * (size_t)T * d);
        memset(s->dffb, 0, sizeof(float) * (size_t)T * dff);
        pg_tm_matmul_backward(s->dffb, glp->w2, glp->b2, dx, ffact, lp->w2, T, dff, d);
        for (size_t i = 0; i < (size_t)T * dff; i++)
            if (ffpre[i] <= 0.0f)
                s->dffb[i] = 0.0f;
        memset(dln, 0, sizeof(float) * (size_t)T * d);
        pg_tm_matmul_backward(dln, glp->w1, glp->b1, s->dffb, ln2, lp->w1, T, d, dff);
        pg_tm_layernorm_backward(s->dxmid, glp->ln2_w, glp->ln2_b, dln, xmid, lp->ln2_w, mean2,
                                 rstd2, T, d);
        /* xmid = x + att Wo^T */
        memcpy(dx, s->dxmid, sizeof(float) * (size_t)T * d);
        memset(s->datt, 0, sizeof(float) * (size_t)T * HD);
        pg_tm_matmul_backward(s->datt, glp->wo, NULL, s->dxmid, att, lp->wo, T, HD, d);
        /* attention */
        memset(s->dq, 0, sizeof(float) * (size_t)T * HD);
        memset(s->dk, 0, sizeof(float) * (size_t)kt * HD);
        memset(s->dv, 0, sizeof(float) * (size_t)kt * HD);
        memset(s->drpart, 0, sizeof(float) * (size_t)B * span * HD);
        memset(s->dupart, 0, sizeof(float) * (size_t)B * HD);
        memset(s->dvbpart, 0, sizeof(float) * (size_t)B * HD);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
        for (int task = 0; task < B * H; task++) {
            int b = task / H, h = task % H;
            if (!lens[b])
                continue;
            float *scr = s->scratch + (size_t)omp_get_thread_num() * s->scratch_per_thread;
            size_t ro = (size_t)s->row0[b] * HD + h * dh, ko = (size_t)cat0[b] * HD + h * dh;
            size_t rr = (size_t)(span - catlen[b]) * HD + h * dh;
            pg_tm_attention_backward(s->dq + ro, s->dk + ko, s->dv + ko,
                                     s->drpart + (size_t)b * span * HD + rr,
                                     s->dupart + (size_t)b * HD + h * dh,
                                     s->dvbpart + (size_t)b * HD + h * dh, s->datt + ro,
                                     p + (size_t)task * W * span, q + ro, k + ko, v + ko, r + rr,
                                     lp->r_w_bias + h * dh, lp->r_r_bias + h * dh, lens[b],
                                     catlen[b] - lens[b], dh, HD, HD, scr);
        }
        /* shared pieces summed over slots in slot order */
        memset(s->dr, 0, sizeof(float) * (size_t)span * HD);
        for (int b = 0; b < B; b++) {
            if (!lens[b])
                continue;
            const float *src = s->drpart + (size_t)b * span * HD;
            for (size_t i = 0; i < (size_t)span * HD; i++)
                s->dr[i] += src[i];
            for (int i = 0; i < HD; i++) {
                glp->r_w_bias[i] += s->dupart[(size_t)b * HD + i];
                glp->r_r_bias[i] += s->dvbpart[(size_t)b * HD + i];
            }
        }
        /* r = pos Wr^T */
        pg_tm_matmul_backward(NULL, glp->wr, NULL, s->dr, s->pos, lp->wr, span, d, HD);
        /* k, v = lncat Wk^T, lncat Wv^T; q = lnq Wq^T */
        memset(s->dlncat, 0, sizeof(float) * (size_t)kt * d);
        pg_tm_matmul_backward(s->dlncat, glp->wk, NULL, s->dk, lncat, lp->wk, kt, d, HD);
        pg_tm_matmul_backward(s->dlncat, glp->wv, NULL, s->dv, lncat, lp->wv, kt, d, HD);
        memset(dln, 0, sizeof(float) * (size_t)T * d);
        pg_tm_matmul_backward(dln, glp->wq, NULL, s->dq, lnq, lp->wq, T, d, HD);
        for (int b = 0; b < B; b++) {
            if (!lens[b])
                continue;
            float *dst = s->dlncat + (size_t)(cat0[b] + cm[b] + mm[b]) * d;
            const float *src = dln + (size_t)s->row0[b] * d;
            for (size_t i = 0; i < (size_t)lens[b] * d; i++)
                dst[i] += src[i];
        }
        /* LN1 over all rows (its weights learn from the memories too); the
         * gradient reaches the window rows only: memories are constants */
        memset(s->dcat, 0, sizeof(float) * (size_t)kt * d);
        pg_tm_layernorm_backward(s->dcat, glp->ln1_w, glp->ln1_b, s->dlncat, cat, lp->ln1_w,
                                 mean1, rstd1, kt, d);
        for (int b = 0; b < B; b++) {
            if (!lens[b])
                continue;
            const float *src = s->dcat + (size_t)(cat0[b] + cm[b] + mm[b]) * d;
            float *dst = dx + (size_t)s->row0[b] * d;
            for (size_t i = 0; i < (size_t)lens[b] * d; i++)
                dst[i] += src[i];
        }
    }
    /* x = E[inputs] */
    for (int t = 0; t < T; t++) {
        float *g = grad->tok_emb + (size_t)inputs[t] * d;
        const float *src = dx + (size_t)t * d;
        for (int i = 0; i < d; i++)
            g[i] += src[i];
    }
    return 0;
}

int pg_tstate_attention(const pg_tstate *s, int l, int b, int h, const float **p, int *n_cm,
                        int *n_m)
{
    size_t H = (size_t)s->cfg.n_head, W = (size_t)s->W, span = (size_t)s->span;
    size_t li = (size_t)l * s->B + (size_t)b;
    *p = NULL;
    *n_cm = s->cm[li];
    *n_m = s->mm[li];
    int rows = s->catlen[li] - s->cm[li] - s->mm[li];
    if (s->catlen[li] == 0 || rows <= 0)
        return 0;
    *p = s->p + (size_t)l * s->B * H * W * span + ((size_t)b * H + (size_t)h) * W * span;
    return rows;
}
