#!/usr/bin/env python3
"""Golden fixtures for the attention family, made with PyTorch (CPU).

    python3 tests/golden/make_attention_golden.py [OUTDIR]   (default: tests/golden/attention)

writes sdpa.txt (scaled-dot-product attention; the additive and Luong fixtures are
written by their own section of this script, into their own files). tests/test_attention.c
reads them and checks the CPU reference against them at the DESIGN.md tolerances.

How the expected values are made
--------------------------------
Inputs are drawn from a seeded generator and rounded to the case's dtype, so dlk and
PyTorch see exactly the same numbers. Expected outputs are PyTorch's results in float64
from those inputs, rounded once to the output dtype:
  out, dq, dk, dv, dbias  torch.nn.functional.scaled_dot_product_attention and autograd,
                          with dlk's masks given to torch as an attention mask:
                          causal bottom-right (torch.nn.attention.bias.causal_lower_right
                          where Tq != Tk, is_causal where Tq == Tk), GQA through
                          enable_gqa=True, lengths as a boolean mask (key j visible to query
                          i iff i < ql, j < kl and, when causal, j <= i + kl - ql: the
                          per-sequence alignment of FlashAttention varlen and cuDNN), a
                          float bias added to that mask (broadcast dims reduced by autograd);
  lse                     torch.logsumexp of the same scaled, masked scores (torch's SDPA
                          does not return it): -inf on a fully masked row;
  dropout cases           dlk's dropout mask is not torch's RNG but a documented counter
                          function (dlk_dropout_uniform), so those cases compute the mask
                          here (dlk_mix64 in Python) and the attention with torch ops:
                          out = (softmax(S) * Z) @ V, Z = keep / (1 - p), autograd for the
                          gradients.
The backward's upstream gradient dout is a random tensor of out's shape.

Each case is also recomputed natively in its own dtype by torch's SDPA where PyTorch's CPU
supports it, and the script refuses to write a fixture whose native out differs from the
float64 one by more than the DESIGN.md tolerance (f32 1e-5/1e-5, f16 1e-3/4e-3, bf16
1e-2/2e-2): the inputs are tame enough that any sane summation order stays inside.

File format (text, whitespace separated, '#' starts a comment line), as the nn fixtures
-----------------------------------------------------------------------------------------
    case <name> <op>
    param <key> <number>                       zero or more
    in  <tensor> <dtype> <ndim> <dim0> ... <dimN-1>
    <numel values, row-major>
    out <tensor> <dtype> <ndim> <dims...>
    <numel values>
    end
Ops and their tensors:
    sdpa   scale (0: 1/sqrt(D)) causal dropout seed offset;
           in q k v [bias] [q_lengths] [k_lengths] dout; out out lse dq dk dv [dbias]
"""
import math
import os
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention.bias import causal_lower_right

F64 = torch.float64
DT = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64}
TOL = {"f32": (1e-5, 1e-5), "f16": (1e-3, 4e-3), "bf16": (1e-2, 2e-2), "f64": (1e-12, 1e-12)}
DIGITS = {"f32": 9, "f16": 5, "bf16": 4, "f64": 17}

gen = torch.Generator().manual_seed(20250613)


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
    def __init__(self, title):
        self.title = title
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
            f.write("# dlk attention golden fixtures (%s): made by tests/golden/make_attention_golden.py "
                    "with torch %s\n" % (self.title, torch.__version__))
            f.write("# format: see the docstring of that script\n")
            f.write("\n".join(self.lines) + "\n")


def check_native(name, dt, truth, native):
    """Refuse a fixture whose native-dtype PyTorch result is outside the tolerance."""
    if native is None:
        return
    atol, rtol = TOL[dt]
    t = truth.detach().to(F64)
    n = native.detach().to(F64)
    err = (t - n).abs()
    bad = ~((err <= atol + rtol * t.abs()) | (t == n))
    if bool(bad.any()):
        i = int(bad.reshape(-1).nonzero()[0])
        raise SystemExit("%s: native %s out %r vs float64 %r is outside the tolerance; choose tamer inputs" %
                         (name, dt, n.reshape(-1)[i].item(), t.reshape(-1)[i].item()))


# ---------------------------------------------------------------------------------------
# dlk's dropout RNG (host/nn/nn.h dlk_mix64, dlk_dropout_uniform), independently in Python
# ---------------------------------------------------------------------------------------
M64 = (1 << 64) - 1


def mix64(seed, counter):
    z = (seed + 0x9E3779B97F4A7C15 * (counter + 1)) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def dropout_uniform(seed, counter):
    return (mix64(seed, counter & M64) >> 11) * (1.0 / 9007199254740992.0)


