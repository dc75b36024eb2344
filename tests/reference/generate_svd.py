"""Reference fixtures for core/svd.ts: singular values, singular subspaces
and gradients of small matrices from torch.linalg.svd in float64.

Run with /usr/bin/python3 (numpy and torch); writes svd.json beside this
file, compact (`deno fmt` leaves tests/reference/*.json alone). Bump VERSION whenever the output
changes.

Each case holds a matrix Z [b, d] (float32-representable values), its
singular values, the right singular vectors V [d, d] (columns, torch's order)
and two gradients:
- "nuclearGrad": the gradient of the nuclear norm under the convention of
  core/svd.ts, the minimum-norm subgradient U_r V_r^T over singular values
  above ZERO_SINGULAR * sigma_1 (torch's own S.sum().backward() also adds the
  arbitrary pairs U_0 V_0^T of (numerically) zero values, so it is not used
  where such values exist);
- "truncGrad": the gradient of <W, Z_k> with Z_k = U_k S_k V_k^T for a fixed
  weight matrix W and a k with sigma_k > sigma_{k+1}; from torch autograd
  through torch.linalg.svd when all values are distinct, else (repeated
  values inside the kept block, where torch's backward divides by zero) by
  central differences of the float64 function, which is well defined there.
"""

import json
import os

import numpy as np
import torch

VERSION = 1
ZERO_SINGULAR = 3e-3  # core/svd.ts

torch.set_default_dtype(torch.float64)


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def with_values(rng, b, d, values):
    """A b x d float32 matrix with the given singular values."""
    u, _ = np.linalg.qr(rng.standard_normal((b, len(values))))
    v, _ = np.linalg.qr(rng.standard_normal((d, len(values))))
    return f32(u @ np.diag(values) @ v.T)


def truncated(z, k):
    u, s, vh = np.linalg.svd(z, full_matrices=False)
    return (u[:, :k] * s[:k]) @ vh[:k]


def case(name, z, k, rng, distinct):
    b, d = z.shape
    zt = torch.tensor(z, requires_grad=True)
    u, s, vh = torch.linalg.svd(zt, full_matrices=False)
    s_np = s.detach().numpy()
    # Pad to d values and d right vectors (b < d: zeros, a completed basis).
    values = np.zeros(d)
    values[: len(s_np)] = s_np
    _, _, vh_full = np.linalg.svd(z, full_matrices=True)
    v = vh_full.T
    alive = s_np > ZERO_SINGULAR * s_np[0]
    uu = u.detach().numpy()[:, alive]
    vv = vh.detach().numpy()[alive].T
    nuclear_grad = uu @ vv.T
    w = f32(rng.standard_normal((b, d)))
    if distinct:
        zk = (u[:, :k] * s[:k]) @ vh[:k]
        (zk * torch.tensor(w)).sum().backward()
        trunc_grad = zt.grad.numpy()
        method = "torch autograd"
    else:
        h = 1e-6
        trunc_grad = np.zeros_like(z)
        for i in range(b):
            for j in range(d):
                e = np.zeros_like(z)
                e[i, j] = h
                plus = (w * truncated(z + e, k)).sum()
                minus = (w * truncated(z - e, k)).sum()
                trunc_grad[i, j] = (plus - minus) / (2 * h)
        method = "central differences, float64, h = 1e-6"
    return {
        "name": name,
        "rows": b,
        "cols": d,
        "z": z.ravel().tolist(),
        "singularValues": values.tolist(),
        "v": v.ravel().tolist(),
        "k": k,
        "w": w.ravel().tolist(),
        "nuclearGrad": nuclear_grad.ravel().tolist(),
        "truncGrad": trunc_grad.ravel().tolist(),
        "truncGradFrom": method,
    }


def main():
    rng = np.random.default_rng(21)
    cases = [
        case("generic 12 x 5", f32(rng.standard_normal((12, 5))), 2, rng, True),
        case("wide 6 x 8 (two zero values)", f32(rng.standard_normal((6, 8))), 3, rng, True),
        case("repeated 3, 3 kept, then 1, 0.5", with_values(rng, 10, 4, [3, 3, 1, 0.5]), 2, rng, False),
        case("repeated 2, 2 dropped after 5", with_values(rng, 10, 4, [5, 2, 2, 0.1]), 1, rng, True),
        case("near-zero value 1e-6", with_values(rng, 10, 4, [4, 2, 1, 1e-6]), 3, rng, True),
        case("rank 2 of 9 x 6", with_values(rng, 9, 6, [3, 1.5]), 2, rng, True),
        case("batch 64 x 32", f32(rng.standard_normal((64, 32))), 8, rng, True),
    ]
    out = {
        "generator": os.path.basename(__file__),
        "version": VERSION,
        "torch": torch.__version__,
        "cases": cases,
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "svd.json")
    with open(path, "w") as f:
        json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
