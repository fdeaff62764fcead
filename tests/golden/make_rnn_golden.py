#!/usr/bin/env python3
"""Golden fixtures for the rnn family, made with PyTorch (CPU).

    python3 tests/golden/make_rnn_golden.py [OUTDIR]      (default: tests/golden/rnn)

writes cell.txt, seq.txt and keras.txt. tests/test_rnn.c reads them and checks the CPU
reference (and, with --gpu, every variant) against them.

How the expected values are made
--------------------------------
Inputs and weights are drawn from a seeded generator and rounded to the case's dtype, so
dlk and PyTorch see exactly the same numbers. Sequence and cell cases are torch.nn.RNN /
LSTM / GRU (and RNNCell / LSTMCell / GRUCell) in float64 with the weights set through the
state dict; a variable-length batch goes through pack_padded_sequence(enforce_sorted=False)
and pad_packed_sequence (padding 0). Gradients are torch.autograd of
    loss = sum(y * dy) + sum(hn * dhn) + sum(cn * dcn)
(for a cell: sum(h' * dh') + sum(c' * dc')), so dy, dhn, dcn are the output gradients.
Expected values are rounded once to the output dtype.

dlk's documented rounding (the hidden state is rounded to the data dtype after each
step) makes a half-precision result differ from the float64 one by more than a single
rounding; for F16 / BF16 sequences the script recomputes the sequence step by step in
float64 with that rounding (torch's cells, one step at a time) and refuses to write a
case whose result differs from the float64 one by more than the DESIGN.md tolerance
(f16 1e-3/4e-3, bf16 1e-2/2e-2): that proves the case is tame for dlk's spec. Half
cases carry forward outputs only (their backward is checked against the CPU reference
by the GPU sweep).

The Keras fixture is made from the Keras formulas (tf.keras LSTM, GRU with reset_after
True and False, SimpleRNN), written out here in float64 with given weights in Keras'
layout (kernel [I, G*H], recurrent_kernel [H, G*H], Keras gate order): it holds the
weights, the PyTorch-layout weights the import must produce, and the Keras layer's output
sequence and final state, which dlk must reproduce after the import (a GRU with
reset_after=False through gru_reset_before).

File format: as tests/golden/make_nn_golden.py (case / param / in / out / end blocks).
    rnn_cell  mode reset_before; in x [h] [c] weight_ih weight_hh [bias_ih bias_hh]
              dh [dc]; out h_out [c_out] dx [dh_in] [dc_in] grad_weight_ih grad_weight_hh
              [grad_bias_ih grad_bias_hh]
    rnn_seq   mode hidden proj layers bidir batch_first reset_before backward; in x
              [lengths] [h0] [c0] weight_ih_l0 ... (state-dict names, _reverse for the
              backward direction) [dy dhn dcn]; out y hn [cn] [dx dh0 dc0 grad_<weight>]
    keras     mode reset_after batch_first; in kernel recurrent_kernel [bias] x; out
              w_ih w_hh b_ih b_hh y hn
mode: 0 RNN_TANH, 1 RNN_RELU, 2 LSTM, 3 GRU.
"""
import math
import os
import sys

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

F64 = torch.float64
DT = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16, "f64": torch.float64}
TOL = {"f32": (1e-5, 1e-5), "f16": (1e-3, 4e-3), "bf16": (1e-2, 2e-2), "f64": (1e-12, 1e-12)}
DIGITS = {"f32": 9, "f16": 5, "bf16": 4, "f64": 17}
MODES = {"tanh": 0, "relu": 1, "lstm": 2, "gru": 3}
GATES = {0: 1, 1: 1, 2: 4, 3: 3}

gen = torch.Generator().manual_seed(20240612)


def uni(*shape, lo=-1.0, hi=1.0):
    return torch.rand(*shape, generator=gen, dtype=F64) * (hi - lo) + lo


def rnd(t, dt):
    return t.to(DT[dt]).to(F64)


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
            f.write("# dlk rnn golden fixtures: made by tests/golden/make_rnn_golden.py with torch %s\n" % torch.__version__)
            f.write("# format: see the docstring of that script\n")
            f.write("\n".join(self.lines) + "\n")


