#!/usr/bin/env python3
"""Golden fixtures for the conv family, made with PyTorch (CPU).

    python3 tests/golden/make_conv_golden.py [OUTDIR]      (default: tests/golden/conv)

writes one text file per op group (conv2d.txt, gram.txt, ...). tests/test_conv.c reads
them and checks the CPU reference against them at the DESIGN.md tolerances.

How the expected values are made
--------------------------------
As tests/golden/make_nn_golden.py: inputs are drawn from a seeded generator and rounded
to the case's dtype, so dlk and PyTorch see exactly the same numbers; the expected
outputs are PyTorch's results computed in float64 from those inputs (F.conv2d, autograd),
rounded once to the output dtype. dlk's documented intermediate rounding is reproduced:
conv2d backward with an activation rounds dz = dy * act'(z) to the dtype before the
backward-data and backward-filter convolutions (it lives in a tensor of that dtype), and
sums db from the unrounded dz.

Each case is also recomputed natively in its own dtype where PyTorch's CPU supports it,
and the script refuses to write a fixture whose native result differs from the float64
one by more than the DESIGN.md tolerance (f32 1e-5/1e-5, f16 1e-3/4e-3, bf16 1e-2/2e-2).

File format (text, whitespace separated, '#' starts a comment line)
-------------------------------------------------------------------
    case <name> <op>
    param <key> <number>                       zero or more
    in  <tensor> <dtype> <ndim> <dim0> ... <dimN-1>
    <numel values, row-major over the logical (NCHW) shape>
    out <tensor> <dtype> <ndim> <dims...>
    <numel values>
    end
dtype is f32, f16, bf16 or f64; values are printed with enough digits to round-trip their
dtype. Every case's tensors are logical PyTorch shapes; `param cl 1` asks the reader to lay
each 4-D tensor out channels-last in memory (torch.channels_last strides), which must not
change any value. Ops and their tensors:
    conv2d_fwd   stride_h stride_w pad_h pad_w dil_h dil_w groups act cl;
                 in x w [b]; out y z
    conv2d_bwd   the same params; in x w [z] dy; out dx dw db
    gram_fwd     norm (0 none, 1 H*W, 2 C*H*W) cl; in f; out g
    gram_bwd     norm cl; in f dg; out df
act: 0 none, 1 relu, 2 tanh, 3 sigmoid, 4 gelu (dlk_activation).
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

F64 = torch.float64
DT = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64}
TOL = {"f32": (1e-5, 1e-5), "f16": (1e-3, 4e-3), "bf16": (1e-2, 2e-2), "f64": (1e-12, 1e-12)}
DIGITS = {"f32": 9, "f16": 5, "bf16": 4, "f64": 17}
ACTS = {0: lambda v: v, 1: torch.relu, 2: torch.tanh, 3: torch.sigmoid, 4: F.gelu}
DTYPES = ("f32", "f16", "bf16", "f64")

gen = torch.Generator().manual_seed(20240917)


def randn(*shape, scale=1.0):
    return torch.randn(*shape, generator=gen, dtype=F64) * scale


def rnd(t, dt):
    """Round a float64 tensor to dtype dt (returned as float64)."""
    return t.to(DT[dt]).to(F64)


def fmt_value(v, dt):
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.*g" % (DIGITS[dt], v)


class Writer:
    def __init__(self):
        self.lines = []

    def case(self, name, op, params, ins, outs):
        """ins/outs: lists of (name, dtype, float64 tensor). Outputs are rounded."""
        self.lines.append("case %s %s" % (name, op))
        for k, v in params.items():
            self.lines.append("param %s %s" % (k, repr(float(v)) if isinstance(v, float) else str(int(v))))
        for role, items in (("in", ins), ("out", outs)):
            for tname, dt, t in items:
                t = rnd(t.detach(), dt)
                shape = list(t.shape)
                self.lines.append("%s %s %s %d %s" % (role, tname, dt, len(shape), " ".join(map(str, shape))))
                vals = [fmt_value(v, dt) for v in t.reshape(-1).tolist()]
                for i in range(0, len(vals), 16):
                    self.lines.append(" ".join(vals[i:i + 16]))
        self.lines.append("end")

    def save(self, path):
        with open(path, "w") as f:
            f.write("# dlk conv golden fixtures: made by tests/golden/make_conv_golden.py with torch %s\n" %
                    torch.__version__)
            f.write("# format: see the docstring of that script\n")
            f.write("\n".join(self.lines) + "\n")


def check_native(name, dt, truth, native):
    """Refuse a fixture whose native-dtype PyTorch result is outside the tolerance."""
    atol, rtol = TOL[dt]
    for k, (t, n) in enumerate(zip(truth, native)):
        if n is None:
            continue
        t = t.detach().to(F64)
        n = n.detach().to(F64)
        err = (t - n).abs()
        bad = ~((err <= atol + rtol * t.abs()) | (t == n))
        if bool(bad.any()):
            i = int(bad.reshape(-1).nonzero()[0])
            raise SystemExit("%s: output %d: native %s result %r vs float64 %r is outside the tolerance; "
                             "choose tamer inputs" % (name, k, dt, n.reshape(-1)[i].item(), t.reshape(-1)[i].item()))


def native(fn, dt, *args):
    """Run fn on the inputs cast to dt, or None when PyTorch's CPU lacks a kernel."""
    try:
        out = fn(*[a.to(DT[dt]) if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args])
        return [o.detach().to(F64) if o is not None else None for o in out]
    except (RuntimeError, NotImplementedError):
        return None


