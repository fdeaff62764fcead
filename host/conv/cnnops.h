/*
 * conv family, part 2 (pooling, adaptive average pooling, batch norm, MSE loss), internal:
 * the argument record of every op (what host/conv/cnnops.c builds after checking the
 * public call) and the variant row functions each backend file provides.
 *
 * Files of this part (to be folded into host/conv/conv.{c,h}, conv_cpu.c, conv_cuda.c
 * with the convolution part):
 *   host/conv/cnnops.c        public functions: checks, argument records, op tables
 *   host/conv/cnnops_cpu.c    variant 0 of every op: the CPU reference (the spec)
 *   host/conv/cnnops_cuda.c   CUDA rows (1..9): supports() and run() glue to the launchers
 *                             of kernels/conv/cnnops.h
 *   tests/test_cnnops.c       goldens, finite differences, bad input, the variant sweep
 *
 * Conventions of the records: tensors are already checked (device, dtypes, shapes,
 * overlaps) and normalised: image tensors are 4-D [N, C, H, W] views with any strides
 * (batch norm's [N, C] and [N, C, L] get trailing dims of size 1); per-channel vectors
 * are 1-D [C] with any stride. Optional tensors have a has_<name> flag; when it is false
 * the tensor is zeroed.
 */
#ifndef DLK_CONV_CNNOPS_H
#define DLK_CONV_CNNOPS_H

#include "../internal.h"

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

/* ---- variant rows: dlk_<op>_<backend>_{supports,workspace,run} ---- */

/* CPU reference (host/conv/cnnops_cpu.c) */
dlk_status dlk_pool2d_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                  size_t ws_bytes);
size_t dlk_pool2d_bwd_cpu_workspace(const dlk_context *ctx, const void *args, int impl);
dlk_status dlk_pool2d_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                  size_t ws_bytes);
dlk_status dlk_adaptive_pool2d_fwd_cpu_run(dlk_context *ctx, const void *args, int impl,
                                           void *ws, size_t ws_bytes);
dlk_status dlk_adaptive_pool2d_bwd_cpu_run(dlk_context *ctx, const void *args, int impl,
                                           void *ws, size_t ws_bytes);
dlk_status dlk_batchnorm_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes);
dlk_status dlk_batchnorm_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                                     size_t ws_bytes);
dlk_status dlk_mse_fwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                               size_t ws_bytes);
dlk_status dlk_mse_bwd_cpu_run(dlk_context *ctx, const void *args, int impl, void *ws,
                               size_t ws_bytes);

#endif /* DLK_CONV_CNNOPS_H */
