/*
 * conv cases of dlk-bench (issue 11), each run through the public call so that every
 * variant the dispatcher lists for the op is timed (cuDNN, id 10, is the vendor column):
 *   ResNet-50 layers at batch 32: conv1 224x224x3 -> 64 7x7/2; 56x56 64 -> 64 3x3;
 *     56x56 64 -> 256 1x1; 28x28 128 -> 128 3x3; 14x14 256 -> 256 3x3; 7x7 512 -> 512 3x3
 *   VGG-19 conv3_1 (56x56 128 -> 256 3x3) and conv4_1 (28x28 256 -> 512 3x3) at batch 8
 *   a MobileNet depthwise 3x3 at 112x112x32, batch 32
 *   DeepBench's conv set, (W, H, C, N, K, S, R, pad, stride):
 *     (700,161,1,32,32,20,5,0,2) (341,79,32,32,32,10,5,0,2) (54,54,64,8,64,3,3,1,1)
 *     (224,224,3,16,64,7,7,3,2) (28,28,192,16,32,5,5,2,1) (14,14,256,16,256,3,3,1,1)
 *     (7,7,512,16,512,3,3,1,1)
 * each forward (conv2d_fwd), backward-data (conv2d_bwd_data) and backward-filter
 * (conv2d_bwd_filter); f32 in NCHW, and f16 and bf16 channels-last (the tensor-core
 * layout). flops = 2 N K Ho Wo (C / groups) R S in every direction; bytes = the three
 * tensors of the direction once (the minimum). Depthwise is rated in GB/s.
 * Without a GPU: three small layers of the same kinds (3x3, 1x1, depthwise), f32 only, so
 * the family's CPU run stays near a second (the CPU reference and im2col variants).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

typedef struct conv_shape {
  const char *name;
  int64_t n, c, h, w, k, r, s, stride, pad, groups;
} conv_shape;

static const conv_shape gpu_shapes[] = {
    {"resnet50_conv1", 32, 3, 224, 224, 64, 7, 7, 2, 3, 1},
    {"resnet50_res2_3x3", 32, 64, 56, 56, 64, 3, 3, 1, 1, 1},
    {"resnet50_res2_1x1", 32, 64, 56, 56, 256, 1, 1, 1, 0, 1},
    {"resnet50_res3_3x3", 32, 128, 28, 28, 128, 3, 3, 1, 1, 1},
    {"resnet50_res4_3x3", 32, 256, 14, 14, 256, 3, 3, 1, 1, 1},
    {"resnet50_res5_3x3", 32, 512, 7, 7, 512, 3, 3, 1, 1, 1},
    {"vgg19_conv3_1", 8, 128, 56, 56, 256, 3, 3, 1, 1, 1},
    {"vgg19_conv4_1", 8, 256, 28, 28, 512, 3, 3, 1, 1, 1},
    {"mobilenet_dw3x3", 32, 32, 112, 112, 32, 3, 3, 1, 1, 32},
    {"deepbench_700x161", 32, 1, 161, 700, 32, 5, 20, 2, 0, 1},
    {"deepbench_341x79", 32, 32, 79, 341, 32, 5, 10, 2, 0, 1},
    {"deepbench_54x54", 8, 64, 54, 54, 64, 3, 3, 1, 1, 1},
    {"deepbench_224x224", 16, 3, 224, 224, 64, 7, 7, 2, 3, 1},
    {"deepbench_28x28_5x5", 16, 192, 28, 28, 32, 5, 5, 1, 2, 1},
    {"deepbench_14x14", 16, 256, 14, 14, 256, 3, 3, 1, 1, 1},
    {"deepbench_7x7", 16, 512, 7, 7, 512, 3, 3, 1, 1, 1},
};

static const conv_shape cpu_shapes[] = {
    {"small_3x3", 1, 16, 14, 14, 16, 3, 3, 1, 1, 1},
    {"small_1x1", 1, 32, 14, 14, 64, 1, 1, 1, 0, 1},
    {"small_dw3x3", 1, 32, 28, 28, 32, 3, 3, 1, 1, 32},
};

enum { DIR_FWD = 0, DIR_DATA, DIR_FILTER };
static const char *const dir_ops[3] = {"conv2d_fwd", "conv2d_bwd_data", "conv2d_bwd_filter"};
static const char *const dir_names[3] = {"conv_fwd", "conv_bwd_data", "conv_bwd_filter"};

static int64_t out_dim(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  return dlk_conv2d_output_dim(in, k, stride, pad, 1);
}

/* The case's shape: dims[0] 1 for the CPU table, dims[1] the index. */
static const conv_shape *shape_of(const bench_case *c) {
  return c->dims[0] ? &cpu_shapes[c->dims[1]] : &gpu_shapes[c->dims[1]];
}

