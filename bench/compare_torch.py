#!/usr/bin/env python3
"""dlk against PyTorch, side by side, on the nn, conv and rnn cases of dlk-bench (conv2d,
pooling, batch norm, MSE; RNN, LSTM, GRU).

    python3 bench/compare_torch.py [--lib build/libdlk.so] [--quick] [--cpu] [--all]

Loads libdlk with ctypes and runs each case in PyTorch and through dlk on the same torch
tensors (their data_ptr in dlk_tensor descriptors, no copy). On CUDA (when
torch.cuda.is_available() and libdlk sees a GPU) dlk runs on torch's current stream, and
both sides are timed the same way: warm-up, then >= 20 runs (>= 5 with --quick), each
after an L2 flush (zeroing a buffer of twice the L2 size), timed with torch.cuda.Event;
median reported. Without a GPU both run on the CPU at the small shapes dlk-bench uses
there, timed with time.perf_counter after writing a 32 MiB buffer.

For every dlk variant of the op that runs on the device, the output is compared with
PyTorch's: max |dlk - torch| / max(1, max |torch|) against a per-dtype tolerance. The
table shows dlk's fastest variant; --all shows every variant. Exit status 1 when an
output disagrees or a dlk call fails (a variant that declines a case is not a failure).
"""
import argparse
import ctypes
import math
import os
import statistics
import sys
import time

import torch

# ---- the C ABI (include/dlk.h) ------------------------------------------------------------

DLK_MAX_DIMS = 8
DLK_OK, DLK_ERR_NOT_SUPPORTED = 0, 9
DLK_CPU, DLK_CUDA = 1, 2
DTYPES = {torch.float32: 0, torch.float16: 1, torch.bfloat16: 2, torch.float64: 3,
          torch.int32: 4, torch.int64: 5, torch.uint8: 6}


class Device(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("id", ctypes.c_int)]


class Tensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("dtype", ctypes.c_int), ("device", Device),
                ("ndim", ctypes.c_int), ("shape", ctypes.c_int64 * DLK_MAX_DIMS),
                ("strides", ctypes.c_int64 * DLK_MAX_DIMS)]


class ContextOptions(ctypes.Structure):
    _fields_ = [("device", Device), ("allow_tf32", ctypes.c_int), ("deterministic", ctypes.c_int),
                ("disable_autotune", ctypes.c_int), ("unchecked_ids", ctypes.c_int),
                ("workspace_limit", ctypes.c_size_t), ("force_variant", ctypes.c_char_p),
                ("cpu_threads", ctypes.c_int)]


class VariantInfo(ctypes.Structure):
    _fields_ = [("id", ctypes.c_int), ("name", ctypes.c_char_p), ("device", ctypes.c_int),
                ("description", ctypes.c_char_p)]


class GemmParams(ctypes.Structure):
    _fields_ = [("alpha", ctypes.c_double), ("beta", ctypes.c_double)]


class SoftmaxParams(ctypes.Structure):
    _fields_ = [("log", ctypes.c_int)]


class LayernormParams(ctypes.Structure):
    _fields_ = [("eps", ctypes.c_double)]


class AdamParams(ctypes.Structure):
    _fields_ = [("lr", ctypes.c_double), ("beta1", ctypes.c_double), ("beta2", ctypes.c_double),
                ("eps", ctypes.c_double), ("weight_decay", ctypes.c_double),
                ("adamw", ctypes.c_int), ("step", ctypes.c_int64)]


class Conv2dParams(ctypes.Structure):
    _fields_ = [("stride", ctypes.c_int64 * 2), ("padding", ctypes.c_int64 * 2),
                ("dilation", ctypes.c_int64 * 2), ("groups", ctypes.c_int64), ("act", ctypes.c_int)]


class Pool2dParams(ctypes.Structure):
    _fields_ = [("kind", ctypes.c_int), ("kernel", ctypes.c_int64 * 2), ("stride", ctypes.c_int64 * 2),
                ("padding", ctypes.c_int64 * 2), ("dilation", ctypes.c_int64 * 2), ("ceil_mode", ctypes.c_int),
                ("count_include_pad", ctypes.c_int)]


class BatchnormParams(ctypes.Structure):
    _fields_ = [("eps", ctypes.c_double), ("momentum", ctypes.c_double), ("training", ctypes.c_int)]


class MseParams(ctypes.Structure):
    _fields_ = [("reduction", ctypes.c_int)]
class SdpaParams(ctypes.Structure):
    _fields_ = [("scale", ctypes.c_double), ("causal", ctypes.c_int), ("dropout", ctypes.c_double),
                ("seed", ctypes.c_uint64), ("offset", ctypes.c_uint64)]


class RnnParams(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("hidden_size", ctypes.c_int64), ("proj_size", ctypes.c_int64),
                ("num_layers", ctypes.c_int), ("bidirectional", ctypes.c_int), ("batch_first", ctypes.c_int),
                ("gru_reset_before", ctypes.c_int), ("dropout", ctypes.c_double), ("seed", ctypes.c_uint64),
                ("training", ctypes.c_int)]


class RnnCellParams(ctypes.Structure):
    _fields_ = [("mode", ctypes.c_int), ("gru_reset_before", ctypes.c_int)]


P = ctypes.POINTER


class RnnWeights(ctypes.Structure):  # also dlk_rnn_grads: five tensor pointers
    _fields_ = [(n, P(Tensor)) for n in ("w_ih", "w_hh", "b_ih", "b_hh", "w_hr")]


