/*
 * conv family: the vendor rows. 10 "cudnn": conv2d forward (with the bias and the
 * activation fused into the same graph), backward-data and backward-filter as cuDNN
 * backend graphs (host/cudnn/graph.h: operation graph -> heuristics -> execution plan,
 * plans cached per shape key in the context). The legacy cudnnConvolutionForward family
 * is deprecated in cuDNN 9 and is not used.
 *
 * Graphs (x, w, b, y, z, dy, dx, dw with their own dims and strides: any layout cuDNN
 * accepts, channels-last included):
 *   forward          acc = conv_fwd(x, w); pre = acc + b (b as [1, K, 1, 1]); y = act(pre);
 *                    z = pre when z is asked for. relu is written as
 *                    y = (pre <= 0) ? 0 : pre (CMP_LE, BINARY_SELECT), so a NaN passes as
 *                    in every other variant (max(x, 0) would drop it).
 *   backward-data    dx = conv_bwd_data(w, dy)
 *   backward-filter  dw = conv_bwd_filter(x, dy); in deterministic mode the helper leaves
 *                    out every engine with cuDNN's non-determinism note.
 * supports() builds the plan (once per key), so cuDNN's refusal of a case is a reason in
 * explain, never a failed run. The bias/activation backward (conv2d_bwd_bias) has no
 * cuDNN row: the native kernels read dy once.
 */
#include <stdio.h>
#include <string.h>

#include "conv.h"

#if DLK_HAVE_CUDA && DLK_HAVE_CUDNN
#include "../cudnn/graph.h"

/* Tensor uids of the graphs. */
enum { U_X = 1, U_W, U_B, U_Y, U_Z, U_DY, U_DX, U_DW };

static bool dtype_ok(dlk_dtype t, char *why, size_t n) {
  if (t == DLK_F32 || t == DLK_F16 || t == DLK_BF16 || t == DLK_F64) return true;
  snprintf(why, n, "cuDNN conv takes f32, f16, bf16, f64, not %s", dlk_dtype_name(t));
  return false;
}

static void key_geom(dlk_cg_key *k, const dlk_conv2d_geom *g) {
  dlk_cg_key_add(k, "st%lldx%lld_p%lldx%lld_d%lldx%lld_g%lld", (long long)g->stride[0], (long long)g->stride[1],
                 (long long)g->pad[0], (long long)g->pad[1], (long long)g->dil[0], (long long)g->dil[1],
                 (long long)g->groups);
}

static dlk_cg_conv cg_conv(const dlk_conv2d_geom *g) { return dlk_cg_conv2d(g->stride, g->pad, g->dil); }

/* Compute type: f64 graphs in double, every other one in f32 (dlk accumulates in f32). */
static void set_compute(dlk_cg *g, dlk_dtype t) {
  dlk_cg_set_compute(g, t == DLK_F64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT);
}

/* ---- conv2d_fwd ---- */

static void fwd_graph(dlk_cg *g, const void *arg) {
  const dlk_conv2d_fwd_args *a = arg;
  set_compute(g, a->x.dtype);
  dlk_cg_tensor *x = dlk_cg_tensor_of(g, U_X, &a->x), *w = dlk_cg_tensor_of(g, U_W, &a->w);
  dlk_cg_tensor *y = dlk_cg_tensor_of(g, U_Y, &a->y);
  const dlk_cg_conv c = cg_conv(&a->g);
  const bool plain = !a->has_b && a->act == DLK_ACT_NONE && !a->has_z;
  dlk_cg_tensor *pre = plain ? y : dlk_cg_virtual_like(g, y);
  dlk_cg_conv_fwd(g, &c, x, w, pre);
  if (plain) return;
  if (a->has_b) {
    const int64_t bd[4] = {1, a->g.k, 1, 1}, bs[4] = {a->g.k * a->b.strides[0], a->b.strides[0], 1, 1};
    dlk_cg_tensor *b = dlk_cg_tensor_new(g, U_B, a->b.dtype, 4, bd, bs, dlk_cg_alignment(a->b.data));
    dlk_cg_tensor *biased = dlk_cg_virtual_like(g, y);
    dlk_cg_pointwise(g, CUDNN_POINTWISE_ADD, pre, b, biased);
    pre = biased;
  }
  if (a->has_z) dlk_cg_pointwise(g, CUDNN_POINTWISE_IDENTITY, pre, NULL, dlk_cg_tensor_of(g, U_Z, &a->z));
  cudnnPointwiseMode_t mode;
  if (a->act == DLK_ACT_RELU) {
    dlk_cg_tensor *zero = dlk_cg_constant(g, DLK_F32, 4, 0.0);
    dlk_cg_tensor *le = dlk_cg_virtual_as(g, CUDNN_DATA_BOOLEAN, 4, a->y.shape);
    dlk_cg_set_compute(g, CUDNN_DATA_BOOLEAN); /* comparisons compute in BOOLEAN, as cuDNN's samples */
    dlk_cg_pointwise(g, CUDNN_POINTWISE_CMP_LE, pre, zero, le);
    set_compute(g, a->x.dtype);
    dlk_cg_select(g, zero, pre, le, y);
  } else if (dlk_cg_activation(a->act, &mode, NULL)) {
    dlk_cg_pointwise(g, mode, pre, NULL, y);
  } else {
    dlk_cg_pointwise(g, CUDNN_POINTWISE_IDENTITY, pre, NULL, y);
  }
}

