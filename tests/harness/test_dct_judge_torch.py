"""The DCT judge of harness/dct_judge.c against PyTorch autograd in float64:
torch.nn.LSTM(d, H, bidirectional=True, batch_first=True) + nn.Linear(2H, 2)
with the same weights. The C side is `harness_dct_judge_test --dump IN OUT`
(the unit test binary's driver mode): logits, the gradient of
sum(dlogits * logits) for every weight tensor, and the REINFORCE dlogits,
log-probability and entropy sums of pg_judge_reinforce_dlogits. Tolerance per
tensor: ||C - torch|| / ||torch|| < 1e-4 (fp32 C against float64 torch).
Skipped when PyTorch (Debian python3-torch) is missing.
"""
import os
import subprocess
import tempfile
import unittest

import numpy as np

try:
    import torch
except ImportError:  # pragma: no cover
    torch = None

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEST_BIN = os.environ.get("PG19_TEST_BIN", os.path.join(TOP, "build-san", "tests"))
PROG = os.path.join(TEST_BIN, "harness_dct_judge_test")

# The C tensors in dct_judge.h's order, by their nn.LSTM / nn.Linear names.
NAMES = ["lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
         "lstm.weight_ih_l0_reverse", "lstm.weight_hh_l0_reverse", "lstm.bias_ih_l0_reverse",
         "lstm.bias_hh_l0_reverse", "fc.weight", "fc.bias"]
TOL = 1e-4


def rel_err(c, t):
    c, t = np.asarray(c, np.float64).ravel(), np.asarray(t, np.float64).ravel()
    return float(np.linalg.norm(c - t) / max(np.linalg.norm(t), 1e-30))


class TorchJudge(torch.nn.Module if torch else object):
    def __init__(self, d, H):
        super().__init__()
        self.lstm = torch.nn.LSTM(d, H, bidirectional=True, batch_first=True)
        self.fc = torch.nn.Linear(2 * H, 2)

    def forward(self, x):  # x [N, d] -> logits [N, 2]
        h, _ = self.lstm(x.unsqueeze(0))
        return self.fc(h[0])


def torch_reinforce(logits, pos, action, adv, alpha):
    """loss = -A sum_k log p(a_k) - alpha sum_k S_k over the decided rows."""
    lg = logits.detach().clone().requires_grad_(True)
    logp = torch.log_softmax(lg, dim=-1)
    rows = logp[pos]
    lp_sum = rows[torch.arange(len(pos)), action].sum()
    ent = -(rows.exp() * rows).sum()
    loss = -adv * lp_sum - alpha * ent
    loss.backward()
    return lg.grad.numpy(), float(lp_sum), float(ent)


