/*
 * conv family, pooling / batch norm / MSE part: C-callable launchers of the kernels in
 * kernels/conv/{pool2d_fwd,pool2d_bwd,adaptive_pool2d_fwd,adaptive_pool2d_bwd,
 * batchnorm_fwd,batchnorm_bwd,mse_fwd,mse_bwd}.cu (to be folded into kernels/conv/conv.h).
 *
 * Internal: host/conv calls these; they never call back into host/. Descriptors are plain
 * C: device pointers, strides in elements, `dtype` a dlk_dtype value. Every launcher is
 *     int dlk_k_<op>(const dlk_k_<op>_desc *a, int impl, void *ws, void *stream)
 * returning the cudaError_t of its launches as an int (0 = cudaSuccess); a zero-sized
 * problem is a no-op; `impl` picks the rung of the op's ladder (1 = the simplest, one
 * thread per output); dlk_k_<op>_ws gives the workspace bytes a rung needs (the convention
 * of kernels/common.h).
 */
#ifndef DLK_KERNELS_CONV_CNNOPS_H
#define DLK_KERNELS_CONV_CNNOPS_H

#include <stddef.h>
#include <stdint.h>

#include "../common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A 4-D [N, C, H, W] view: element (n, c, h, w) at data[n*sn + c*sc + h*sh + w*sw]. */
typedef struct dlk_k_img {
  void *data;
  int64_t n, c, h, w;
  int64_t sn, sc, sh, sw;
} dlk_k_img;

/* A per-channel vector: element i at data[i*s]; data NULL when absent. */
typedef struct dlk_k_chan {
  void *data;
  int64_t s;
} dlk_k_chan;

/* ---- pool2d: x [N,C,H,W] -> y [N,C,OH,OW]; the backward reads x and dy, writes dx ---- */
typedef struct dlk_k_pool2d_desc {
  int dtype;
  int kind;                  /* dlk_pool_kind: 0 max, 1 avg */
  int count_include_pad;
  int64_t kh, kw, sh, sw, ph, pw, dh, dw; /* normalised: stride, dilation >= 1 */
  dlk_k_img x, y;            /* forward */
  dlk_k_img dy, dx;          /* backward (x as above) */
} dlk_k_pool2d_desc;
typedef dlk_k_pool2d_desc dlk_k_pool2d_fwd_desc;
typedef dlk_k_pool2d_desc dlk_k_pool2d_bwd_desc;
/* 1 "direct": one thread per output in NCHW order; 2 "layout": one thread per output in
   the order of x's memory (channel-innermost for channels-last, so warps read and write
   consecutive channels). */
int dlk_k_pool2d_fwd(const dlk_k_pool2d_fwd_desc *a, int impl, void *ws, void *stream);
/* 1 "gather": one thread per input element, gathering the windows that hold it (max:
   recomputing each window's first maximum); 2 "argmax": a first pass stores each max
   window's argmax (int32 plane offset, -1 for none) in the workspace, then the gather
   reads it. Both deterministic (no atomics). */
size_t dlk_k_pool2d_bwd_ws(const dlk_k_pool2d_bwd_desc *a, int impl);
int dlk_k_pool2d_bwd(const dlk_k_pool2d_bwd_desc *a, int impl, void *ws, void *stream);

/* ---- adaptive average pool2d: in [N,C,H,W], out [N,C,OH,OW] (fwd: x -> y; bwd: dy -> dx,
   with `in` = dx, `out` = dy) ---- */
typedef struct dlk_k_adaptive_pool2d_desc {
  int dtype;
  dlk_k_img in, out;
} dlk_k_adaptive_pool2d_desc;
/* 1: one thread per output (fwd) / per input element (bwd, gathering its bins). */
int dlk_k_adaptive_pool2d_fwd(const dlk_k_adaptive_pool2d_desc *a, int impl, void *ws, void *stream);
int dlk_k_adaptive_pool2d_bwd(const dlk_k_adaptive_pool2d_desc *a, int impl, void *ws, void *stream);

/* ---- batch norm over dim 1 of x [N,C,H,W]; vectors [C] in stat_dtype (F32, F64 for F64
   x) ---- */
typedef struct dlk_k_batchnorm_desc {
  int dtype;
  int training;
  double eps, momentum;
  dlk_k_img x, y, dy, dx;
  dlk_k_chan gamma, beta;
  dlk_k_chan running_mean, running_var; /* fwd; absent (NULL) when not tracked */
  dlk_k_chan save_mean, save_rstd;      /* fwd training: written; bwd: `mean` and `stat`
                                           (save_rstd, or the running variance when not
                                           training) */
  dlk_k_chan dgamma, dbeta;             /* bwd, each optional */
} dlk_k_batchnorm_desc;
typedef dlk_k_batchnorm_desc dlk_k_batchnorm_fwd_desc;
typedef dlk_k_batchnorm_desc dlk_k_batchnorm_bwd_desc;
/* 1: training: one block per channel sums x in f64 (two passes: mean, then squared
   deviations), writes save_mean/save_rstd and the running statistics; then one thread per
   element normalises. Inference: the elementwise pass alone. */
int dlk_k_batchnorm_fwd(const dlk_k_batchnorm_fwd_desc *a, int impl, void *ws, void *stream);
/* 1: one block per channel sums dy and dy xhat in f64 (into the workspace: 2 C doubles),
   writes dgamma/dbeta; then one thread per element writes dx. */
size_t dlk_k_batchnorm_bwd_ws(const dlk_k_batchnorm_bwd_desc *a, int impl);
int dlk_k_batchnorm_bwd(const dlk_k_batchnorm_bwd_desc *a, int impl, void *ws, void *stream);

/* ---- MSE loss over up to 8-d x, target (same shape, own strides) ---- */
typedef struct dlk_k_mse_desc {
  int dtype;     /* of x, target, dx; loss/dloss are F32 (F64 for F64) */
  int reduction; /* dlk_reduction: 0 mean, 1 sum, 2 none */
  int ndim;
  int64_t numel;
  int64_t shape[8];
  void *x, *target, *loss, *dloss, *dx;
  int64_t sx[8], st[8], sl[8], sdx[8]; /* strides; sl: loss (fwd) or dloss (bwd) for NONE */
} dlk_k_mse_desc;
typedef dlk_k_mse_desc dlk_k_mse_fwd_desc;
typedef dlk_k_mse_desc dlk_k_mse_bwd_desc;
/* 1 "strided": one thread per element, offsets from the row-major index through each
   tensor's strides; 2 "contig": the same for contiguous tensors, flat offsets. MEAN/SUM:
   per-block partial sums in f64 into the workspace, then one block adds them in order
   (deterministic). */
size_t dlk_k_mse_fwd_ws(const dlk_k_mse_fwd_desc *a, int impl);
int dlk_k_mse_fwd(const dlk_k_mse_fwd_desc *a, int impl, void *ws, void *stream);
int dlk_k_mse_bwd(const dlk_k_mse_bwd_desc *a, int impl, void *ws, void *stream);

#ifdef __cplusplus
}
#endif
#endif /* DLK_KERNELS_CONV_CNNOPS_H */