# ---------------------------------------------------------------------------------------
# Scaled-dot-product attention
# ---------------------------------------------------------------------------------------
def visible_mask(B, Tq, Tk, causal, qlen, klen):
    """Boolean [B, 1, Tq, Tk]: key j visible to query i (dlk's rule)."""
    m = torch.zeros(B, 1, Tq, Tk, dtype=torch.bool)
    for b in range(B):
        ql = qlen[b] if qlen is not None else Tq
        kl = klen[b] if klen is not None else Tk
        for i in range(ql):
            for j in range(kl):
                if not causal or j <= i + kl - ql:
                    m[b, 0, i, j] = True
    return m


def sdpa_torch(q, k, v, bias, causal, qlen, klen, scale, dt=None):
    """torch's SDPA with dlk's masks as an attention mask (float64 or native dtype)."""
    B, Hq, Tq, D = q.shape
    Tk = k.shape[2]
    gqa = k.shape[1] != Hq
    kw = dict(scale=scale if scale else None, enable_gqa=gqa)
    if qlen is None and klen is None and bias is None:
        if not causal:
            return F.scaled_dot_product_attention(q, k, v, **kw)
        if Tq == Tk:
            return F.scaled_dot_product_attention(q, k, v, is_causal=True, **kw)
        return F.scaled_dot_product_attention(q, k, v, attn_mask=causal_lower_right(Tq, Tk), **kw)
    mask = visible_mask(B, Tq, Tk, causal, qlen, klen)
    if bias is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, **kw)
    neg = torch.zeros(mask.shape, dtype=q.dtype).masked_fill(~mask, float("-inf"))
    return F.scaled_dot_product_attention(q, k, v, attn_mask=bias + neg, **kw)


