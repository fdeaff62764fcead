#!/usr/bin/env python3
"""The public API's call pattern, checked from Python ctypes (issue 8's API consistency).

    python3 tests/api_ctypes.py build/libdlk.so

Every op is (ctx, const <op>_params *p, inputs..., outputs...) with NULL params meaning
the defaults include/dlk.h writes on each params struct. This drives the ops whose
signature changed (bias + activation takes a params struct, SGD carries `step` in its
params like Adam and AdaGrad) and a strided view the CPU reference must accept, through
ctypes on a CPU context, with plain ctypes buffers (no numpy, no torch). Exit 0 when all
pass, 1 on the first mismatch.
"""
import ctypes
import math
import sys

DLK_MAX_DIMS = 8
DLK_OK = 0
DLK_F64 = 3
DLK_CPU = 1
DLK_ACT_RELU = 1


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


class BiasActParams(ctypes.Structure):
    _fields_ = [("act", ctypes.c_int)]


class SoftmaxParams(ctypes.Structure):
    _fields_ = [("log", ctypes.c_int)]


class SgdParams(ctypes.Structure):
    _fields_ = [("lr", ctypes.c_double), ("momentum", ctypes.c_double),
                ("dampening", ctypes.c_double), ("weight_decay", ctypes.c_double),
                ("nesterov", ctypes.c_int), ("step", ctypes.c_int64)]


P = ctypes.POINTER
VP = ctypes.c_void_p
failures = 0


def check(cond, what):
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def tensor(buf, shape, strides=None):
    """A CPU f64 descriptor over a ctypes double array; row-major unless strides given."""
    t = Tensor()
    t.data = ctypes.cast(buf, VP)
    t.dtype = DLK_F64
    t.device = Device(DLK_CPU, 0)
    t.ndim = len(shape)
    if strides is None:
        strides, s = [], 1
        for d in reversed(shape):
            strides.insert(0, s)
            s *= d
    for i, (d, s) in enumerate(zip(shape, strides)):
        t.shape[i], t.strides[i] = d, s
    return t


def doubles(vals):
    return (ctypes.c_double * len(vals))(*vals)


