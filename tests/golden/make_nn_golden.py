#!/usr/bin/env python3
"""Golden fixtures for the nn family, made with PyTorch (CPU).

    python3 tests/golden/make_nn_golden.py [OUTDIR]      (default: tests/golden/nn)

writes one text file per op group (gemm.txt, linear.txt, ...). tests/test_nn.c reads them
and checks the CPU reference against them at the tolerances of README.md (Tests).

How the expected values are made
--------------------------------
Inputs are drawn from a seeded generator and rounded to the case's dtype, so dlk and
PyTorch see exactly the same numbers. The expected outputs are PyTorch's results computed
in float64 from those inputs (torch.nn.functional, autograd, torch.optim and aten
backward functions), rounded once to the output dtype: that is the value a correct
implementation approximates, with no reordering noise in the fixture itself. dlk's
intermediate roundings are reproduced where dlk documents them: linear_backward rounds
dz = dy * act'(z) to the dtype before the two GEMMs (as PyTorch's half-precision autograd
does), and optimizer states are f32 for f32/f16/bf16 parameters (dlk's contract): the
expected values are torch.optim run in float64, the new state rounded to f32.

Each case is also recomputed natively in its own dtype where PyTorch's CPU supports it,
and the script refuses to write a fixture whose native result differs from the float64
one by more than the README.md (Tests) tolerance (f32 1e-5/1e-5, f16 1e-3/4e-3, bf16 1e-2/2e-2):
that proves the inputs are tame enough that any sane summation order stays inside.

Dropout's expected mask is not PyTorch's RNG (dlk's mask is a documented counter-based
function): the script computes dlk_mix64 independently in Python and applies it to the
input with PyTorch.

File format (text, whitespace separated, '#' starts a comment line)
-------------------------------------------------------------------
    case <name> <op>
    param <key> <number>                       zero or more
    in  <tensor> <dtype> <ndim> <dim0> ... <dimN-1>
    <numel values, row-major>
    out <tensor> <dtype> <ndim> <dims...>
    <numel values>
    end
dtype is f32, f16, bf16, f64, i32 or i64. Float values are printed with enough digits to
round-trip their dtype (f64 17, f32 9, f16 5, bf16 4 significant digits), or nan, inf,
-inf; the reader rounds each value to the tensor's dtype. Ops and their tensors:
    gemm           alpha beta [ta tb: lay a / b out transposed in memory]; in a b c; out c
    linear_fwd     act; in x w [b]; out y z
    linear_bwd     act; in x w z dy; out dx dw db
    bias_act_fwd   act; in x [bias]; out y
    bias_act_bwd   act; in x [bias] dy; out dx dbias
    softmax_fwd    log; in x; out y
    softmax_bwd    log; in y dy; out dx
    xent_fwd       reduction (0 mean, 1 sum, 2 none) ignore_index; in logits targets;
                   out loss lse
    xent_bwd       reduction ignore_index; in logits targets dloss; out dlogits
    embedding_fwd  padding_idx; in ids table; out out
    embedding_bwd  padding_idx; in ids dout; out dtable
    layernorm_fwd  eps; in x [gamma] [beta]; out y mean rstd
    layernorm_bwd  eps; in x [gamma] mean rstd dy; out dx dgamma dbeta
    dropout        prob seed offset backward; in x; out y
    sgd            lr momentum dampening weight_decay nesterov first_step;
                   in param grad [buf]; out param [buf]
    adam           lr beta1 beta2 eps weight_decay adamw step; in param grad m v;
                   out param m v
    adagrad        lr lr_decay weight_decay eps step; in param grad sum; out param sum
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
ACT_NAMES = {0: "none", 1: "relu", 2: "tanh", 3: "sigmoid", 4: "gelu"}

gen = torch.Generator().manual_seed(20240611)


def randn(*shape, scale=1.0):
    return torch.randn(*shape, generator=gen, dtype=F64) * scale


def rnd(t, dt):
    """Round a float64 tensor to dtype dt (returned as float64)."""
    return t.to(DT[dt]).to(F64)


def stat_dt(dt):
    return "f64" if dt == "f64" else "f32"


def fmt_value(v, dt):
    if dt in ("i32", "i64"):
        return str(int(v))
    if math.isnan(v):
        return "nan"
    if math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "%.*g" % (DIGITS[dt], v)


class Writer:
    def __init__(self):
        self.lines = []

    def case(self, name, op, params, ins, outs):
        """ins/outs: lists of (name, dtype, float64-or-int tensor). Outputs are rounded."""
        self.lines.append("case %s %s" % (name, op))
        for k, v in params.items():
            self.lines.append("param %s %s" % (k, repr(float(v)) if isinstance(v, float) else str(int(v))))
        for role, items in (("in", ins), ("out", outs)):
            for tname, dt, t in items:
                if dt in DT:
                    t = rnd(t.detach(), dt)
                shape = list(t.shape)
                self.lines.append("%s %s %s %d %s" % (role, tname, dt, len(shape), " ".join(map(str, shape))))
                vals = [fmt_value(v, dt) for v in t.reshape(-1).tolist()]
                for i in range(0, len(vals), 16):
                    self.lines.append(" ".join(vals[i:i + 16]))
        self.lines.append("end")

    def save(self, path):
        with open(path, "w") as f:
            f.write("# dlk nn golden fixtures: made by tests/golden/make_nn_golden.py with torch %s\n" %
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
        both_nan = torch.isnan(t) & torch.isnan(n)
        err = (t - n).abs()
        bad = ~((err <= atol + rtol * t.abs()) | both_nan | (t == n))
        if bool(bad.any()):
            i = int(bad.reshape(-1).nonzero()[0])
            raise SystemExit("%s: output %d: native %s result %r vs float64 %r is outside the tolerance; "
                             "choose tamer inputs" % (name, k, dt, n.reshape(-1)[i].item(),
                                                      t.reshape(-1)[i].item()))


def native(fn, dt, *args):
    """Run fn on the inputs cast to dt, or None when PyTorch's CPU lacks a kernel."""
    try:
        return fn(*[a.to(DT[dt]) if isinstance(a, torch.Tensor) and a.is_floating_point() else a
                    for a in args], dt=dt)
    except (RuntimeError, NotImplementedError):
        return None


