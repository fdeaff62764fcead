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
    pool2d_fwd      kind (0 max, 1 avg) kh kw sh sw ph pw dh dw ceil_mode
                    count_include_pad cl; in x; out y
    pool2d_bwd      the same params; in x dy; out dx
    adaptive_fwd    cl; in x; out y
    adaptive_bwd    cl; in dy; out dx
    batchnorm_fwd   eps momentum training cl; in x [gamma] [beta] [running_mean
                    running_var]; out y [save_mean save_rstd] [running_mean running_var]
                    (the saved and updated running statistics in training only)
    batchnorm_bwd   eps training cl; in x [gamma] save_mean save_rstd dy (training 0:
                    save_mean/save_rstd hold the running mean/variance, as dlk's API
                    takes them); out dx dgamma dbeta
    mse_fwd         reduction (0 mean, 1 sum, 2 none); in x target; out loss
    mse_bwd         reduction; in x target dloss; out dx
Batch norm statistics and parameters and the MSE loss are F32 for F32/F16/BF16 data, F64
for F64. Batch norm's backward takes the forward's saved statistics rounded to their
dtype, as dlk hands them over (aten's native_batch_norm_backward gives the expected
values). Max pooling cases with ties (small integers) pin the first-maximum routing.
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
# pooling, adaptive pooling, batch norm, MSE: their own generator, so that conv2d and Gram
# cases added above do not change these fixtures
# ---------------------------------------------------------------------------------------
pgen = torch.Generator().manual_seed(20240907)


def prandn(*shape, scale=1.0):
    return torch.randn(tuple(shape), generator=pgen, dtype=F64) * scale


def prandint(lo, hi, *shape):
    return torch.randint(lo, hi, tuple(shape), generator=pgen).to(F64)


def stat_dt(dt):
    """Batch norm statistics and parameters, MSE loss: F64 for F64 data, else F32."""
    return "f64" if dt == "f64" else "f32"


# ---------------------------------------------------------------------------------------
# pool2d
# ---------------------------------------------------------------------------------------
def pool_fwd_fn(x, kind, k, s, p, d, ceil, cip):
    if kind == 0:
        return (F.max_pool2d(x, k, s, p, d, ceil_mode=bool(ceil)),)
    return (F.avg_pool2d(x, k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(cip)),)


def pool_bwd_fn(x, dy, kind, k, s, p, d, ceil, cip):
    x = x.detach().clone().requires_grad_(True)
    (y,) = pool_fwd_fn(x, kind, k, s, p, d, ceil, cip)
    y.backward(dy)
    return (x.grad,)


def make_pool(w):
    cases = [
        # name, kind, (N, C, H, W), kernel, stride, padding, dilation, ceil_mode, cip, ties, cl
        ("max_2x2", 0, (2, 1, 7, 5), (2, 2), (2, 2), (0, 0), (1, 1), 0, 0, 0, 0),
        ("max_3x3_s2_p1_ceil", 0, (1, 2, 8, 7), (3, 3), (2, 2), (1, 1), (1, 1), 1, 0, 0, 0),
        ("max_3x3_dil2_p1", 0, (1, 1, 7, 9), (3, 3), (1, 1), (1, 1), (2, 2), 0, 0, 0, 0),
        ("max_2x3_s12_p11_ceil", 0, (2, 1, 6, 7), (2, 3), (1, 2), (1, 1), (1, 1), 1, 0, 0, 0),
        ("max_ties_3x3_s1", 0, (1, 1, 5, 6), (3, 3), (1, 1), (1, 1), (1, 1), 0, 0, 1, 0),
        ("max_ties_2x2_s2_ceil", 0, (1, 2, 5, 5), (2, 2), (2, 2), (0, 0), (1, 1), 1, 0, 1, 0),
        ("max_3x3_s2_p1_cl", 0, (1, 3, 5, 6), (3, 3), (2, 2), (1, 1), (1, 1), 0, 0, 0, 1),
        ("max_out1", 0, (1, 2, 3, 2), (3, 2), (1, 1), (1, 1), (2, 1), 0, 0, 0, 0),
        ("avg_2x2", 1, (2, 1, 6, 5), (2, 2), (2, 2), (0, 0), (1, 1), 0, 1, 0, 0),
        ("avg_3x3_s2_p1_ceil_cip", 1, (1, 2, 8, 7), (3, 3), (2, 2), (1, 1), (1, 1), 1, 1, 0, 0),
        ("avg_3x3_s2_p1_ceil_nocip", 1, (1, 1, 8, 7), (3, 3), (2, 2), (1, 1), (1, 1), 1, 0, 0, 0),
        ("avg_3x2_s21_p10_nocip", 1, (1, 1, 7, 6), (3, 2), (2, 1), (1, 0), (1, 1), 0, 0, 0, 0),
        ("avg_3x3_s1_p1_cip_cl", 1, (1, 3, 4, 4), (3, 3), (1, 1), (1, 1), (1, 1), 0, 1, 0, 1),
        ("avg_2x2_s3_ceil_nocip", 1, (1, 1, 7, 8), (2, 2), (3, 3), (1, 1), (1, 1), 1, 0, 0, 0),
    ]
    for dt in DTYPES:
        for name, kind, shape, k, s, p, d, ceil, cip, ties, cl in cases:
            x = prandint(-2, 3, *shape) if ties else rnd(prandn(*shape), dt)
            params = {"kind": kind, "kh": k[0], "kw": k[1], "sh": s[0], "sw": s[1], "ph": p[0], "pw": p[1],
                      "dh": d[0], "dw": d[1], "ceil_mode": ceil, "count_include_pad": cip, "cl": cl}
            (y,) = pool_fwd_fn(x, kind, k, s, p, d, ceil, cip)
            cname = "pool2d_fwd_%s_%s" % (name, dt)
            check_native(cname, dt, (y,), native(pool_fwd_fn, dt, x, kind, k, s, p, d, ceil, cip) or [None])
            w.case(cname, "pool2d_fwd", params, [("x", dt, x)], [("y", dt, y)])
            dy = rnd(prandn(*y.shape), dt)
            (dx,) = pool_bwd_fn(x, dy, kind, k, s, p, d, ceil, cip)
            cname = "pool2d_bwd_%s_%s" % (name, dt)
            check_native(cname, dt, (dx,), native(pool_bwd_fn, dt, x, dy, kind, k, s, p, d, ceil, cip) or [None])
            w.case(cname, "pool2d_bwd", params, [("x", dt, x), ("dy", dt, dy)], [("dx", dt, dx)])