typedef struct conv_state {
  int dir;
  dlk_tensor x, w, y, dx, dw; /* y is dy for the backward directions */
  dlk_tensor mem[5];          /* the allocations (the views above may be permuted) */
} conv_state;

static void conv_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  conv_state *s = state;
  if (!s) return;
  for (int i = 0; i < 5; i++) bench_free(env, &s->mem[i]);
  free(s);
}

/* A [d0, d1, d2, d3] tensor, NCHW-contiguous or channels-last (allocated as [d0, d2, d3,
   d1] and viewed in logical order), filled with uniform values in [-scale, scale). */
static dlk_status make4(const bench_env *env, dlk_tensor *view, dlk_tensor *mem, dlk_dtype dt, const int64_t d[4],
                        int channels_last, double scale, uint64_t seed) {
  if (!channels_last) {
    BENCH_TRY(bench_alloc(env, mem, dt, 4, d));
    *view = *mem;
  } else {
    const int64_t p[4] = {d[0], d[2], d[3], d[1]};
    BENCH_TRY(bench_alloc(env, mem, dt, 4, p));
    *view = *mem;
    memcpy(view->shape, d, sizeof(int64_t) * 4);
    view->strides[0] = d[2] * d[3] * d[1], view->strides[1] = 1, view->strides[2] = d[3] * d[1],
    view->strides[3] = d[1];
  }
  return bench_fill(env, mem, -scale, scale, seed);
}

static dlk_status conv_setup(const bench_env *env, const bench_case *c, void **state) {
  conv_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  const conv_shape *sh = shape_of(c);
  const int cl = (int)c->dims[3];
  const int64_t ho = out_dim(sh->h, sh->r, sh->stride, sh->pad), wo = out_dim(sh->w, sh->s, sh->stride, sh->pad);
  const int64_t xd[4] = {sh->n, sh->c, sh->h, sh->w}, wd[4] = {sh->k, sh->c / sh->groups, sh->r, sh->s},
                yd[4] = {sh->n, sh->k, ho, wo};
  BENCH_TRY(make4(env, &s->x, &s->mem[0], c->dt, xd, cl, 1.0, 41));
  BENCH_TRY(make4(env, &s->w, &s->mem[1], c->dt, wd, cl, 0.1, 42));
  BENCH_TRY(make4(env, &s->y, &s->mem[2], c->dt, yd, cl, 1.0, 43));
  s->dir = c->arg;
  if (c->arg == DIR_DATA) BENCH_TRY(make4(env, &s->dx, &s->mem[3], c->dt, xd, cl, 1.0, 44));
  if (c->arg == DIR_FILTER) BENCH_TRY(make4(env, &s->dw, &s->mem[4], c->dt, wd, cl, 1.0, 45));
  return DLK_OK;
}

static dlk_conv2d_params params_of(const conv_shape *sh) {
  dlk_conv2d_params p;
  memset(&p, 0, sizeof p);
  p.stride[0] = p.stride[1] = sh->stride;
  p.padding[0] = p.padding[1] = sh->pad;
  p.groups = sh->groups;
  return p;
}

static dlk_status conv_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)variant;
  conv_state *s = state;
  const dlk_conv2d_params p = params_of(shape_of(c));
  switch (c->arg) {
    case DIR_FWD: return dlk_conv2d_forward(env->ctx, &p, &s->x, &s->w, NULL, &s->y, NULL);
    /* y is dy here */
    case DIR_DATA: return dlk_conv2d_backward(env->ctx, &p, &s->x, &s->w, NULL, &s->y, &s->dx, NULL, NULL);
    default: return dlk_conv2d_backward(env->ctx, &p, &s->x, &s->w, NULL, &s->y, NULL, &s->dw, NULL);
  }
}