# ---------------------------------------------------------------------------------------
# gemm
# ---------------------------------------------------------------------------------------
def gemm_fn(a, b, c, alpha, beta, dt):
    out = alpha * torch.matmul(a, b)
    if beta != 0:
        out = out + beta * c
    return (out,)


def make_gemm(w):
    cases = [
        # name, batch (0 = 2-D), bshared, M, N, K, alpha, beta, ta, tb
        ("plain", 0, 0, 5, 7, 9, 1.0, 0.0, 0, 0),
        ("alpha_beta", 0, 0, 6, 4, 8, 0.5, -1.25, 0, 0),
        ("ta_tb", 0, 0, 7, 5, 6, 1.0, 0.0, 1, 1),
        ("one", 0, 0, 1, 1, 1, 2.0, 0.0, 0, 0),
        ("k_zero_beta", 0, 0, 3, 4, 0, 1.0, 0.5, 0, 0),
        ("batched", 3, 0, 4, 5, 6, 1.0, 0.0, 0, 1),
        ("shared_b", 3, 1, 4, 3, 5, 1.5, 0.25, 1, 0),
    ]
    for dt in ("f32", "f16", "bf16", "f64"):
        for name, batch, shared, m, n, k, alpha, beta, ta, tb in cases:
            lead = (batch,) if batch else ()
            a = rnd(randn(*lead, m, k), dt)
            b = rnd(randn(*((() if shared else lead) + (k, n))), dt)
            c = rnd(randn(*lead, m, n), dt)
            truth = gemm_fn(a, b, c, alpha, beta, dt="f64")
            check_native("gemm_%s_%s" % (name, dt), dt, truth, native(gemm_fn, dt, a, b, c, alpha, beta) or [None])
            w.case("gemm_%s_%s" % (name, dt), "gemm", {"alpha": alpha, "beta": beta, "ta": ta, "tb": tb},
                   [("a", dt, a), ("b", dt, b), ("c", dt, c)], [("c", dt, truth[0])])