class Dlk:
    """The few entry points this script uses. Missing nn symbols leave a case skipped."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        L = self.lib
        sig = {
            "dlk_version": (ctypes.c_char_p, []),
            "dlk_status_string": (ctypes.c_char_p, [ctypes.c_int]),
            "dlk_context_create": (ctypes.c_int, [P(ctypes.c_void_p), P(ContextOptions)]),
            "dlk_context_destroy": (None, [ctypes.c_void_p]),
            "dlk_context_last_error": (ctypes.c_char_p, [ctypes.c_void_p]),
            "dlk_context_set_stream": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_void_p]),
            "dlk_context_set_allow_tf32": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
            "dlk_synchronize": (ctypes.c_int, [ctypes.c_void_p]),
            "dlk_device_count": (ctypes.c_int, [ctypes.c_void_p, P(ctypes.c_int)]),
            "dlk_op_variants": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, P(VariantInfo),
                                               ctypes.c_int, P(ctypes.c_int)]),
            "dlk_force_variant": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]),
            "dlk_gemm": (ctypes.c_int, [ctypes.c_void_p, P(GemmParams), P(Tensor), P(Tensor),
                                        P(Tensor)]),
            "dlk_softmax_forward": (ctypes.c_int, [ctypes.c_void_p, P(SoftmaxParams), P(Tensor),
                                                   P(Tensor)]),
            "dlk_layernorm_forward": (ctypes.c_int, [ctypes.c_void_p, P(LayernormParams),
                                                     P(Tensor), P(Tensor), P(Tensor), P(Tensor),
                                                     P(Tensor), P(Tensor)]),
            "dlk_adam_step": (ctypes.c_int, [ctypes.c_void_p, P(AdamParams), P(Tensor), P(Tensor),
                                             P(Tensor), P(Tensor)]),
            "dlk_additive_attention_forward": (ctypes.c_int, [ctypes.c_void_p] + [P(Tensor)] * 8),
            "dlk_additive_attention_backward": (ctypes.c_int, [ctypes.c_void_p] + [P(Tensor)] * 14),
            "dlk_explain_mode": (ctypes.c_int, [ctypes.c_void_p, ctypes.c_int]),
            "dlk_explain_report": (ctypes.c_int, [ctypes.c_void_p, P(ctypes.c_char_p)]),
            "dlk_conv2d_forward": (ctypes.c_int, [ctypes.c_void_p, P(Conv2dParams), P(Tensor), P(Tensor),
                                                  P(Tensor), P(Tensor), P(Tensor)]),
            "dlk_conv2d_backward": (ctypes.c_int, [ctypes.c_void_p, P(Conv2dParams), P(Tensor), P(Tensor),
                                                   P(Tensor), P(Tensor), P(Tensor), P(Tensor), P(Tensor)]),
            "dlk_pool2d_forward": (ctypes.c_int, [ctypes.c_void_p, P(Pool2dParams), P(Tensor), P(Tensor)]),
            "dlk_batchnorm_forward": (ctypes.c_int, [ctypes.c_void_p, P(BatchnormParams)] + [P(Tensor)] * 8),
            "dlk_mse_loss_forward": (ctypes.c_int, [ctypes.c_void_p, P(MseParams), P(Tensor), P(Tensor),
                                                     P(Tensor)]),
            "dlk_rnn_reserve_size": (ctypes.c_int, [ctypes.c_void_p, P(RnnParams), P(Tensor),
                                                    P(ctypes.c_size_t)]),
            "dlk_rnn_forward": (ctypes.c_int, [ctypes.c_void_p, P(RnnParams), P(RnnWeights), P(Tensor),
                                               P(Tensor), P(Tensor), P(Tensor), P(Tensor), P(Tensor),
                                               P(Tensor), P(Tensor)]),
            "dlk_rnn_backward": (ctypes.c_int, [ctypes.c_void_p, P(RnnParams), P(RnnWeights), P(Tensor),
                                                P(Tensor), P(Tensor), P(Tensor), P(Tensor), P(Tensor),
                                                P(Tensor), P(Tensor), P(Tensor), P(Tensor), P(Tensor),
                                                P(Tensor), P(RnnWeights)]),
            "dlk_rnn_cell_forward": (ctypes.c_int, [ctypes.c_void_p, P(RnnCellParams), P(RnnWeights),
                                                    P(Tensor), P(Tensor), P(Tensor), P(Tensor), P(Tensor),
                                                    P(Tensor)]),
            "dlk_sdpa_forward": (ctypes.c_int, [ctypes.c_void_p, P(SdpaParams)] + [P(Tensor)] * 8),
            "dlk_sdpa_backward": (ctypes.c_int, [ctypes.c_void_p, P(SdpaParams)] + [P(Tensor)] * 13),
        }
        self.missing = []
        for name, (res, args) in sig.items():
            if not hasattr(L, name):
                self.missing.append(name)
                continue
            fn = getattr(L, name)
            fn.restype, fn.argtypes = res, args
        core = [n for n in self.missing if not n.startswith(("dlk_gemm", "dlk_softmax", "dlk_layernorm",
                                                             "dlk_adam", "dlk_conv2d", "dlk_pool2d",
                                                             "dlk_batchnorm", "dlk_mse", "dlk_rnn",
                                                             "dlk_sdpa", "dlk_additive", "dlk_explain"))]
        if core:
            raise RuntimeError("%s lacks %s: not a dlk library?" % (path, ", ".join(core)))
        self.ctx = None

    def has(self, name):
        return name not in self.missing

    def device_count(self):
        n = ctypes.c_int(0)
        self.lib.dlk_device_count(None, ctypes.byref(n))
        return n.value

    def open(self, cuda):
        opts = ContextOptions()
        opts.device = Device(DLK_CUDA if cuda else DLK_CPU, torch.cuda.current_device() if cuda else 0)
        ctx = ctypes.c_void_p()
        s = self.lib.dlk_context_create(ctypes.byref(ctx), ctypes.byref(opts))
        if s != DLK_OK:
            raise RuntimeError("dlk_context_create: %s: %s" % (self.status(s), self.error(None)))
        self.ctx = ctx
        Dlk.current = self  # the rnn cases size their reserve through it while set up
        if cuda:  # dlk works on torch's stream, so events and ordering are shared
            self.check(self.lib.dlk_context_set_stream(ctx, torch.cuda.current_stream().cuda_stream))

    def close(self):
        if self.ctx:
            self.lib.dlk_context_destroy(self.ctx)
            self.ctx = None

    def status(self, s):
        return self.lib.dlk_status_string(s).decode()

    def error(self, ctx):
        return self.lib.dlk_context_last_error(ctx).decode()

    def check(self, s):
        if s != DLK_OK:
            raise DlkError(s, "%s: %s" % (self.status(s), self.error(self.ctx)))

    def variants(self, op, device_type):
        cap = 64
        rows = (VariantInfo * cap)()
        n = ctypes.c_int(0)
        self.check(self.lib.dlk_op_variants(self.ctx, op.encode(), rows, cap, ctypes.byref(n)))
        return [(rows[i].id, rows[i].name.decode()) for i in range(min(n.value, cap))
                if rows[i].device == device_type]

    def workspaces(self, call):
        """{variant name: workspace bytes} of a dlk call, from explain mode (runs nothing)."""
        out = {}
        if not (self.has("dlk_explain_mode") and self.has("dlk_explain_report")):
            return out
        self.check(self.lib.dlk_explain_mode(self.ctx, 1))
        try:
            if call(self) == 0:
                text = ctypes.c_char_p()
                self.check(self.lib.dlk_explain_report(self.ctx, ctypes.byref(text)))
                for line in (text.value or b"").decode().splitlines():
                    f = line.split()
                    if len(f) >= 3 and f[0].isdigit() and f[2] == "supported":
                        ws = line.split("(workspace ")[1].split()[0] if "(workspace " in line else "0"
                        out[f[1]] = int(ws)
        finally:
            self.lib.dlk_explain_mode(self.ctx, 0)
        return out

    def force(self, op, vid):
        self.check(self.lib.dlk_force_variant(self.ctx, op.encode(), vid))


class DlkError(Exception):
    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status


def desc(t):
    """A dlk_tensor describing torch tensor t (no copy)."""
    if t.dtype not in DTYPES:
        raise TypeError("dtype %s has no dlk equivalent" % t.dtype)
    if t.dim() > DLK_MAX_DIMS:
        raise ValueError("more than %d dims" % DLK_MAX_DIMS)
    d = Tensor()
    d.data = t.data_ptr()
    d.dtype = DTYPES[t.dtype]
    d.device = Device(DLK_CUDA, t.device.index or 0) if t.is_cuda else Device(DLK_CPU, 0)
    d.ndim = t.dim()
    for i, (n, s) in enumerate(zip(t.shape, t.stride())):
        d.shape[i], d.strides[i] = n, s
    return d


# ---- timing: the same method for both sides ------------------------------------------------

class Timer:
    def __init__(self, cuda, runs):
        self.cuda, self.runs = cuda, runs
        if cuda:
            props = torch.cuda.get_device_properties(torch.cuda.current_device())
            l2 = getattr(props, "L2_cache_size", 0) or (64 << 20)
            self.flush = torch.empty(2 * l2, dtype=torch.uint8, device="cuda")
        else:
            self.flush = torch.empty(32 << 20, dtype=torch.uint8)

    def median_ms(self, fn):
        """fn() once as warm-up (synchronised), then `runs` timed runs; median ms."""
        fn()
        self.sync()
        times = []
        if self.cuda:
            ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(self.runs)]
            for a, b in ev:
                self.flush.zero_()
                a.record()
                fn()
                b.record()
            torch.cuda.synchronize()
            times = [a.elapsed_time(b) for a, b in ev]
        else:
            for _ in range(self.runs):
                self.flush.zero_()
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()


# ---- the cases -------------------------------------------------------------------------------

TOL = {"f32": 1e-4, "tf32": 1e-2, "f16": 1e-2, "bf16": 3e-2}
TDT = {"f32": torch.float32, "tf32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def rel_err(got, ref):
    ref64, got64 = ref.double(), got.double()
    scale = max(1.0, ref64.abs().max().item()) if ref64.numel() else 1.0
    d = (got64 - ref64).abs()
    if torch.isnan(d).any():
        return math.inf
    return d.max().item() / scale if d.numel() else 0.0


def make_cases(cuda, quick):
    """(name, shape label, dtype label, op, setup) per case; setup(dev) returns a dict with
    torch_fn, dlk_fn(dlk), out (the dlk output tensor), ref_fn (torch result), reset."""
    cases = []
    if cuda:
        gemms = [(4096, 4096, 4096), (1, 4096, 4096), (8192, 1024, 4096)]
        rows = [(8192, 1024), (4096, 32000)]
        adam_n = 100_000_000
    else:
        gemms = [(128, 128, 128), (1, 1024, 1024), (256, 64, 256)] if quick else \
                [(256, 256, 256), (1, 1024, 1024), (512, 64, 256)]
        rows = [(256, 1024), (32, 32000)] if quick else [(512, 1024), (128, 32000)]
        adam_n = 1_000_000 if quick else 4_000_000
    dts = ["f32", "tf32", "f16", "bf16"] if cuda else ["f32", "f16", "bf16"]
    for m, n, k in gemms:
        for dt in dts:
            cases.append(("gemm", "%dx%dx%d" % (m, n, k), dt, "gemm", "dlk_gemm",
                          lambda dev, m=m, n=n, k=k, dt=dt: gemm_case(dev, m, n, k, dt)))
    for kind in ("softmax", "layernorm"):
        for r, c in rows:
            for dt in ["f32", "f16", "bf16"]:
                op = "softmax_fwd" if kind == "softmax" else "layernorm_fwd"
                sym = "dlk_softmax_forward" if kind == "softmax" else "dlk_layernorm_forward"
                cases.append((kind, "%dx%d" % (r, c), dt, op, sym,
                              lambda dev, kind=kind, r=r, c=c, dt=dt: row_case(dev, kind, r, c, dt)))
    label = "%dM params" % (adam_n // 1_000_000)
    cases.append(("adam", label, "f32", "adam_step", "dlk_adam_step",
                  lambda dev: adam_case(dev, adam_n)))
    # SDPA as dlk-bench's attention family: 16k tokens, heads x D = 2048, seq 512..16k.
    if cuda:
        sdpa = [(16384 // t, 2048 // d, t, d) for d in (64, 128) for t in
                ((2048, 8192) if quick else (512, 1024, 2048, 4096, 8192, 16384))]
        sdpa_dts = ["bf16", "f16"]
    else:
        sdpa, sdpa_dts = [(1, 2, 64 if quick else 128, 64)], ["bf16"]
    for bwd in (0, 1):
        for dt in sdpa_dts:
            for b, h, t, d in sdpa:
                for causal in (0, 1):
                    cname = "sdpa_%s%s" % ("bwd" if bwd else "fwd", "_causal" if causal else "")
                    cases.append((cname, "b%d h%d t%d d%d" % (b, h, t, d), dt,
                                  "sdpa_bwd" if bwd else "sdpa_fwd",
                                  "dlk_sdpa_backward" if bwd else "dlk_sdpa_forward",
                                  lambda dev, b=b, h=h, t=t, d=d, c=causal, dt=dt, bwd=bwd:
                                  sdpa_case(dev, b, h, t, d, c, dt, bwd)))
    # additive (Bahdanau) attention as bench/bench_attention.c: B 64, T 50/200, H = A 256/1024
    if cuda:
        adds = [(64, t, h) for h in (256, 1024) for t in (50, 200) if not quick or (t == 200 and h == 1024)]
        add_dts = ["bf16", "f32"]
    else:
        adds, add_dts = [(2, 8 if quick else 16, 32)], ["f32"]
    for bwd in (0, 1):
        for dt in add_dts:
            for b, t, h in adds:
                cases.append(("additive_%s" % ("bwd" if bwd else "fwd"), "b%d t%d h%d" % (b, t, h), dt,
                              "additive_attn_bwd" if bwd else "additive_attn_fwd",
                              "dlk_additive_attention_backward" if bwd else "dlk_additive_attention_forward",
                              lambda dev, b=b, t=t, h=h, dt=dt, bwd=bwd: additive_case(dev, b, t, h, dt, bwd)))
    # conv: bench/bench_conv.c's layers; f32 NCHW, f16/bf16 channels-last on a GPU
    shapes = CONV_GPU_SHAPES if cuda else CONV_CPU_SHAPES[:2 if quick else 3]
    conv_dts = [("f32", False), ("bf16", True), ("f16", True)] if cuda else [("f32", False)]
    for shp in shapes:
        for direction, op in (("conv_fwd", "conv2d_fwd"), ("conv_bwd_data", "conv2d_bwd_data"),
                              ("conv_bwd_filter", "conv2d_bwd_filter")):
            for dt, cl in conv_dts:
                sym = "dlk_conv2d_forward" if direction == "conv_fwd" else "dlk_conv2d_backward"
                cases.append((direction, shp[0] + (",nhwc" if cl else ""), dt, op, sym,
                              lambda dev, shp=shp, d=direction, dt=dt, cl=cl: conv_case(dev, shp, d, dt, cl)))
    cases += make_cnn_cases(cuda, quick)
    # rnn: DeepBench's recurrent set, as bench/bench_rnn.c (hidden, batch, steps, inference)
    if cuda:
        rnns = [(0, 1760, 16, 50, 0), (0, 2560, 64, 50, 0), (2, 512, 16, 25, 0), (2, 1024, 128, 25, 0),
                (2, 4096, 64, 25, 0), (2, 1536, 8, 50, 0), (2, 256, 16, 150, 0), (2, 512, 1, 25, 1),
                (3, 2816, 32, 750, 0), (3, 1024, 64, 1500, 0), (3, 2816, 1, 1500, 1)]
        if quick:
            rnns = rnns[:4]
        rdts = ["f32", "f16"]
    else:
        rnns = [(0, 32, 2, 5, 0), (2, 32, 2, 5, 0), (2, 32, 1, 5, 1), (3, 32, 2, 5, 0)]
        rdts = ["f32"]
    mname = {0: "rnn_tanh", 2: "lstm", 3: "gru"}
    for mode, h, b, t, infer in rnns:
        for dt in rdts:
            for kind in (["infer"] if infer else ["fwd", "fwd+bwd"]):
                cases.append(("%s_%s" % (mname[mode], kind), "h%d b%d t%d" % (h, b, t), dt, "rnn_fwd",
                              "dlk_rnn_forward",
                              lambda dev, mode=mode, h=h, b=b, t=t, kind=kind, dt=dt:
                              rnn_case(dev, mode, h, b, t, kind, dt)))
    for dt in rdts:
        cases.append(("lstm_cell", "h512 b1" if cuda else "h64 b1", dt, "rnn_cell_fwd", "dlk_rnn_cell_forward",
                      lambda dev, dt=dt: cell_case(dev, 512 if cuda else 64, dt)))
    return cases


# name, N, C, H, W, K, R, S, stride, pad, groups (bench/bench_conv.c's tables)
CONV_GPU_SHAPES = [
    ("resnet50_conv1", 32, 3, 224, 224, 64, 7, 7, 2, 3, 1),
    ("resnet50_res2_3x3", 32, 64, 56, 56, 64, 3, 3, 1, 1, 1),
    ("resnet50_res2_1x1", 32, 64, 56, 56, 256, 1, 1, 1, 0, 1),
    ("resnet50_res3_3x3", 32, 128, 28, 28, 128, 3, 3, 1, 1, 1),
    ("resnet50_res4_3x3", 32, 256, 14, 14, 256, 3, 3, 1, 1, 1),
    ("resnet50_res5_3x3", 32, 512, 7, 7, 512, 3, 3, 1, 1, 1),
    ("vgg19_conv3_1", 8, 128, 56, 56, 256, 3, 3, 1, 1, 1),
    ("vgg19_conv4_1", 8, 256, 28, 28, 512, 3, 3, 1, 1, 1),
    ("mobilenet_dw3x3", 32, 32, 112, 112, 32, 3, 3, 1, 1, 32),
    ("deepbench_700x161", 32, 1, 161, 700, 32, 5, 20, 2, 0, 1),
    ("deepbench_341x79", 32, 32, 79, 341, 32, 5, 10, 2, 0, 1),
    ("deepbench_54x54", 8, 64, 54, 54, 64, 3, 3, 1, 1, 1),
    ("deepbench_224x224", 16, 3, 224, 224, 64, 7, 7, 2, 3, 1),
    ("deepbench_28x28_5x5", 16, 192, 28, 28, 32, 5, 5, 1, 2, 1),
    ("deepbench_14x14", 16, 256, 14, 14, 256, 3, 3, 1, 1, 1),
    ("deepbench_7x7", 16, 512, 7, 7, 512, 3, 3, 1, 1, 1),
]
CONV_CPU_SHAPES = [
    ("small_3x3", 1, 16, 14, 14, 16, 3, 3, 1, 1, 1),
    ("small_1x1", 1, 32, 14, 14, 64, 1, 1, 1, 0, 1),
    ("small_dw3x3", 1, 32, 28, 28, 32, 3, 3, 1, 1, 32),
]


def conv_case(dev, shp, direction, dt, cl):
    _, n, c, h, w, k, r, s, stride, pad, groups = shp
    g = torch.Generator(device="cpu").manual_seed(41)
    fmt = torch.channels_last if cl else torch.contiguous_format

    def make(*shape, scale=1.0):
        return ((torch.rand(*shape, generator=g) * 2 - 1) * scale).to(dev, TDT[dt]).contiguous(memory_format=fmt)

    x, wt = make(n, c, h, w), make(k, c // groups, r, s, scale=0.1)
    y = torch.nn.functional.conv2d(x, wt, None, stride, pad, 1, groups)
    dy = make(*y.shape)
    p = Conv2dParams((stride, stride), (pad, pad), (1, 1), groups, 0)
    keep = [x, wt, y, dy]
    dx_, dw_, dy_ = desc(x), desc(wt), desc(dy)
    if direction == "conv_fwd":
        out = torch.empty_like(y)
        do = desc(out)
        tfn = lambda: torch.nn.functional.conv2d(x, wt, None, stride, pad, 1, groups)  # noqa: E731
        dfn = lambda d: d.lib.dlk_conv2d_forward(d.ctx, ctypes.byref(p), dx_, dw_, None, do, None)  # noqa: E731
    else:
        data = direction == "conv_bwd_data"
        out = torch.empty_like(x if data else wt)
        do = desc(out)
        mask = [data, not data, False]

        def tfn():
            return torch.ops.aten.convolution_backward(dy, x, wt, None, [stride] * 2, [pad] * 2, [1, 1], False,
                                                       [0, 0], groups, mask)[0 if data else 1]
        if data:
            dfn = lambda d: d.lib.dlk_conv2d_backward(d.ctx, ctypes.byref(p), dx_, dw_, None, dy_, do, None, None)  # noqa: E731
        else:
            dfn = lambda d: d.lib.dlk_conv2d_backward(d.ctx, ctypes.byref(p), dx_, dw_, None, dy_, None, do, None)  # noqa: E731
    keep.append(out)
    return dict(torch_fn=tfn, ref=tfn, dlk_fn=dfn, out=out, tf32=False, keep=keep)


def gemm_case(dev, m, n, k, dt):
    g = torch.Generator(device="cpu").manual_seed(11)
    a = (torch.rand(m, k, generator=g) * 2 - 1).to(dev, TDT[dt])
    b = (torch.rand(k, n, generator=g) * 2 - 1).to(dev, TDT[dt])
    c = torch.empty(m, n, device=dev, dtype=TDT[dt])
    tc = torch.empty_like(c)
    da, db, dc = desc(a), desc(b), desc(c)
    p = GemmParams(1.0, 0.0)
    return dict(torch_fn=lambda: torch.matmul(a, b, out=tc), ref=lambda: tc,
                dlk_fn=lambda d: d.lib.dlk_gemm(d.ctx, ctypes.byref(p), da, db, dc), out=c,
                tf32=dt == "tf32", keep=(a, b, c, tc))


def row_case(dev, kind, r, c, dt):
    g = torch.Generator(device="cpu").manual_seed(21)
    x = (torch.rand(r, c, generator=g) * 8 - 4).to(dev, TDT[dt])
    y, ty = torch.empty_like(x), torch.empty_like(x)
    dx, dy = desc(x), desc(y)
    keep = [x, y, ty]  # the descriptors do not own memory: the tensors must outlive them
    if kind == "softmax":
        p = SoftmaxParams(0)
        tfn = lambda: ty.copy_(torch.softmax(x, dim=-1))  # noqa: E731
        # torch has no out= softmax; the copy is part of its time, so time without it:
        tfn_timed = lambda: torch.softmax(x, dim=-1)  # noqa: E731
        dfn = lambda d: d.lib.dlk_softmax_forward(d.ctx, ctypes.byref(p), dx, dy)  # noqa: E731
    else:
        gamma = (torch.rand(c, generator=g) + 0.5).to(dev, TDT[dt])
        beta = (torch.rand(c, generator=g) - 0.5).to(dev, TDT[dt])
        mean = torch.empty(r, device=dev, dtype=torch.float32)
        rstd = torch.empty_like(mean)
        dg, dbe, dm, dr = desc(gamma), desc(beta), desc(mean), desc(rstd)
        keep += [gamma, beta, mean, rstd]
        p = LayernormParams(1e-5)
        tfn = lambda: ty.copy_(torch.nn.functional.layer_norm(x, (c,), gamma, beta, 1e-5))  # noqa: E731
        tfn_timed = lambda: torch.nn.functional.layer_norm(x, (c,), gamma, beta, 1e-5)  # noqa: E731
        dfn = lambda d: d.lib.dlk_layernorm_forward(d.ctx, ctypes.byref(p), dx, dg, dbe, dy, dm, dr)  # noqa: E731
    return dict(torch_fn=tfn_timed, ref=lambda: (tfn(), ty)[1], dlk_fn=dfn, out=y, tf32=False,
                keep=keep)


def adam_case(dev, n):
    g = torch.Generator(device="cpu").manual_seed(31)
    p0 = (torch.rand(n, generator=g) * 2 - 1).to(dev)
    g0 = ((torch.rand(n, generator=g) * 2 - 1) * 1e-2).to(dev)
    hp = dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)
    # torch side: AdamW on one flat parameter (fused on CUDA: its fastest path).
    tparam = torch.nn.Parameter(p0.clone())
    tparam.grad = g0.clone()
    kw = {"fused": True} if tparam.is_cuda else {"foreach": False}
    opt = torch.optim.AdamW([tparam], **hp, **kw)
    # dlk side: its own copies, reset to the start before the correctness run.
    param, grad = p0.clone(), g0.clone()
    m, v = torch.zeros_like(p0), torch.zeros_like(p0)
    dp, dg, dm, dv = desc(param), desc(grad), desc(m), desc(v)
    ap = AdamParams(hp["lr"], 0.9, 0.999, hp["eps"], hp["weight_decay"], 1, 1)

    def ref():  # one step of a fresh AdamW from p0: the truth for dlk's first step
        t = torch.nn.Parameter(p0.clone())
        t.grad = g0.clone()
        torch.optim.AdamW([t], **hp, **kw).step()
        return t.detach()

    def reset():
        param.copy_(p0)
        m.zero_()
        v.zero_()

    return dict(torch_fn=opt.step, ref=ref, reset=reset, out=param, tf32=False,
                keep=(param, grad, m, v, tparam),
                dlk_fn=lambda d: d.lib.dlk_adam_step(d.ctx, ctypes.byref(ap), dp, dg, dm, dv))


def additive_torch(enc, dec, wa, ua, va):
    """PyTorch eager additive attention, the formulas of dlk.h as a framework user writes them."""
    e = torch.tanh((enc @ wa)[:, None, :, :] + (dec @ ua)[:, :, None, :]) @ va
    alpha = torch.softmax(e, dim=-1)
    return alpha @ enc, alpha


def additive_case(dev, b, t, h, dt, bwd):
    """dlk_additive_attention_forward/backward against additive_torch and its autograd, with
    each side's peak memory beyond the inputs and outputs: torch's from
    torch.cuda.max_memory_allocated, dlk's from each variant's workspace (explain mode)."""
    g = torch.Generator(device="cpu").manual_seed(51)
    tdt = TDT[dt]
    enc, dec = [(torch.rand(b, t, h, generator=g) * 2 - 1).to(dev, tdt) for _ in range(2)]
    wa, ua = [((torch.rand(h, h, generator=g) * 2 - 1) / math.sqrt(h)).to(dev, tdt) for _ in range(2)]
    va = ((torch.rand(h, generator=g) * 2 - 1) / math.sqrt(h)).to(dev, tdt)
    ctx_, wts = torch.empty(b, t, h, device=dev, dtype=tdt), torch.empty(b, t, t, device=dev, dtype=tdt)
    ins = [desc(x) for x in (enc, dec, wa, ua, va)]
    d_ctx, d_wts = desc(ctx_), desc(wts)
    keep = [enc, dec, wa, ua, va, ctx_, wts]

    def fwd(dd):
        return dd.lib.dlk_additive_attention_forward(dd.ctx, *ins, None, d_ctx, d_wts)

    def peak(fn):
        if not torch.cuda.is_available() or dev != "cuda":
            return None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base

    def mem_note(call, torch_fn):
        def note(dd):
            ws = dd.workspaces(call)
            p = peak(torch_fn)
            mib = lambda x: "%.1f MiB" % (x / 1048576.0)  # noqa: E731
            parts = ["peak memory beyond inputs and outputs: torch %s" % (mib(p) if p is not None else "n/a (CPU)")]
            parts += ["dlk %s %s" % (k, mib(v)) for k, v in ws.items()]
            return "; ".join(parts)
        return note

    if not bwd:
        tfn = lambda: additive_torch(enc, dec, wa, ua, va)  # noqa: E731
        return dict(torch_fn=tfn, ref=lambda: tfn()[0], dlk_fn=fwd, out=ctx_, tf32=False, keep=keep,
                    mem=mem_note(fwd, tfn))
    dctx = (torch.rand(b, t, h, generator=g) * 2 - 1).to(dev, tdt)
    grads = [torch.empty_like(x) for x in (enc, dec, wa, ua, va)]
    d_dctx, d_grads = desc(dctx), [desc(x) for x in grads]
    leaves = [x.detach().clone().requires_grad_(True) for x in (enc, dec, wa, ua, va)]
    tctx, _ = additive_torch(*leaves)
    keep += [dctx] + grads + leaves + [tctx]

    def torch_bwd():  # the backward alone, as dlk-bench times it
        return torch.autograd.grad(tctx, leaves, dctx, retain_graph=True)

    class Fwd:  # dlk's forward once, lazily (the library is opened after the cases are made)
        done = False

    def dlk_bwd(dd):
        if not Fwd.done:
            dd.check(fwd(dd))
            Fwd.done = True
        return dd.lib.dlk_additive_attention_backward(dd.ctx, *ins, None, d_wts, d_dctx, None, *d_grads)

    return dict(torch_fn=torch_bwd, ref=lambda: torch_bwd()[0], dlk_fn=dlk_bwd, out=grads[0], tf32=False,
                keep=keep, mem=mem_note(dlk_bwd, torch_bwd))

# ---- conv family: pooling, batch norm, MSE (the shapes of bench/bench_conv.c) ---------------

def make_cnn_cases(cuda, quick):
    if cuda:
        pool, bn, mse = (32, 64, 112, 112), (32, 64, 112, 112), (8, 256, 64, 64)
    else:
        pool, bn, mse = (2, 16, 28, 28), (4, 16, 14, 14), (4, 16, 32, 32)
    cases = []
    for dt, cl in (("f32", False), ("bf16", True)):
        lay = ",nhwc" if cl else ""
        cases.append(("maxpool", "x".join(map(str, pool)) + lay, dt, "pool2d_fwd", "dlk_pool2d_forward",
                      lambda dev, dt=dt, cl=cl: maxpool_case(dev, pool, dt, cl)))
        cases.append(("batchnorm", "x".join(map(str, bn)) + lay, dt, "batchnorm_fwd", "dlk_batchnorm_forward",
                      lambda dev, dt=dt, cl=cl: batchnorm_case(dev, bn, dt, cl)))
        cases.append(("mse", "x".join(map(str, mse)), dt, "mse_loss_fwd", "dlk_mse_loss_forward",
                      lambda dev, dt=dt: mse_case(dev, mse, dt)))
    return cases


def image(dev, shape, dt, cl, seed):
    g = torch.Generator(device="cpu").manual_seed(seed)
    x = (torch.rand(*shape, generator=g) * 2 - 1).to(dev, TDT[dt])
    return x.contiguous(memory_format=torch.channels_last) if cl else x


def maxpool_case(dev, shape, dt, cl):
    """ResNet-50's stem max pool: 3x3, stride 2, padding 1."""
    x = image(dev, shape, dt, cl, 41)
    ty = torch.nn.functional.max_pool2d(x, 3, 2, 1)
    y = torch.empty_like(ty)
    dx, dy = desc(x), desc(y)
    p = Pool2dParams(0, (ctypes.c_int64 * 2)(3, 3), (ctypes.c_int64 * 2)(2, 2), (ctypes.c_int64 * 2)(1, 1),
                     (ctypes.c_int64 * 2)(1, 1), 0, 0)
    return dict(torch_fn=lambda: torch.nn.functional.max_pool2d(x, 3, 2, 1),
                ref=lambda: torch.nn.functional.max_pool2d(x, 3, 2, 1), out=y, tf32=False, keep=(x, y, ty),
                dlk_fn=lambda d: d.lib.dlk_pool2d_forward(d.ctx, ctypes.byref(p), dx, dy))