static const dlk_tensor *conv_output(void *state) {
  const conv_state *s = state;
  return s->dir == DIR_FWD ? &s->y : s->dir == DIR_DATA ? &s->dx : &s->dw;
}

static void add_conv(bench_registry *r, int cpu, int index, int dir, dlk_dtype dt, int channels_last) {
  const conv_shape *sh = cpu ? &cpu_shapes[index] : &gpu_shapes[index];
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "conv";
  c.op = dir_ops[dir];
  snprintf(c.name, sizeof c.name, "%s", dir_names[dir]);
  const int64_t ho = out_dim(sh->h, sh->r, sh->stride, sh->pad), wo = out_dim(sh->w, sh->s, sh->stride, sh->pad);
  snprintf(c.shape, sizeof c.shape, "%s%s", sh->name, channels_last ? ",nhwc" : "");
  snprintf(c.dtype, sizeof c.dtype, "%s", dlk_dtype_name(dt));
  const double es = (double)dlk_dtype_size(dt);
  const double xs = (double)(sh->n * sh->c * sh->h * sh->w), ws = (double)(sh->k * (sh->c / sh->groups) * sh->r * sh->s),
               ys = (double)(sh->n * sh->k * ho * wo);
  c.flops = 2.0 * ys * (double)((sh->c / sh->groups) * sh->r * sh->s);
  c.bytes = (xs + ws + ys) * es;
  c.bound = sh->groups > 1 ? BENCH_MEMORY : BENCH_COMPUTE;
  c.dims[0] = cpu, c.dims[1] = index, c.dims[3] = channels_last;
  c.dt = dt;
  c.arg = dir;
  c.setup = conv_setup;
  c.run = conv_run;
  c.output = conv_output;
  c.teardown = conv_teardown;
  c.note =
      "conv2d, no bias or activation; flops = 2 N K Ho Wo Cg R S; bytes = the direction's three tensors "
      "once; shape ',nhwc' = channels-last memory";
  bench_add(r, &c);
}

static void add_cnnops_cases(bench_registry *r, const bench_env *env); /* section below */

void bench_family_conv(bench_registry *r, const bench_env *env) {
  add_cnnops_cases(r, env);
  if (!env->gpu) {
    const int n = env->quick ? 2 : 3;
    for (int i = 0; i < n; i++)
      for (int dir = 0; dir < 3; dir++) add_conv(r, 1, i, dir, DLK_F32, 0);
    return;
  }
  const int n = (int)(sizeof gpu_shapes / sizeof gpu_shapes[0]);
  for (int i = 0; i < n; i++) {
    if (env->quick && i % 3) continue;
    for (int dir = 0; dir < 3; dir++) {
      add_conv(r, 0, i, dir, DLK_F32, 0);
      add_conv(r, 0, i, dir, DLK_BF16, 1);
      if (!env->quick) add_conv(r, 0, i, dir, DLK_F16, 1);
    }
  }
}

/* ======================================================================================
   Pooling, adaptive average pooling, batch norm and MSE cases (memory-bound: GB/s over
   the minimal bytes, each tensor once):
     pool2d      ResNet-50's stem max pool 3x3/2 pad 1 on [32, 64, 112, 112]; a 2x2/2
                 average pool on [32, 256, 56, 56]; forward and backward
     adaptive    global average pool [32, 2048, 7, 7] -> 1x1 (ResNet-50's head), fwd/bwd
     batchnorm   [32, 64, 112, 112] and [32, 256, 56, 56]: training forward (statistics,
                 running stats, y), inference forward, training backward (dx, dgamma,
                 dbeta)
     mse         [8, 256, 64, 64] (16M elements, a style-transfer feature map), MEAN,
                 forward and backward
   f32 NCHW and bf16 channels-last (MSE: contiguous). bytes: pool fwd x + y, bwd
   x + dy + dx (max) or dy + dx (avg); batch norm fwd x + y, bwd x + dy + dx; mse fwd
   x + target, bwd x + target + dx. Without a GPU: one small shape of each kind, f32.
   ====================================================================================== */