@unittest.skipIf(torch is None, "PyTorch missing (Debian python3-torch)")
class DctJudgeTorchTest(unittest.TestCase):
    def setUp(self):
        if not os.access(PROG, os.X_OK):
            self.skipTest(f"{PROG} not built")
        self.tmp = tempfile.TemporaryDirectory()

    def tearDown(self):
        self.tmp.cleanup()

    def run_c(self, W, x, dlogits, pos, action, adv, alpha):
        N, d = x.shape
        H = W["lstm.weight_hh_l0"].shape[1]
        inp = os.path.join(self.tmp.name, "in.txt")
        out = os.path.join(self.tmp.name, "out.txt")
        with open(inp, "w") as f:
            f.write(f"{N} {d} {H}\n")
            for name in NAMES:
                f.write(" ".join(repr(float(v)) for v in W[name].ravel()) + "\n")
            f.write(" ".join(repr(float(v)) for v in x.ravel()) + "\n")
            f.write(" ".join(repr(float(v)) for v in dlogits.ravel()) + "\n")
            f.write(f"{len(pos)} {adv!r} {alpha!r}\n")
            for p, a in zip(pos, action):
                f.write(f"{p} {a}\n")
        proc = subprocess.run([PROG, "--dump", inp, out], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=120)
        self.assertEqual(proc.returncode, 0, proc.stdout.decode("utf-8", "replace"))
        vals = np.loadtxt(out, dtype=np.float64)
        res, k = {}, 0
        res["logits"] = vals[k:k + 2 * N].reshape(N, 2)
        k += 2 * N
        for name in NAMES:
            n = W[name].size
            res[name] = vals[k:k + n].reshape(W[name].shape)
            k += n
        res["reinforce"] = vals[k:k + 2 * N].reshape(N, 2)
        k += 2 * N
        res["logp_sum"], res["entropy_sum"] = vals[k], vals[k + 1]
        self.assertEqual(k + 2, len(vals))
        return res

    def check(self, N, d, H, seed, wscale=0.5):
        rng = np.random.default_rng(seed)
        # float32-representable values, so both sides start from the same numbers
        W = {}
        for name in NAMES:
            if name.startswith("fc."):
                shape = (2, 2 * H) if name == "fc.weight" else (2,)
            elif "weight_ih" in name:
                shape = (4 * H, d)
            elif "weight_hh" in name:
                shape = (4 * H, H)
            else:
                shape = (4 * H,)
            W[name] = rng.uniform(-wscale, wscale, shape).astype(np.float32)
        x = rng.standard_normal((N, d)).astype(np.float32)
        dlogits = rng.standard_normal((N, 2)).astype(np.float32)
        n = max(1, N // 2)
        pos = sorted(rng.choice(N, size=n, replace=False).tolist())
        action = rng.integers(0, 2, n).tolist()
        adv, alpha = float(rng.normal()), 0.05

        c = self.run_c(W, x, dlogits, pos, action, adv, alpha)

        model = TorchJudge(d, H).double()
        params = dict(model.named_parameters())
        self.assertEqual(set(params), set(NAMES))
        with torch.no_grad():
            for name in NAMES:
                params[name].copy_(torch.from_numpy(W[name].astype(np.float64)))
        logits = model(torch.from_numpy(x.astype(np.float64)))
        (logits * torch.from_numpy(dlogits.astype(np.float64))).sum().backward()

        errs = {"logits": rel_err(c["logits"], logits.detach().numpy())}
        for name in NAMES:
            errs[name] = rel_err(c[name], params[name].grad.numpy())
        # REINFORCE on the C logits (what the C side used), in float64
        g, lp, ent = torch_reinforce(torch.from_numpy(c["logits"]), pos, action, adv, alpha)
        errs["reinforce dlogits"] = rel_err(c["reinforce"], g)
        errs["logp_sum"] = abs(c["logp_sum"] - lp) / max(abs(lp), 1e-30)
        errs["entropy_sum"] = abs(c["entropy_sum"] - ent) / max(abs(ent), 1e-30)
        undecided = [t for t in range(N) if t not in pos]
        self.assertTrue(np.all(c["reinforce"][undecided] == 0.0))
        worst = max(errs, key=errs.get)
        print(f"# N={N} d={d} H={H}: worst {worst} {errs[worst]:.2e}")
        for name, e in errs.items():
            self.assertLess(e, TOL, f"{name}: relative error {e:.3e} (all: {errs})")

    def test_small(self):
        self.check(N=7, d=5, H=3, seed=1)

    def test_single_block(self):
        self.check(N=1, d=4, H=2, seed=2)

    def test_model_sized(self):
        # closer to what harness/dct.c feeds it: a few dozen blocks of d_model
        self.check(N=40, d=64, H=32, seed=3)

    def test_many_chunks(self):
        # H = 256: the forward's input projection goes in chunks of 16384 / 4H = 16
        # positions, so 37 blocks take three calls (16, 16, 5) in each direction
        self.check(N=37, d=8, H=256, seed=4, wscale=0.1)

    def test_rejects_bad_input(self):
        inp = os.path.join(self.tmp.name, "bad.txt")
        ok = "1 1 1\n" + "0.1 " * 41 + "\n"  # N = d = H = 1: 38 weights, x, dlogits
        for text in ["0 3 2\n", "2 3 2\n1 2 nan\n", "1 1 1\n" + "0.1 " * 30,
                     ok + "2 0.5 0.1\n0 1\n0 1\n", ok + "1 0.5 0.1\n1 1\n",
                     ok + "1 0.5 0.1\n0 2\n"]:
            with open(inp, "w") as f:
                f.write(text)
            proc = subprocess.run([PROG, "--dump", inp, os.path.join(self.tmp.name, "o")],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            self.assertEqual(proc.returncode, 2, proc.stdout)
            self.assertIn(b"dct_judge dump:", proc.stdout)


if __name__ == "__main__":
    unittest.main()