def batchnorm_case(dev, shape, dt, cl):
    """Training forward: batch statistics, running statistics updated, y."""
    x = image(dev, shape, dt, cl, 42)
    c = shape[1]
    w = torch.rand(c, device=dev) + 0.5
    b = torch.rand(c, device=dev) - 0.5
    trm, trv = torch.zeros(c, device=dev), torch.ones(c, device=dev)
    rm, rv = torch.zeros(c, device=dev), torch.ones(c, device=dev)
    sm, sr = torch.empty(c, device=dev), torch.empty(c, device=dev)
    y = torch.empty_like(x)
    ds = [desc(t) for t in (x, w, b, rm, rv, y, sm, sr)]
    p = BatchnormParams(1e-5, 0.1, 1)
    fn = lambda: torch.nn.functional.batch_norm(x, trm, trv, w, b, True, 0.1, 1e-5)  # noqa: E731
    return dict(torch_fn=fn, ref=fn, out=y, tf32=False, keep=(x, w, b, rm, rv, sm, sr, y, trm, trv),
                dlk_fn=lambda d: d.lib.dlk_batchnorm_forward(d.ctx, ctypes.byref(p), *ds))


def mse_case(dev, shape, dt):
    """MEAN over a feature map (the style-transfer content loss); loss f32 for bf16."""
    x, t = image(dev, shape, dt, False, 43), image(dev, shape, dt, False, 44)
    loss = torch.empty((), device=dev, dtype=torch.float32)
    dx, dt_, dl = desc(x), desc(t), desc(loss)
    p = MseParams(0)
    fn = lambda: torch.nn.functional.mse_loss(x.float(), t.float())  # noqa: E731
    return dict(torch_fn=lambda: torch.nn.functional.mse_loss(x, t), ref=fn, out=loss, tf32=False,
                keep=(x, t, loss), dlk_fn=lambda d: d.lib.dlk_mse_loss_forward(d.ctx, ctypes.byref(p), dx, dt_, dl))
