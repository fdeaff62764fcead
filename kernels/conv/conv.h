/*
 * conv family: C-callable launchers of the CUDA kernels in kernels/conv/ (the convention
 * of kernels/common.h: dlk_k_<op>(desc, impl, ws, stream), dlk_k_<op>_ws, _supports).
 * Rows in host/conv/conv_cuda.c. One .cu per op and direction, each holding its ladder:
 *   conv2d_fwd.cu         1 direct, 2 implicit GEMM (shared-memory tiles), 3 implicit
 *                         GEMM on tensor cores (mma.sync, cp.async), 4 depthwise
 *   conv2d_bwd_data.cu    1 direct (gather), 2 implicit GEMM, 3 implicit GEMM on tensor
 *                         cores (f16/bf16 channels-last), 4 depthwise
 *   conv2d_bwd_filter.cu  1 direct, 2 implicit GEMM with split-K partials summed in a
 *                         fixed order, 3 the same on tensor cores (f16/bf16 channels-last),
 *                         4 depthwise (one block per filter)
 *   conv2d_bwd_bias.cu    1 one block per channel, 2 chunked partials + fixed-order sum
 *
 * Geometry (as host/conv/conv.h): x [N, C, H, W], w [K, C / groups, R, S],
 * y [N, K, Ho, Wo]; ih = oh*sh - ph + r*dh, iw = ow*sw - pw + s*dw; taps outside the input
 * read as zero. Every tensor is 4-D with its own strides (channels-last is a stride
 * pattern); the fast kernels say in _supports which strides they need.
 */
#ifndef DLK_KERNELS_CONV_H
#define DLK_KERNELS_CONV_H

#include "../common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct dlk_k_conv2d_geom {
  int64_t n, c, h, w;   /* x */
  int64_t k, r, s;      /* w: [k, c / groups, r, s] */
  int64_t ho, wo;       /* y */
  int64_t stride[2], pad[2], dil[2]; /* {h, w}, stride and dil >= 1 */
  int64_t groups;       /* >= 1, divides c and k */
} dlk_k_conv2d_geom;

/* A 4-D tensor of the geometry: element [i0, i1, i2, i3] at
   data[i0*st[0] + i1*st[1] + i2*st[2] + i3*st[3]]; its shape follows from the geometry. */
typedef struct dlk_k_t4 {
  void *data;
  int64_t st[4];
} dlk_k_t4;

/* ---- conv2d_fwd: z = conv(x, w) + b, y = act(z) (z.data NULL: not written) ---- */
typedef struct dlk_k_conv2d_fwd_desc {
  int dtype, act;
  int allow_tf32; /* impl 3 on f32: TF32 tensor cores only when set */
  dlk_k_conv2d_geom g;
  dlk_k_t4 x, w, y, z;
  dlk_k_vec b; /* [k]; data NULL: no bias */
} dlk_k_conv2d_fwd_desc;
int dlk_k_conv2d_fwd(const dlk_k_conv2d_fwd_desc *a, int impl, void *ws, void *stream);
int dlk_k_conv2d_fwd_supports(const dlk_k_conv2d_fwd_desc *a, int impl, char *why, size_t n);

/* ---- conv2d_bwd_data: dx = transposed convolution of dy (the gradient at z) with w ---- */
typedef struct dlk_k_conv2d_bwd_data_desc {
  int dtype;
  dlk_k_conv2d_geom g;
  dlk_k_t4 w, dy, dx;
} dlk_k_conv2d_bwd_data_desc;
int dlk_k_conv2d_bwd_data(const dlk_k_conv2d_bwd_data_desc *a, int impl, void *ws, void *stream);
int dlk_k_conv2d_bwd_data_supports(const dlk_k_conv2d_bwd_data_desc *a, int impl, char *why, size_t n);

/* ---- conv2d_bwd_filter: dw[k,c,r,s] = sum_{n,oh,ow} dy[n,k,oh,ow] x[n, grp*Cg + c, ih, iw] ----
   Every impl is deterministic (no atomics): impl 2 writes split-K partial sums to ws and
   adds them in slice order. */
typedef struct dlk_k_conv2d_bwd_filter_desc {
  int dtype;
  dlk_k_conv2d_geom g;
  dlk_k_t4 x, dy, dw;
} dlk_k_conv2d_bwd_filter_desc;
int dlk_k_conv2d_bwd_filter(const dlk_k_conv2d_bwd_filter_desc *a, int impl, void *ws, void *stream);
size_t dlk_k_conv2d_bwd_filter_ws(const dlk_k_conv2d_bwd_filter_desc *a, int impl);
int dlk_k_conv2d_bwd_filter_supports(const dlk_k_conv2d_bwd_filter_desc *a, int impl, char *why, size_t n);

/* ---- conv2d_bwd_bias: dz = dy * act'(z) (dz.data NULL: not written), db[k] = sum of dz
   over n, h, w (db.data NULL: not written). Shapes [n, k, h, w]; z read only when act is
   not NONE. Deterministic (fixed-order sums); impl 2 puts chunk partials in ws. ---- */
typedef struct dlk_k_conv2d_bwd_bias_desc {
  int dtype, act;
  int64_t n, k, h, w;
  dlk_k_t4 dy, z, dz;
  dlk_k_vec db;
} dlk_k_conv2d_bwd_bias_desc;
int dlk_k_conv2d_bwd_bias(const dlk_k_conv2d_bwd_bias_desc *a, int impl, void *ws, void *stream);
size_t dlk_k_conv2d_bwd_bias_ws(const dlk_k_conv2d_bwd_bias_desc *a, int impl);

/* ====================================================================================== */
/* Pooling, adaptive average pooling, batch norm, MSE loss: kernels/conv/{pool2d,         */
/* adaptive_pool2d,batchnorm,mse}_{fwd,bwd}.cu (helpers in cnnops_common.cuh). Every      */
/* kernel takes any strides and every float dtype; none uses atomics.                     */
/* ====================================================================================== */

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
#endif /* DLK_KERNELS_CONV_H */
