#!/usr/bin/python3
"""Reference fixtures for tests/reference_test.ts, from the reference libraries.

Run from the repository root with Debian's Python (numpy, scipy, scikit-learn,
torch):

    /usr/bin/python3 tests/reference/generate.py

It rewrites tests/reference/{adam,stats,gmm,nets}.json. Each fixture names this
script in "generator" and carries "version": VERSION; bump VERSION whenever a
case changes (tests/reference_versions_test.ts checks that every fixture's
version equals its generator's). Inputs are drawn from seeded numpy generators
and stored as float32 values (shortest decimal that rounds back to the same
float32), so the TypeScript side reads exactly the inputs the references saw.
The tolerances are not here: each is derived beside its case in the test.
"""

import json
import math
import os
import sys

import numpy as np
import scipy.linalg
import sklearn
import sklearn.decomposition
import torch
import torch.nn.functional as F
from sklearn.mixture import GaussianMixture

VERSION = 1
GENERATOR = os.path.basename(__file__)
HERE = os.path.dirname(os.path.abspath(__file__))


def f32(values):
    """A float32 array as a flat list of shortest round-trip decimals."""
    flat = np.asarray(values, dtype=np.float32).ravel()
    return [float(repr(v)) for v in flat]


def f64(values, digits=None):
    """A float64 array as a flat list, rounded to `digits` significant
    digits where given (for references compared at float32 precision:
    10 digits add at most 5e-10 relative, stated in the test's bound)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if digits is None:
        return [float(v) for v in flat]
    return [float(f"{v:.{digits}g}") for v in flat]


def write(name, cases):
    body = {
        "generator": GENERATOR,
        "version": VERSION,
        "libraries": {
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "sklearn": sklearn.__version__,
            "torch": torch.__version__,
        },
        "cases": cases,
    }
    path = os.path.join(HERE, name)
    with open(path, "w") as out:
        json.dump(body, out, separators=(",", ":"))
        out.write("\n")
    print(f"{path}: {os.path.getsize(path)} bytes", file=sys.stderr)


# --- Adam ---------------------------------------------------------------------


def adam_cases():
    """torch.optim.Adam (default betas and eps) over fixed gradients, one case
    per gradient scale: each step's gradient is scale * N(0, 1) of its own
    seed, so signs flip and moments both grow and cancel."""
    cases = []
    torch.manual_seed(0)
    for k, scale in enumerate([1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1.0]):
        rng = np.random.default_rng(100 + k)
        n, steps, lr = 16, 6, 1e-3
        start = rng.standard_normal(n).astype(np.float32)
        grads = (scale * rng.standard_normal((steps, n))).astype(np.float32)
        p = torch.nn.Parameter(torch.from_numpy(start.copy()))
        opt = torch.optim.Adam([p], lr=lr)
        after = []
        for t in range(steps):
            opt.zero_grad()
            p.grad = torch.from_numpy(grads[t].copy())
            opt.step()
            after.append(p.detach().numpy().copy())
        cases.append({
            "scale": scale,
            "lr": lr,
            "beta1": 0.9,
            "beta2": 0.999,
            "epsilon": 1e-8,
            "n": n,
            "steps": steps,
            "start": f32(start),
            "grads": f32(grads),
            "after": f32(np.stack(after)),
        })
    return cases


# --- Statistics: spectrum, moments, Frechet, eigen, PCA grid --------------------


def codes_with_spectrum(rng, n, singular, offset):
    """float32 codes [n, d] whose covariance has roughly the given singular
    values (a random rotation of independent columns), plus a mean offset."""
    d = len(singular)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    z = rng.standard_normal((n, d)) * np.sqrt(np.asarray(singular))
    return (z @ q.T + offset).astype(np.float32)


def spectrum_case(name, codes, thresholds):
    x = codes.astype(np.float64)
    cov = np.cov(x, rowvar=False)
    s = np.linalg.svd(cov, compute_uv=False)
    normalized = s / s[0]
    p = s / s.sum()
    p = p[p > 0]
    return {
        "name": name,
        "rows": codes.shape[0],
        "cols": codes.shape[1],
        "codes": f32(codes),
        "mean": f64(x.mean(axis=0)),
        "covariance": f64(cov),
        "singular": f64(normalized),
        "thresholds": thresholds,
        "ranks": [int((normalized > t).sum()) for t in thresholds],
        "effectiveRank": float(np.exp(-(p * np.log(p)).sum())),
    }


def spectra():
    rng = np.random.default_rng(1)
    thresholds = [1e-2, 1e-3]
    well = [1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02]
    # Ill-conditioned: 1 down to 1e-9, between the thresholds by decades.
    ill = [1.0, 0.3, 3e-2, 3e-3, 3e-4, 3e-5, 1e-7, 1e-9]
    return [
        spectrum_case("well-conditioned", codes_with_spectrum(rng, 200, well, 0.0), thresholds),
        spectrum_case("mean offset 1e3", codes_with_spectrum(rng, 200, well, 1e3), thresholds),
        spectrum_case("ill-conditioned", codes_with_spectrum(rng, 200, ill, 0.0), thresholds),
        spectrum_case("ill-conditioned, offset 1e3", codes_with_spectrum(rng, 200, ill, 1e3), thresholds),
    ]


def frechet_pytorch_fid(mu1, s1, mu2, s2):
    """pytorch-fid's calculate_frechet_distance, in float64."""
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(s1.dot(s2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(s1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((s1 + offset).dot(s2 + offset))
    covmean = np.real(covmean)
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def frechet_symmetric(mu1, s1, mu2, s2):
    """The same distance through the symmetric form sqrt(S1) S2 sqrt(S1)."""
    w, v = np.linalg.eigh(s1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = np.linalg.eigvalsh(r @ s2 @ r)
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.clip(inner, 0, None)).sum())


def frechet_cases():
    rng = np.random.default_rng(2)
    d = 12
    cases = []

    def gaussian(rank, scale, shift):
        a = rng.standard_normal((d, rank)) * scale
        return rng.standard_normal(d) + shift, a @ a.T / rank

    pairs = [
        ("full rank", gaussian(d, 1.0, 0.0), gaussian(d, 0.7, 0.5)),
        ("one rank 3 (singular)", gaussian(3, 1.0, 0.0), gaussian(d, 1.0, 0.2)),
        ("both rank 2 (near-singular product)", gaussian(2, 1.0, 0.0), gaussian(2, 2.0, 1.0)),
        ("identical rank 4", None, None),
    ]
    for name, g1, g2 in pairs:
        if g1 is None:
            g1 = gaussian(4, 1.0, 3.0)
            g2 = (g1[0].copy(), g1[1].copy())
        (mu1, s1), (mu2, s2) = g1, g2
        cases.append({
            "name": name,
            "dim": d,
            "mean1": f64(mu1),
            "cov1": f64(s1),
            "mean2": f64(mu2),
            "cov2": f64(s2),
            "pytorchFid": frechet_pytorch_fid(mu1, s1, mu2, s2),
            "symmetric": frechet_symmetric(mu1, s1, mu2, s2),
        })
    return cases


def eigen_cases():
    rng = np.random.default_rng(3)
    cases = []
    for name, values in [
        ("repeated 3, 3, 3, 1, 1", [3, 3, 3, 1, 1, 0.5, 0.25, 0]),
        ("all equal", [2] * 6),
        ("clustered 1 +- 1e-12", [1 + 1e-12, 1, 1 - 1e-12, 0.1, 0.1]),
    ]:
        d = len(values)
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        a = (q * np.asarray(values, dtype=np.float64)) @ q.T
        a = (a + a.T) / 2
        w, v = np.linalg.eigh(a)
        order = np.argsort(-w)
        cases.append({
            "name": name,
            "dim": d,
            "matrix": f64(a),
            "values": f64(w[order]),
            "vectors": f64(v[:, order]),
        })
    return cases


def pca_grid_cases():
    """The pca-grid sampler's plane from scikit-learn's PCA (mean, top two
    components, explained variance with n - 1), each axis signed so its
    largest-magnitude entry is positive, and the grid built from it."""
    rng = np.random.default_rng(4)
    cases = []
    for name, offset in [("centred", 0.0), ("offset 1e3", 1e3)]:
        codes = codes_with_spectrum(rng, 200, [4.0, 1.0, 0.3, 0.1, 0.05, 0.01], offset)
        pca = sklearn.decomposition.PCA(n_components=2).fit(codes.astype(np.float64))
        axes = pca.components_.copy()
        for k in range(2):
            if axes[k][np.argmax(np.abs(axes[k]))] < 0:
                axes[k] = -axes[k]
        sd = np.sqrt(pca.explained_variance_)
        g, span = 5, 2.0
        coords = [span * (2 * i / (g - 1) - 1) for i in range(g)]
        grid = [pca.mean_ + coords[j] * sd[0] * axes[0] + coords[i] * sd[1] * axes[1]
                for i in range(g) for j in range(g)]
        cases.append({
            "name": name,
            "rows": codes.shape[0],
            "cols": codes.shape[1],
            "codes": f32(codes),
            "gridSize": g,
            "span": span,
            "mean": f64(pca.mean_),
            "axes": f64(axes),
            "sd": f64(sd),
            "eigenvalues": f64(np.linalg.eigvalsh(np.cov(codes.astype(np.float64), rowvar=False))[::-1]),
            "grid": f64(np.stack(grid)),
        })
    return cases


# --- GMM ----------------------------------------------------------------------


def gmm_cases():
    """scikit-learn's best of 10 k-means initialisations, EM run to a tight
    tolerance, on separated and on overlapping clusters."""
    cases = []
    rng = np.random.default_rng(5)
    for name, spread in [("separated", 0.3), ("overlapping", 1.2)]:
        d, k = 4, 4
        centres = rng.standard_normal((k, d)) * 3
        sizes = [200, 150, 100, 50]
        x = np.concatenate([
            c + spread * rng.standard_normal((m, d)) @ np.diag(rng.uniform(0.5, 1.5, d))
            for c, m in zip(centres, sizes)
        ]).astype(np.float32)
        x = x[rng.permutation(len(x))]
        fits = [
            GaussianMixture(n_components=k, covariance_type="full", tol=1e-10,
                            max_iter=10000, reg_covar=1e-6, random_state=s).fit(x.astype(np.float64))
            for s in range(10)
        ]
        scores = [f.score(x.astype(np.float64)) for f in fits]
        best = fits[int(np.argmax(scores))]
        cases.append({
            "name": name,
            "rows": x.shape[0],
            "cols": d,
            "components": k,
            "codes": f32(x),
            "bestScore": float(max(scores)),
            "scores": [float(v) for v in scores],
            "weights": f64(np.sort(best.weights_)),
            "converged": bool(best.converged_),
        })
    return cases


# --- Networks: the linear chain and the paper's convolutions ---------------------


def chain_cases():
    """W1 ... Wl (float64 product of float32 matrices) and z W1 ... Wl, with
    the chain's initialisation (uniform in +-1/sqrt(d))."""
    rng = np.random.default_rng(6)
    cases = []
    for d, l in [(8, 4), (16, 8)]:
        bound = 1 / math.sqrt(d)
        mats = rng.uniform(-bound, bound, (l, d, d)).astype(np.float32)
        z = rng.standard_normal((5, d)).astype(np.float32)
        prod = torch.eye(d, dtype=torch.float64)
        for w in mats:
            prod = prod @ torch.from_numpy(w.astype(np.float64))
        cases.append({
            "latentDim": d,
            "numMatrices": l,
            "matrices": f32(mats),
            "z": f32(z),
            "fold": f64(prod.numpy(), 10),
            "applied": f64(torch.from_numpy(z.astype(np.float64)) @ prod, 10),
        })
    return cases


def conv_cases():
    """The paper's layers (Table 3: 4x4 kernels, stride 2, padding 1, ReLU;
    the decoders' transposed 4x4 stride-2 convolutions; the shapes nets' 2x2
    stride-1) on small inputs, in float64 by torch.nn.functional from the
    float32 inputs, with the gradients of sum(y * r). Tensors are stored in
    the framework's layouts: NHWC, conv filters [k, k, in, out], transposed
    conv filters [k, k, out, in]."""
    rng = np.random.default_rng(7)
    specs = [
        ("conv 4x4 s2 p1 relu", "conv", 4, 2, 1, "relu", (2, 8, 8, 3), 5),
        ("conv 4x4 s2 p1 relu, 32 px", "conv", 4, 2, 1, "relu", (1, 32, 32, 1), 4),
        ("conv 2x2 s1 p0 relu", "conv", 2, 1, 0, "relu", (2, 5, 5, 4), 3),
        ("conv-transpose 4x4 s2 p1 linear", "conv-transpose", 4, 2, 1, "linear", (2, 4, 4, 5), 3),
        ("conv-transpose 4x4 s2 p1 relu", "conv-transpose", 4, 2, 1, "relu", (1, 8, 8, 4), 2),
    ]
    cases = []
    for name, kind, k, stride, pad, act, shape, filters in specs:
        for attempt in range(100):
            n, h, w, c = shape
            x = rng.standard_normal(shape).astype(np.float32)
            if kind == "conv":
                wt = rng.uniform(-1, 1, (k, k, c, filters)).astype(np.float32) / math.sqrt(c * k * k)
                w_torch = wt.transpose(3, 2, 0, 1)  # [out, in, k, k]
            else:
                wt = rng.uniform(-1, 1, (k, k, filters, c)).astype(np.float32) / math.sqrt(filters * k * k)
                w_torch = wt.transpose(3, 2, 0, 1)  # [in, out, k, k]
            b = rng.uniform(-0.2, 0.2, filters).astype(np.float32)
            xt = torch.tensor(x.transpose(0, 3, 1, 2), dtype=torch.float64, requires_grad=True)
            wt_t = torch.tensor(w_torch, dtype=torch.float64, requires_grad=True)
            bt = torch.tensor(b, dtype=torch.float64, requires_grad=True)
            if kind == "conv":
                pre = F.conv2d(xt, wt_t, bt, stride=stride, padding=pad)
            else:
                pre = F.conv_transpose2d(xt, wt_t, bt, stride=stride, padding=pad)
            # ReLU's kink: redraw until no pre-activation is within 1e-3 of 0,
            # so float32 rounding cannot flip a unit on or off.
            if act == "relu" and pre.abs().min().item() < 1e-3:
                continue
            y = F.relu(pre) if act == "relu" else pre
            r = rng.standard_normal(tuple(y.shape)).astype(np.float32)
            (y * torch.from_numpy(r.astype(np.float64))).sum().backward()
            break
        else:
            raise RuntimeError(f"{name}: no draw keeps pre-activations off 0")
        to_nhwc = lambda t: t.detach().numpy().transpose(0, 2, 3, 1)
        cases.append({
            "name": name,
            "type": kind,
            "kernel": k,
            "stride": stride,
            "pad": pad,
            "activation": act,
            "filters": filters,
            "inShape": list(shape),
            "outShape": list(to_nhwc(y).shape),
            "x": f32(x),
            "weight": f32(wt),
            "bias": f32(b),
            "r": f32(r.transpose(0, 2, 3, 1)),
            "y": f64(to_nhwc(y), 10),
            "dx": f64(to_nhwc(xt.grad), 10),
            "dWeight": f64(wt_t.grad.numpy().transpose(2, 3, 1, 0), 10),
            "dBias": f64(bt.grad.numpy(), 10),
        })
    return cases


def main():
    write("adam.json", {"adam": adam_cases()})
    write("stats.json", {
        "spectrum": spectra(),
        "frechet": frechet_cases(),
        "eigen": eigen_cases(),
        "pcaGrid": pca_grid_cases(),
    })
    write("gmm.json", {"gmm": gmm_cases()})
    write("nets.json", {"chain": chain_cases(), "conv": conv_cases()})


if __name__ == "__main__":
    main()
