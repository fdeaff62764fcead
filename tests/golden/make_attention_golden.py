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


# ---------------------------------------------------------------------------------------
# Additive (Bahdanau) and Luong attention: additive.txt and luong.txt
#
# Expected values: the formulas of include/dlk.h in float64 torch ops with given weights,
# autograd for the gradients of L = sum(dcontext * context) + sum(dweights * weights) (the
# term of an absent dcontext or dweights left out). Encoder steps past enc_lengths take no
# part (masked softmax); they are written to the file as nan, which dlk must never read
# (their denc is 0).
#
# Cross-checks before anything is written (SystemExit on a mismatch):
#   additive  attention_keras's AttentionLayer equations, implemented separately below as
#             the layer runs them: K.rnn over the decoder steps calling energy_step
#             (W_a_dot_s = enc . W_a; U_a_dot_h = dec_t . U_a; e_t = softmax(tanh(W_a_dot_s
#             + U_a_dot_h) . V_a)) and then context_step (c_t = sum(enc * e_t, axis=1)).
#             The layer has no mask: a masked case is checked by running it on each
#             sequence cut to its length.
#   luong     dot and general against torch's scaled_dot_product_attention with scale 1
#             (q = dec or dec @ w, k = v = enc, a boolean key mask); concat against
#             torch.nn.Linear(Hd + He, A, bias=False) applied to every cat([dec_i, enc_j])
#             pair, tanh, then v.
#   native    the formulas again in the case's own dtype, within the DESIGN.md tolerance.
# Ops and their tensors:
#   additive  in enc dec w_a u_a v_a [enc_lengths] weights [dcontext] [dweights];
#             out context weights denc ddec dw_a du_a dv_a
#   luong     score (0 dot, 1 general, 2 concat);
#             in enc dec [w] [v] [enc_lengths] weights [dcontext] [dweights];
#             out context weights denc ddec [dw] [dv]
# The backward's input weights are the forward's, rounded to the dtype, as a training step
# has them; the expected gradients come from the exact float64 weights.
# ---------------------------------------------------------------------------------------
def key_mask(B, Te, lengths):
    """Boolean [B, 1, Te]: encoder step j visible to every decoder step of sequence b."""
    m = torch.ones(B, 1, Te, dtype=torch.bool)
    if lengths is not None:
        for b in range(B):
            m[b, 0, lengths[b]:] = False
    return m


def masked_softmax_context(e, enc, lengths):
    """alpha = softmax over visible steps (exact 0 elsewhere); context = alpha @ enc."""
    mask = key_mask(e.shape[0], e.shape[2], lengths)
    alpha = torch.softmax(e.masked_fill(~mask, float("-inf")), dim=-1)
    return alpha @ enc, alpha


def additive_formula(enc, dec, w_a, u_a, v_a, lengths):
    """dlk's statement: e = v_a . tanh(enc W_a + dec U_a) for every (i, j) at once."""
    P = enc @ w_a                        # [B, Te, A]
    Q = dec @ u_a                        # [B, Td, A]
    e = torch.tanh(P[:, None, :, :] + Q[:, :, None, :]) @ v_a  # [B, Td, Te]
    return masked_softmax_context(e, enc, lengths)


def keras_attention_layer(encoder_out_seq, decoder_out_seq, W_a, U_a, V_a):
    """attention_keras's AttentionLayer.call, step by step as K.rnn runs it."""
    W_a_dot_s = encoder_out_seq @ W_a                       # K.dot(encoder_out_seq, W_a)
    e_outputs = []
    for t in range(decoder_out_seq.shape[1]):               # energy_step per decoder step
        inputs = decoder_out_seq[:, t, :]
        U_a_dot_h = (inputs @ U_a).unsqueeze(1)             # K.expand_dims(K.dot(inputs, U_a), 1)
        Ws_plus_Uh = torch.tanh(W_a_dot_s + U_a_dot_h)
        e_i = (Ws_plus_Uh @ V_a.reshape(-1, 1)).squeeze(-1)  # K.squeeze(K.dot(., V_a), -1)
        e_outputs.append(torch.softmax(e_i, dim=-1))        # K.softmax(e_i)
    c_outputs = []
    for e_i in e_outputs:                                   # context_step per decoder step
        c_outputs.append((encoder_out_seq * e_i.unsqueeze(-1)).sum(dim=1))
    return torch.stack(c_outputs, 1), torch.stack(e_outputs, 1)


def luong_formula(score, enc, dec, w, v, lengths):
    if score == 0:
        e = dec @ enc.transpose(1, 2)
    elif score == 1:
        e = (dec @ w) @ enc.transpose(1, 2)
    else:
        Hd = dec.shape[2]
        Q = dec @ w[:, :Hd].T                    # the dec half of W [dec; enc]
        P = enc @ w[:, Hd:].T
        e = torch.tanh(P[:, None, :, :] + Q[:, :, None, :]) @ v
    return masked_softmax_context(e, enc, lengths)


