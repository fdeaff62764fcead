/*
 * conv family, internal: the argument record of every op (what host/conv/conv.c builds
 * after checking the public call) and the variant rows each backend file provides.
 *
 * Files of the family:
 *   host/conv/conv.c        public functions: checks, argument records, shape keys, the
 *                           variant tables written out row by row, dispatch
 *   host/conv/conv_cpu.c    variant 0 of every op: the CPU reference (the spec)
 *   host/conv/conv_cuda.c   rows 1..9 (supports, workspace, run) over kernels/conv/
 *   host/conv/conv_cudnn.c  row 10: cuDNN through the backend graph API
 *   kernels/conv/           one .cu per op and direction, launchers in kernels/conv/conv.h
 *   tests/test_conv.c       goldens, finite differences, bad input, the sweep rows
 *
 * Conventions of the records: every tensor is checked (device, dtype, shape, overlaps)
 * and kept 4-D with its own strides (any strides: channels-last is only a stride
 * pattern); the geometry is normalised (stride, dilation and groups >= 1). Optional
 * tensors have a has_<name> flag; when it is false the tensor is zeroed.
 *
 * Ops and what they compute (Cg = C / groups input channels and Kg = K / groups output
 * channels per group; k's group is k / Kg; ih = oh*sh - ph + r*dh, iw = ow*sw - pw + s*dw):
 *   conv2d_fwd         z[n,k,oh,ow] = b[k] + sum_{c<Cg,r,s} x[n, grp*Cg + c, ih, iw] w[k,c,r,s]
 *                      y = act(z); z written when has_z. Out-of-range ih/iw read as 0.
 *   conv2d_bwd_data    dx[n, grp*Cg + c, h, w] = sum over k of the group, r, s with
 *                      h = oh*sh - ph + r*dh and w = ow*sw - pw + s*dw for some in-range
 *                      oh, ow, of dy[n,k,oh,ow] w[k,c,r,s]   (dy is dL/dz here)
 *   conv2d_bwd_filter  dw[k,c,r,s] = sum_{n,oh,ow} dy[n,k,oh,ow] x[n, grp*Cg + c, ih, iw]
 *   conv2d_bwd_bias    dz = dy * act'(z) (written when has_dz), db[k] = sum_{n,oh,ow} dz
 *                      (written when has_db); the first step of dlk_conv2d_backward
 *   gram_fwd           g[n,i,j] = scale sum_{h,w} f[n,i,h,w] f[n,j,h,w]
 *   gram_bwd           df[n,i,h,w] = scale sum_j (dg[n,i,j] + dg[n,j,i]) f[n,j,h,w]
 *   pool2d_*, adaptive_avg_pool2d_*, batchnorm_*, mse_loss_*: see their section below
 *   and include/dlk.h.
 */
#ifndef DLK_CONV_H
#define DLK_CONV_H

#include <math.h>

#include "../core/internal.h"

/* The geometry of one convolution, normalised. */
typedef struct dlk_conv2d_geom {
  int64_t n, c, h, w; /* x [N, C, H, W] */
  int64_t k, r, s;    /* w [K, C / groups, R, S] (R = kH, S = kW) */
  int64_t ho, wo;     /* y [N, K, Ho, Wo] */
  int64_t stride[2], pad[2], dil[2]; /* {h, w}; stride, dil >= 1, pad >= 0 */
  int64_t groups;     /* >= 1, divides C and K */
} dlk_conv2d_geom;

typedef struct dlk_conv2d_fwd_args {
  dlk_conv2d_geom g;
  dlk_activation act;
  dlk_tensor x, w, y;
  bool has_b, has_z;
  dlk_tensor b, z; /* b [K] */
} dlk_conv2d_fwd_args;

/* dy is the gradient at the pre-activation z (dlk_conv2d_backward's conv2d_bwd_bias step
   made it from the caller's dy and z). */
typedef struct dlk_conv2d_bwd_data_args {
  dlk_conv2d_geom g;
  dlk_tensor w, dy, dx;
} dlk_conv2d_bwd_data_args;

typedef struct dlk_conv2d_bwd_filter_args {
  dlk_conv2d_geom g;
  dlk_tensor x, dy, dw;
} dlk_conv2d_bwd_filter_args;

