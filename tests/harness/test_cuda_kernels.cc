/* The CUDA backend's kernels (the .cuh files of harness/cuda/), run on the CPU through
 * tests/harness/cuda_emu.h, against direct references written from the math
 * of model.c: relative attention over [compressed memory, memory, window]
 * with packed slots (several key tiles, a partial window, d_head not a
 * multiple of 32), the most_used usage sums, FIFO updates and their commit
 * to physical slots, eviction and the compression functions, LayerNorm and
 * the classifier's NLL. Without a GPU this is what checks the kernels'
 * indexing; tests/harness/test_gpu.py checks the whole backend on a GPU. */
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <random>
#include <vector>

#include "harness/cuda/attention.cuh"
#include "harness/cuda/classifier.cuh"
#include "harness/cuda/layernorm.cuh"
#include "harness/cuda/memory.cuh"

/* cmocka last: its fail() macro would rename a member of <ios> */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#include <cmocka.h>
}

typedef std::vector<float> vecf;

static vecf randv(size_t n, std::mt19937 &g, float s = 1.0f)
{
    std::uniform_real_distribution<float> u(-s, s);
    vecf v(n);
    for (auto &x : v)
        x = u(g);
    return v;
}

static void close(double got, double want, double tol, const char *what)
{
    if (!(std::fabs(got - want) <= tol * (1.0 + std::fabs(want)))) {
        fprintf(stderr, "%s: got %.9g want %.9g\n", what, got, want);
        fail();
    }
}

/* slots: physical B = 3; active a = 0 -> slot 2, a = 1 -> slot 0 */
static void test_attention_and_usage(void **state)
{
    (void)state;
    std::mt19937 g(1);
    const int B = 3, A = 2, W = 12, H = 2, dh = 40, HD = H * dh, nm = 30, ncm = 10;
    const int span = ncm + nm + W;
    int slot_of[A] = {2, 0}, lens[A] = {12, 7}, cml[A] = {10, 4}, ml[A] = {30, 17};
    vecf q = randv((size_t)A * W * HD, g), kn = randv((size_t)A * W * HD, g),
         vn = randv((size_t)A * W * HD, g), km = randv((size_t)B * nm * HD, g),
         vm = randv((size_t)B * nm * HD, g), kc = randv((size_t)B * ncm * HD, g),
         vc = randv((size_t)B * ncm * HD, g), r = randv((size_t)span * HD, g),
         u = randv(HD, g, 0.1f), vb = randv(HD, g, 0.1f);
    vecf out((size_t)A * W * HD, 0.0f), rm((size_t)A * H * W), rl((size_t)A * H * W);
    float scale = 1.0f / std::sqrt((float)dh);
    emu_launch(dim3(CEIL_DIV(W, ATT_ROWS), H, A), dim3(ATT_ROWS * WARP), attention_smem(dh),
               [&] {
                   attention_kernel<float>(out.data(), q.data(), kn.data(), vn.data(), km.data(),
                                           vm.data(), kc.data(), vc.data(), r.data(), u.data(),
                                           vb.data(), lens, cml, ml, slot_of, W, HD, dh, nm, ncm,
                                           span, scale, rm.data(), rl.data());
               });
    /* reference, in double */
    std::vector<double> use_ref((size_t)B * nm, 0.0);
    vecf usage((size_t)B * nm);
    for (size_t i = 0; i < usage.size(); i++)
        usage[i] = use_ref[i] = 0.25 * (double)(i % 3);
    for (int a = 0; a < A; a++) {
        int p = slot_of[a], L = lens[a], cm = cml[a], mm = ml[a], M = cm + mm;
        auto key = [&](int j, bool v) -> const float * {
            if (j < cm)
                return (v ? vc : kc).data() + ((size_t)p * ncm + j) * HD;
            if (j < M)
                return (v ? vm : km).data() + ((size_t)p * nm + j - cm) * HD;
            return (v ? vn : kn).data() + ((size_t)a * W + j - M) * HD;
        };
        for (int h = 0; h < H; h++) {
            std::vector<double> part(mm, 0.0);
            for (int i = 0; i < L; i++) {
                const float *qi = q.data() + ((size_t)a * W + i) * HD + h * dh;
                std::vector<double> s(M + i + 1);
                double mx = -INFINITY;
                for (int j = 0; j <= M + i; j++) {
                    const float *kj = key(j, false) + h * dh;
                    const float *rr = r.data() + (size_t)(span - 1 - (M + i - j)) * HD + h * dh;
                    double ac = 0, bd = 0;
                    for (int e = 0; e < dh; e++) {
                        ac += ((double)qi[e] + u[h * dh + e]) * kj[e];
                        bd += ((double)qi[e] + vb[h * dh + e]) * rr[e];
                    }
                    s[j] = (ac + bd) * scale;
                    mx = std::max(mx, s[j]);
                }
                double sum = 0;
                for (auto &x : s)
                    sum += std::exp(x - mx);
                for (int e = 0; e < dh; e++) {
                    double o = 0;
                    for (int j = 0; j <= M + i; j++)
                        o += std::exp(s[j] - mx) / sum * key(j, true)[h * dh + e];
                    close(out[((size_t)a * W + i) * HD + h * dh + e], o, 2e-5, "attention");
                }
                for (int t = 0; t < mm; t++)
                    part[t] += std::exp(s[cm + t] - mx) / sum;
            }
            for (int t = 0; t < mm; t++)
                use_ref[(size_t)p * nm + t] += part[t];
        }
    }
    emu_launch(dim3(CEIL_DIV(nm, 128), A), dim3(128), 0, [&] {
        usage_kernel<float>(usage.data(), q.data(), km.data(), r.data(), u.data(), vb.data(),
                            lens, cml, ml, slot_of, rm.data(), rl.data(), W, H, HD, dh, nm,
                            span, scale);
    });
    for (int p = 0; p < B; p++)
        for (int t = 0; t < nm; t++) {
            bool touched = (p == 2 && t < ml[0]) || (p == 0 && t < ml[1]);
            double want = touched ? use_ref[(size_t)p * nm + t] : 0.25 * ((p * nm + t) % 3);
            close(usage[(size_t)p * nm + t], want, 2e-5, "usage");
        }
}

