#!/usr/bin/env python3
"""The official IRMAE networks in PyTorch, checked against an irmae export.

The modules follow facebookresearch/irmae model.py: the same module names
(enc.dcnn, enc.fc, mlp.hidden, dec.fc, dec.dcnn), the same Sequential
indices and layer hyper-parameters, so a state_dict loads with strict=True.
They are written here from that file's layout, not copied.

Usage:
  official_irmae.py check EXPORT.safetensors IO.safetensors OUT.safetensors
  official_irmae.py from-pt STATE.pt OUT.safetensors

Loads EXPORT (irmae export --format safetensors) into the official
architecture, runs IO's inputs `x` (NHWC in [0, 1]) through it, compares the
codes and reconstructions with IO's `codes` and `recon` (irmae's), and
writes the PyTorch module's state_dict() (plus the folded chain) to OUT for
the way back. Prints one JSON line of measurements; exits 1 on a mismatch.

safetensors is read and written with numpy (Debian has no python3-safetensors).
"""
import json
import struct
import sys

import numpy as np
import torch
import torch.nn as nn

FOLDED = "mlp.folded.weight"


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    body = data[8 + n :]
    tensors = {}
    for name, entry in header.items():
        assert entry["dtype"] == "F32", (name, entry["dtype"])
        begin, end = entry["data_offsets"]
        arr = np.frombuffer(body[begin:end], dtype="<f4").reshape(entry["shape"])
        tensors[name] = arr.copy()
    return tensors, meta