/* dy, z [N, K, Ho, Wo] (z zeroed when act is NONE), dz like dy, db [K]. At least one of
   dz, db is present. */
typedef struct dlk_conv2d_bwd_bias_args {
  dlk_activation act;
  dlk_tensor dy, z;
  bool has_dz, has_db;
  dlk_tensor dz, db;
} dlk_conv2d_bwd_bias_args;

/* f [N, C, H, W], g and dg [N, C, C], df like f; scale = 1 / norm. */
typedef struct dlk_gram_fwd_args {
  double scale;
  dlk_tensor f, g;
} dlk_gram_fwd_args;
typedef struct dlk_gram_bwd_args {
  double scale;
  dlk_tensor f, dg, df;
} dlk_gram_bwd_args;

/* Element offset of [i0, i1, i2, i3] in a 4-D tensor (any strides). */
static inline int64_t dlk_at4(const dlk_tensor *t, int64_t i0, int64_t i1, int64_t i2, int64_t i3) {
  return i0 * t->strides[0] + i1 * t->strides[1] + i2 * t->strides[2] + i3 * t->strides[3];
}

/* The activations of the CPU rows, as the nn family defines them: relu max(x, 0) keeping
   NaN; gelu exact, x Phi(x) with Phi(x) = (1 + erf(x / sqrt 2)) / 2. Derivatives at the
   pre-activation: relu 1[x > 0]; tanh 1 - tanh^2; sigmoid s (1 - s); gelu Phi(x) + x phi(x),
   phi(x) = exp(-x^2 / 2) / sqrt(2 pi). */
static inline double dlk_conv_act(dlk_activation a, double x) {
  switch (a) {
    case DLK_ACT_RELU: return x <= 0 ? 0.0 : x;
    case DLK_ACT_TANH: return tanh(x);
    case DLK_ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case DLK_ACT_GELU: return 0.5 * x * (1.0 + erf(x * M_SQRT1_2));
    default: return x;
  }
}
static inline double dlk_conv_act_grad(dlk_activation a, double x) {
  switch (a) {
    case DLK_ACT_RELU: return x <= 0 ? 0.0 : 1.0;
    case DLK_ACT_TANH: {
      const double t = tanh(x);
      return 1.0 - t * t;
    }
    case DLK_ACT_SIGMOID: {
      const double s = 1.0 / (1.0 + exp(-x));
      return s * (1.0 - s);
    }
    case DLK_ACT_GELU: return 0.5 * (1.0 + erf(x * M_SQRT1_2)) + x * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    default: return 1.0;
  }
}

/* ---- variant rows: row functions (core/internal.h's DLK_*_FN forms), one triple per op
   and backend; `impl` picks the kernel of a ladder ---- */

/* 0: the CPU reference (host/conv/conv_cpu.c) */
DLK_RUN_FN(dlk_conv2d_fwd_cpu_run);
DLK_RUN_FN(dlk_conv2d_bwd_data_cpu_run);
DLK_RUN_FN(dlk_conv2d_bwd_filter_cpu_run);
DLK_RUN_FN(dlk_conv2d_bwd_bias_cpu_run);
DLK_RUN_FN(dlk_gram_fwd_cpu_run);
DLK_RUN_FN(dlk_gram_bwd_cpu_run);

/* 20: im2col + matrix products on the CPU (host/conv/conv_im2col.c) */
DLK_WORKSPACE_FN(dlk_conv2d_fwd_im2col_workspace);
DLK_RUN_FN(dlk_conv2d_fwd_im2col_run);
DLK_WORKSPACE_FN(dlk_conv2d_bwd_data_im2col_workspace);
DLK_RUN_FN(dlk_conv2d_bwd_data_im2col_run);
DLK_WORKSPACE_FN(dlk_conv2d_bwd_filter_im2col_workspace);
DLK_RUN_FN(dlk_conv2d_bwd_filter_im2col_run);