enum { CNN_MAXPOOL_FWD, CNN_MAXPOOL_BWD, CNN_AVGPOOL_FWD, CNN_AVGPOOL_BWD, CNN_GAP_FWD, CNN_GAP_BWD, CNN_BN_TRAIN,
       CNN_BN_EVAL, CNN_BN_BWD, CNN_MSE_FWD, CNN_MSE_BWD, CNN_KINDS };
static const char *const cnn_names[CNN_KINDS] = {"maxpool_fwd", "maxpool_bwd", "avgpool_fwd", "avgpool_bwd",
                                                 "gap_fwd",     "gap_bwd",     "bn_train_fwd", "bn_eval_fwd",
                                                 "bn_bwd",      "mse_fwd",     "mse_bwd"};
static const char *const cnn_ops[CNN_KINDS] = {"pool2d_fwd", "pool2d_bwd", "pool2d_fwd", "pool2d_bwd",
                                               "adaptive_avg_pool2d_fwd", "adaptive_avg_pool2d_bwd",
                                               "batchnorm_fwd", "batchnorm_fwd", "batchnorm_bwd",
                                               "mse_loss_fwd", "mse_loss_bwd"};
static const dlk_pool2d_params cnn_maxpool = {DLK_POOL_MAX, {3, 3}, {2, 2}, {1, 1}, {1, 1}, 0, 0};
static const dlk_pool2d_params cnn_avgpool = {DLK_POOL_AVG, {2, 2}, {2, 2}, {0, 0}, {1, 1}, 0, 1};

typedef struct cnn_state {
  dlk_tensor x, y, dy, dx, gamma, beta, rm, rv, sm, sr, target, loss;
  dlk_tensor mem[12]; /* the allocations */
  int nmem;
} cnn_state;

static void cnn_teardown(const bench_env *env, const bench_case *c, void *state) {
  (void)c;
  cnn_state *s = state;
  if (!s) return;
  for (int i = 0; i < s->nmem; i++) bench_free(env, &s->mem[i]);
  free(s);
}

static int cnn_kind(const bench_case *c) { return c->arg & 0xff; }
static int cnn_cl(const bench_case *c) { return c->arg >> 8; }

/* The output shape of a pooling kind for input in[4]. */
static void cnn_out(int kind, const int64_t *in, int64_t *out) {
  memcpy(out, in, sizeof(int64_t) * 4);
  if (kind == CNN_GAP_FWD || kind == CNN_GAP_BWD) {
    out[2] = out[3] = 1;
  } else if (kind <= CNN_AVGPOOL_BWD) {
    const dlk_pool2d_params *p = kind <= CNN_MAXPOOL_BWD ? &cnn_maxpool : &cnn_avgpool;
    for (int d = 0; d < 2; d++) out[2 + d] = (in[2 + d] + 2 * p->padding[d] - p->kernel[d]) / p->stride[d] + 1;
  }
}

static dlk_status cnn_img(const bench_env *env, cnn_state *s, dlk_tensor *view, dlk_dtype dt, const int64_t *d,
                          int cl, uint64_t seed) {
  return make4(env, view, &s->mem[s->nmem++], dt, d, cl, 1.0, seed);
}

/* A [n] (ndim 1) or [] (ndim 0) f32 tensor (the statistics' and the loss's dtype for
   f32/bf16 data) filled from [lo, hi). */
static dlk_status cnn_vec(const bench_env *env, cnn_state *s, dlk_tensor *view, int ndim, int64_t n, double lo,
                          double hi, uint64_t seed) {
  dlk_tensor *m = &s->mem[s->nmem++];
  BENCH_TRY(bench_alloc(env, m, DLK_F32, ndim, &n));
  *view = *m;
  return bench_fill(env, m, lo, hi, seed);
}