def write_safetensors(path, tensors, meta):
    header = {}
    offset = 0
    names = sorted(tensors)
    for name in names:
        nbytes = tensors[name].size * 4
        header[name] = {
            "dtype": "F32",
            "shape": list(tensors[name].shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    if meta:
        header["__metadata__"] = meta
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name in names:
            f.write(np.ascontiguousarray(tensors[name], dtype="<f4").tobytes())


def conv_stack(specs, transpose, first_relu=False):
    """A Sequential of (in, out, k, s, p) convolutions with ReLU between."""
    layers = [nn.ReLU(True)] if first_relu else []
    for i, (cin, cout, k, s, p) in enumerate(specs):
        conv = nn.ConvTranspose2d if transpose else nn.Conv2d
        layers.append(conv(cin, cout, k, s, p))
        if i < len(specs) - 1:
            layers.append(nn.ReLU(True))
    return nn.Sequential(*layers)


class Encoder(nn.Module):
    def __init__(self, dataset, channels, code):
        super().__init__()
        self.flat = None
        if dataset == "shape":
            self.dcnn = conv_stack(
                [(channels, 32, 4, 2, 1), (32, 64, 4, 2, 1), (64, 128, 4, 2, 1),
                 (128, 256, 4, 2, 1), (256, code, 2, 1, 0)],
                transpose=False,
            )
            return
        widths = [channels, 32, 64, 128, 256] if dataset == "mnist" else [
            channels, 128, 256, 512, 1024]
        side = 2 if dataset == "mnist" else 4
        layers = []
        for a, b in zip(widths, widths[1:]):
            layers += [nn.Conv2d(a, b, 4, 2, 1), nn.ReLU(True)]
        self.dcnn = nn.Sequential(*layers)
        self.flat = widths[-1] * side * side
        self.fc = nn.Linear(self.flat, code)

    def forward(self, x, trace):
        for layer in self.dcnn:
            x = layer(x)
            trace.append(x)
        x = x.reshape(x.size(0), -1)
        if self.flat is not None:
            x = self.fc(x)
            trace.append(x)
        return x


class Decoder(nn.Module):
    def __init__(self, dataset, channels, code, fc_relu, sigmoid):
        super().__init__()
        self.code = code
        self.fc_relu = fc_relu
        self.map = None
        if dataset == "shape":
            self.dcnn = conv_stack(
                [(code, 256, 2, 1, 0), (256, 128, 4, 2, 1), (128, 64, 4, 2, 1),
                 (64, 32, 4, 2, 1), (32, channels, 4, 2, 1)],
                transpose=True,
            )
        elif dataset == "mnist":
            # model.py: fc, then dcnn = [ReLU, ConvT, ReLU, ConvT, ReLU, ConvT, Tanh]
            self.map = (128, 8, 8)
            self.fc = nn.Linear(code, 128 * 8 * 8)
            self.dcnn = conv_stack(
                [(128, 64, 4, 2, 1), (64, 32, 4, 2, 1), (32, channels, 1, 1, 0)],
                transpose=True,
                first_relu=fc_relu,
            )
        else:
            self.map = (1024, 8, 8)
            self.fc = nn.Linear(code, 1024 * 8 * 8)
            self.dcnn = conv_stack(
                [(1024, 512, 4, 2, 1), (512, 256, 4, 2, 1), (256, 128, 4, 2, 1),
                 (128, channels, 1, 1, 0)],
                transpose=True,
                first_relu=fc_relu,
            )
        self.dcnn.append(nn.Sigmoid() if sigmoid else nn.Tanh())

    def forward(self, z, trace):
        if self.map is None:
            x = z.view(z.size(0), self.code, 1, 1)
        else:
            x = self.fc(z)
            trace.append(x)
            x = x.view(z.size(0), *self.map)
        for layer in self.dcnn:
            x = layer(x)
            trace.append(x)
        return x


class MLP(nn.Module):
    def __init__(self, code, count):
        super().__init__()
        self.hidden = nn.ModuleList(
            [nn.Linear(code, code, bias=False) for _ in range(count)])

    def forward(self, z, trace):
        for layer in self.hidden:
            z = layer(z)
            trace.append(z)
        return z


class AE(nn.Module):
    def __init__(self, meta, channels):
        super().__init__()
        n = int(meta["n"])
        self.l = int(meta["l"])
        vae = meta["vae"] == "true"
        dataset = meta["dataset"]
        fc_relu = meta["decoder_fc_activation"] == "relu"
        if dataset == "celeba" and fc_relu:
            print("note: official CelebA decoder has no ReLU after fc; "
                  "this export has one", file=sys.stderr)
        if dataset == "mnist" and not fc_relu:
            print("note: official MNIST decoder has a ReLU after fc; "
                  "this export has none", file=sys.stderr)
        self.enc = Encoder(dataset, channels, 2 * n if vae else n)
        self.dec = Decoder(dataset, channels, n, fc_relu,
                           meta["decoder_output"] == "sigmoid")
        if self.l > 0:
            self.mlp = MLP(n, self.l)

    def codes(self, x, trace):
        z = self.enc(x, trace)
        return self.mlp(z, trace) if self.l > 0 else z


U = 2.0 ** -24  # float32 unit roundoff


def fan_ins(model):
    """Fan-in of every weight layer: the n of each dot product."""
    out = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            out.append(m.in_channels * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, nn.ConvTranspose2d):
            # each output sums over in_channels * (k / stride)^2 terms
            k, s = m.kernel_size[0], m.stride[0]
            out.append(m.in_channels * max(1, (k // s)) ** 2)
        elif isinstance(m, nn.Linear):
            out.append(m.in_features)
    return out


LAMBDA = 4.0  # the constant of the probabilistic bound below


def tolerance(fans, trace64):
    """Float32 forward error of the network, derived from the unit roundoff.

    A dot product of n terms computed in float32 is off by at most
    lambda * sqrt(n) * u * sum|a_i b_i| with high probability (Higham and
    Mary's probabilistic rounding-error analysis, 2019; the worst case is n
    * u). Errors of successive layers add up (ReLU and Tanh do not amplify
    them), so the bound is the sum over layers, scaled by the largest
    magnitude any layer produced (float64 pass), doubled because both
    sides round (irmae in tfjs, the reference in PyTorch)."""
    scale = max(float(t.abs().max()) for t in trace64)
    return 2.0 * sum(LAMBDA * n ** 0.5 * U for n in fans) * scale


def check(export_path, io_path, out_path):
    tensors, meta = read_safetensors(export_path)
    io, _ = read_safetensors(io_path)
    channels = int(meta["image_shape_nhwc"].split(",")[2])
    model = AE(meta, channels)
    state = {k: torch.from_numpy(v) for k, v in tensors.items() if k != FOLDED}
    model.load_state_dict(state, strict=True)  # names and shapes as model.py
    model.eval()

    x = torch.from_numpy(io["x"]).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        t32 = []
        codes = model.codes(x, t32)
        recon = model.dec(codes, t32)
        m64 = model.double()
        t64 = []
        codes64 = m64.codes(x.double(), t64)
        n_codes = len(t64)
        m64.dec(codes64, t64)
        model.float()
    fans = fan_ins(model.enc) + (fan_ins(model.mlp) if model.l > 0 else [])
    tol_codes = tolerance(fans, t64[:n_codes])
    tol_recon = tolerance(fans + fan_ins(model.dec), t64)

    ours_codes = torch.from_numpy(io["codes"])
    ours_recon = torch.from_numpy(io["recon"]).permute(0, 3, 1, 2)
    result = {
        "codes_err": float((codes - ours_codes).abs().max()),
        "codes_tol": tol_codes,
        "recon_err": float((recon - ours_recon).abs().max()),
        "recon_tol": tol_recon,
        "torch32_vs_64": float((codes.double() - codes64).abs().max()),
    }
    ok = (result["codes_err"] <= tol_codes and result["recon_err"] <= tol_recon
          and result["torch32_vs_64"] <= tol_codes)
    if FOLDED in tensors and meta.get("chain_activation") == "linear":
        with torch.no_grad():
            z = model.enc(x, [])
            folded = z @ torch.from_numpy(tensors[FOLDED]).T
        result["folded_err"] = float((folded - codes).abs().max())
        ok = ok and result["folded_err"] <= tol_codes
    if "enc.fc.weight" in tensors:
        # Control: the fc weight read without the NHWC -> NCHW permutation
        # must fail this comparison, or the check proves nothing.
        w = tensors["enc.fc.weight"]
        c = model.enc.dcnn[-2].out_channels
        side = int(round((w.shape[1] // c) ** 0.5))
        wrong = w.reshape(w.shape[0], c, side, side).transpose(0, 2, 3, 1)
        with torch.no_grad():
            model.enc.fc.weight.copy_(torch.from_numpy(
                np.ascontiguousarray(wrong.reshape(w.shape))))
            bad = model.codes(x, [])
            model.enc.fc.weight.copy_(torch.from_numpy(w))
        result["control_err"] = float((bad - ours_codes).abs().max())
        ok = ok and result["control_err"] > tol_codes
    print(json.dumps(result))

    back = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    if FOLDED in tensors:
        back[FOLDED] = tensors[FOLDED]
    write_safetensors(out_path, back, {"format": "pt"})
    return 0 if ok else 1


def from_pt(state_path, out_path):
    """A state_dict saved by the official train.py (torch.save) as
    safetensors, for irmae import."""
    state = torch.load(state_path, map_location="cpu")
    tensors = {k: v.detach().float().numpy() for k, v in state.items()}
    write_safetensors(out_path, tensors, {"format": "pt"})
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        sys.exit(check(*sys.argv[2:]))
    if len(sys.argv) == 4 and sys.argv[1] == "from-pt":
        sys.exit(from_pt(*sys.argv[2:]))
    print(__doc__, file=sys.stderr)
    sys.exit(2)