/* FIFO of width 3, cap 5, into scratch then committed to physical slots;
 * an idle physical slot keeps its rows. */
static void test_fifo(void **state)
{
    (void)state;
    const int B = 3, A = 2, cap = 5, w = 3, rows_ld = 3, per = 8;
    int slot_of[A] = {1, 2}, old_len[A] = {4, 2}, n_new[A] = {3, 1};
    vecf buf((size_t)B * cap * w), rows((size_t)A * per * rows_ld), scratch((size_t)A * cap * w);
    std::iota(buf.begin(), buf.end(), 0.0f);
    for (size_t i = 0; i < rows.size(); i++)
        rows[i] = 1000.0f + (float)i;
    vecf keep = buf;
    emu_launch(dim3(cap, A), dim3(128), 0, [&] {
        fifo_kernel<float, float>(scratch.data(), buf.data(), old_len, rows.data(),
                                  (size_t)per * rows_ld, rows_ld, n_new, slot_of, cap, w);
    });
    emu_launch(dim3(cap, A), dim3(128), 0,
               [&] { fifo_commit_kernel<float>(buf.data(), scratch.data(), slot_of, cap, w); });
    for (int a = 0; a < A; a++) {
        int p = slot_of[a], ol = old_len[a], n = n_new[a];
        std::vector<vecf> seq;
        for (int r = 0; r < ol; r++)
            seq.push_back(vecf(keep.begin() + ((size_t)p * cap + r) * w,
                               keep.begin() + ((size_t)p * cap + r + 1) * w));
        for (int r = 0; r < n; r++)
            seq.push_back(vecf(rows.begin() + (size_t)a * per * rows_ld + (size_t)r * rows_ld,
                               rows.begin() + (size_t)a * per * rows_ld + (size_t)r * rows_ld + w));
        int drop = std::max(0, (int)seq.size() - cap);
        for (int r = 0; r + drop < (int)seq.size(); r++)
            for (int k = 0; k < w; k++)
                assert_true(buf[((size_t)p * cap + r) * w + k] == seq[r + drop][k]);
    }
    for (int k = 0; k < cap * w; k++) /* physical slot 0 is idle */
        assert_true(buf[k] == keep[k]);
}