def luong_crosscheck(score, enc, dec, w, v, lengths):
    """An independent route to (context, weights) for each score."""
    B, Te, He = enc.shape
    Td, Hd = dec.shape[1], dec.shape[2]
    mask = key_mask(B, Te, lengths)[:, :, None, :].expand(B, 1, Td, Te)
    if score in (0, 1):
        q = dec if score == 0 else dec @ w
        ctx = F.scaled_dot_product_attention(q[:, None], enc[:, None], enc[:, None], attn_mask=mask,
                                             scale=1.0)[:, 0]
        e = q @ enc.transpose(1, 2)
        return ctx, torch.softmax(e.masked_fill(~mask[:, 0], float("-inf")), -1)
    lin = torch.nn.Linear(Hd + He, w.shape[0], bias=False).to(F64)
    with torch.no_grad():
        lin.weight.copy_(w)
    pairs = torch.cat([dec[:, :, None, :].expand(B, Td, Te, Hd), enc[:, None, :, :].expand(B, Td, Te, He)], -1)
    e = torch.tanh(lin(pairs)) @ v
    alpha = torch.softmax(e.masked_fill(~mask[:, 0], float("-inf")), -1)
    return alpha @ enc, alpha


def crosscheck(name, what, got, want):
    for g, t, label in zip(got, want, ("context", "weights")):
        if not torch.allclose(g, t, rtol=1e-10, atol=1e-12):
            raise SystemExit("%s: %s disagrees with the formula's %s by %g" %
                             (name, what, label, float((g - t).abs().max())))


def attn_native(name, dt, fn, leaves, lengths, truth):
    """The formula in the native dtype (skipped where torch's CPU lacks the op)."""
    try:
        with torch.no_grad():
            nat = fn(*[t.to(DT[dt]) if t is not None else None for t in leaves], lengths)
    except (RuntimeError, NotImplementedError):
        return
    for t, n in zip(truth, nat):
        check_native(name, dt, t, n)


def attn_gradients(fn, leaves, lengths, dctx, dwts):
    xs = [t.clone().requires_grad_(True) if t is not None else None for t in leaves]
    ctx, alpha = fn(*xs, lengths)
    loss = torch.zeros((), dtype=F64)
    if dctx is not None:
        loss = loss + (ctx * dctx).sum()
    if dwts is not None:
        loss = loss + (alpha * dwts).sum()
    live = [x for x in xs if x is not None]
    grads = torch.autograd.grad(loss, live)
    for g in grads:
        if bool(torch.isnan(g).any()):
            raise SystemExit("torch's gradient has NaN")
    return ctx.detach(), alpha.detach(), grads


def padded_nan(enc, lengths):
    """enc as written to the file: nan on the steps past each length."""
    out = enc.clone()
    if lengths is not None:
        for b in range(enc.shape[0]):
            out[b, lengths[b]:] = float("nan")
    return out


def zero_padding(enc, lengths):
    out = enc.clone()
    if lengths is not None:
        for b in range(enc.shape[0]):
            out[b, lengths[b]:] = 0.0
    return out


def make_additive(w):
    # name, B, Te, Td, He, Hd, A, lengths, grads ("both", "context", "weights")
    cases = [
        ("keras", 2, 5, 4, 3, 4, 3, None, "both"),
        ("a_ne_he", 2, 6, 3, 4, 3, 5, None, "both"),
        ("lengths", 3, 6, 4, 3, 3, 4, [6, 1, 3], "both"),
        ("single_step", 3, 7, 1, 4, 5, 4, [7, 2, 5], "both"),
        ("one_step_enc", 2, 1, 3, 3, 2, 3, None, "both"),
        ("dcontext_only", 2, 5, 3, 3, 3, 3, [5, 3], "context"),
        ("dweights_only", 2, 5, 3, 3, 3, 2, None, "weights"),
    ]
    for dt in ("f32", "f16", "bf16", "f64"):
        for (name, B, Te, Td, He, Hd, A, lengths, which) in cases:
            cname = "%s_%s" % (name, dt)
            enc = zero_padding(rnd(randn(B, Te, He), dt), lengths)
            dec = rnd(randn(B, Td, Hd), dt)
            w_a = rnd(randn(He, A, scale=1.0 / math.sqrt(He)), dt)
            u_a = rnd(randn(Hd, A, scale=1.0 / math.sqrt(Hd)), dt)
            v_a = rnd(randn(A, scale=1.0 / math.sqrt(A)), dt)
            dctx = rnd(randn(B, Td, He), dt) if which in ("both", "context") else None
            dwts = rnd(randn(B, Td, Te), dt) if which in ("both", "weights") else None
            leaves = [enc, dec, w_a, u_a, v_a]
            ctx, alpha, grads = attn_gradients(additive_formula, leaves, lengths, dctx, dwts)
            # attention_keras's own equations (per sequence, cut to its length)
            kc, ka = torch.zeros_like(ctx), torch.zeros_like(alpha)
            for b in range(B):
                l = lengths[b] if lengths is not None else Te
                c1, a1 = keras_attention_layer(enc[b:b + 1, :l], dec[b:b + 1], w_a, u_a, v_a)
                kc[b], ka[b, :, :l] = c1[0], a1[0]
            crosscheck(cname, "attention_keras's AttentionLayer", (kc, ka), (ctx, alpha))
            attn_native(cname, dt, additive_formula, leaves, lengths, (ctx, alpha))
            ins = [("enc", dt, padded_nan(enc, lengths)), ("dec", dt, dec), ("w_a", dt, w_a), ("u_a", dt, u_a),
                   ("v_a", dt, v_a)]
            if lengths is not None:
                ins.append(("enc_lengths", "i32" if B % 2 else "i64", torch.tensor(lengths)))
            ins.append(("weights", dt, alpha))
            if dctx is not None:
                ins.append(("dcontext", dt, dctx))
            if dwts is not None:
                ins.append(("dweights", dt, dwts))
            outs = [("context", dt, ctx), ("weights", dt, alpha)]
            outs += [(n, dt, g) for n, g in zip(("denc", "ddec", "dw_a", "du_a", "dv_a"), grads)]
            w.case(cname, "additive", {}, ins, outs)