#if DLK_HAVE_CUDA
/* 1..9: the kernels of kernels/conv/ (host/conv/conv_cuda.c); gram: dlk_gemm */
DLK_SUPPORTS_FN(dlk_conv2d_fwd_cuda_supports);
DLK_RUN_FN(dlk_conv2d_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_conv2d_bwd_data_cuda_supports);
DLK_RUN_FN(dlk_conv2d_bwd_data_cuda_run);
DLK_SUPPORTS_FN(dlk_conv2d_bwd_filter_cuda_supports);
DLK_WORKSPACE_FN(dlk_conv2d_bwd_filter_cuda_workspace);
DLK_RUN_FN(dlk_conv2d_bwd_filter_cuda_run);
DLK_WORKSPACE_FN(dlk_conv2d_bwd_bias_cuda_workspace);
DLK_RUN_FN(dlk_conv2d_bwd_bias_cuda_run);
DLK_SUPPORTS_FN(dlk_gram_fwd_cuda_supports);
DLK_RUN_FN(dlk_gram_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_gram_bwd_cuda_supports);
DLK_RUN_FN(dlk_gram_bwd_cuda_run);
#endif

#if DLK_HAVE_CUDA && DLK_HAVE_CUDNN
/* 10: cuDNN backend graphs (host/conv/conv_cudnn.c), plans cached per shape key */
DLK_SUPPORTS_FN(dlk_conv2d_fwd_cudnn_supports);
DLK_WORKSPACE_FN(dlk_conv2d_fwd_cudnn_workspace);
DLK_RUN_FN(dlk_conv2d_fwd_cudnn_run);
DLK_SUPPORTS_FN(dlk_conv2d_bwd_data_cudnn_supports);
DLK_WORKSPACE_FN(dlk_conv2d_bwd_data_cudnn_workspace);
DLK_RUN_FN(dlk_conv2d_bwd_data_cudnn_run);
DLK_SUPPORTS_FN(dlk_conv2d_bwd_filter_cudnn_supports);
DLK_WORKSPACE_FN(dlk_conv2d_bwd_filter_cudnn_workspace);
DLK_RUN_FN(dlk_conv2d_bwd_filter_cudnn_run);
#endif

/* ====================================================================================== */
/* Pooling, adaptive average pooling, batch norm, MSE loss                                 */
/* ====================================================================================== */

/* Image tensors are 4-D [N, C, H, W] views with any strides (batch norm's [N, C] and
   [N, C, L] get trailing dims of size 1); per-channel vectors are 1-D [C], any stride. */

/* pool2d_fwd: y = pool(x). p is normalised: stride 0 -> kernel, dilation 0 -> 1. The
   output size (ceil_mode included) is y's shape, already checked. */
typedef struct dlk_pool2d_fwd_args {
  dlk_pool2d_params p;
  dlk_tensor x, y;
} dlk_pool2d_fwd_args;

/* pool2d_bwd: dx = the gradient of pool(x) for dy (x [N,C,H,W], dy [N,C,OH,OW]). y (the
   forward's output) is optional: only a vendor row needs it. */
typedef struct dlk_pool2d_bwd_args {
  dlk_pool2d_params p;
  dlk_tensor x, dy, dx;
  bool has_y;
  dlk_tensor y;
} dlk_pool2d_bwd_args;

/* adaptive_avg_pool2d_fwd: x [N,C,H,W] -> y [N,C,OH,OW]; _bwd: dy [N,C,OH,OW] -> dx
   [N,C,H,W]. One record serves both: `in` is x (fwd) or dx (bwd), `out` y or dy. */
typedef struct dlk_adaptive_pool2d_args {
  dlk_tensor in, out;
} dlk_adaptive_pool2d_args;

/* Bin [start, end) of output index o when `in` values are averaged into `out` bins:
   start = floor(o in / out), end = ceil((o + 1) in / out) (torch's START_IND/END_IND). */
static inline int64_t dlk_adaptive_start(int64_t o, int64_t in, int64_t out) { return (o * in) / out; }
static inline int64_t dlk_adaptive_end(int64_t o, int64_t in, int64_t out) {
  return ((o + 1) * in + out - 1) / out;
}

/* Output size of one spatial dim of pool2d (torch's pooling_output_shape), or <= 0 when
   the input is too small. */
static inline int64_t dlk_pool_out_size(int64_t in, int64_t k, int64_t pad, int64_t stride,
                                        int64_t dil, int ceil_mode) {
  int64_t span = in + 2 * pad - dil * (k - 1) - 1;
  int64_t num = span + (ceil_mode ? stride - 1 : 0);
  /* floor division for a negative numerator (torch's div_rtn) */
  int64_t q = num >= 0 ? num / stride : -((-num + stride - 1) / stride);
  int64_t out = q + 1;
  /* ceil_mode: the last window must start inside the input or the left padding */
  if (ceil_mode && out > 0 && (out - 1) * stride >= in + pad) out--;
  return out;
}

