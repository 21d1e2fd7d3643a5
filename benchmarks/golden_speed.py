"""Speed of the integer golden model on VGG-Small- and CNV-shaped networks.

Run by hand (not a test)::

    OMP_NUM_THREADS=1 python benchmarks/golden_speed.py [--images 256] [--batch-size 256]

Builds random networks of the two shapes (random weights, random thresholds in
each layer's accumulator range), runs ``--images`` random uint8 images through
:func:`hwgen.compile.golden.run_network` and prints images/s and the projected
time for 10,000 images, plus a per-layer breakdown. Targets: VGG-Small < 5 min,
CNV < 1 min for 10,000 images. Timings on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time

import numpy as np

from hwgen.compile.kinds import conv as conv_kind
from hwgen.compile.kinds import pool as pool_kind
from hwgen.compile.kinds.thresholds import threshold_last
from hwgen.compile.golden import run_network
from hwgen.compile.ir import (
    ConvLayer,
    MaxPoolLayer,
    Network,
    ScoreOutput,
    ThresholdOutput,
    accumulator_range,
)

TARGETS_S = {"vgg_small": 300.0, "cnv": 60.0}


def _conv(rng, name, in_shape, c_out, k, *, padding, kind, weight_bits, last=False) -> ConvLayer:
    c_in = in_shape[0]
    if weight_bits == 1:
        w = rng.choice(np.array([-1, 1], dtype=np.int64), size=(c_out, c_in, k, k))
    else:
        m = (1 << (weight_bits - 1)) - 1
        w = rng.integers(-m, m + 1, size=(c_out, c_in, k, k), dtype=np.int64)
    layer = ConvLayer(name=name, in_shape=tuple(in_shape), weights=w, weight_bits=weight_bits,
                      stride=1, padding=padding, input_kind=kind, output=None,
                      input_offset=rng.integers(100, 156, size=c_in).astype(np.int64)
                      if kind == "uint8" else None)
    if last:
        layer.output = ScoreOutput(rng.integers(1, 5, size=c_out).astype(np.int64),
                                   rng.integers(-100, 100, size=c_out).astype(np.int64))
    else:
        lo, hi = accumulator_range(layer)
        # Random thresholds in the accumulator range, concentrated where the
        # accumulator of random inputs lands (about +-sqrt(fan-in) * scale).
        spread = np.sqrt(layer.fan_in) * float(np.abs(w).mean()) * (1 if kind == "binary" else 64)
        t = np.clip(np.round(rng.normal(0, spread, size=c_out)), lo, hi).astype(np.int64)
        d = rng.choice(np.array([-1, 1], dtype=np.int8), size=c_out)
        layer.output = ThresholdOutput(t, d)
    return layer


def _pool(rng, name, in_shape) -> MaxPoolLayer:
    return MaxPoolLayer(name, tuple(in_shape), 2, 2, rng.random(in_shape[0]) < 0.5)


def _chain(rng, name, input_shape, spec, num_classes) -> Network:
    layers, shape, kind = [], tuple(input_shape), "uint8"
    for i, item in enumerate(spec):
        if item == "pool":
            layer = _pool(rng, f"pool{i}", shape)
        else:
            c_out, k, pad, bits = item
            layer = _conv(rng, f"conv{i}", shape, c_out, k, padding=pad, kind=kind,
                          weight_bits=bits, last=i == len(spec) - 1)
            kind = "binary"
        layers.append(layer)
        shape = layer.out_shape
    return Network(name, tuple(input_shape), layers, num_classes)


def vgg_small(rng) -> Network:
    """uint8 3x32x32; 3->128 (8-bit weights); binary 128,128,P,256,256,P,512,512,P; 512x4x4 -> 10."""
    spec = [(128, 3, 1, 8), (128, 3, 1, 1), "pool", (256, 3, 1, 1), (256, 3, 1, 1), "pool",
            (512, 3, 1, 1), (512, 3, 1, 1), "pool", (10, 4, 0, 1)]
    return _chain(rng, "vgg_small", (3, 32, 32), spec, 10)


def cnv(rng) -> Network:
    """uint8 3x32x32; binary 3x3 convs 64,64,P,128,128,P,256,256 (no padding); 1x1 256->512->512->10."""
    spec = [(64, 3, 0, 1), (64, 3, 0, 1), "pool", (128, 3, 0, 1), (128, 3, 0, 1), "pool",
            (256, 3, 0, 1), (256, 3, 0, 1), (512, 1, 0, 1), (512, 1, 0, 1), (10, 1, 0, 1)]
    return _chain(rng, "cnv", (3, 32, 32), spec, 10)


def per_layer(net: Network, pixels: np.ndarray) -> list[tuple[str, str, float, float]]:
    """(name, path, conv or pool seconds, threshold seconds) per layer, channel-last as in run_network."""
    rows, x = [], pixels.transpose(0, 2, 3, 1)
    for layer in net.layers:
        t0 = time.perf_counter()
        if isinstance(layer, MaxPoolLayer):
            x = pool_kind._pool_last(x, layer)
            rows.append((layer.name, "pool", time.perf_counter() - t0, 0.0))
            continue
        acc = conv_kind._conv_last(layer, x)
        t1 = time.perf_counter()
        x = (conv_kind.class_scores(acc.transpose(0, 3, 1, 2), layer.output)
             if isinstance(layer.output, ScoreOutput) else threshold_last(acc, layer.output))
        path = "xnor" if layer.input_kind == "binary" and layer.weight_bits == 1 else "float64"
        rows.append((layer.name, path, t1 - t0, time.perf_counter() - t1))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-breakdown", action="store_true")
    args = ap.parse_args()

    rng = np.random.default_rng(args.seed)
    print(f"golden model speed: {args.images} images, batch {args.batch_size}, "
          f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}, {os.cpu_count()} cpus "
          f"(load average {os.getloadavg()[0]:.1f})")
    print(f"{'network':<10} {'images/s':>9} {'10k images':>11} {'target':>8}  ok")
    breakdowns = []
    for build in (vgg_small, cnv):
        net = build(rng)
        px = rng.integers(0, 256, size=(args.images, *net.input_shape), dtype=np.uint8)
        run_network(net, px[: min(8, args.images)], batch_size=args.batch_size)  # warm-up
        t0 = time.perf_counter()
        res = run_network(net, px, batch_size=args.batch_size)
        dt = time.perf_counter() - t0
        ips = args.images / dt
        proj = 10_000 / ips
        target = TARGETS_S[net.name]
        print(f"{net.name:<10} {ips:9.1f} {proj:10.1f}s {target:7.0f}s  {'yes' if proj < target else 'NO'}"
              f"   (class histogram {np.bincount(res.predictions, minlength=10).tolist()})")
        if not args.no_breakdown:
            breakdowns.append((net.name, per_layer(net, px[: min(args.images, args.batch_size)])))
    for name, rows in breakdowns:
        total = sum(r[2] + r[3] for r in rows)
        print(f"\n{name}: per layer, one batch of {min(args.images, args.batch_size)}")
        print(f"  {'layer':<8} {'path':<8} {'conv/pool':>12} {'threshold':>12} {'share':>6}")
        for lname, path, t, tt in rows:
            print(f"  {lname:<8} {path:<8} {t * 1e3:9.1f} ms {tt * 1e3:9.1f} ms "
                  f"{100 * (t + tt) / total:5.1f}%")


if __name__ == "__main__":
    main()