def main():
    lib = ctypes.CDLL(sys.argv[1] if len(sys.argv) > 1 else "build/libdlk.so")
    sig = {
        "dlk_context_create": (ctypes.c_int, [P(VP), P(ContextOptions)]),
        "dlk_context_destroy": (None, [VP]),
        "dlk_context_last_error": (ctypes.c_char_p, [VP]),
        "dlk_bias_act_forward": (ctypes.c_int, [VP, P(BiasActParams), P(Tensor), P(Tensor),
                                                P(Tensor)]),
        "dlk_bias_act_backward": (ctypes.c_int, [VP, P(BiasActParams), P(Tensor), P(Tensor),
                                                 P(Tensor), P(Tensor), P(Tensor)]),  # x b dy dx db
        "dlk_softmax_forward": (ctypes.c_int, [VP, P(SoftmaxParams), P(Tensor), P(Tensor)]),
        "dlk_sgd_step": (ctypes.c_int, [VP, P(SgdParams), P(Tensor), P(Tensor), P(Tensor)]),
    }
    for name, (res, args) in sig.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args

    opts = ContextOptions()
    opts.device = Device(DLK_CPU, 0)
    ctx = VP()
    s = lib.dlk_context_create(ctypes.byref(ctx), ctypes.byref(opts))
    if s != DLK_OK:
        print("dlk_context_create:", s, lib.dlk_context_last_error(None))
        return 1

    def ok(s, what):
        check(s == DLK_OK, "%s: status %d: %s" % (what, s, lib.dlk_context_last_error(ctx)))

    # bias + activation: params struct, and NULL params = DLK_ACT_NONE.
    xv = [-2.0, -0.5, 0.0, 1.0, 2.5, -3.0]
    bv = [0.5, 1.0, -1.0]
    x, b, y = doubles(xv), doubles(bv), doubles([0.0] * 6)
    tx, tb, ty = tensor(x, [2, 3]), tensor(b, [3]), tensor(y, [2, 3])
    ok(lib.dlk_bias_act_forward(ctx, ctypes.byref(BiasActParams(DLK_ACT_RELU)), tx, tb, ty),
       "bias_act_forward relu")
    want = [max(0.0, xv[i] + bv[i % 3]) for i in range(6)]
    check(list(y) == want, "bias_act_forward relu: %s != %s" % (list(y), want))
    ok(lib.dlk_bias_act_forward(ctx, None, tx, tb, ty), "bias_act_forward NULL params")
    want = [xv[i] + bv[i % 3] for i in range(6)]
    check(list(y) == want, "bias_act_forward NULL params (none): %s != %s" % (list(y), want))
    dy, dx, db = doubles([1.0] * 6), doubles([9.0] * 6), doubles([9.0] * 3)
    ok(lib.dlk_bias_act_backward(ctx, ctypes.byref(BiasActParams(DLK_ACT_RELU)), tx, tb,
                                 tensor(dy, [2, 3]), tensor(dx, [2, 3]), tensor(db, [3])),
       "bias_act_backward relu")
    want = [1.0 if xv[i] + bv[i % 3] > 0 else 0.0 for i in range(6)]
    check(list(dx) == want, "bias_act_backward relu dx: %s != %s" % (list(dx), want))
    check(list(db) == [want[c] + want[c + 3] for c in range(3)], "bias_act_backward relu db")

    # softmax with NULL params over the last dim of a transposed [2,3,4] view (the CPU
    # reference takes any strides): base [4,3,2] contiguous, viewed with dims reversed.
    base = doubles([math.sin(i) for i in range(24)])
    out = doubles([0.0] * 24)
    tin = tensor(base, [2, 3, 4], [1, 2, 6])
    ok(lib.dlk_softmax_forward(ctx, None, tin, tensor(out, [2, 3, 4])), "softmax_forward transposed")
    for i in range(2):
        for j in range(3):
            row = [base[i + 2 * j + 6 * k] for k in range(4)]
            m = max(row)
            e = [math.exp(v - m) for v in row]
            for k in range(4):
                got, ref = out[(i * 3 + j) * 4 + k], e[k] / sum(e)
                check(abs(got - ref) <= 1e-12, "softmax_forward [%d,%d,%d]: %r != %r" % (i, j, k, got, ref))

    # SGD: step in the params (1: the momentum buffer starts as the gradient).
    param, grad, buf = doubles([1.0, 2.0, 3.0]), doubles([0.5, -1.0, 2.0]), doubles([7.0] * 3)
    p = SgdParams(lr=0.1, momentum=0.9, dampening=0.0, weight_decay=0.0, nesterov=0, step=1)
    ok(lib.dlk_sgd_step(ctx, ctypes.byref(p), tensor(param, [3]), tensor(grad, [3]), tensor(buf, [3])),
       "sgd_step step 1")
    check(list(buf) == [0.5, -1.0, 2.0], "sgd_step step 1 buffer: %s" % list(buf))
    check(all(abs(param[i] - ([1.0, 2.0, 3.0][i] - 0.1 * grad[i])) <= 1e-15 for i in range(3)),
          "sgd_step step 1 param: %s" % list(param))
    p.step = 2
    ok(lib.dlk_sgd_step(ctx, ctypes.byref(p), tensor(param, [3]), tensor(grad, [3]), tensor(buf, [3])),
       "sgd_step step 2")
    check(all(abs(buf[i] - 1.9 * grad[i]) <= 1e-15 for i in range(3)), "sgd_step step 2 buffer: %s" % list(buf))
    param2 = doubles([1.0, 2.0, 3.0])
    ok(lib.dlk_sgd_step(ctx, None, tensor(param2, [3]), tensor(grad, [3]), None), "sgd_step NULL params")
    check(all(abs(param2[i] - ([1.0, 2.0, 3.0][i] - 1e-3 * grad[i])) <= 1e-15 for i in range(3)),
          "sgd_step NULL params (lr 1e-3): %s" % list(param2))
    p.step = 0
    check(lib.dlk_sgd_step(ctx, ctypes.byref(p), tensor(param, [3]), tensor(grad, [3]), tensor(buf, [3]))
          != DLK_OK, "sgd_step step 0 must be refused")

    lib.dlk_context_destroy(ctx)
    print("api_ctypes: %s" % ("passed" if failures == 0 else "%d failures" % failures))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
