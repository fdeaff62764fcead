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

void bench_family_conv(bench_registry *r, const bench_env *env) {
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