static dlk_status cnn_setup(const bench_env *env, const bench_case *c, void **state) {
  cnn_state *s = calloc(1, sizeof *s);
  if (!s) return DLK_ERR_OUT_OF_MEMORY;
  *state = s;
  const int kind = cnn_kind(c), cl = cnn_cl(c);
  int64_t out[4];
  cnn_out(kind, c->dims, out);
  BENCH_TRY(cnn_img(env, s, &s->x, c->dt, c->dims, cl, 51));
  switch (kind) {
    case CNN_MAXPOOL_FWD: case CNN_AVGPOOL_FWD: case CNN_GAP_FWD:
      return cnn_img(env, s, &s->y, c->dt, out, cl, 52);
    case CNN_MAXPOOL_BWD: case CNN_AVGPOOL_BWD: case CNN_GAP_BWD:
      BENCH_TRY(cnn_img(env, s, &s->dy, c->dt, out, cl, 53));
      return cnn_img(env, s, &s->dx, c->dt, c->dims, cl, 54);
    case CNN_BN_TRAIN: case CNN_BN_EVAL: case CNN_BN_BWD: {
      const int64_t C = c->dims[1];
      BENCH_TRY(cnn_vec(env, s, &s->gamma, 1, C, 0.5, 1.5, 61));
      BENCH_TRY(cnn_vec(env, s, &s->beta, 1, C, -0.5, 0.5, 62));
      BENCH_TRY(cnn_vec(env, s, &s->rm, 1, C, -0.1, 0.1, 63));
      BENCH_TRY(cnn_vec(env, s, &s->rv, 1, C, 0.5, 1.5, 64));
      BENCH_TRY(cnn_vec(env, s, &s->sm, 1, C, -0.1, 0.1, 65));
      BENCH_TRY(cnn_vec(env, s, &s->sr, 1, C, 0.5, 1.5, 66));
      if (kind != CNN_BN_BWD) return cnn_img(env, s, &s->y, c->dt, c->dims, cl, 52);
      BENCH_TRY(cnn_img(env, s, &s->dy, c->dt, c->dims, cl, 53));
      return cnn_img(env, s, &s->dx, c->dt, c->dims, cl, 54);
    }
    default: /* mse: target, loss (or dloss), dx */
      BENCH_TRY(cnn_img(env, s, &s->target, c->dt, c->dims, 0, 55));
      BENCH_TRY(cnn_vec(env, s, &s->loss, 0, 1, 1.0, 1.0001, 56));
      if (kind == CNN_MSE_BWD) return cnn_img(env, s, &s->dx, c->dt, c->dims, 0, 54);
      return DLK_OK;
  }
}

static dlk_status cnn_run(const bench_env *env, const bench_case *c, void *state, int variant) {
  (void)variant;
  cnn_state *s = state;
  dlk_context *ctx = env->ctx;
  const dlk_batchnorm_params train = {1e-5, 0.1, 1}, eval = {1e-5, 0.1, 0};
  const dlk_mse_params mean = {DLK_REDUCE_MEAN};
  switch (cnn_kind(c)) {
    case CNN_MAXPOOL_FWD: return dlk_pool2d_forward(ctx, &cnn_maxpool, &s->x, &s->y);
    case CNN_MAXPOOL_BWD: return dlk_pool2d_backward(ctx, &cnn_maxpool, &s->x, NULL, &s->dy, &s->dx);
    case CNN_AVGPOOL_FWD: return dlk_pool2d_forward(ctx, &cnn_avgpool, &s->x, &s->y);
    case CNN_AVGPOOL_BWD: return dlk_pool2d_backward(ctx, &cnn_avgpool, &s->x, NULL, &s->dy, &s->dx);
    case CNN_GAP_FWD: return dlk_adaptive_avg_pool2d_forward(ctx, &s->x, &s->y);
    case CNN_GAP_BWD: return dlk_adaptive_avg_pool2d_backward(ctx, &s->dy, &s->dx);
    case CNN_BN_TRAIN:
      return dlk_batchnorm_forward(ctx, &train, &s->x, &s->gamma, &s->beta, &s->rm, &s->rv, &s->y, &s->sm, &s->sr);
    case CNN_BN_EVAL:
      return dlk_batchnorm_forward(ctx, &eval, &s->x, &s->gamma, &s->beta, &s->rm, &s->rv, &s->y, NULL, NULL);
    case CNN_BN_BWD: /* dgamma, dbeta into the running-stat buffers (free here) */
      return dlk_batchnorm_backward(ctx, &train, &s->x, &s->gamma, &s->sm, &s->sr, &s->dy, &s->dx, &s->rm, &s->rv);
    case CNN_MSE_FWD: return dlk_mse_loss_forward(ctx, &mean, &s->x, &s->target, &s->loss);
    default: return dlk_mse_loss_backward(ctx, &mean, &s->x, &s->target, &s->loss, &s->dx);
  }
}