# ---------------------------------------------------------------------------------------
# adaptive average pool2d
# ---------------------------------------------------------------------------------------
def adaptive_fwd_fn(x, out):
    return (F.adaptive_avg_pool2d(x, out),)


def adaptive_bwd_fn(x, dy, out):
    x = x.detach().clone().requires_grad_(True)
    F.adaptive_avg_pool2d(x, out).backward(dy)
    return (x.grad,)


def make_adaptive(w):
    cases = [("7x5_to_3x2", (1, 2, 7, 5), (3, 2), 0), ("6x6_to_1x1", (2, 2, 5, 6), (1, 1), 0),
             ("5x7_same", (1, 1, 5, 7), (5, 7), 0), ("3x4_to_5x6", (1, 2, 3, 4), (5, 6), 0),
             ("10x9_to_4x4_cl", (1, 2, 9, 8), (4, 4), 1), ("1x1_to_2x3", (1, 2, 1, 1), (2, 3), 0)]
    for dt in DTYPES:
        for name, shape, out, cl in cases:
            x = rnd(prandn(*shape), dt)
            (y,) = adaptive_fwd_fn(x, out)
            cname = "adaptive_fwd_%s_%s" % (name, dt)
            check_native(cname, dt, (y,), native(adaptive_fwd_fn, dt, x, out) or [None])
            w.case(cname, "adaptive_fwd", {"cl": cl}, [("x", dt, x)], [("y", dt, y)])
            dy = rnd(prandn(*y.shape), dt)
            (dx,) = adaptive_bwd_fn(x, dy, out)
            cname = "adaptive_bwd_%s_%s" % (name, dt)
            check_native(cname, dt, (dx,), native(adaptive_bwd_fn, dt, x, dy, out) or [None])
            w.case(cname, "adaptive_bwd", {"cl": cl}, [("dy", dt, dy)], [("dx", dt, dx)])


# ---------------------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------------------
def bn_fwd_fn(x, gamma, beta, rm, rv, training, momentum, eps):
    rm = rm.clone() if rm is not None else None
    rv = rv.clone() if rv is not None else None
    y = F.batch_norm(x, rm, rv, gamma, beta, training=bool(training), momentum=momentum, eps=eps)
    return y, rm, rv