# ---------------------------------------------------------------------------------------
# linear, bias + activation
# ---------------------------------------------------------------------------------------
def linear_fwd_fn(x, wt, b, act, dt):
    z = F.linear(x, wt, b)
    return ACTS[act](z), z


def make_linear(w):
    for dt in ("f32", "f16", "bf16", "f64"):
        for act in range(5):
            lead = (2, 3) if act % 2 else (5,)
            x = rnd(randn(*lead, 6), dt)
            wt = rnd(randn(4, 6, scale=0.5), dt)
            b = rnd(randn(4), dt) if act != 3 else None
            y, z = linear_fwd_fn(x, wt, b, act, dt="f64")
            name = "linear_fwd_%s_%s" % (ACT_NAMES[act], dt)
            nat = native(linear_fwd_fn, dt, x, wt, b, act)
            check_native(name, dt, (y, z), nat or [None, None])
            ins = [("x", dt, x), ("w", dt, wt)] + ([("b", dt, b)] if b is not None else [])
            w.case(name, "linear_fwd", {"act": act}, ins, [("y", dt, y), ("z", dt, z)])

            # backward from the rounded z: dz = dy * act'(z), rounded to dt (dlk's contract)
            zr = rnd(z, dt)
            dy = rnd(randn(*lead, 4), dt)
            zz = zr.clone().requires_grad_(True)
            ACTS[act](zz).backward(dy)
            dz = rnd(zz.grad, dt) if act else dy
            x2, dz2 = x.reshape(-1, 6), dz.reshape(-1, 4)
            dx = (dz2 @ wt).reshape(x.shape)
            dw = dz2.t() @ x2
            db = dz2.sum(0) if act else dy.reshape(-1, 4).sum(0)
            # db comes from the unrounded dz (the fused bias_act_bwd sums g before rounding)
            if act:
                db = zz.grad.reshape(-1, 4).sum(0)
            w.case("linear_bwd_%s_%s" % (ACT_NAMES[act], dt), "linear_bwd", {"act": act},
                   [("x", dt, x), ("w", dt, wt), ("z", dt, zr), ("dy", dt, dy)],
                   [("dx", dt, dx), ("dw", dt, dw), ("db", dt, db)])


def bias_act_fn(x, bias, act, dt):
    return (ACTS[act](x + bias if bias is not None else x),)


def make_bias_act(w):
    for dt in ("f32", "f16", "bf16", "f64"):
        for act in range(5):
            x = rnd(randn(3, 7, scale=2.0), dt)
            bias = rnd(randn(7), dt) if act != 2 else None
            truth = bias_act_fn(x, bias, act, dt="f64")
            name = "bias_act_fwd_%s_%s" % (ACT_NAMES[act], dt)
            check_native(name, dt, truth, native(bias_act_fn, dt, x, bias, act) or [None])
            ins = [("x", dt, x)] + ([("bias", dt, bias)] if bias is not None else [])
            w.case(name, "bias_act_fwd", {"act": act}, ins, [("y", dt, truth[0])])

            dy = rnd(randn(3, 7), dt)
            xx = x.clone().requires_grad_(True)
            bb = bias.clone().requires_grad_(True) if bias is not None else None
            ACTS[act](xx + bb if bb is not None else xx).backward(dy)
            outs = [("dx", dt, xx.grad)] + ([("dbias", dt, bb.grad)] if bb is not None else [])
            w.case("bias_act_bwd_%s_%s" % (ACT_NAMES[act], dt), "bias_act_bwd", {"act": act},
                   ins + [("dy", dt, dy)], outs)
    # Special values through every activation (relu keeps NaN, as torch.relu does).
    special = torch.tensor([[float("nan"), float("inf"), float("-inf"), 0.0, -0.5, 3.0]], dtype=torch.float64)
    for act in range(5):
        truth = bias_act_fn(special, None, act, dt="f64")
        w.case("bias_act_fwd_%s_special_f32" % ACT_NAMES[act], "bias_act_fwd", {"act": act},
               [("x", "f32", special)], [("y", "f32", truth[0])])