static void fwd_key(const dlk_conv2d_fwd_args *a, dlk_cg_key *k) {
  dlk_cg_key_init(k);
  key_geom(k, &a->g);
  dlk_cg_key_tensor(k, "x", &a->x);
  dlk_cg_key_tensor(k, "w", &a->w);
  dlk_cg_key_tensor(k, "y", &a->y);
  if (a->has_b) dlk_cg_key_tensor(k, "b", &a->b);
  if (a->has_z) dlk_cg_key_tensor(k, "z", &a->z);
  dlk_cg_key_add(k, "act%d", (int)a->act);
}

bool dlk_conv2d_fwd_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  const dlk_conv2d_fwd_args *a = args;
  if (!dtype_ok(a->x.dtype, why, n)) return false;
  dlk_cg_key k;
  fwd_key(a, &k);
  return dlk_cg_supports(dlk_cg_memo_context(ctx), "conv2d_fwd", &k, fwd_graph, a, why, n);
}

size_t dlk_conv2d_fwd_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  const dlk_conv2d_fwd_args *a = args;
  dlk_cg_key k;
  fwd_key(a, &k);
  const dlk_cg_plan *p = NULL;
  char why[DLK_CG_WHY_LEN];
  if (dlk_cg_plan_find(dlk_cg_memo_context(ctx), "conv2d_fwd", &k, fwd_graph, a, &p, why, sizeof why) != DLK_OK) return 0;
  return dlk_cg_plan_workspace(p);
}

dlk_status dlk_conv2d_fwd_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  const dlk_conv2d_fwd_args *a = args;
  if (dlk_tensor_numel(&a->y) == 0) return DLK_OK;
  dlk_cg_key k;
  fwd_key(a, &k);
  const dlk_cg_plan *p;
  DLK_TRY(dlk_cg_plan_get(ctx, "conv2d_fwd", &k, fwd_graph, a, &p));
  const dlk_cg_bind b[5] = {{U_X, a->x.data}, {U_W, a->w.data}, {U_Y, a->y.data}, {U_B, a->b.data}, {U_Z, a->z.data}};
  return dlk_cg_execute(ctx, p, b, 5, ws, ws_bytes);
}

/* ---- conv2d_bwd_data ---- */

static void data_graph(dlk_cg *g, const void *arg) {
  const dlk_conv2d_bwd_data_args *a = arg;
  set_compute(g, a->dy.dtype);
  const dlk_cg_conv c = cg_conv(&a->g);
  dlk_cg_conv_bwd_data(g, &c, dlk_cg_tensor_of(g, U_W, &a->w), dlk_cg_tensor_of(g, U_DY, &a->dy),
                       dlk_cg_tensor_of(g, U_DX, &a->dx));
}

static void data_key(const dlk_conv2d_bwd_data_args *a, dlk_cg_key *k) {
  dlk_cg_key_init(k);
  key_geom(k, &a->g);
  dlk_cg_key_tensor(k, "w", &a->w);
  dlk_cg_key_tensor(k, "dy", &a->dy);
  dlk_cg_key_tensor(k, "dx", &a->dx);
}

