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


def f64(values):
    """A float64 array as a flat list."""
    return [float(v) for v in np.asarray(values, dtype=np.float64).ravel()]


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


def main():
    write("adam.json", {"adam": adam_cases()})


if __name__ == "__main__":
    main()
