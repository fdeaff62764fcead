#!/usr/bin/env python3
"""Golden fixtures for the conv family's pooling, batch norm and MSE ops, made with
PyTorch (CPU).

    python3 tests/golden/make_pool_bn_golden.py [OUTDIR]      (default: tests/golden/conv)

writes pool2d.txt, adaptive_pool2d.txt, batchnorm.txt and mse.txt. tests/test_cnnops.c
reads them and checks the CPU reference against them at the DESIGN.md tolerances.

How the expected values are made: exactly as tests/golden/make_nn_golden.py (whose Writer
and helpers this script reuses): inputs drawn from a seeded generator and rounded to the
case's dtype; expected outputs are PyTorch's results in float64 from those inputs
(torch.nn.functional, autograd, aten's native_batch_norm and native_batch_norm_backward),
rounded once to the output dtype; each case is recomputed natively in its own dtype where
PyTorch's CPU supports it, and a fixture whose native result leaves the tolerance is
refused. Batch norm's backward takes the forward's saved statistics rounded to their
dtype (F32 for F32/F16/BF16, F64 for F64), as dlk hands them over. Max pooling cases
with ties (small integers) pin the first-maximum routing of the backward.

File format: the one of make_nn_golden.py (case / param / in / out / end). An extra
param `cl 1` means: lay the 4-D tensors of the case out channels-last in memory
(strides [H W C, 1, W C, C]); values are always listed in logical row-major order.
Ops and their tensors:
    pool2d_fwd      kind (0 max, 1 avg) kh kw sh sw ph pw dh dw ceil_mode
                    count_include_pad cl; in x; out y
    pool2d_bwd      the same params; in x dy; out dx
    adaptive_fwd    cl; in x; out y
    adaptive_bwd    cl; in dy; out dx
    batchnorm_fwd   eps momentum training cl; in x [gamma] [beta] [running_mean
                    running_var]; out y [save_mean save_rstd] [running_mean running_var]
                    (running stats as updated, training only)
    batchnorm_bwd   eps training cl; in x [gamma] save_mean save_rstd dy (training 0:
                    save_mean/save_rstd hold the running mean/variance, as dlk's API
                    takes them); out dx dgamma dbeta
    mse_fwd         reduction (0 mean, 1 sum, 2 none); in x target; out loss
    mse_bwd         reduction; in x target dloss; out dx
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_nn_golden as nn  # noqa: E402  (Writer, rounding, native checks)

F64 = torch.float64
rnd, stat_dt, check_native, native = nn.rnd, nn.stat_dt, nn.check_native, nn.native
DTYPES = ("f32", "f16", "bf16", "f64")

gen = torch.Generator().manual_seed(20240907)


def randn(*shape, scale=1.0):
    return torch.randn(tuple(shape), generator=gen, dtype=F64) * scale


def randint(lo, hi, *shape):
    return torch.randint(lo, hi, shape, generator=gen).to(F64)


class Writer(nn.Writer):
    def save(self, path):
        with open(path, "w") as f:
            f.write("# dlk conv golden fixtures (pooling, batch norm, MSE): made by "
                    "tests/golden/make_pool_bn_golden.py with torch %s\n" % torch.__version__)
            f.write("# format: see the docstring of that script\n")
            f.write("\n".join(self.lines) + "\n")


# ---------------------------------------------------------------------------------------
# pool2d
# ---------------------------------------------------------------------------------------
def pool_fwd_fn(x, kind, k, s, p, d, ceil, cip, dt):
    if kind == 0:
        return (F.max_pool2d(x, k, s, p, d, ceil_mode=bool(ceil)),)
    return (F.avg_pool2d(x, k, s, p, ceil_mode=bool(ceil), count_include_pad=bool(cip)),)


def pool_bwd_fn(x, dy, kind, k, s, p, d, ceil, cip, dt):
    x = x.detach().clone().requires_grad_(True)
    (y,) = pool_fwd_fn(x, kind, k, s, p, d, ceil, cip, dt)
    y.backward(dy)
    return (x.grad,)


def make_pool(w):
    cases = [
        # name, kind, (N, C, H, W), kernel, stride, padding, dilation, ceil_mode, cip, ties, cl
        ("max_2x2", 0, (2, 2, 7, 5), (2, 2), (2, 2), (0, 0), (1, 1), 0, 0, 0, 0),
        ("max_3x3_s2_p1_ceil", 0, (1, 2, 8, 7), (3, 3), (2, 2), (1, 1), (1, 1), 1, 0, 0, 0),
        ("max_3x3_dil2_p1", 0, (1, 2, 7, 9), (3, 3), (1, 1), (1, 1), (2, 2), 0, 0, 0, 0),
        ("max_2x3_s12_p11_ceil", 0, (2, 1, 6, 7), (2, 3), (1, 2), (1, 1), (1, 1), 1, 0, 0, 0),
        ("max_ties_3x3_s1", 0, (1, 2, 5, 6), (3, 3), (1, 1), (1, 1), (1, 1), 0, 0, 1, 0),
        ("max_ties_2x2_s2_ceil", 0, (1, 2, 5, 5), (2, 2), (2, 2), (0, 0), (1, 1), 1, 0, 1, 0),
        ("max_3x3_s2_p1_cl", 0, (2, 3, 7, 6), (3, 3), (2, 2), (1, 1), (1, 1), 0, 0, 0, 1),
        ("max_out1", 0, (1, 2, 3, 2), (3, 2), (1, 1), (1, 1), (2, 1), 0, 0, 0, 0),
        ("avg_2x2", 1, (2, 2, 6, 5), (2, 2), (2, 2), (0, 0), (1, 1), 0, 1, 0, 0),
        ("avg_3x3_s2_p1_ceil_cip", 1, (1, 2, 8, 7), (3, 3), (2, 2), (1, 1), (1, 1), 1, 1, 0, 0),
        ("avg_3x3_s2_p1_ceil_nocip", 1, (1, 2, 8, 7), (3, 3), (2, 2), (1, 1), (1, 1), 1, 0, 0, 0),
        ("avg_3x2_s21_p10_nocip", 1, (1, 2, 7, 6), (3, 2), (2, 1), (1, 0), (1, 1), 0, 0, 0, 0),
        ("avg_3x3_s1_p1_cip_cl", 1, (2, 3, 5, 4), (3, 3), (1, 1), (1, 1), (1, 1), 0, 1, 0, 1),
        ("avg_2x2_s3_ceil_nocip", 1, (1, 2, 7, 8), (2, 2), (3, 3), (1, 1), (1, 1), 1, 0, 0, 0),
    ]
    for dt in DTYPES:
        for name, kind, shape, k, s, p, d, ceil, cip, ties, cl in cases:
            x = randint(-2, 3, *shape) if ties else rnd(randn(*shape), dt)
            params = {"kind": kind, "kh": k[0], "kw": k[1], "sh": s[0], "sw": s[1], "ph": p[0], "pw": p[1],
                      "dh": d[0], "dw": d[1], "ceil_mode": ceil, "count_include_pad": cip, "cl": cl}
            (y,) = pool_fwd_fn(x, kind, k, s, p, d, ceil, cip, dt="f64")
            cname = "pool2d_fwd_%s_%s" % (name, dt)
            check_native(cname, dt, (y,), native(pool_fwd_fn, dt, x, kind, k, s, p, d, ceil, cip) or [None])
            w.case(cname, "pool2d_fwd", params, [("x", dt, x)], [("y", dt, y)])
            dy = rnd(randn(*y.shape), dt)
            (dx,) = pool_bwd_fn(x, dy, kind, k, s, p, d, ceil, cip, dt="f64")
            cname = "pool2d_bwd_%s_%s" % (name, dt)
            check_native(cname, dt, (dx,), native(pool_bwd_fn, dt, x, dy, kind, k, s, p, d, ceil, cip) or [None])
            w.case(cname, "pool2d_bwd", params, [("x", dt, x), ("dy", dt, dy)], [("dx", dt, dx)])


# ---------------------------------------------------------------------------------------
# adaptive average pool2d
# ---------------------------------------------------------------------------------------
def adaptive_fwd_fn(x, out, dt):
    return (F.adaptive_avg_pool2d(x, out),)


def adaptive_bwd_fn(x, dy, out, dt):
    x = x.detach().clone().requires_grad_(True)
    F.adaptive_avg_pool2d(x, out).backward(dy)
    return (x.grad,)


def make_adaptive(w):
    cases = [("7x5_to_3x2", (2, 2, 7, 5), (3, 2), 0), ("6x6_to_1x1", (2, 3, 6, 6), (1, 1), 0),
             ("5x7_same", (1, 1, 5, 7), (5, 7), 0), ("3x4_to_5x6", (1, 2, 3, 4), (5, 6), 0),
             ("10x9_to_4x4_cl", (1, 3, 10, 9), (4, 4), 1), ("1x1_to_2x3", (1, 2, 1, 1), (2, 3), 0)]
    for dt in DTYPES:
        for name, shape, out, cl in cases:
            x = rnd(randn(*shape), dt)
            (y,) = adaptive_fwd_fn(x, out, dt="f64")
            cname = "adaptive_fwd_%s_%s" % (name, dt)
            check_native(cname, dt, (y,), native(adaptive_fwd_fn, dt, x, out) or [None])
            w.case(cname, "adaptive_fwd", {"cl": cl}, [("x", dt, x)], [("y", dt, y)])
            dy = rnd(randn(*y.shape), dt)
            (dx,) = adaptive_bwd_fn(x, dy, out, dt="f64")
            cname = "adaptive_bwd_%s_%s" % (name, dt)
            check_native(cname, dt, (dx,), native(adaptive_bwd_fn, dt, x, dy, out) or [None])
            w.case(cname, "adaptive_bwd", {"cl": cl}, [("dy", dt, dy)], [("dx", dt, dx)])


# ---------------------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------------------
def bn_fwd_fn(x, gamma, beta, rm, rv, training, momentum, eps, dt):
    rm = rm.clone() if rm is not None else None
    rv = rv.clone() if rv is not None else None
    y = F.batch_norm(x, rm, rv, gamma, beta, training=bool(training), momentum=momentum, eps=eps)
    return y, rm, rv


def make_batchnorm(w):
    cases = [
        # name, shape, affine, running, training, momentum, eps, cl
        ("train_affine", (3, 3, 4, 5), 1, 1, 1, 0.1, 1e-5, 0),
        ("train_plain_3d", (4, 3, 5), 0, 1, 1, 0.3, 1e-3, 0),
        ("train_2d_norunning", (6, 5), 1, 0, 1, 0.1, 1e-5, 0),
        ("train_cl", (2, 4, 3, 3), 1, 1, 1, 0.25, 1e-5, 1),
        ("train_m2", (2, 3, 1, 1), 1, 1, 1, 0.1, 1e-5, 0),
        ("eval_affine", (2, 4, 3, 5), 1, 1, 0, 0.1, 1e-5, 0),
        ("eval_plain_cl", (2, 3, 4, 3), 0, 1, 0, 0.1, 1e-3, 1),
    ]
    for dt in DTYPES:
        sdt = stat_dt(dt)
        for name, shape, affine, running, training, mom, eps, cl in cases:
            c = shape[1]
            x = rnd(randn(*shape, scale=1.5) + 0.5, dt)
            gamma = rnd(1.0 + 0.5 * randn(c), sdt) if affine else None
            beta = rnd(randn(c), sdt) if affine else None
            rm = rnd(0.3 * randn(c), sdt) if running else None
            rv = rnd(0.5 + randn(c).abs(), sdt) if running else None
            y, rm_new, rv_new = bn_fwd_fn(x, gamma, beta, rm, rv, training, mom, eps, dt="f64")
            cname = "batchnorm_fwd_%s_%s" % (name, dt)
            # native: x in its dtype, the parameters and statistics in theirs (torch's CPU
            # batch norm takes f32 parameters with f16/bf16 input)
            sd = nn.DT[sdt]
            cast = (lambda t: t.to(sd) if t is not None else None)
            try:
                nat = bn_fwd_fn(x.to(nn.DT[dt]), cast(gamma), cast(beta), cast(rm), cast(rv), training, mom, eps, dt=dt)
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
            dy = rnd(randn(*shape), dt)
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


def mse_fwd_fn(x, t, red, dt):
    return (F.mse_loss(x, t, reduction=RED[red]),)


def mse_bwd_fn(x, t, dl, red, dt):
    x = x.detach().clone().requires_grad_(True)
    F.mse_loss(x, t, reduction=RED[red]).backward(dl)
    return (x.grad,)


def make_mse(w):
    cases = [("mean", (3, 5), 0), ("sum", (2, 3, 4), 1), ("none", (4, 3), 2), ("mean_4d", (2, 3, 2, 5), 0),
             ("none_scalar", (), 2), ("sum_one", (1,), 1)]
    for dt in DTYPES:
        sdt = stat_dt(dt)
        for name, shape, red in cases:
            x, t = rnd(randn(*shape), dt), rnd(randn(*shape), dt)
            (loss,) = mse_fwd_fn(x, t, red, dt="f64")
            cname = "mse_fwd_%s_%s" % (name, dt)
            nat = native(mse_fwd_fn, dt, x, t, red)
            check_native(cname, dt, (loss,), [nat[0].to(F64) if nat else None])
            w.case(cname, "mse_fwd", {"reduction": red}, [("x", dt, x), ("target", dt, t)], [("loss", sdt, loss)])
            dl = rnd(randn(*loss.shape), sdt)
            (dx,) = mse_bwd_fn(x, t, dl, red, dt="f64")
            cname = "mse_bwd_%s_%s" % (name, dt)
            w.case(cname, "mse_bwd", {"reduction": red}, [("x", dt, x), ("target", dt, t), ("dloss", sdt, dl)],
                   [("dx", dt, dx)])


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "conv")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    total = 0
    for fname, fn in [("pool2d", make_pool), ("adaptive_pool2d", make_adaptive), ("batchnorm", make_batchnorm),
                      ("mse", make_mse)]:
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