/* eviction, then conv (im2col), max/mean pool and most_used */
static void test_evict_and_compress(void **state)
{
    (void)state;
    std::mt19937 g(3);
    const int B = 2, A = 2, W = 6, nm = 4, d = 5, c = 2, ev_rows = nm + W, gmax = ev_rows / c;
    int slot_of[A] = {1, 0}, ml[A] = {4, 2}, lens[A] = {6, 4};
    int ncomp[A], gg[A];
    for (int a = 0; a < A; a++) {
        int nev = std::max(0, ml[a] + lens[a] - nm);
        gg[a] = nev >= c ? nev / c : 0;
        ncomp[a] = gg[a] * c;
    }
    vecf mem = randv((size_t)B * nm * d, g), usage = randv((size_t)B * nm, g),
         x = randv((size_t)A * W * d, g);
    vecf ev((size_t)A * ev_rows * d, 0.0f), evu((size_t)A * ev_rows, 0.0f);
    emu_launch(dim3(ev_rows, A), dim3(128), 0, [&] {
        evict_kernel(ev.data(), evu.data(), mem.data(), usage.data(), x.data(), ml, ncomp,
                     slot_of, nm, W, d, ev_rows);
    });
    for (int a = 0; a < A; a++)
        for (int r = 0; r < ncomp[a]; r++) {
            int p = slot_of[a];
            const float *src = r < ml[a] ? &mem[((size_t)p * nm + r) * d]
                                         : &x[((size_t)a * W + r - ml[a]) * d];
            for (int k = 0; k < d; k++)
                assert_true(ev[((size_t)a * ev_rows + r) * d + k] == src[k]);
            assert_true(evu[(size_t)a * ev_rows + r] ==
                        (r < ml[a] ? usage[(size_t)p * nm + r] : 0.0f));
        }
    /* dilated conv im2col: G[j, i c + t] = ev[j c + c-1 - (c-1-t) D][i] */
    const int D = 3;
    vecf G((size_t)A * gmax * d * c, -1.0f);
    emu_launch(dim3(gmax, A), dim3(64), 0,
               [&] { im2col_kernel<float>(G.data(), ev.data(), gg, gmax, c, D, 1, d, ev_rows); });
    for (int a = 0; a < A; a++)
        for (int j = 0; j < gmax; j++)
            for (int i = 0; i < d; i++)
                for (int t = 0; t < c; t++) {
                    long p = (long)j * c + c - 1 - (long)(c - 1 - t) * D;
                    float want = j < gg[a] && p >= 0 ? ev[((size_t)a * ev_rows + p) * d + i] : 0.0f;
                    assert_true(G[(((size_t)a * gmax + j) * d + i) * c + t] == want);
                }
    for (int is_max = 0; is_max <= 1; is_max++) {
        vecf co((size_t)A * gmax * d, 0.0f);
        emu_launch(dim3(gmax, A), dim3(64), 0, [&] {
            pool_kernel(co.data(), ev.data(), gg, gmax, c, is_max, d, ev_rows);
        });
        for (int a = 0; a < A; a++)
            for (int j = 0; j < gg[a]; j++)
                for (int i = 0; i < d; i++) {
                    float x0 = ev[((size_t)a * ev_rows + j * c) * d + i],
                          x1 = ev[((size_t)a * ev_rows + j * c + 1) * d + i];
                    float want = is_max ? std::max(x0, x1) : (x0 + x1) / 2.0f;
                    assert_true(co[((size_t)a * gmax + j) * d + i] == want);
                }
    }
    /* most_used with ties: usage of slot a's evicted rows */
    for (int a = 0; a < A; a++)
        for (int r = 0; r < ncomp[a]; r++)
            evu[(size_t)a * ev_rows + r] = (float)((r * 7) % 3);
    vecf co((size_t)A * gmax * d, 0.0f);
    std::vector<int> sel((size_t)A * ev_rows);
    emu_launch(dim3(A), dim3(256), 0, [&] {
        most_used_kernel(co.data(), sel.data(), ev.data(), evu.data(), gg, gmax, c, d, ev_rows);
    });
    for (int a = 0; a < A; a++) {
        int n = ncomp[a];
        std::vector<int> taken(n, 0);
        for (int s = 0; s < gg[a]; s++) { /* model.c's repeated arg-max */
            int best = -1;
            for (int i = 0; i < n; i++)
                if (!taken[i] && (best < 0 || evu[(size_t)a * ev_rows + i] >
                                                  evu[(size_t)a * ev_rows + best]))
                    best = i;
            taken[best] = 1;
        }
        int k = 0;
        for (int i = 0; i < n; i++)
            if (taken[i]) {
                for (int e = 0; e < d; e++)
                    assert_true(co[((size_t)a * gmax + k) * d + e] ==
                                ev[((size_t)a * ev_rows + i) * d + e]);
                k++;
            }
        assert_int_equal(k, gg[a]);
    }
}