/* batchnorm_fwd. x and y [N,C,H,W] views; gamma, beta, running_*, save_* [C] (F32; F64
   for F64 x). training: batch statistics (M = N H W >= 2 unless M = 0), running stats
   updated when has_running; inference: the running stats. */
typedef struct dlk_batchnorm_fwd_args {
  double eps, momentum;
  bool training;
  dlk_tensor x, y;
  bool has_gamma, has_beta, has_running, has_save;
  dlk_tensor gamma, beta, running_mean, running_var, save_mean, save_rstd;
} dlk_batchnorm_fwd_args;

/* batchnorm_bwd. training: mean/rstd are the forward's save_mean/save_rstd; inference
   (frozen affine map): mean/var are the running mean and running variance, and
   rstd = 1 / sqrt(var + eps). At least one of dx, dgamma, dbeta is present. */
typedef struct dlk_batchnorm_bwd_args {
  double eps;
  bool training;
  dlk_tensor x, dy, mean, stat; /* stat: save_rstd (training) or running_var (inference) */
  bool has_gamma;
  dlk_tensor gamma;
  bool has_dx, has_dgamma, has_dbeta;
  dlk_tensor dx, dgamma, dbeta;
} dlk_batchnorm_bwd_args;

/* mse_fwd: x, target any shape (the same), any strides; loss [] / [1] (MEAN, SUM) or
   x's shape (NONE). mse_bwd: dloss like loss, dx like x. */
typedef struct dlk_mse_fwd_args {
  dlk_reduction reduction;
  dlk_tensor x, target, loss;
} dlk_mse_fwd_args;
typedef struct dlk_mse_bwd_args {
  dlk_reduction reduction;
  dlk_tensor x, target, dloss, dx;
} dlk_mse_bwd_args;

/* ---- the CPU reference of pooling, batch norm, MSE (host/conv/conv_cpu.c) ---- */
DLK_RUN_FN(dlk_pool2d_fwd_cpu_run);
DLK_WORKSPACE_FN(dlk_pool2d_bwd_cpu_workspace);
DLK_RUN_FN(dlk_pool2d_bwd_cpu_run);
DLK_RUN_FN(dlk_adaptive_pool2d_fwd_cpu_run);
DLK_RUN_FN(dlk_adaptive_pool2d_bwd_cpu_run);
DLK_RUN_FN(dlk_batchnorm_fwd_cpu_run);
DLK_RUN_FN(dlk_batchnorm_bwd_cpu_run);
DLK_RUN_FN(dlk_mse_fwd_cpu_run);
DLK_RUN_FN(dlk_mse_bwd_cpu_run);

#if DLK_HAVE_CUDA
/* ---- CUDA rows of this section (host/conv/conv_cuda.c, kernels/conv/conv.h) ---- */
DLK_SUPPORTS_FN(dlk_pool2d_fwd_cuda_supports);
DLK_RUN_FN(dlk_pool2d_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_pool2d_bwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_pool2d_bwd_cuda_workspace);
DLK_RUN_FN(dlk_pool2d_bwd_cuda_run);
DLK_RUN_FN(dlk_adaptive_pool2d_fwd_cuda_run);
DLK_RUN_FN(dlk_adaptive_pool2d_bwd_cuda_run);
DLK_RUN_FN(dlk_batchnorm_fwd_cuda_run);
DLK_WORKSPACE_FN(dlk_batchnorm_bwd_cuda_workspace);
DLK_RUN_FN(dlk_batchnorm_bwd_cuda_run);
DLK_SUPPORTS_FN(dlk_mse_fwd_cuda_supports);
DLK_WORKSPACE_FN(dlk_mse_fwd_cuda_workspace);
DLK_RUN_FN(dlk_mse_fwd_cuda_run);
DLK_SUPPORTS_FN(dlk_mse_bwd_cuda_supports);
DLK_RUN_FN(dlk_mse_bwd_cuda_run);
#endif

#endif /* DLK_CONV_H */