def sdpa_case(dev, b, h, t, d, causal, dt, bwd):
    """torch's scaled_dot_product_attention (its fastest backend on the device) against
    dlk_sdpa_forward, or the backward of both from the same forward outputs (dq compared)."""
    g = torch.Generator(device="cpu").manual_seed(41)
    q, k, v = [(torch.rand(b, h, t, d, generator=g) * 2 - 1).to(dev, TDT[dt]) for _ in range(3)]
    out = torch.empty_like(q)
    lse = torch.empty(b, h, t, device=dev, dtype=torch.float32)
    p = SdpaParams(0.0, causal, 0.0, 0, 0)
    dq_, dk_, dv_, do_, dout_, dlse = desc(q), desc(k), desc(v), desc(out), None, desc(lse)
    F = torch.nn.functional
    keep = [q, k, v, out, lse]
    fwd = lambda dd: dd.lib.dlk_sdpa_forward(dd.ctx, ctypes.byref(p), dq_, dk_, dv_, None, None, None,  # noqa: E731
                                              do_, dlse)
    if not bwd:
        return dict(torch_fn=lambda: F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal)),
                    ref=lambda: F.scaled_dot_product_attention(q, k, v, is_causal=bool(causal)),
                    dlk_fn=fwd, out=out, tf32=False, keep=keep)
    dout = (torch.rand(b, h, t, d, generator=g) * 2 - 1).to(dev, TDT[dt])
    dq, dk, dv = torch.empty_like(q), torch.empty_like(k), torch.empty_like(v)
    dout_ = desc(dout)
    gq, gk, gv = desc(dq), desc(dk), desc(dv)
    keep += [dout, dq, dk, dv]
    qr, kr, vr = [x.detach().clone().requires_grad_(True) for x in (q, k, v)]
    tout = F.scaled_dot_product_attention(qr, kr, vr, is_causal=bool(causal))

    def torch_bwd():  # the backward alone, as dlk-bench times it
        return torch.autograd.grad(tout, (qr, kr, vr), dout, retain_graph=True)

    class Fwd:  # dlk's forward once, lazily (the library is opened after the cases are made)
        done = False

    def dlk_bwd(dd):
        if not Fwd.done:
            dd.check(fwd(dd))
            Fwd.done = True
        return dd.lib.dlk_sdpa_backward(dd.ctx, ctypes.byref(p), dq_, dk_, dv_, None, None, None, do_,
                                        dlse, dout_, gq, gk, gv, None)

    return dict(torch_fn=torch_bwd, ref=lambda: torch_bwd()[0], dlk_fn=dlk_bwd, out=dq, tf32=False,
                keep=keep + [qr, kr, vr, tout])