# ---------------------------------------------------------------------------------------
# softmax
# ---------------------------------------------------------------------------------------
def softmax_fn(x, log, dt):
    return ((F.log_softmax if log else F.softmax)(x, dim=-1),)


def softmax_bwd_fn(y, dy, log, dt):
    if log:
        return (torch._log_softmax_backward_data(dy, y, -1, y.dtype),)
    return (torch._softmax_backward_data(dy, y, -1, y.dtype),)


def make_softmax(w):
    shapes = [("rows", (4, 9)), ("single", (3, 1)), ("nd", (2, 3, 5)), ("wide", (2, 130))]
    for dt in ("f32", "f16", "bf16", "f64"):
        for log in (0, 1):
            for sname, shape in shapes:
                x = rnd(randn(*shape, scale=3.0), dt)
                y = softmax_fn(x, log, dt="f64")
                name = "softmax_fwd_%s_%s_%s" % ("log" if log else "soft", sname, dt)
                check_native(name, dt, y, native(softmax_fn, dt, x, log) or [None])
                w.case(name, "softmax_fwd", {"log": log}, [("x", dt, x)], [("y", dt, y[0])])

                yr = rnd(y[0], dt)
                dy = rnd(randn(*shape), dt)
                dx = softmax_bwd_fn(yr, dy, log, dt="f64")
                name = "softmax_bwd_%s_%s_%s" % ("log" if log else "soft", sname, dt)
                check_native(name, dt, dx, native(softmax_bwd_fn, dt, yr, dy, log) or [None])
                w.case(name, "softmax_bwd", {"log": log}, [("y", dt, yr), ("dy", dt, dy)], [("dx", dt, dx[0])])
    # a row of -inf: NaN, as PyTorch
    x = torch.full((1, 3), -math.inf, dtype=F64)
    w.case("softmax_fwd_neginf_f32", "softmax_fwd", {"log": 0}, [("x", "f32", x)],
           [("y", "f32", F.softmax(x, -1))])


# ---------------------------------------------------------------------------------------
# cross-entropy
# ---------------------------------------------------------------------------------------
RED = {0: "mean", 1: "sum", 2: "none"}


def make_xent(w):
    cases = [
        # name, N, C, reduction, ignore_index, targets (None: random, ignore every 3rd)
        ("mean", 6, 5, 0, -100, None),
        ("sum", 6, 5, 1, -100, None),
        ("none", 6, 5, 2, -100, None),
        ("ignore_pos", 5, 4, 0, 2, [2, 0, 3, 2, 1]),
        ("all_ignored_mean", 3, 4, 0, -100, [-100, -100, -100]),
        ("all_ignored_sum", 3, 4, 1, -100, [-100, -100, -100]),
        ("one_class", 4, 1, 0, -100, [0, 0, 0, 0]),
        ("wide", 2, 100, 2, -100, None),
    ]
    for dt in ("f32", "f16", "bf16", "f64"):
        lt = stat_dt(dt)
        for k, (name, n, c, red, ign, tg) in enumerate(cases):
            x = rnd(randn(n, c, scale=2.0), dt)
            if tg is None:
                tg = torch.randint(0, c, (n,), generator=gen).tolist()
                tg = [ign if i % 3 == 1 else v for i, v in enumerate(tg)]
            tdt = "i64" if k % 2 else "i32"
            t = torch.tensor(tg, dtype=torch.int64)
            xx = x.clone().requires_grad_(True)
            loss = F.cross_entropy(xx, t, reduction=RED[red], ignore_index=ign)
            lse = torch.logsumexp(x, dim=1)
            params = {"reduction": red, "ignore_index": ign}
            lshape = (n,) if red == 2 else (1,)
            w.case("xent_fwd_%s_%s" % (name, dt), "xent_fwd", params, [("logits", dt, x), ("targets", tdt, t)],
                   [("loss", lt, loss.detach().reshape(lshape)), ("lse", lt, lse)])
            dloss = rnd(randn(*lshape), lt)
            loss.backward(dloss.reshape(loss.shape))
            w.case("xent_bwd_%s_%s" % (name, dt), "xent_bwd", params,
                   [("logits", dt, x), ("targets", tdt, t), ("dloss", lt, dloss)], [("dlogits", dt, xx.grad)])


