/* dct_judge.h - the Dynamic Compressive Transformer's compression judge
 * (the actor): p(a | s) = softmax(FC(BiLSTM(s))), CPU fp32, with its own
 * backward and the REINFORCE gradient of its policy.
 *
 * s is a sequence of N block representations x[N, d] (harness/dct.h builds
 * it from [compressed memory, memory, window]). The BiLSTM is one layer,
 * bidirectional, hidden H per direction, PyTorch's nn.LSTM equations and gate
 * order (i, f, g, o):
 *     g_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh                [4H]
 *     i, f, o = sigmoid(g_i, g_f, g_o), g = tanh(g_g)
 *     c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)            h_0 = c_0 = 0
 * the reverse direction runs t = N-1 .. 0 with its own weights; then
 *     logits_t = W_fc [h_fwd_t ; h_bwd_t] + b_fc                  [2]
 * Action 1 = compress the block into the compressed memory (what a CT always
 * does), action 0 = discard it.
 *
 * Weights are laid out and named like PyTorch's nn.LSTM(d, H,
 * bidirectional=True) and nn.Linear(2H, 2) (harness/model.c places them in
 * the model's one allocation under "judge."):
 *     lstm.weight_ih_l0 [4H, d]   lstm.weight_hh_l0 [4H, H]   lstm.bias_ih_l0, lstm.bias_hh_l0 [4H]
 *     lstm.weight_ih_l0_reverse ... (the same four for the reverse direction)
 *     fc.weight [2, 2H]           fc.bias [2]
 */
#ifndef PG19_HARNESS_DCT_JUDGE_H
#define PG19_HARNESS_DCT_JUDGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct pg_judge_params {
    float *w_ih[2], *w_hh[2], *b_ih[2], *b_hh[2]; /* [0] forward, [1] reverse direction */
    float *fc_w, *fc_b;                           /* [2, 2H], [2] */
} pg_judge_params;

/* Floats of saved activations for a sequence of N blocks (pg_judge_forward's
 * act), and of scratch for pg_judge_backward. */
size_t pg_judge_act_floats(int N, int H);
size_t pg_judge_scratch_floats(int N, int d, int H);

/* x [N, d] -> logits [N, 2]. act (pg_judge_act_floats(N, H)) keeps what the
 * backward needs; it may be NULL when no backward follows. N >= 1. */
void pg_judge_forward(const pg_judge_params *p, int d, int H, const float *x, int N,
                      float *logits, float *act);

/* Accumulates (+=) into g the gradient of sum_t dlogits[t] . logits[t] with
 * respect to every judge weight. x carries no gradient (the memories are
 * under a stopped gradient). act from the forward on the same x. */
void pg_judge_backward(const pg_judge_params *p, const pg_judge_params *g, int d, int H,
                       const float *x, int N, const float *act, const float *dlogits,
                       float *scratch);

/* REINFORCE with an entropy bonus over the n decided positions pos[k] (their
 * logits rows), actions action[k] in {0, 1}:
 *     loss = -advantage * sum_k log p(action_k | s) - alpha * sum_k S[p(. | s)]_k
 * Writes dlogits[N, 2] = d loss / d logits (rows not in pos are zero) and
 * returns sum_k log p(action_k) in *logp_sum and sum_k S_k in *entropy_sum
 * (either may be NULL). Minimising the loss ascends advantage * log p.
 * The caller guarantees 0 <= pos[k] < N; a position listed twice counts twice. */
void pg_judge_reinforce_dlogits(const float *logits, int N, const int *pos,
                                const uint8_t *action, int n, double advantage, double alpha,
                                float *dlogits, double *logp_sum, double *entropy_sum);

/* p(compress) at logits row t: softmax(logits[t])[1], computed stably. */
float pg_judge_p_compress(const float *logits_row);

#endif
