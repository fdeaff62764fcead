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

#ifdef __cplusplus
}
#endif
#endif /* DLK_KERNELS_CONV_H */