# ---------------------------------------------------------------------------------------
# embedding
# ---------------------------------------------------------------------------------------
def make_embedding(w):
    for dt in ("f32", "f16", "bf16", "f64"):
        for k, (name, ids_shape, v, d, pad) in enumerate([("plain", (7,), 5, 4, -1), ("pad_2d", (2, 4), 6, 3, 1),
                                                          ("repeat", (9,), 3, 5, -1)]):
            ids = torch.randint(0, v, ids_shape, generator=gen)
            if pad >= 0:
                ids.view(-1)[0] = pad
            ids.view(-1)[-1] = ids.view(-1)[1]  # at least one repeated id
            tdt = "i64" if k % 2 else "i32"
            table = rnd(randn(v, d), dt)
            out = F.embedding(ids, table, padding_idx=pad if pad >= 0 else None)
            params = {"padding_idx": pad}
            w.case("embedding_fwd_%s_%s" % (name, dt), "embedding_fwd", params, [("ids", tdt, ids), ("table", dt, table)],
                   [("out", dt, out)])
            dout = rnd(randn(*ids_shape, d), dt)
            dtable = torch.ops.aten.embedding_dense_backward(dout, ids, v, pad, False)
            w.case("embedding_bwd_%s_%s" % (name, dt), "embedding_bwd", params, [("ids", tdt, ids), ("dout", dt, dout)],
                   [("dtable", dt, dtable)])


# ---------------------------------------------------------------------------------------
# layer norm
# ---------------------------------------------------------------------------------------
def ln_fwd_fn(x, gamma, beta, eps, dt):
    d = x.shape[-1]
    y, mean, rstd = torch.ops.aten.native_layer_norm(x, [d], gamma, beta, eps)
    return y, mean.reshape(-1), rstd.reshape(-1)


def ln_bwd_fn(dy, x, mean, rstd, gamma, dt):
    d = x.shape[-1]
    lead = list(x.shape[:-1]) + [1]
    dx, dg, dbt = torch.ops.aten.native_layer_norm_backward(
        dy, x, [d], mean.reshape(lead), rstd.reshape(lead), gamma, torch.zeros_like(gamma), [True, True, True])
    return dx, dg, dbt


