#!/usr/bin/env python3
"""PyTorch reference for `deno task bench` (experiments/bench.ts).

The paper's shapes and MNIST autoencoders (appendix Table 3, as models/architectures.ts
builds them) in PyTorch, timed exactly as bench.ts times ours:

- training images/s: forward, mean squared error of tanh(decoder) against the input,
  backward and one torch.optim.Adam(lr=1e-4) step on a batch of 32, the median of the
  last 50 of 70 steps (the first 20 warm up), and the same 50 steps' images per second
  of process CPU time;
- inference images/s: encoder and decoder on a batch of 256 without gradients, the
  median of the last 20 of 25 runs.

Inputs are uniform in [-1, 1] as in bench.ts. On CUDA every timed step ends with
torch.cuda.synchronize() (bench.ts awaits the loss), and TF32 is off unless --tf32 is
given, so both sides compute in float32.

It also counts each case's multiply-adds from the layer shapes (forward hooks on the
convolutions and linear layers): a training step is the forward pass, the weight
gradients (as many) and the input gradients (as many, less the first layer's).

Setup (Debian):  apt-get install -y python3-torch libopenblas0-pthread
Run:             python3 experiments/bench/torch_reference.py [--device cpu|cuda]
                 [--threads N] [--cases a,b] [--quick] [--json PATH]
Prints progress on stderr and one JSON object as the last line of stdout.
"""
import argparse
import json
import platform
import sys
import time

try:
    import torch
    from torch import nn
except ImportError:
    sys.exit("torch_reference.py: PyTorch is not installed for " + sys.executable +
             " (Debian: apt-get install -y python3-torch libopenblas0-pthread)")

TRAIN_BATCH = 32
INFER_BATCH = 256
FULL = {"trainSteps": 50, "trainWarmup": 20, "inferRuns": 20, "inferWarmup": 5}
QUICK = {"trainSteps": 10, "trainWarmup": 3, "inferRuns": 4, "inferWarmup": 1}


def down(cin, cout):
    """The paper's encoder block: 4x4 convolution, stride 2, padding 1, ReLU."""
    return [nn.Conv2d(cin, cout, 4, stride=2, padding=1), nn.ReLU()]


def up(cin, cout, relu=True):
    """The paper's decoder block: 4x4 transposed convolution, stride 2, padding 1."""
    layer = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
    return [layer, nn.ReLU()] if relu else [layer]


def shapes_model(d, depth):
    encoder = [*down(3, 32), *down(32, 64), *down(64, 128), *down(128, 256),
               nn.Conv2d(256, d, 2), nn.Flatten()]
    decoder = [nn.Unflatten(1, (d, 1, 1)), nn.ConvTranspose2d(d, 256, 2), nn.ReLU(),
               *up(256, 128), *up(128, 64), *up(64, 32), *up(32, 3, relu=False)]
    chain = [nn.Linear(d, d, bias=False) for _ in range(depth)]
    return nn.Sequential(*encoder, *chain, *decoder, nn.Tanh())


def mnist_model(d, depth):
    encoder = [*down(1, 32), *down(32, 64), *down(64, 128), *down(128, 256),
               nn.Flatten(), nn.Linear(1024, d)]
    decoder = [nn.Linear(d, 8 * 8 * 128), nn.ReLU(), nn.Unflatten(1, (128, 8, 8)),
               *up(128, 64), *up(64, 32), nn.ConvTranspose2d(32, 1, 1)]
    chain = [nn.Linear(d, d, bias=False) for _ in range(depth)]
    return nn.Sequential(*encoder, *chain, *decoder, nn.Tanh())


# name -> (builder, code width d, chain length l, image shape C, H, W); as bench.ts.
CASES = {
    "shapes-ae": (shapes_model, 32, 0, (3, 32, 32)),
    "shapes-irmae-l4": (shapes_model, 32, 4, (3, 32, 32)),
    "mnist-irmae-l8": (mnist_model, 128, 8, (1, 32, 32)),
}


