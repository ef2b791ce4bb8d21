/* Unit tests for harness/dct_judge.c, the DCT's compression judge:
 * - the backward of every weight tensor against central finite differences
 *   of the forward (objective sum(R * logits) for a random R), and that it
 *   accumulates;
 * - the REINFORCE dlogits against finite differences of the loss it
 *   documents, with extreme logits staying finite;
 * - the forward without act computes the same bits as with it;
 * - two toy contextual bandits trained by REINFORCE through the judge's own
 *   forward/backward and Adam: the best action for block t depends on block
 *   t itself, or on block t+1 (only the reverse LSTM direction can see it);
 *   the trained greedy policy must be right on >= 95% of fresh blocks, the
 *   untrained one is not.
 * Run as `harness_dct_judge_test --dump IN OUT` it is instead the driver that
 * tests/harness/test_dct_judge_torch.py compares with PyTorch autograd. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/dct_judge.h"
#include "harness/train.h"

static uint64_t rng_state = 12345;

static double urand(void) /* uniform in [0, 1) */
{
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

static float frand(void) /* uniform in [-1, 1) */
{
    return (float)(urand() * 2.0 - 1.0);
}

/* The judge's weights in one allocation, tensors in the header's order. */
#define N_TENSORS 10
typedef struct judge {
    int d, H;
    float *buf;
    size_t n;
    pg_judge_params p;
    float *t[N_TENSORS];
    size_t len[N_TENSORS];
} judge;

static const char *tensor_name[N_TENSORS] = {
    "weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0",
    "weight_ih_l0_reverse", "weight_hh_l0_reverse", "bias_ih_l0_reverse", "bias_hh_l0_reverse",
    "fc.weight", "fc.bias"};

static int judge_alloc(judge *j, int d, int H)
{
    memset(j, 0, sizeof(*j));
    j->d = d;
    j->H = H;
    size_t G = 4 * (size_t)H;
    for (int dir = 0; dir < 2; dir++) {
        j->len[4 * dir + 0] = G * d;
        j->len[4 * dir + 1] = G * H;
        j->len[4 * dir + 2] = G;
        j->len[4 * dir + 3] = G;
    }
    j->len[8] = 2 * 2 * (size_t)H;
    j->len[9] = 2;
    for (int i = 0; i < N_TENSORS; i++)
        j->n += j->len[i];
    j->buf = calloc(j->n, sizeof(float));
    if (!j->buf)
        return -1;
    float *q = j->buf;
    for (int i = 0; i < N_TENSORS; i++) {
        j->t[i] = q;
        q += j->len[i];
    }
    for (int dir = 0; dir < 2; dir++) {
        j->p.w_ih[dir] = j->t[4 * dir + 0];
        j->p.w_hh[dir] = j->t[4 * dir + 1];
        j->p.b_ih[dir] = j->t[4 * dir + 2];
        j->p.b_hh[dir] = j->t[4 * dir + 3];
    }
    j->p.fc_w = j->t[8];
    j->p.fc_b = j->t[9];
    return 0;
}

static void judge_new(judge *j, int d, int H)
{
    assert_int_equal(judge_alloc(j, d, H), 0);
}

static void judge_randomize(judge *j, float scale)
{
    for (size_t i = 0; i < j->n; i++)
        j->buf[i] = frand() * scale;
}

static float *falloc(size_t n)
{
    float *x = calloc(n ? n : 1, sizeof(float));
    assert_non_null(x);
    return x;
}

/* ------------------------------------------------ backward vs finite differences */

static double objective(const judge *j, const float *x, int N, const float *R, float *logits)
{
    pg_judge_forward(&j->p, j->d, j->H, x, N, logits, NULL);
    double s = 0.0;
    for (int i = 0; i < 2 * N; i++)
        s += (double)R[i] * logits[i];
    return s;
}

static void test_backward_fd(void **state)
{
    (void)state;
    const int N = 7, d = 5, H = 3;
    judge J, G;
    judge_new(&J, d, H);
    judge_new(&G, d, H);
    judge_randomize(&J, 0.6f);
    float *x = falloc((size_t)N * d), *R = falloc(2 * (size_t)N), *logits = falloc(2 * (size_t)N);
    for (int i = 0; i < N * d; i++)
        x[i] = frand();
    for (int i = 0; i < 2 * N; i++)
        R[i] = frand();
    float *act = falloc(pg_judge_act_floats(N, H));
    float *scratch = falloc(pg_judge_scratch_floats(N, d, H));
    pg_judge_forward(&J.p, d, H, x, N, logits, act);
    pg_judge_backward(&J.p, &G.p, d, H, x, N, act, R, scratch);

    const float h = 1e-2f;
    for (int ti = 0; ti < N_TENSORS; ti++) {
        double err2 = 0.0, ref2 = 0.0, worst = 0.0;
        for (size_t i = 0; i < J.len[ti]; i++) {
            float *w = &J.t[ti][i], w0 = *w;
            *w = w0 + h;
            double fp = objective(&J, x, N, R, logits);
            *w = w0 - h;
            double fm = objective(&J, x, N, R, logits);
            *w = w0;
            double fd = (fp - fm) / (2.0 * (double)h), an = G.t[ti][i];
            err2 += (fd - an) * (fd - an);
            ref2 += fd * fd;
            if (fabs(fd - an) > worst)
                worst = fabs(fd - an);
            /* every element: within 1e-3 absolute plus 1% of its size */
            if (fabs(fd - an) > 1e-3 + 1e-2 * fabs(fd))
                fail_msg("%s[%zu]: backward %.6g, finite difference %.6g", tensor_name[ti], i, an,
                         fd);
        }
        double rel = sqrt(err2) / (sqrt(ref2) > 1e-6 ? sqrt(ref2) : 1e-6);
        print_message("# %-22s |fd - backward| / |fd| = %.2e  (max abs %.2e, |fd| %.3g)\n",
                      tensor_name[ti], rel, worst, sqrt(ref2));
        assert_true(sqrt(ref2) > 1e-3); /* the tensor has a gradient at all */
        assert_true(rel < 1e-3);
    }

    /* a second backward accumulates: twice the first (to rounding) */
    judge G2;
    judge_new(&G2, d, H);
    memcpy(G2.buf, G.buf, sizeof(float) * G.n);
    pg_judge_backward(&J.p, &G2.p, d, H, x, N, act, R, scratch);
    for (size_t i = 0; i < G.n; i++)
        assert_true(fabsf(G2.buf[i] - 2.0f * G.buf[i]) <= 1e-5f * fabsf(G.buf[i]) + 1e-7f);

    /* the forward without act computes the same bits */
    float *logits2 = falloc(2 * (size_t)N);
    pg_judge_forward(&J.p, d, H, x, N, logits, act);
    pg_judge_forward(&J.p, d, H, x, N, logits2, NULL);
    assert_memory_equal(logits, logits2, sizeof(float) * 2 * N);

    free(logits2);
    free(G2.buf);
    free(act);
    free(scratch);
    free(x);
    free(R);
    free(logits);
    free(J.buf);
    free(G.buf);
}

/* The forward without act computes the same bits as with it also when its
 * input projection takes several chunks (H = 256: 16 positions a chunk). */
static void test_forward_chunks(void **state)
{
    (void)state;
    const int N = 37, d = 6, H = 256;
    judge J;
    judge_new(&J, d, H);
    judge_randomize(&J, 0.1f);
    float *x = falloc((size_t)N * d), *l1 = falloc(2 * (size_t)N), *l2 = falloc(2 * (size_t)N);
    float *act = falloc(pg_judge_act_floats(N, H));
    for (int i = 0; i < N * d; i++)
        x[i] = frand();
    pg_judge_forward(&J.p, d, H, x, N, l1, act);
    pg_judge_forward(&J.p, d, H, x, N, l2, NULL);
    assert_memory_equal(l1, l2, sizeof(float) * 2 * N);
    free(x);
    free(l1);
    free(l2);
    free(act);
    free(J.buf);
}

/* N = 1: no recurrence at all; the reverse direction sees only x_0 too. */
static void test_single_block(void **state)
{
    (void)state;
    const int N = 1, d = 3, H = 2;
    judge J, G;
    judge_new(&J, d, H);
    judge_new(&G, d, H);
    judge_randomize(&J, 0.8f);
    float x[3] = {0.3f, -0.7f, 0.9f}, R[2] = {0.4f, -1.1f}, logits[2];
    float *act = falloc(pg_judge_act_floats(N, H));
    float *scratch = falloc(pg_judge_scratch_floats(N, d, H));
    pg_judge_forward(&J.p, d, H, x, N, logits, act);
    pg_judge_backward(&J.p, &G.p, d, H, x, N, act, R, scratch);
    for (int ti = 0; ti < N_TENSORS; ti++) {
        double worst = 0.0;
        for (size_t i = 0; i < J.len[ti]; i++) {
            float *w = &J.t[ti][i], w0 = *w;
            *w = w0 + 1e-2f;
            double fp = objective(&J, x, N, R, logits);
            *w = w0 - 1e-2f;
            double fm = objective(&J, x, N, R, logits);
            *w = w0;
            double fd = (fp - fm) / 2e-2, diff = fabs(fd - G.t[ti][i]);
            worst = diff > worst ? diff : worst;
        }
        assert_true(worst < 1e-3);
    }
    /* W_hh never acts with h_0 = 0 */
    for (size_t i = 0; i < J.len[1]; i++)
        assert_true(G.t[1][i] == 0.0f && G.t[5][i] == 0.0f);
    free(act);
    free(scratch);
    free(J.buf);
    free(G.buf);
}

/* ------------------------------------------------------------- REINFORCE */

static double reinforce_loss(const float *logits, int N, const int *pos, const uint8_t *action,
                             int n, double A, double alpha, float *dl_tmp)
{
    double lp, S;
    pg_judge_reinforce_dlogits(logits, N, pos, action, n, A, alpha, dl_tmp, &lp, &S);
    return -A * lp - alpha * S;
}

static void test_reinforce_dlogits(void **state)
{
    (void)state;
    enum { N = 6, n = 4 };
    const int pos[n] = {0, 2, 3, 5};
    const uint8_t action[n] = {1, 0, 0, 1};
    float logits[2 * N], dl[2 * N], tmp[2 * N];
    for (int i = 0; i < 2 * N; i++)
        logits[i] = 2.0f * frand();
    const double cases[3][2] = {{0.7, 0.0}, {-1.3, 0.05}, {0.0, 0.4}};
    for (int c = 0; c < 3; c++) {
        double A = cases[c][0], alpha = cases[c][1], lp, S;
        pg_judge_reinforce_dlogits(logits, N, pos, action, n, A, alpha, dl, &lp, &S);
        /* the sums against a plain computation */
        double lp_ref = 0.0, S_ref = 0.0;
        for (int k = 0; k < n; k++) {
            const float *l = logits + 2 * pos[k];
            double z = exp(l[0]) + exp(l[1]);
            double p1 = exp(l[1]) / z, p0 = exp(l[0]) / z;
            lp_ref += log(action[k] ? p1 : p0);
            S_ref -= p0 * log(p0) + p1 * log(p1);
            assert_float_equal(pg_judge_p_compress(l), p1, 1e-6);
        }
        assert_float_equal(lp, lp_ref, 1e-9);
        assert_float_equal(S, S_ref, 1e-9);
        /* dlogits against central differences of the loss */
        for (int i = 0; i < 2 * N; i++) {
            float l0 = logits[i];
            logits[i] = l0 + 1e-2f;
            double fp = reinforce_loss(logits, N, pos, action, n, A, alpha, tmp);
            logits[i] = l0 - 1e-2f;
            double fm = reinforce_loss(logits, N, pos, action, n, A, alpha, tmp);
            logits[i] = l0;
            double fd = (fp - fm) / 2e-2;
            if (fabs(fd - dl[i]) > 1e-4 + 1e-3 * fabs(fd))
                fail_msg("case %d: dlogits[%d] = %.7g, finite difference %.7g", c, i, dl[i], fd);
        }
        /* rows not decided are zero */
        assert_true(dl[2] == 0.0f && dl[3] == 0.0f && dl[8] == 0.0f && dl[9] == 0.0f);
    }
    /* NULL sums are allowed */
    pg_judge_reinforce_dlogits(logits, N, pos, action, n, 1.0, 0.1, dl, NULL, NULL);

    /* extreme logits: finite log p, dlogits and p */
    float big[4] = {200.0f, -200.0f, -1e30f, 1e30f};
    int pos2[2] = {0, 1};
    uint8_t act2[2] = {1, 0};
    double lp, S;
    pg_judge_reinforce_dlogits(big, 2, pos2, act2, 2, 1.0, 0.1, dl, &lp, &S);
    assert_true(isfinite(lp) && isfinite(S));
    for (int i = 0; i < 4; i++)
        assert_true(isfinite(dl[i]));
    assert_true(dl[0] == 1.0f && dl[1] == -1.0f); /* -A (1[j=a] - p_j), a = 1, p = (1, 0) */
    assert_true(pg_judge_p_compress(big) == 0.0f && pg_judge_p_compress(big + 2) == 1.0f);
    float zero[2] = {0.0f, 0.0f};
    assert_true(pg_judge_p_compress(zero) == 0.5f);
}

/* ------------------------------------------------------------- toy bandits */

enum { BANDIT_N = 6, BANDIT_D = 4, BANDIT_H = 8 };

/* The action that earns the reward for block t: compress when x_t[0] > 0,
 * or (neighbour) when the next block's x_{t+1}[0] > 0; then only blocks
 * 0..N-2 are decided. */
static int best_action(const float *x, int t, int neighbour)
{
    return x[(size_t)(t + neighbour) * BANDIT_D] > 0.0f;
}

static void sample_blocks(float *x)
{
    for (int i = 0; i < BANDIT_N * BANDIT_D; i++)
        x[i] = frand();
}

/* Greedy accuracy on fresh episodes. */
static double greedy_accuracy(const judge *j, int neighbour, int episodes)
{
    float x[BANDIT_N * BANDIT_D], logits[2 * BANDIT_N];
    int right = 0, total = 0;
    for (int e = 0; e < episodes; e++) {
        sample_blocks(x);
        pg_judge_forward(&j->p, BANDIT_D, BANDIT_H, x, BANDIT_N, logits, NULL);
        for (int t = 0; t < BANDIT_N - neighbour; t++) {
            int a = pg_judge_p_compress(logits + 2 * t) > 0.5f;
            right += a == best_action(x, t, neighbour);
            total++;
        }
    }
    return (double)right / total;
}

/* REINFORCE: actions sampled from p, reward 1 for the best action, the
 * advantage per decided block is its reward less a running-mean baseline;
 * Adam on the summed gradient of a few episodes. Returns the greedy accuracy
 * after training; *before the one of the initial weights. */
static double train_bandit(int neighbour, int updates, double *before)
{
    const int N = BANDIT_N, d = BANDIT_D, H = BANDIT_H, batch = 8;
    judge J, G;
    judge_new(&J, d, H);
    judge_new(&G, d, H);
    rng_state = 777 + (uint64_t)neighbour;
    judge_randomize(&J, 0.3f);
    *before = greedy_accuracy(&J, neighbour, 200);
    float *m = falloc(J.n), *v = falloc(J.n);
    float *act = falloc(pg_judge_act_floats(N, H));
    float *scratch = falloc(pg_judge_scratch_floats(N, d, H));
    float x[BANDIT_N * BANDIT_D], logits[2 * BANDIT_N], dl[2 * BANDIT_N], dl_t[2 * BANDIT_N];
    pg_adam adam = {.lr = 0.03f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f};
    double baseline = 0.5;
    for (int u = 1; u <= updates; u++) {
        memset(G.buf, 0, sizeof(float) * G.n);
        for (int e = 0; e < batch; e++) {
            sample_blocks(x);
            pg_judge_forward(&J.p, d, H, x, N, logits, act);
            memset(dl, 0, sizeof(dl));
            double reward_sum = 0.0;
            int decided = N - neighbour;
            for (int t = 0; t < decided; t++) {
                uint8_t a = urand() < pg_judge_p_compress(logits + 2 * t);
                double r = a == best_action(x, t, neighbour);
                reward_sum += r;
                pg_judge_reinforce_dlogits(logits, N, &t, &a, 1, (r - baseline) / batch,
                                           0.01 / batch, dl_t, NULL, NULL);
                for (int i = 0; i < 2 * N; i++)
                    dl[i] += dl_t[i];
            }
            baseline = 0.95 * baseline + 0.05 * reward_sum / decided;
            pg_judge_backward(&J.p, &G.p, d, H, x, N, act, dl, scratch);
        }
        /* the step size decays linearly to a tenth: the boundary settles */
        float lr = adam.lr * (1.0f - 0.9f * (float)(u - 1) / (float)updates);
        pg_adam_update(J.buf, G.buf, m, v, J.n, &adam, u, lr);
    }
    double after = greedy_accuracy(&J, neighbour, 400);
    free(m);
    free(v);
    free(act);
    free(scratch);
    free(J.buf);
    free(G.buf);
    return after;
}

static void test_bandit_own_block(void **state)
{
    (void)state;
    double before, after = train_bandit(0, 200, &before);
    print_message("# bandit (own block): greedy accuracy %.3f untrained, %.3f trained\n", before,
                  after);
    assert_true(before < 0.8);
    assert_true(after >= 0.95);
}

static void test_bandit_next_block(void **state)
{
    (void)state;
    double before, after = train_bandit(1, 200, &before);
    print_message("# bandit (next block): greedy accuracy %.3f untrained, %.3f trained\n",
                  before, after);
    assert_true(before < 0.8);
    assert_true(after >= 0.95);
}

/* ------------------------------------------------------------- --dump driver */

/* Input (text, whitespace separated): N d H, the ten tensors in the header's
 * order, x [N, d], dlogits [N, 2], then n advantage alpha and n pairs
 * "pos action". Output (text): logits [N, 2], the ten gradients of
 * sum(dlogits * logits), the REINFORCE dlogits [N, 2] on those logits, logp_sum,
 * entropy_sum. */
static int read_floats(FILE *f, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fscanf(f, "%f", &v[i]) != 1 || !isfinite(v[i]))
            return -1;
    return 0;
}