static void test_layernorm_and_classifier(void **state)
{
    (void)state;
    std::mt19937 g(5);
    const int rows = 5, d = 70, V = 1100;
    vecf in = randv((size_t)rows * d, g, 3.0f), w = randv(d, g), b = randv(d, g);
    vecf out((size_t)rows * d);
    emu_launch(dim3(1), dim3(256), 0, [&] {
        layernorm_kernel<float>(out.data(), in.data(), w.data(), b.data(), rows, d, 1e-5f);
    });
    for (int r = 0; r < rows; r++) {
        double m = 0, v = 0;
        for (int i = 0; i < d; i++)
            m += in[(size_t)r * d + i];
        m /= d;
        for (int i = 0; i < d; i++)
            v += (in[(size_t)r * d + i] - m) * (in[(size_t)r * d + i] - m);
        v /= d;
        for (int i = 0; i < d; i++)
            close(out[(size_t)r * d + i],
                  (in[(size_t)r * d + i] - m) / std::sqrt(v + 1e-5) * w[i] + b[i], 1e-5,
                  "layernorm");
    }
    vecf logits = randv((size_t)rows * V, g, 8.0f), nll(rows, -1.0f);
    uint32_t tgt[rows] = {0, 5, 1099, 77, 3};
    unsigned char valid[rows] = {1, 1, 0, 1, 1};
    emu_launch(dim3(rows), dim3(CLS_THREADS), 0, [&] {
        classifier_kernel(nll.data(), logits.data(), V, tgt, valid, V);
    });
    for (int r = 0; r < rows; r++) {
        if (!valid[r]) {
            assert_true(nll[r] == -1.0f);
            continue;
        }
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++)
            mx = std::max(mx, (double)logits[(size_t)r * V + j]);
        for (int j = 0; j < V; j++)
            s += std::exp(logits[(size_t)r * V + j] - mx);
        close(nll[r], std::log(s) + mx - logits[(size_t)r * V + tgt[r]], 1e-6, "nll");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_and_usage),
        cmocka_unit_test(test_fifo),
        cmocka_unit_test(test_evict_and_compress),
        cmocka_unit_test(test_layernorm_and_classifier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