def make_luong(w):
    # name, score, B, Te, Td, He, Hd, A, lengths, grads
    cases = [
        ("dot", 0, 2, 5, 4, 3, 3, 0, None, "both"),
        ("dot_lengths", 0, 3, 6, 3, 4, 4, 0, [6, 1, 4], "both"),
        ("dot_single_step", 0, 2, 7, 1, 3, 3, 0, [3, 7], "weights"),
        ("general", 1, 2, 5, 4, 3, 4, 0, None, "both"),
        ("general_lengths", 1, 3, 6, 2, 4, 3, 0, [2, 6, 5], "context"),
        ("concat", 2, 2, 5, 3, 3, 4, 5, None, "both"),
        ("concat_lengths", 2, 3, 6, 4, 4, 3, 3, [6, 2, 1], "both"),
        ("concat_single_step", 2, 2, 4, 1, 3, 2, 4, [4, 2], "context"),
    ]
    for dt in ("f32", "f16", "bf16", "f64"):
        for (name, score, B, Te, Td, He, Hd, A, lengths, which) in cases:
            cname = "%s_%s" % (name, dt)
            enc = zero_padding(rnd(randn(B, Te, He), dt), lengths)
            dec = rnd(randn(B, Td, Hd, scale=1.0 / math.sqrt(He) if score == 0 else 1.0), dt)
            wt = None
            if score == 1:
                wt = rnd(randn(Hd, He, scale=1.0 / math.sqrt(Hd * He)), dt)
            if score == 2:
                wt = rnd(randn(A, Hd + He, scale=1.0 / math.sqrt(Hd + He)), dt)
            vt = rnd(randn(A, scale=1.0 / math.sqrt(A)), dt) if score == 2 else None
            dctx = rnd(randn(B, Td, He), dt) if which in ("both", "context") else None
            dwts = rnd(randn(B, Td, Te), dt) if which in ("both", "weights") else None
            fn = lambda e, d, ww, vv, ln, s=score: luong_formula(s, e, d, ww, vv, ln)  # noqa: E731
            leaves = [enc, dec, wt, vt]
            ctx, alpha, grads = attn_gradients(fn, leaves, lengths, dctx, dwts)
            crosscheck(cname, "the independent Luong route", luong_crosscheck(score, enc, dec, wt, vt, lengths),
                       (ctx, alpha))
            attn_native(cname, dt, fn, leaves, lengths, (ctx, alpha))
            ins = [("enc", dt, padded_nan(enc, lengths)), ("dec", dt, dec)]
            if wt is not None:
                ins.append(("w", dt, wt))
            if vt is not None:
                ins.append(("v", dt, vt))
            if lengths is not None:
                ins.append(("enc_lengths", "i32" if B % 2 else "i64", torch.tensor(lengths)))
            ins.append(("weights", dt, alpha))
            if dctx is not None:
                ins.append(("dcontext", dt, dctx))
            if dwts is not None:
                ins.append(("dweights", dt, dwts))
            gnames = ["denc", "ddec"] + (["dw"] if wt is not None else []) + (["dv"] if vt is not None else [])
            outs = [("context", dt, ctx), ("weights", dt, alpha)] + [(n, dt, g) for n, g in zip(gnames, grads)]
            w.case(cname, "luong", {"score": score}, ins, outs)


def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                 "attention")
    os.makedirs(outdir, exist_ok=True)
    w = Writer("scaled-dot-product attention")
    make_sdpa(w)
    w.save(os.path.join(outdir, "sdpa.txt"))
    # Additive (Bahdanau) and Luong attention.
    w = Writer("additive (Bahdanau) attention")
    make_additive(w)
    w.save(os.path.join(outdir, "additive.txt"))
    w = Writer("Luong attention")
    make_luong(w)
    w.save(os.path.join(outdir, "luong.txt"))
    print("wrote %s" % outdir)


if __name__ == "__main__":
    main()