def _rnn_module(mode, i, h, dev, tdt):
    if mode == 2:
        m = torch.nn.LSTM(i, h)
    elif mode == 3:
        m = torch.nn.GRU(i, h)
    else:
        m = torch.nn.RNN(i, h, nonlinearity="tanh" if mode == 0 else "relu")
    return m.to(dev, tdt)  # torch's init: U(-1/sqrt(h), 1/sqrt(h))


def _weights(m, suffix="_l0"):
    """dlk_rnn_weights over the module's own parameter memory (no copy)."""
    ds = [desc(getattr(m, n + suffix)) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    w = RnnWeights(*[ctypes.pointer(d) for d in ds], None)
    return w, ds


def rnn_case(dev, mode, h, b, t, kind, dt):
    """One layer, one direction, input = hidden. infer/fwd: y against torch's y; fwd+bwd:
    dx against torch's x.grad (the backward after a training forward)."""
    tdt = TDT[dt]
    torch.manual_seed(41)
    m = _rnn_module(mode, h, h, dev, tdt)
    g = torch.Generator(device="cpu").manual_seed(42)
    x = (torch.rand(t, b, h, generator=g) * 2 - 1).to(dev, tdt)
    dy = (torch.rand(t, b, h, generator=g) * 2 - 1).to(dev, tdt)
    y, hn = torch.empty(t, b, h, device=dev, dtype=tdt), torch.empty(1, b, h, device=dev, dtype=tdt)
    cn = torch.empty(1, b, h, device=dev, dtype=tdt) if mode == 2 else None
    dx = torch.empty_like(x)
    w, wd = _weights(m)
    grads = [torch.zeros_like(getattr(m, n + "_l0")) for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    gd = [desc(z) for z in grads]
    gw = RnnWeights(*[ctypes.pointer(d) for d in gd], None)
    training = kind != "infer"
    p = RnnParams(mode, h, 0, 1, 0, 0, 0, 0.0, 0, int(training))
    dxs, dys, dyy, dhn, ddx = desc(x), desc(y), desc(dy), desc(hn), desc(dx)
    dcn = ctypes.pointer(desc(cn)) if cn is not None else None
    keep = [m, x, dy, y, hn, cn, dx, grads, wd, gd, w, gw, dxs, dys, dyy, dhn, ddx, dcn]
    res = None
    if training:
        n = ctypes.c_size_t(0)
        lib = Dlk.current.lib
        s = lib.dlk_rnn_reserve_size(Dlk.current.ctx, ctypes.byref(p), dxs, ctypes.byref(n))
        Dlk.current.check(s)
        res = torch.empty(n.value, dtype=torch.uint8, device=dev)
        keep += [res]
    dres = desc(res) if res is not None else None
    keep += [dres]

    def dlk_fn(d):
        s = d.lib.dlk_rnn_forward(d.ctx, ctypes.byref(p), ctypes.byref(w), dxs, None, None, None, dys, dhn, dcn,
                                  dres if dres is not None else None)
        if s != DLK_OK or kind != "fwd+bwd":
            return s
        return d.lib.dlk_rnn_backward(d.ctx, ctypes.byref(p), ctypes.byref(w), dxs, None, None, None, dys, dres,
                                      dyy, None, None, ddx, None, None, ctypes.byref(gw))

    if kind == "fwd+bwd":
        xg = x.clone().requires_grad_(True)

        def torch_fn():
            m(xg)[0].backward(dy)

        def ref():
            xr = x.clone().requires_grad_(True)
            m(xr)[0].backward(dy)
            return xr.grad
        out = dx
    else:
        def torch_fn():
            with torch.no_grad():
                return m(x)

        def ref():
            with torch.no_grad():
                return m(x)[0]
        out = y
    tol = {"f32": 1e-3, "f16": 3e-2}[dt]  # a whole recurrence: errors travel through the steps
    return dict(torch_fn=torch_fn, ref=ref, dlk_fn=dlk_fn, out=out, tf32=False, tol=tol, keep=keep)


def cell_case(dev, h, dt):
    tdt = TDT[dt]
    torch.manual_seed(43)
    cell = torch.nn.LSTMCell(h, h).to(dev, tdt)
    g = torch.Generator(device="cpu").manual_seed(44)
    x = (torch.rand(1, h, generator=g) * 2 - 1).to(dev, tdt)
    hx = (torch.rand(1, h, generator=g) - 0.5).to(dev, tdt)
    cx = (torch.rand(1, h, generator=g) - 0.5).to(dev, tdt)
    ho, co = torch.empty_like(hx), torch.empty_like(cx)
    w, wd = _weights(cell, "")
    p = RnnCellParams(2, 0)
    dx_, dh, dc, dho, dco = desc(x), desc(hx), desc(cx), desc(ho), desc(co)

    def torch_fn():
        with torch.no_grad():
            return cell(x, (hx, cx))

    def ref():
        with torch.no_grad():
            return cell(x, (hx, cx))[0]
    return dict(torch_fn=torch_fn, ref=ref, out=ho, tf32=False, tol={"f32": 1e-4, "f16": 1e-2}[dt],
                keep=(cell, x, hx, cx, ho, co, wd, w, dx_, dh, dc, dho, dco),
                dlk_fn=lambda d: d.lib.dlk_rnn_cell_forward(d.ctx, ctypes.byref(p), ctypes.byref(w), dx_, dh, dc,
                                                            dho, dco, None))


# ---- driver ----------------------------------------------------------------------------------

def default_lib():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(root, "build", "libdlk.so")


def fmt_ms(ms):
    if ms is None or not math.isfinite(ms):
        return "-"
    if ms < 1:
        return "%.2f us" % (ms * 1e3)
    if ms < 1e3:
        return "%.3f ms" % ms
    return "%.3f s" % (ms / 1e3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", default=default_lib(), help="path of libdlk.so (default: %(default)s)")
    ap.add_argument("--quick", action="store_true", help=">= 5 runs instead of 20, smaller CPU shapes")
    ap.add_argument("--cpu", action="store_true", help="compare on the CPU even with a GPU")
    ap.add_argument("--all", action="store_true", help="a row for every dlk variant")
    args = ap.parse_args()

    if not os.path.exists(args.lib):
        sys.exit("compare_torch: %s not found: build first (cmake -S . -B build && cmake --build "
                 "build -j) or pass --lib" % args.lib)
    dlk = Dlk(args.lib)
    cuda = torch.cuda.is_available() and not args.cpu and dlk.device_count() > 0
    if torch.cuda.is_available() and not args.cpu and not cuda:
        print("compare_torch: torch sees a GPU but this libdlk does not (CPU-only build?): "
              "comparing on the CPU")
    dev = "cuda" if cuda else "cpu"
    dlk.open(cuda)
    runs = 5 if args.quick else 20
    timer = Timer(cuda, runs)
    dev_type = DLK_CUDA if cuda else DLK_CPU
    name = torch.cuda.get_device_name() if cuda else "CPU (%d threads)" % torch.get_num_threads()
    print("compare_torch: dlk %s (%s) vs torch %s on %s" % (dlk.lib.dlk_version().decode(),
                                                              args.lib, torch.__version__, name))
    if not cuda:
        print("no CUDA device: CPU reference at small shapes (as dlk-bench runs them)")
    print("median of %d runs after warm-up, %s; err = max|dlk - torch| / max(1, max|torch|)\n" %
          (runs, "torch.cuda.Event, L2 flushed" if cuda else "perf_counter, 32 MiB flushed"))
    hdr = "%-10s %-16s %-5s %11s  %-22s %11s %9s %9s  %s" % (
        "case", "shape", "dtype", "torch", "dlk best variant", "dlk", "torch/dlk", "err", "check")
    print(hdr)
    print("-" * len(hdr))

    bad = 0
    for cname, shape, dt, op, sym, setup in make_cases(cuda, args.quick):
        if not dlk.has(sym):
            print("%-10s %-16s %-5s skipped: %s is not in %s yet" % (cname, shape, dt, sym, args.lib))
            continue
        c = setup(dev)
        torch.backends.cuda.matmul.allow_tf32 = c["tf32"]
        torch.backends.cudnn.allow_tf32 = c["tf32"]  # torch's default is on: f32 means f32 here
        dlk.lib.dlk_context_set_allow_tf32(dlk.ctx, int(c["tf32"]))
        t_torch = timer.median_ms(c["torch_fn"])
        ref = c["ref"]().clone()
        rows = []
        for vid, vname in dlk.variants(op, dev_type):
            dlk.force(op, vid)
            try:
                if "reset" in c:
                    c["reset"]()
                s = c["dlk_fn"](dlk)
                timer.sync()
                if s == DLK_ERR_NOT_SUPPORTED:
                    rows.append((vid, vname, None, None, "n/s: " + dlk.error(dlk.ctx)))
                    continue
                dlk.check(s)
                err = rel_err(c["out"], ref)
                t = timer.median_ms(lambda: dlk.check(c["dlk_fn"](dlk)))
                rows.append((vid, vname, t, err, None))
            except DlkError as e:
                rows.append((vid, vname, None, None, "FAILED: %s" % e))
                bad += 1
            finally:
                dlk.force(op, -1)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        dlk.lib.dlk_context_set_allow_tf32(dlk.ctx, 0)
        tol = c.get("tol", TOL[dt])
        ran = [r for r in rows if r[2] is not None]
        for r in ran:
            if not r[3] <= tol:
                bad += 1
        shown = rows if args.all else ([min(ran, key=lambda r: r[2])] if ran else rows[:1])
        if not rows:
            print("%-10s %-16s %-5s %11s  no dlk variant on this device" % (cname, shape, dt, fmt_ms(t_torch)))
        for vid, vname, t, err, note in shown:
            if t is None:
                print("%-10s %-16s %-5s %11s  %-22s %s" % (cname, shape, dt, fmt_ms(t_torch),
                                                           "%d %s" % (vid, vname), note))
                continue
            check = "ok" if err <= tol else "DIFFERS (tol %g)" % tol
            print("%-10s %-16s %-5s %11s  %-22s %11s %8.2fx %9.1e  %s" % (
                cname, shape, dt, fmt_ms(t_torch), "%d %s" % (vid, vname), fmt_ms(t),
                t_torch / t, err, check))
        if "mem" in c:
            print("%-10s %-16s %-5s %s" % ("", "", "", c["mem"](dlk)))
        if not args.all:
            for vid, vname, t, err, note in ran:
                if not err <= tol:
                    print("%-10s %-16s %-5s %11s  %-22s %11s %9s %9.1e  DIFFERS (tol %g)" % (
                        "", "", "", "", "%d %s" % (vid, vname), fmt_ms(t), "", err, tol))
        del c
    dlk.close()
    print("\ntorch/dlk > 1: dlk is faster. %s" % ("all outputs agree" if not bad else
                                                   "%d disagreement(s) or failure(s)" % bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