def scores(q, k, bias, causal, qlen, klen, scale):
    """The scaled, masked scores S [B, Hq, Tq, Tk] in float64 (-inf where not visible)."""
    B, Hq, Tq, D = q.shape
    Tk = k.shape[2]
    kk = k.repeat_interleave(Hq // k.shape[1], dim=1)
    s = (q @ kk.transpose(-1, -2)) * (scale if scale else 1.0 / math.sqrt(D))
    if bias is not None:
        s = s + bias
    mask = visible_mask(B, Tq, Tk, causal, qlen, klen)
    return s.masked_fill(~mask, float("-inf"))


def sdpa_dropout(q, k, v, bias, causal, qlen, klen, scale, p, seed, offset):
    """out = (softmax(S) * Z) @ V with dlk's counter-based keep mask, in torch ops."""
    B, Hq, Tq, D = q.shape
    Tk = k.shape[2]
    s = scores(q, k, bias, causal, qlen, klen, scale)
    m = s.amax(-1, keepdim=True)
    m = torch.where(torch.isinf(m), torch.zeros_like(m), m)
    e = torch.exp(s - m)
    den = e.sum(-1, keepdim=True)
    probs = e / torch.where(den == 0, torch.ones_like(den), den)
    z = torch.empty(B, Hq, Tq, Tk, dtype=F64)
    for idx in range(B * Hq * Tq * Tk):
        keep = dropout_uniform(seed, offset + idx) >= p
        z.view(-1)[idx] = 1.0 / (1.0 - p) if keep else 0.0
    vv = v.repeat_interleave(Hq // v.shape[1], dim=1)
    return (probs * z) @ vv


def make_sdpa(w):
    # name, B, Hq, Hk, Tq, Tk, D, Dv, causal, scale, bias shape (None | tuple), q_lengths,
    # k_lengths, dropout p, mask rows fully in the bias
    cases = [
        ("plain", 2, 2, 2, 5, 7, 4, 3, 0, 0.0, None, None, None, 0.0),
        ("scale", 1, 2, 2, 4, 6, 4, 4, 0, 0.3, None, None, None, 0.0),
        ("causal_square", 2, 2, 2, 6, 6, 4, 3, 1, 0.0, None, None, None, 0.0),
        ("causal_q_lt_k", 1, 2, 2, 4, 7, 4, 4, 1, 0.0, None, None, None, 0.0),
        ("causal_q_gt_k", 1, 2, 2, 7, 4, 4, 4, 1, 0.0, None, None, None, 0.0),
        ("gqa", 2, 4, 2, 5, 6, 4, 4, 0, 0.0, None, None, None, 0.0),
        ("mqa_causal", 1, 4, 1, 5, 5, 4, 3, 1, 0.0, None, None, None, 0.0),
        ("bias_full", 2, 2, 2, 4, 5, 4, 4, 0, 0.0, (2, 2, 4, 5), None, None, 0.0),
        ("bias_bcast_b", 2, 2, 2, 4, 5, 4, 4, 0, 0.0, (1, 2, 4, 5), None, None, 0.0),
        ("bias_bcast_h_gqa", 2, 4, 2, 4, 5, 4, 4, 1, 0.0, (2, 1, 4, 5), None, None, 0.0),
        ("bias_2d", 2, 2, 2, 4, 5, 4, 4, 0, 0.0, (4, 5), None, None, 0.0),
        ("bias_keypad_mask", 2, 2, 2, 4, 6, 4, 4, 0, 0.0, (2, 1, 1, 6), None, None, 0.0),
        ("bias_masked_row", 1, 2, 2, 4, 5, 4, 4, 0, 0.0, (1, 1, 4, 5), None, None, 0.0),
        ("lengths", 2, 2, 2, 5, 7, 4, 3, 0, 0.0, None, [5, 2], [7, 1], 0.0),
        ("lengths_causal", 2, 2, 2, 6, 5, 4, 4, 1, 0.0, None, [4, 6], [5, 2], 0.0),
        ("lengths_bias_gqa", 2, 4, 2, 5, 6, 4, 4, 1, 0.0, (1, 4, 5, 6), [3, 5], [6, 4], 0.0),
        ("dropout", 2, 2, 2, 4, 5, 4, 4, 0, 0.0, None, None, None, 0.25),
        ("dropout_causal_gqa", 1, 4, 2, 5, 5, 4, 4, 1, 0.0, (1, 1, 5, 5), None, None, 0.4),
    ]
    for dt in ("f32", "f16", "bf16", "f64"):
        for (name, B, Hq, Hk, Tq, Tk, D, Dv, causal, scale, bshape, qlen, klen, p) in cases:
            cname = "%s_%s" % (name, dt)
            q = rnd(randn(B, Hq, Tq, D), dt)
            k = rnd(randn(B, Hk, Tk, D), dt)
            v = rnd(randn(B, Hk, Tk, Dv), dt)
            dout = rnd(randn(B, Hq, Tq, Dv), dt)
            bias = None
            if bshape is not None:
                bias = rnd(randn(*bshape, scale=0.5), dt)
                if name == "bias_keypad_mask":  # a boolean key-padding mask as 0 / -inf
                    bias = torch.zeros(bshape, dtype=F64)
                    bias[0, 0, 0, 4:] = float("-inf")
                    bias[1, 0, 0, 1:] = float("-inf")
                if name == "bias_masked_row":  # query row 2 sees no key at all
                    bias[0, 0, 2, :] = float("-inf")
            seed, offset = 1234 + len(name), 77
            leaves = [q, k, v] + ([bias] if bias is not None else [])
            xs = [t.clone().requires_grad_(True) for t in leaves]
            if p > 0:
                out = sdpa_dropout(xs[0], xs[1], xs[2], xs[3] if bias is not None else None, causal, qlen, klen,
                                   scale, p, seed, offset)
            else:
                out = sdpa_torch(xs[0], xs[1], xs[2], xs[3] if bias is not None else None, causal, qlen, klen,
                                 scale)
                nat = [t.to(DT[dt]) for t in leaves]
                try:
                    native = sdpa_torch(nat[0], nat[1], nat[2], nat[3] if bias is not None else None, causal, qlen,
                                        klen, scale)
                except (RuntimeError, NotImplementedError):
                    native = None
                check_native(cname, dt, out, native)
            grads = torch.autograd.grad(out, xs, dout)
            for g in grads:
                if bool(torch.isnan(g).any()):
                    raise SystemExit("%s: torch's gradient has NaN" % cname)
            lse = torch.logsumexp(scores(q, k, bias, causal, qlen, klen, scale), dim=-1)
            params = {"scale": scale, "causal": causal, "dropout": p, "seed": seed, "offset": offset}
            ins = [("q", dt, q), ("k", dt, k), ("v", dt, v)]
            if bias is not None:
                ins.append(("bias", dt, bias))
            if qlen is not None:
                ins.append(("q_lengths", "i32", torch.tensor(qlen)))
            if klen is not None:
                ins.append(("k_lengths", "i64", torch.tensor(klen)))
            ins.append(("dout", dt, dout))
            outs = [("out", dt, out), ("lse", stat_dt(dt), lse), ("dq", dt, grads[0]), ("dk", dt, grads[1]),
                    ("dv", dt, grads[2])]
            if bias is not None:
                outs.append(("dbias", dt, grads[3]))
            w.case(cname, "sdpa", params, ins, outs)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 "attention")
    os.makedirs(outdir, exist_ok=True)
    w = Writer("scaled-dot-product attention")
    make_sdpa(w)
    w.save(os.path.join(outdir, "sdpa.txt"))
    # Additive (Bahdanau) and Luong attention: their make_*() and files go here.
    print("wrote %s" % outdir)


if __name__ == "__main__":
    main()