def torch_module(mode, I, H, layers=1, bidir=False, proj=0, bias=True, batch_first=False):
    kw = dict(num_layers=layers, bidirectional=bidir, bias=bias, batch_first=batch_first, dtype=F64)
    if mode == 2:
        return nn.LSTM(I, H, proj_size=proj, **kw)
    if mode == 3:
        return nn.GRU(I, H, **kw)
    return nn.RNN(I, H, nonlinearity="tanh" if mode == 0 else "relu", **kw)


def set_weights(m, dt, scale):
    """Draw every parameter, rounded to dt; returns the state dict (float64 values)."""
    sd = {}
    for k, v in m.state_dict().items():
        sd[k] = rnd(uni(*v.shape) * scale, dt)
    m.load_state_dict(sd)
    return sd


def run_seq(m, mode, x, lengths, h0, c0, batch_first):
    T = x.shape[1] if batch_first else x.shape[0]
    hx = (h0, c0) if mode == 2 else h0
    if lengths is not None:
        packed = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        out, st = m(packed, hx)
        y, _ = pad_packed_sequence(out, batch_first=batch_first, total_length=T)
    else:
        y, st = m(x, hx)
    if mode == 2:
        return y, st[0], st[1]
    return y, st, None


def stepwise_rounded(m, mode, sd, x, lengths, h0, c0, batch_first, dt, proj):
    """dlk's spec for half dtypes: step by step in float64 with the hidden state rounded to
    dt after each step (the LSTM cell state kept at float32). Returns y, hn, cn."""
    L, D = m.num_layers, 2 if m.bidirectional else 1
    xt = x.transpose(0, 1) if batch_first else x
    T, B = xt.shape[0], xt.shape[1]
    lens = lengths.tolist() if lengths is not None else [T] * B
    inp = xt
    hn, cn = [], []
    for l in range(L):
        outs = []
        for d in range(D):
            sfx = "_l%d%s" % (l, "_reverse" if d else "")
            w_ih, w_hh = sd["weight_ih" + sfx], sd["weight_hh" + sfx]
            b_ih = sd.get("bias_ih" + sfx, torch.zeros(w_ih.shape[0], dtype=F64))
            b_hh = sd.get("bias_hh" + sfx, torch.zeros(w_ih.shape[0], dtype=F64))
            w_hr = sd.get("weight_hr" + sfx)
            P = w_hh.shape[1]
            y = torch.zeros(T, B, P, dtype=F64)
            hf, cf = torch.zeros(B, P, dtype=F64), torch.zeros(B, w_ih.shape[0] // GATES[mode], dtype=F64)
            for b in range(B):
                h = h0[l * D + d, b].clone()
                c = c0[l * D + d, b].clone() if mode == 2 else None
                steps = range(lens[b]) if d == 0 else range(lens[b] - 1, -1, -1)
                for t in steps:
                    gi = w_ih @ inp[t, b] + b_ih
                    if mode == 2:
                        gh = w_hh @ h + b_hh
                        i, f, g, o = (gi + gh).chunk(4)
                        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                        c = c.to(torch.float32).to(F64)
                        hp = torch.sigmoid(o) * torch.tanh(c)
                        hnew = w_hr @ hp if w_hr is not None else hp
                    elif mode == 3:
                        gh = w_hh @ h + b_hh
                        ir, iz, inn = gi.chunk(3)
                        hr, hz, hnn = gh.chunk(3)
                        r, z = torch.sigmoid(ir + hr), torch.sigmoid(iz + hz)
                        n = torch.tanh(inn + r * hnn)
                        hnew = (1 - z) * n + z * h
                    else:
                        a = gi + w_hh @ h + b_hh
                        hnew = torch.tanh(a) if mode == 0 else torch.relu(a)
                    h = rnd(hnew, dt)
                    y[t, b] = h
                hf[b] = h
                if mode == 2:
                    cf[b] = c
            outs.append(y)
            hn.append(hf)
            cn.append(cf)
        inp = torch.cat(outs, dim=2)
    y = inp.transpose(0, 1) if batch_first else inp
    return y, torch.stack(hn), torch.stack(cn) if mode == 2 else None


def close(got, ref, dt):
    atol, rtol = TOL[dt]
    return bool(((got - ref).abs() <= atol + rtol * ref.abs()).all())


def seq_case(w, name, mode, dt, I, H, T, B, layers=1, bidir=False, proj=0, bias=True, batch_first=False,
             lengths=None, states=True, backward=True, scale=0.6):
    m = torch_module(mode, I, H, layers, bidir, proj, bias, batch_first)
    sd = set_weights(m, dt, scale)
    D = 2 if bidir else 1
    P = proj if proj else H
    x = rnd(uni(*((B, T, I) if batch_first else (T, B, I))), dt).requires_grad_(True)
    h0 = rnd(uni(layers * D, B, P) * 0.5, dt).requires_grad_(True) if states else torch.zeros(layers * D, B, P, dtype=F64)
    c0 = None
    if mode == 2:
        c0 = rnd(uni(layers * D, B, H) * 0.5, dt).requires_grad_(True) if states else torch.zeros(layers * D, B, H, dtype=F64)
    lens = torch.tensor(lengths, dtype=torch.int64) if lengths is not None else None
    y, hn, cn = run_seq(m, mode, x, lens, h0, c0, batch_first)
    if dt in ("f16", "bf16"):
        y2, hn2, cn2 = stepwise_rounded(m, mode, sd, x.detach(), lens, h0.detach(), c0.detach() if c0 is not None else None,
                                        batch_first, dt, proj)
        for got, ref in ((y2, y), (hn2, hn)) + (((cn2, cn),) if mode == 2 else ()):
            if not close(got, ref.detach(), dt):
                raise SystemExit("%s: dlk's per-step rounding leaves the %s tolerance" % (name, dt))
        backward = False
    params = dict(mode=mode, hidden=H, proj=proj, layers=layers, bidir=int(bidir), batch_first=int(batch_first),
                  reset_before=0, backward=int(backward))
    ins = [("x", dt, x)]
    if lens is not None:
        ins.append(("lengths", "i64", lens))
    if states:
        ins.append(("h0", dt, h0))
        if mode == 2:
            ins.append(("c0", dt, c0))
    for k, v in sd.items():
        ins.append((k, dt, v))
    outs = [("y", dt, y), ("hn", dt, hn)] + ([("cn", dt, cn)] if mode == 2 else [])
    if backward:
        dy = rnd(uni(*y.shape), dt)
        if lens is not None:  # past a sequence's end dy is ignored: give it garbage
            for b, n in enumerate(lengths):
                idx = (b, slice(n, None)) if batch_first else (slice(n, None), b)
                dy[idx] = 7.0
        dhn = rnd(uni(*hn.shape), dt)
        loss = (y * dy).sum() + (hn * dhn).sum()
        dcn = None
        if mode == 2:
            dcn = rnd(uni(*cn.shape), dt)
            loss = loss + (cn * dcn).sum()
        params_list = [p for _, p in m.named_parameters()]
        wrt = [x] + ([h0] + ([c0] if mode == 2 else []) if states else []) + params_list
        grads = torch.autograd.grad(loss, wrt)
        ins += [("dy", dt, dy), ("dhn", dt, dhn)] + ([("dcn", dt, dcn)] if mode == 2 else [])
        gi = iter(grads)
        outs.append(("dx", dt, next(gi)))
        if states:
            outs.append(("dh0", dt, next(gi)))
            if mode == 2:
                outs.append(("dc0", dt, next(gi)))
        for (k, _), g in zip(m.named_parameters(), gi):
            outs.append(("grad_" + k, dt, g))
    w.case(name, "rnn_seq", params, ins, outs)


def cell_case(w, name, mode, dt, I, H, B, bias=True, states=True, scale=0.6):
    if mode == 2:
        m = nn.LSTMCell(I, H, bias=bias, dtype=F64)
    elif mode == 3:
        m = nn.GRUCell(I, H, bias=bias, dtype=F64)
    else:
        m = nn.RNNCell(I, H, bias=bias, nonlinearity="tanh" if mode == 0 else "relu", dtype=F64)
    sd = set_weights(m, dt, scale)
    x = rnd(uni(B, I), dt).requires_grad_(True)
    h = rnd(uni(B, H) * 0.5, dt).requires_grad_(True) if states else torch.zeros(B, H, dtype=F64)
    c = (rnd(uni(B, H) * 0.5, dt).requires_grad_(True) if states else torch.zeros(B, H, dtype=F64)) if mode == 2 else None
    if mode == 2:
        h1, c1 = m(x, (h, c))
    else:
        h1, c1 = m(x, h), None
    dh = rnd(uni(B, H), dt)
    loss = (h1 * dh).sum()
    ins = [("x", dt, x)]
    if states:
        ins.append(("h", dt, h))
        if mode == 2:
            ins.append(("c", dt, c))
    for k, v in sd.items():
        ins.append((k, dt, v))
    ins.append(("dh", dt, dh))
    if mode == 2:
        dc = rnd(uni(B, H), dt)
        loss = loss + (c1 * dc).sum()
        ins.append(("dc", dt, dc))
    wrt = [x] + ([h] + ([c] if mode == 2 else []) if states else []) + [p for _, p in m.named_parameters()]
    grads = iter(torch.autograd.grad(loss, wrt))
    outs = [("h_out", dt, h1)] + ([("c_out", dt, c1)] if mode == 2 else [])
    outs.append(("dx", dt, next(grads)))
    if states:
        outs.append(("dh_in", dt, next(grads)))
        if mode == 2:
            outs.append(("dc_in", dt, next(grads)))
    for (k, _), g in zip(m.named_parameters(), grads):
        outs.append(("grad_" + k, dt, g))
    w.case(name, "rnn_cell", dict(mode=mode, reset_before=0), ins, outs)


# ---- Keras: the layer formulas, written from tf.keras (recurrent_activation sigmoid) ----

def keras_forward(mode, reset_after, kernel, rk, bias, x):
    """x [B, T, I] -> (y [B, T, H], h_T [B, H]); Keras gate order, Keras layouts."""
    B, T, _ = x.shape
    H = rk.shape[0]
    h = torch.zeros(B, H, dtype=F64)
    c = torch.zeros(B, H, dtype=F64)
    ys = []
    for t in range(T):
        xt = x[:, t]
        if mode == 2:
            z = xt @ kernel + h @ rk + (bias if bias is not None else 0)
            z0, z1, z2, z3 = z.split(H, dim=1)
            i, f, o = torch.sigmoid(z0), torch.sigmoid(z1), torch.sigmoid(z3)
            c = f * c + i * torch.tanh(z2)
            h = o * torch.tanh(c)
        elif mode == 3:
            if reset_after:
                ib, rb = (bias[0], bias[1]) if bias is not None else (0, 0)
                mx = xt @ kernel + ib
                mi = h @ rk + rb
                x_z, x_r, x_h = mx.split(H, dim=1)
                r_z, r_r, r_h = mi.split(H, dim=1)
                z = torch.sigmoid(x_z + r_z)
                r = torch.sigmoid(x_r + r_r)
                hh = torch.tanh(x_h + r * r_h)
            else:
                mx = xt @ kernel + (bias if bias is not None else 0)
                x_z, x_r, x_h = mx.split(H, dim=1)
                z = torch.sigmoid(x_z + h @ rk[:, :H])
                r = torch.sigmoid(x_r + h @ rk[:, H:2 * H])
                hh = torch.tanh(x_h + (r * h) @ rk[:, 2 * H:])
            h = z * h + (1 - z) * hh
        else:
            h = torch.tanh(xt @ kernel + h @ rk + (bias if bias is not None else 0))
        ys.append(h)
    return torch.stack(ys, dim=1), h


def keras_case(w, name, mode, dt, I, H, B, T, reset_after=True, bias=True):
    G = GATES[mode]
    kernel = rnd(uni(I, G * H) * 0.7, dt)
    rk = rnd(uni(H, G * H) * 0.7, dt)
    b = None
    if bias:
        b = rnd(uni(2, G * H) * 0.5 if (mode == 3 and reset_after) else uni(G * H) * 0.5, dt)
    x = rnd(uni(B, T, I), dt)
    y, hT = keras_forward(mode, reset_after, kernel, rk, b, x)
    # The PyTorch layout, from the documented mapping (independent of dlk's code).
    order = [1, 0, 2] if mode == 3 else list(range(G))
    blk = lambda m, g: m[:, g * H:(g + 1) * H]
    w_ih = torch.cat([blk(kernel, g).t() for g in order], dim=0)
    w_hh = torch.cat([blk(rk, g).t() for g in order], dim=0)
    vb = lambda v, g: v[g * H:(g + 1) * H]
    zeros = torch.zeros(G * H, dtype=F64)
    if b is None:
        b_ih, b_hh = zeros, zeros
    elif b.dim() == 2:
        b_ih = torch.cat([vb(b[0], g) for g in order])
        b_hh = torch.cat([vb(b[1], g) for g in order])
    else:
        b_ih, b_hh = torch.cat([vb(b, g) for g in order]), zeros
    ins = [("kernel", dt, kernel), ("recurrent_kernel", dt, rk)] + ([("bias", dt, b)] if b is not None else []) + [("x", dt, x)]
    outs = [("w_ih", dt, w_ih), ("w_hh", dt, w_hh), ("b_ih", dt, b_ih), ("b_hh", dt, b_hh), ("y", dt, y), ("hn", dt, hT)]
    w.case(name, "keras", dict(mode=mode, reset_after=int(reset_after), batch_first=1), ins, outs)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "rnn")
    os.makedirs(out, exist_ok=True)

    w = Writer()
    for dt in ("f64", "f32"):
        for mname in ("tanh", "relu", "lstm", "gru"):
            cell_case(w, "cell_%s_%s" % (mname, dt), MODES[mname], dt, I=5, H=4, B=3)
        cell_case(w, "cell_lstm_nostate_%s" % dt, 2, dt, I=3, H=6, B=2, states=False)
        cell_case(w, "cell_gru_nobias_%s" % dt, 3, dt, I=4, H=3, B=2, bias=False)
    w.save(os.path.join(out, "cell.txt"))

    w = Writer()
    for dt in ("f64", "f32"):
        seq_case(w, "lstm_2l_bi_packed_%s" % dt, 2, dt, I=3, H=4, T=5, B=3, layers=2, bidir=True, lengths=[2, 5, 1])
        seq_case(w, "lstm_proj_2l_bf_%s" % dt, 2, dt, I=4, H=5, T=4, B=2, layers=2, proj=3, batch_first=True)
        seq_case(w, "lstm_proj_bi_packed_%s" % dt, 2, dt, I=3, H=4, T=4, B=3, bidir=True, proj=2, lengths=[4, 1, 3])
        seq_case(w, "gru_2l_bi_%s" % dt, 3, dt, I=3, H=4, T=5, B=2, layers=2, bidir=True)
        seq_case(w, "gru_packed_bf_%s" % dt, 3, dt, I=2, H=3, T=6, B=4, batch_first=True, lengths=[6, 3, 1, 4])
        seq_case(w, "rnn_tanh_2l_bi_packed_%s" % dt, 0, dt, I=3, H=5, T=4, B=3, layers=2, bidir=True, lengths=[1, 4, 2])
        seq_case(w, "rnn_relu_2l_%s" % dt, 1, dt, I=4, H=3, T=5, B=2, layers=2)
        seq_case(w, "lstm_nobias_nostate_%s" % dt, 2, dt, I=2, H=3, T=3, B=2, bias=False, states=False)
    for dt in ("f16", "bf16"):
        seq_case(w, "lstm_2l_bi_packed_%s" % dt, 2, dt, I=3, H=4, T=4, B=3, layers=2, bidir=True, lengths=[2, 4, 1])
        seq_case(w, "gru_bi_%s" % dt, 3, dt, I=3, H=4, T=4, B=2, bidir=True)
        seq_case(w, "rnn_tanh_%s" % dt, 0, dt, I=3, H=4, T=4, B=2)
    w.save(os.path.join(out, "seq.txt"))

    w = Writer()
    for dt in ("f64", "f32"):
        keras_case(w, "keras_lstm_%s" % dt, 2, dt, I=3, H=4, B=2, T=4)
        keras_case(w, "keras_gru_after_%s" % dt, 3, dt, I=3, H=4, B=2, T=4, reset_after=True)
        keras_case(w, "keras_gru_before_%s" % dt, 3, dt, I=3, H=4, B=2, T=4, reset_after=False)
        keras_case(w, "keras_simplernn_%s" % dt, 0, dt, I=3, H=4, B=2, T=4)
        keras_case(w, "keras_lstm_nobias_%s" % dt, 2, dt, I=2, H=3, B=2, T=3, bias=False)
    w.save(os.path.join(out, "keras.txt"))


if __name__ == "__main__":
    main()