static void write_floats(FILE *f, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%.9g\n", v[i]);
}

static int dump_main(const char *in_path, const char *out_path)
{
    FILE *f = fopen(in_path, "r");
    if (!f) {
        fprintf(stderr, "dct_judge dump: cannot open %s\n", in_path);
        return 2;
    }
    int rc = 2, N, d, H, n;
    double A, alpha;
    judge J = {0}, G = {0};
    float *x = NULL, *R = NULL, *logits = NULL, *act = NULL, *scratch = NULL, *dl = NULL;
    int *pos = NULL;
    uint8_t *action = NULL;
    if (fscanf(f, "%d %d %d", &N, &d, &H) != 3 || N < 1 || N > 4096 || d < 1 || d > 4096 ||
        H < 1 || H > 1024) {
        fprintf(stderr, "dct_judge dump: %s: bad header (N d H, each 1..4096, H <= 1024)\n",
                in_path);
        goto out;
    }
    if (judge_alloc(&J, d, H) || judge_alloc(&G, d, H))
        goto out;
    x = calloc((size_t)N * d, sizeof(float));
    R = calloc(2 * (size_t)N, sizeof(float));
    logits = calloc(2 * (size_t)N, sizeof(float));
    dl = calloc(2 * (size_t)N, sizeof(float));
    act = calloc(pg_judge_act_floats(N, H), sizeof(float));
    scratch = calloc(pg_judge_scratch_floats(N, d, H), sizeof(float));
    if (!x || !R || !logits || !dl || !act || !scratch)
        goto out;
    if (read_floats(f, J.buf, J.n) || read_floats(f, x, (size_t)N * d) ||
        read_floats(f, R, 2 * (size_t)N)) {
        fprintf(stderr, "dct_judge dump: %s: too few or non-finite numbers\n", in_path);
        goto out;
    }
    if (fscanf(f, "%d %lf %lf", &n, &A, &alpha) != 3 || n < 0 || n > N) {
        fprintf(stderr, "dct_judge dump: %s: bad REINFORCE line (n advantage alpha, n <= N)\n",
                in_path);
        goto out;
    }
    pos = calloc((size_t)n + 1, sizeof(int));
    action = calloc((size_t)n + 1, 1);
    if (!pos || !action)
        goto out;
    for (int k = 0; k < n; k++) {
        int a;
        if (fscanf(f, "%d %d", &pos[k], &a) != 2 || pos[k] < 0 || pos[k] >= N || a < 0 || a > 1) {
            fprintf(stderr, "dct_judge dump: %s: bad decision %d (pos in [0, N), action 0/1)\n",
                    in_path, k);
            goto out;
        }
        action[k] = (uint8_t)a;
    }
    pg_judge_forward(&J.p, d, H, x, N, logits, act);
    pg_judge_backward(&J.p, &G.p, d, H, x, N, act, R, scratch);
    double lp, S;
    pg_judge_reinforce_dlogits(logits, N, pos, action, n, A, alpha, dl, &lp, &S);
    FILE *o = fopen(out_path, "w");
    if (!o) {
        fprintf(stderr, "dct_judge dump: cannot write %s\n", out_path);
        goto out;
    }
    write_floats(o, logits, 2 * (size_t)N);
    write_floats(o, G.buf, G.n);
    write_floats(o, dl, 2 * (size_t)N);
    fprintf(o, "%.17g\n%.17g\n", lp, S);
    rc = fclose(o) == 0 ? 0 : 2;
out:
    fclose(f);
    free(J.buf);
    free(G.buf);
    free(x);
    free(R);
    free(logits);
    free(dl);
    free(act);
    free(scratch);
    free(pos);
    free(action);
    return rc;
}

int main(int argc, char **argv)
{
    openblas_set_num_threads(1);
    if (argc == 4 && strcmp(argv[1], "--dump") == 0)
        return dump_main(argv[2], argv[3]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backward_fd),
        cmocka_unit_test(test_forward_chunks),
        cmocka_unit_test(test_single_block),
        cmocka_unit_test(test_reinforce_dlogits),
        cmocka_unit_test(test_bandit_own_block),
        cmocka_unit_test(test_bandit_next_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