def forward_macs(model, x):
    """Multiply-adds of each convolution and linear layer in one forward pass of x."""
    counts = []

    def hook(module, inputs, output):
        if isinstance(module, nn.Linear):
            macs = output.numel() * module.in_features
        elif isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            macs = output.numel() * module.in_channels * kh * kw
        else:  # ConvTranspose2d: every input pixel meets the whole filter.
            kh, kw = module.kernel_size
            macs = inputs[0].numel() * module.out_channels * kh * kw
        counts.append(macs)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return counts


def median(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def measure(name, device, budget):
    build, d, depth, shape = CASES[name]
    torch.manual_seed(0)
    model = build(d, depth).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(TRAIN_BATCH, *shape, generator=gen) * 2 - 1).to(device)
    x_infer = (torch.rand(INFER_BATCH, *shape, generator=gen) * 2 - 1).to(device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    layer_macs = forward_macs(model, x)
    forward = sum(layer_macs)
    train_macs = 3 * forward - layer_macs[0]  # no input gradient for the image

    step_ms = []
    cpu_start = time.process_time()
    for i in range(budget["trainWarmup"] + budget["trainSteps"]):
        if i == budget["trainWarmup"]:
            cpu_start = time.process_time()
        start = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = torch.mean((model(x) - x) ** 2)
        loss.backward()
        optimizer.step()
        sync()
        elapsed = (time.perf_counter() - start) * 1000
        if i >= budget["trainWarmup"]:
            step_ms.append(elapsed)
    cpu_seconds = time.process_time() - cpu_start

    infer_ms = []
    with torch.no_grad():
        for i in range(budget["inferWarmup"] + budget["inferRuns"]):
            start = time.perf_counter()
            model(x_infer)
            sync()
            elapsed = (time.perf_counter() - start) * 1000
            if i >= budget["inferWarmup"]:
                infer_ms.append(elapsed)

    train_step = median(step_ms)
    infer_batch = median(infer_ms)
    return {
        "trainImagesPerSec": round(TRAIN_BATCH * 1000 / train_step, 1),
        # Per second of this process's CPU time (all its threads): on one
        # thread, insensitive to other processes taking turns on the cores.
        "trainImagesPerCpuSec": round(TRAIN_BATCH * budget["trainSteps"] / cpu_seconds, 1),
        "inferImagesPerSec": round(INFER_BATCH * 1000 / infer_batch, 1),
        "trainStepMs": round(train_step, 3),
        "inferBatchMs": round(infer_batch, 3),
        "trainMacsPerStep": train_macs,
        "trainGmacPerSec": round(train_macs / train_step / 1e6, 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op CPU threads (default 1)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated case names (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="3 + 10 training steps, 1 + 4 inference runs")
    parser.add_argument("--tf32", action="store_true",
                        help="allow TF32 on CUDA (default: float32 throughout)")
    parser.add_argument("--json", metavar="PATH", help="also write the result here")
    args = parser.parse_args()

    names = args.cases.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    if args.threads < 1:
        parser.error(f"--threads takes a positive integer, got {args.threads}")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: torch.cuda.is_available() is False")

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        torch.backends.cudnn.allow_tf32 = args.tf32
    budget = QUICK if args.quick else FULL
    result = {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": args.device,
        "deviceName": (torch.cuda.get_device_name(0) if device.type == "cuda"
                       else platform.processor() or platform.machine()),
        "threads": torch.get_num_threads(),
        "tf32": bool(args.tf32 and device.type == "cuda"),
        "budget": budget,
        "trainBatch": TRAIN_BATCH,
        "inferBatch": INFER_BATCH,
        "cases": {},
    }
    for name in names:
        result["cases"][name] = measure(name, device, budget)
        print(f"{name} {json.dumps(result['cases'][name])}", file=sys.stderr, flush=True)
    text = json.dumps(result)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