# ---------------------------------------------------------------------------------------
# conv2d: forward with bias + activation, backward (dx, dw, db)
# ---------------------------------------------------------------------------------------
# name, N, C, H, W, K, R, S, stride, pad, dil, groups, bias, act, channels-last
CONV_CASES = [
    ("3x3", 2, 3, 5, 4, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1, 1, 0, 0),
    ("1x1", 2, 5, 3, 4, 3, 1, 1, (1, 1), (0, 0), (1, 1), 1, 0, 0, 0),
    ("7x7_s2", 1, 2, 9, 8, 3, 7, 7, (2, 2), (3, 3), (1, 1), 1, 1, 0, 0),
    ("dilated", 1, 3, 7, 6, 2, 3, 3, (1, 1), (2, 2), (2, 2), 1, 1, 0, 0),
    ("grouped", 2, 4, 4, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), 2, 1, 0, 0),
    ("depthwise", 2, 4, 5, 5, 4, 3, 3, (2, 2), (1, 1), (1, 1), 4, 1, 0, 0),
    ("depthwise_mult2", 1, 3, 4, 5, 6, 3, 3, (1, 1), (1, 1), (1, 1), 3, 0, 0, 0),
    ("asym", 1, 3, 6, 7, 4, 3, 2, (2, 1), (1, 0), (1, 2), 1, 1, 0, 0),
    ("bias_relu", 2, 3, 4, 4, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1, 1, 1, 0),
    ("bias_relu_cl", 2, 3, 4, 5, 4, 3, 3, (1, 1), (1, 1), (1, 1), 1, 1, 1, 1),
    ("grouped_dilated_cl", 1, 4, 7, 6, 4, 3, 3, (2, 1), (2, 1), (2, 1), 2, 1, 0, 1),
    ("tanh", 1, 2, 4, 4, 3, 3, 3, (1, 1), (1, 1), (1, 1), 1, 1, 2, 0),
    ("gelu_cl", 1, 2, 4, 3, 3, 2, 2, (1, 1), (0, 1), (1, 1), 1, 1, 4, 1),
    ("out1", 1, 2, 3, 3, 3, 3, 3, (1, 1), (1, 1), (2, 2), 1, 1, 0, 0),
    ("pad_big", 1, 2, 3, 4, 3, 3, 3, (1, 1), (2, 2), (1, 1), 1, 1, 0, 0),
]


def conv_fwd_fn(x, wt, b, stride, pad, dil, groups, act):
    z = F.conv2d(x, wt, b, stride=stride, padding=pad, dilation=dil, groups=groups)
    return ACTS[act](z), z


def conv_bwd_fn(x, wt, dz, stride, pad, dil, groups):
    dx = torch.nn.grad.conv2d_input(x.shape, wt, dz, stride=stride, padding=pad, dilation=dil, groups=groups)
    dw = torch.nn.grad.conv2d_weight(x, wt.shape, dz, stride=stride, padding=pad, dilation=dil, groups=groups)
    return dx, dw


# f64 (checked by finite differences as well) on a few cases, to keep the files small
F64_CONV_CASES = ("3x3", "asym", "depthwise", "bias_relu_cl", "grouped_dilated_cl", "gelu_cl")