bool dlk_conv2d_bwd_data_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  const dlk_conv2d_bwd_data_args *a = args;
  if (!dtype_ok(a->dy.dtype, why, n)) return false;
  dlk_cg_key k;
  data_key(a, &k);
  return dlk_cg_supports(dlk_cg_memo_context(ctx), "conv2d_bwd_data", &k, data_graph, a, why, n);
}

size_t dlk_conv2d_bwd_data_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  const dlk_conv2d_bwd_data_args *a = args;
  dlk_cg_key k;
  data_key(a, &k);
  const dlk_cg_plan *p = NULL;
  char why[DLK_CG_WHY_LEN];
  if (dlk_cg_plan_find(dlk_cg_memo_context(ctx), "conv2d_bwd_data", &k, data_graph, a, &p, why, sizeof why) != DLK_OK)
    return 0;
  return dlk_cg_plan_workspace(p);
}

dlk_status dlk_conv2d_bwd_data_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  const dlk_conv2d_bwd_data_args *a = args;
  if (dlk_tensor_numel(&a->dx) == 0) return DLK_OK;
  dlk_cg_key k;
  data_key(a, &k);
  const dlk_cg_plan *p;
  DLK_TRY(dlk_cg_plan_get(ctx, "conv2d_bwd_data", &k, data_graph, a, &p));
  const dlk_cg_bind b[3] = {{U_W, a->w.data}, {U_DY, a->dy.data}, {U_DX, a->dx.data}};
  return dlk_cg_execute(ctx, p, b, 3, ws, ws_bytes);
}

/* ---- conv2d_bwd_filter ---- */

static void filter_graph(dlk_cg *g, const void *arg) {
  const dlk_conv2d_bwd_filter_args *a = arg;
  set_compute(g, a->dy.dtype);
  const dlk_cg_conv c = cg_conv(&a->g);
  dlk_cg_conv_bwd_filter(g, &c, dlk_cg_tensor_of(g, U_X, &a->x), dlk_cg_tensor_of(g, U_DY, &a->dy),
                         dlk_cg_tensor_of(g, U_DW, &a->dw));
}

static void filter_key(const dlk_conv2d_bwd_filter_args *a, dlk_cg_key *k) {
  dlk_cg_key_init(k);
  key_geom(k, &a->g);
  dlk_cg_key_tensor(k, "x", &a->x);
  dlk_cg_key_tensor(k, "dy", &a->dy);
  dlk_cg_key_tensor(k, "dw", &a->dw);
}

bool dlk_conv2d_bwd_filter_cudnn_supports(const dlk_context *ctx, const void *args, int impl, char *why, size_t n) {
  (void)impl;
  const dlk_conv2d_bwd_filter_args *a = args;
  if (!dtype_ok(a->dy.dtype, why, n)) return false;
  dlk_cg_key k;
  filter_key(a, &k);
  return dlk_cg_supports(dlk_cg_memo_context(ctx), "conv2d_bwd_filter", &k, filter_graph, a, why, n);
}

size_t dlk_conv2d_bwd_filter_cudnn_workspace(const dlk_context *ctx, const void *args, int impl) {
  (void)impl;
  const dlk_conv2d_bwd_filter_args *a = args;
  dlk_cg_key k;
  filter_key(a, &k);
  const dlk_cg_plan *p = NULL;
  char why[DLK_CG_WHY_LEN];
  if (dlk_cg_plan_find(dlk_cg_memo_context(ctx), "conv2d_bwd_filter", &k, filter_graph, a, &p, why, sizeof why) != DLK_OK)
    return 0;
  return dlk_cg_plan_workspace(p);
}

dlk_status dlk_conv2d_bwd_filter_cudnn_run(dlk_context *ctx, const void *args, int impl, void *ws, size_t ws_bytes) {
  (void)impl;
  const dlk_conv2d_bwd_filter_args *a = args;
  if (dlk_tensor_numel(&a->dw) == 0) return DLK_OK;
  dlk_cg_key k;
  filter_key(a, &k);
  const dlk_cg_plan *p;
  DLK_TRY(dlk_cg_plan_get(ctx, "conv2d_bwd_filter", &k, filter_graph, a, &p));
  const dlk_cg_bind b[3] = {{U_X, a->x.data}, {U_DY, a->dy.data}, {U_DW, a->dw.data}};
  return dlk_cg_execute(ctx, p, b, 3, ws, ws_bytes);
}

#endif /* DLK_HAVE_CUDA && DLK_HAVE_CUDNN */