def make_layernorm(w):
    cases = [("affine", (4, 8), True, True, 1e-5), ("plain", (3, 6), False, False, 1e-5),
             ("nd", (2, 2, 5), True, False, 1e-3), ("d1", (3, 1), True, True, 1e-5),
             ("wide", (2, 96), True, True, 1e-5)]
    for dt in ("f32", "f16", "bf16", "f64"):
        sdt = stat_dt(dt)
        for name, shape, has_g, has_b, eps in cases:
            d = shape[-1]
            x = rnd(randn(*shape, scale=2.0) + 0.5, dt)
            gamma = rnd(1.0 + 0.5 * randn(d), dt) if has_g else None
            beta = rnd(randn(d), dt) if has_b else None
            y, mean, rstd = ln_fwd_fn(x, gamma, beta, eps, dt="f64")
            cname = "layernorm_fwd_%s_%s" % (name, dt)
            nat = native(ln_fwd_fn, dt, x, gamma, beta, eps)
            check_native(cname, dt, (y,), [nat[0]] if nat else [None])
            ins = [("x", dt, x)] + ([("gamma", dt, gamma)] if has_g else []) + ([("beta", dt, beta)] if has_b else [])
            w.case(cname, "layernorm_fwd", {"eps": eps}, ins, [("y", dt, y), ("mean", sdt, mean), ("rstd", sdt, rstd)])

            meanr, rstdr = rnd(mean, sdt), rnd(rstd, sdt)
            dy = rnd(randn(*shape), dt)
            g = gamma if has_g else torch.ones(d, dtype=F64)
            dx, dg, dbt = ln_bwd_fn(dy, x, meanr, rstdr, g, dt="f64")
            cname = "layernorm_bwd_%s_%s" % (name, dt)
            ins = [("x", dt, x)] + ([("gamma", dt, gamma)] if has_g else []) + \
                  [("mean", sdt, meanr), ("rstd", sdt, rstdr), ("dy", dt, dy)]
            w.case(cname, "layernorm_bwd", {"eps": eps}, ins, [("dx", dt, dx), ("dgamma", dt, dg), ("dbeta", dt, dbt)])


# ---------------------------------------------------------------------------------------
# dropout: dlk's counter-based mask, computed independently here
# ---------------------------------------------------------------------------------------
M64 = (1 << 64) - 1


def mix64(seed, counter):
    z = (seed + 0x9E3779B97F4A7C15 * (counter + 1)) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def uniform(seed, counter):
    return (mix64(seed, counter) >> 11) / float(1 << 53)


def make_dropout(w):
    cases = [("p0", (3, 4), 0.0, 1, 0, 0), ("p30", (4, 6), 0.3, 12345, 0, 0), ("p50_offset", (2, 3, 5), 0.5, 7, 1000, 0),
             ("p90_bwd", (5, 7), 0.9, 2**63 + 11, 2**40, 1)]
    for dt in ("f32", "f16", "bf16", "f64"):
        for name, shape, p, seed, off, bwd in cases:
            x = rnd(randn(*shape), dt)
            n = x.numel()
            keep = torch.tensor([uniform(seed, (off + i) & M64) >= p for i in range(n)]).reshape(shape)
            y = torch.where(keep, x / (1.0 - p), torch.zeros_like(x))
            w.case("dropout_%s_%s" % (name, dt), "dropout", {"prob": p, "seed": seed, "offset": off, "backward": bwd},
                   [("x", dt, x)], [("y", dt, y)])


# ---------------------------------------------------------------------------------------
# optimizers: torch.optim, one step from a given state
# ---------------------------------------------------------------------------------------
def optim_step(make_opt, dt, param, grad, state):
    """One step of torch.optim in float64 on the (rounded) param, grad and state. The caller
    rounds the new param to dt and the new state to f32 (f64 for f64 params): dlk keeps f32
    state for f32/f16/bf16 params and does the step's arithmetic in double."""
    cdt = torch.float64
    p = torch.nn.Parameter(param.to(cdt).clone())
    p.grad = grad.to(cdt).clone()
    opt = make_opt([p])
    if state:
        opt.state[p] = {k: (v.to(cdt).clone() if isinstance(v, torch.Tensor) and k != "step" else v)
                        for k, v in state.items()}
    opt.step()
    st = opt.state[p]
    return p.detach().to(F64), {k: (v.to(F64) if isinstance(v, torch.Tensor) else v) for k, v in st.items()}