def make_conv2d(w):
    for dt in DTYPES:
        for name, n, c, h, wd, k, r, s, stride, pad, dil, groups, has_b, act, cl in CONV_CASES:
            if dt == "f64" and name not in F64_CONV_CASES:
                continue
            x = rnd(randn(n, c, h, wd), dt)
            wt = rnd(randn(k, c // groups, r, s, scale=1.0 / math.sqrt(c // groups * r * s)), dt)
            b = rnd(randn(k, scale=0.5), dt) if has_b else None
            params = {"stride_h": stride[0], "stride_w": stride[1], "pad_h": pad[0], "pad_w": pad[1],
                      "dil_h": dil[0], "dil_w": dil[1], "groups": groups, "act": act, "cl": cl}
            geo = (stride, pad, dil, groups)
            y, z = conv_fwd_fn(x, wt, b, *geo, act)
            cname = "conv2d_fwd_%s_%s" % (name, dt)
            check_native(cname, dt, (y, z), native(conv_fwd_fn, dt, x, wt, b, *geo, act) or [None, None])
            ins = [("x", dt, x), ("w", dt, wt)] + ([("b", dt, b)] if b is not None else [])
            w.case(cname, "conv2d_fwd", params, ins, [("y", dt, y), ("z", dt, z)])

            # backward from the rounded z: dz = dy * act'(z) rounded to dt, db from the
            # unrounded dz (dlk's contract)
            zr = rnd(z, dt)
            # dw sums N*Ho*Wo products: dy scaled so that dw stays O(1), where PyTorch's
            # native half-precision kernels (partial sums in the dtype) stay inside the
            # tolerance
            dy = rnd(randn(*z.shape, scale=min(1.0, 2.0 / math.sqrt(z[:, 0].numel()))), dt)
            zz = zr.clone().requires_grad_(True)
            ACTS[act](zz).backward(dy)
            dz_exact = zz.grad if act else dy
            dz = rnd(dz_exact, dt)
            dx, dw = conv_bwd_fn(x, wt, dz, *geo)
            db = dz_exact.sum(dim=(0, 2, 3))
            cname = "conv2d_bwd_%s_%s" % (name, dt)
            check_native(cname, dt, (dx, dw), native(conv_bwd_fn, dt, x, wt, dz, *geo) or [None, None])
            ins = [("x", dt, x), ("w", dt, wt)] + ([("z", dt, zr)] if act else []) + [("dy", dt, dy)]
            w.case(cname, "conv2d_bwd", params, ins, [("dx", dt, dx), ("dw", dt, dw), ("db", dt, db)])


# ---------------------------------------------------------------------------------------
# Gram matrix (style transfer): g = F F^T / norm, df = (dg + dg^T) F / norm
# ---------------------------------------------------------------------------------------
# name, N, C, H, W, norm, channels-last
GRAM_CASES = [
    ("plain", 2, 3, 4, 5, 0, 0),
    ("hw", 1, 4, 3, 3, 1, 0),
    ("chw_cl", 2, 5, 2, 7, 2, 1),
    ("one", 1, 1, 1, 1, 1, 0),
    ("wide", 1, 6, 5, 7, 1, 1),
]


def gram_fn(f, norm):
    n, c, h, wd = f.shape
    m = f.reshape(n, c, h * wd)
    div = (1, h * wd, c * h * wd)[norm]
    return (torch.bmm(m, m.transpose(1, 2)) / div,)


def gram_bwd_fn(f, dg, norm):
    ff = f.clone().requires_grad_(True)
    gram_fn(ff, norm)[0].backward(dg)
    return (ff.grad,)


def make_gram(w):
    for dt in DTYPES:
        for name, n, c, h, wd, norm, cl in GRAM_CASES:
            f = rnd(randn(n, c, h, wd), dt)
            params = {"norm": norm, "cl": cl}
            g = gram_fn(f, norm)
            gname = "gram_fwd_%s_%s" % (name, dt)
            check_native(gname, dt, g, native(gram_fn, dt, f, norm) or [None])
            w.case(gname, "gram_fwd", params, [("f", dt, f)], [("g", dt, g[0])])
            # not symmetric: the true gradient uses dg + dg^T; scaled so that PyTorch's
            # native bf16 backward (two products rounded before their sum) stays inside
            dg = rnd(randn(n, c, c, scale=0.25), dt)
            df = gram_bwd_fn(f, dg, norm)
            gname = "gram_bwd_%s_%s" % (name, dt)
            check_native(gname, dt, df, native(gram_bwd_fn, dt, f, dg, norm) or [None])
            w.case(gname, "gram_bwd", params, [("f", dt, f), ("dg", dt, dg)], [("df", dt, df[0])])


# ---------------------------------------------------------------------------------------
# (pooling, batch norm and MSE add their make_* sections here, after Gram)
# ---------------------------------------------------------------------------------------

FILES = [("conv2d", make_conv2d), ("gram", make_gram)]


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    total = 0
    for fname, fn in FILES:
        w = Writer()
        fn(w)
        path = os.path.join(outdir, fname + ".txt")
        w.save(path)
        size = os.path.getsize(path)
        total += size
        print("%-40s %4d cases %7d bytes" % (path, sum(1 for l in w.lines if l.startswith("case ")), size))
    print("total %d bytes" % total)
    if total >= 1 << 20:
        raise SystemExit("fixtures exceed 1 MiB")


if __name__ == "__main__":
    main()