static const dlk_tensor *cnn_output(void *state) {
  const cnn_state *s = state;
  if (s->dx.data) return &s->dx;
  if (s->y.data) return &s->y;
  return &s->loss;
}

static void add_cnn(bench_registry *r, int kind, const int64_t *in, dlk_dtype dt, int cl) {
  bench_case c;
  memset(&c, 0, sizeof c);
  c.family = "conv";
  c.op = cnn_ops[kind];
  snprintf(c.name, sizeof c.name, "%s", cnn_names[kind]);
  snprintf(c.shape, sizeof c.shape, "%lldx%lldx%lldx%lld%s", (long long)in[0], (long long)in[1], (long long)in[2],
           (long long)in[3], cl ? ",nhwc" : "");
  snprintf(c.dtype, sizeof c.dtype, "%s", dlk_dtype_name(dt));
  int64_t out[4];
  cnn_out(kind, in, out);
  const double es = (double)dlk_dtype_size(dt), xs = (double)(in[0] * in[1] * in[2] * in[3]),
               ys = (double)(out[0] * out[1] * out[2] * out[3]);
  switch (kind) {
    case CNN_MAXPOOL_BWD: c.bytes = (2 * xs + ys) * es; break;
    case CNN_AVGPOOL_BWD: case CNN_GAP_BWD: c.bytes = (xs + ys) * es; break;
    case CNN_BN_TRAIN: case CNN_BN_EVAL: c.bytes = 2 * xs * es; break;
    case CNN_BN_BWD: c.bytes = 3 * xs * es; break;
    case CNN_MSE_FWD: c.bytes = 2 * xs * es; break;
    case CNN_MSE_BWD: c.bytes = 3 * xs * es; break;
    default: c.bytes = (xs + ys) * es; break;
  }
  c.bound = BENCH_MEMORY;
  memcpy(c.dims, in, sizeof c.dims);
  c.dt = dt;
  c.arg = kind | (cl << 8);
  c.setup = cnn_setup;
  c.run = cnn_run;
  c.output = cnn_output;
  c.teardown = cnn_teardown;
  c.note = "pooling / batch norm / MSE: bytes = each tensor of the call once; shape ',nhwc' = channels-last";
  bench_add(r, &c);
}

static void add_cnnops_cases(bench_registry *r, const bench_env *env) {
  static const int64_t gpu_pool[4] = {32, 64, 112, 112}, gpu_avg[4] = {32, 256, 56, 56},
                       gpu_gap[4] = {32, 2048, 7, 7}, gpu_bn[2][4] = {{32, 64, 112, 112}, {32, 256, 56, 56}},
                       gpu_mse[4] = {8, 256, 64, 64};
  static const int64_t cpu_pool[4] = {2, 16, 28, 28}, cpu_gap[4] = {4, 64, 7, 7}, cpu_bn[4] = {4, 16, 14, 14},
                       cpu_mse[4] = {4, 16, 32, 32};
  const int gpu = env->gpu;
  const int ndt = gpu ? 2 : 1;
  for (int v = 0; v < ndt; v++) {
    const dlk_dtype dt = v ? DLK_BF16 : DLK_F32;
    const int cl = v;
    for (int k = CNN_MAXPOOL_FWD; k <= CNN_MAXPOOL_BWD; k++) add_cnn(r, k, gpu ? gpu_pool : cpu_pool, dt, cl);
    for (int k = CNN_AVGPOOL_FWD; k <= CNN_AVGPOOL_BWD; k++) add_cnn(r, k, gpu ? gpu_avg : cpu_pool, dt, cl);
    for (int k = CNN_GAP_FWD; k <= CNN_GAP_BWD; k++) add_cnn(r, k, gpu ? gpu_gap : cpu_gap, dt, cl);
    for (int b = 0; b < (gpu && !env->quick ? 2 : 1); b++)
      for (int k = CNN_BN_TRAIN; k <= CNN_BN_BWD; k++) add_cnn(r, k, gpu ? gpu_bn[b] : cpu_bn, dt, cl);
    for (int k = CNN_MSE_FWD; k <= CNN_MSE_BWD; k++) add_cnn(r, k, gpu ? gpu_mse : cpu_mse, dt, 0);
  }
}