def make_optim(w):
    n = 10
    for dt in ("f32", "f16", "bf16", "f64"):
        sdt = stat_dt(dt)
        # SGD: plain, momentum first step, momentum later step with dampening, nesterov + wd
        for name, lr, mom, damp, wd, nest, first in [("plain", 0.1, 0.0, 0.0, 0.0, 0, 1),
                                                     ("mom_first", 0.05, 0.9, 0.0, 0.0, 0, 1),
                                                     ("mom_damp", 0.05, 0.9, 0.3, 0.01, 0, 0),
                                                     ("nesterov_wd", 0.02, 0.8, 0.0, 0.1, 1, 0)]:
            param, grad = rnd(randn(n), dt), rnd(randn(n), dt)
            buf = rnd(randn(n), sdt)
            state = {"momentum_buffer": buf} if (mom and not first) else {}
            newp, st = optim_step(lambda ps: torch.optim.SGD(ps, lr=lr, momentum=mom, dampening=damp,
                                                             weight_decay=wd, nesterov=bool(nest)), dt, param, grad, state)
            params = {"lr": lr, "momentum": mom, "dampening": damp, "weight_decay": wd, "nesterov": nest,
                      "first_step": first}
            ins = [("param", dt, param), ("grad", dt, grad)] + ([("buf", sdt, buf)] if mom else [])
            outs = [("param", dt, newp)] + ([("buf", sdt, st["momentum_buffer"])] if mom else [])
            w.case("sgd_%s_%s" % (name, dt), "sgd", params, ins, outs)
        # Adam / AdamW: first step from zero state, and step 5 from a given state
        for name, adamw, step, wd in [("adam_first", 0, 1, 0.0), ("adam_step5_l2", 0, 5, 0.05),
                                      ("adamw_first", 1, 1, 0.1), ("adamw_step7", 1, 7, 0.01)]:
            lr, b1, b2, eps = 1e-2, 0.9, 0.99, 1e-8
            param, grad = rnd(randn(n), dt), rnd(randn(n), dt)
            if step == 1:
                m, v = torch.zeros(n, dtype=F64), torch.zeros(n, dtype=F64)
            else:
                m, v = rnd(0.1 * randn(n), sdt), rnd(0.05 * randn(n).abs(), sdt)
            state = {"step": torch.tensor(float(step - 1)), "exp_avg": m, "exp_avg_sq": v}
            cls = torch.optim.AdamW if adamw else torch.optim.Adam
            newp, st = optim_step(lambda ps: cls(ps, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd), dt, param, grad,
                                  state)
            params = {"lr": lr, "beta1": b1, "beta2": b2, "eps": eps, "weight_decay": wd, "adamw": adamw,
                      "step": step}
            w.case("%s_%s" % (name, dt), "adam", params, [("param", dt, param), ("grad", dt, grad), ("m", sdt, m),
                                                         ("v", sdt, v)],
                   [("param", dt, newp), ("m", sdt, st["exp_avg"]), ("v", sdt, st["exp_avg_sq"])])
        # AdaGrad: initial accumulator 0.1, first step; step 4 with lr_decay and weight decay
        for name, step, lr_decay, wd in [("first", 1, 0.0, 0.0), ("step4_decay_wd", 4, 0.05, 0.02)]:
            lr, eps = 0.1, 1e-10
            param, grad = rnd(randn(n), dt), rnd(randn(n), dt)
            s = rnd(0.1 + randn(n).abs(), sdt)
            state = {"step": torch.tensor(float(step - 1)), "sum": s}
            newp, st = optim_step(lambda ps: torch.optim.Adagrad(ps, lr=lr, lr_decay=lr_decay, weight_decay=wd, eps=eps),
                                  dt, param, grad, state)
            params = {"lr": lr, "lr_decay": lr_decay, "weight_decay": wd, "eps": eps, "step": step}
            w.case("adagrad_%s_%s" % (name, dt), "adagrad", params,
                   [("param", dt, param), ("grad", dt, grad), ("sum", sdt, s)],
                   [("param", dt, newp), ("sum", sdt, st["sum"])])


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "nn")
    os.makedirs(outdir, exist_ok=True)
    torch.set_num_threads(1)
    total = 0
    for fname, fn in [("gemm", make_gemm), ("linear", make_linear), ("bias_act", make_bias_act),
                      ("softmax", make_softmax), ("cross_entropy", make_xent), ("embedding", make_embedding),
                      ("layernorm", make_layernorm), ("dropout", make_dropout), ("optim", make_optim)]:
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