def make_batchnorm(w):
    cases = [
        # name, shape, affine, running, training, momentum, eps, cl
        ("train_affine", (3, 2, 4, 3), 1, 1, 1, 0.1, 1e-5, 0),
        ("train_plain_3d", (4, 3, 5), 0, 1, 1, 0.3, 1e-3, 0),
        ("train_2d_norunning", (6, 5), 1, 0, 1, 0.1, 1e-5, 0),
        ("train_cl", (2, 3, 3, 3), 1, 1, 1, 0.25, 1e-5, 1),
        ("train_m2", (2, 3, 1, 1), 1, 1, 1, 0.1, 1e-5, 0),
        ("eval_affine", (2, 3, 3, 3), 1, 1, 0, 0.1, 1e-5, 0),
        ("eval_plain_cl", (2, 2, 3, 3), 0, 1, 0, 0.1, 1e-3, 1),
    ]
    for dt in DTYPES:
        sdt = stat_dt(dt)
        for name, shape, affine, running, training, mom, eps, cl in cases:
            c = shape[1]
            x = rnd(prandn(*shape, scale=1.5) + 0.5, dt)
            gamma = rnd(1.0 + 0.5 * prandn(c), sdt) if affine else None
            beta = rnd(prandn(c), sdt) if affine else None
            rm = rnd(0.3 * prandn(c), sdt) if running else None
            rv = rnd(0.5 + prandn(c).abs(), sdt) if running else None
            y, rm_new, rv_new = bn_fwd_fn(x, gamma, beta, rm, rv, training, mom, eps)
            cname = "batchnorm_fwd_%s_%s" % (name, dt)
            # native: x in its dtype, the parameters and statistics in theirs (torch's CPU
            # batch norm takes f32 parameters with f16/bf16 input)
            sd = DT[sdt]
            cast = (lambda t: t.to(sd) if t is not None else None)
            try:
                nat = bn_fwd_fn(x.to(DT[dt]), cast(gamma), cast(beta), cast(rm), cast(rv), training, mom, eps)
            except (RuntimeError, NotImplementedError):
                nat = None
            check_native(cname, dt, (y,), [nat[0].to(F64) if nat else None])
            params = {"eps": eps, "momentum": mom, "training": training, "cl": cl}
            ins = [("x", dt, x)]
            if affine:
                ins += [("gamma", sdt, gamma), ("beta", sdt, beta)]
            if running:
                ins += [("running_mean", sdt, rm), ("running_var", sdt, rv)]
            outs = [("y", dt, y)]
            if training:
                _, smean, srstd = torch.ops.aten.native_batch_norm(x, gamma, beta, None, None, True, mom, eps)
                outs += [("save_mean", sdt, smean), ("save_rstd", sdt, srstd)]
                if running:
                    outs += [("running_mean", sdt, rm_new), ("running_var", sdt, rv_new)]
            w.case(cname, "batchnorm_fwd", params, ins, outs)

            # backward from the statistics as dlk hands them over (rounded to sdt)
            dy = rnd(prandn(*shape), dt)
            if training:
                s1, s2 = rnd(smean, sdt), rnd(srstd, sdt)
                dx, dg, db = torch.ops.aten.native_batch_norm_backward(
                    dy, x, gamma, None, None, s1, s2, True, eps, [True, True, True])
            else:
                s1, s2 = rm, rv
                dx, dg, db = torch.ops.aten.native_batch_norm_backward(
                    dy, x, gamma, rm, rv, None, None, False, eps, [True, True, True])
            cname = "batchnorm_bwd_%s_%s" % (name, dt)
            ins = [("x", dt, x)] + ([("gamma", sdt, gamma)] if affine else []) + \
                  [("save_mean", sdt, s1), ("save_rstd", sdt, s2), ("dy", dt, dy)]
            w.case(cname, "batchnorm_bwd", {"eps": eps, "training": training, "cl": cl}, ins,
                   [("dx", dt, dx), ("dgamma", sdt, dg), ("dbeta", sdt, db)])


# ---------------------------------------------------------------------------------------
# MSE
# ---------------------------------------------------------------------------------------
RED = {0: "mean", 1: "sum", 2: "none"}


def mse_fwd_fn(x, t, red):
    return (F.mse_loss(x, t, reduction=RED[red]),)


def mse_bwd_fn(x, t, dl, red):
    x = x.detach().clone().requires_grad_(True)
    F.mse_loss(x, t, reduction=RED[red]).backward(dl)
    return (x.grad,)


def make_mse(w):
    cases = [("mean", (3, 5), 0), ("sum", (2, 3, 4), 1), ("none", (4, 3), 2), ("mean_4d", (2, 2, 2, 3), 0),
             ("none_scalar", (), 2), ("sum_one", (1,), 1)]
    for dt in DTYPES:
        sdt = stat_dt(dt)
        for name, shape, red in cases:
            x, t = rnd(prandn(*shape), dt), rnd(prandn(*shape), dt)
            (loss,) = mse_fwd_fn(x, t, red)
            cname = "mse_fwd_%s_%s" % (name, dt)
            nat = native(mse_fwd_fn, dt, x, t, red)
            check_native(cname, dt, (loss,), nat or [None])
            w.case(cname, "mse_fwd", {"reduction": red}, [("x", dt, x), ("target", dt, t)], [("loss", sdt, loss)])
            dl = rnd(prandn(*loss.shape), sdt)
            (dx,) = mse_bwd_fn(x, t, dl, red)
            cname = "mse_bwd_%s_%s" % (name, dt)
            w.case(cname, "mse_bwd", {"reduction": red}, [("x", dt, x), ("target", dt, t), ("dloss", sdt, dl)],
                   [("dx", dt, dx)])


FILES = [("conv2d", make_conv2d), ("gram", make_gram), ("pool2d", make_pool), ("adaptive_pool2d", make_adaptive),
         ("batchnorm", make_batchnorm), ("mse", make_mse)]


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
