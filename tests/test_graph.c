/*
 * The cuDNN backend-graph helper (host/cudnn/graph.c) and the plan-cache bound it relies on
 * (dlk_plan_cache_trim in host/core/context.c; test_core covers get/put/replace).
 *
 * Without --gpu (any build): the bound: the least recently used entry under a prefix goes,
 * a handle's entry never does, the others keep their order, and context destroy still
 * destroys newest first. With cuDNN built, also what needs no device: keys, dtype and
 * activation maps, tensors finalized and read back, every operation node the helper offers
 * finalized (cuDNN finalizes tensors and nodes without a GPU), every error path of the
 * builder with its message, and the plan cache's handling of refusals (cached) and misuse
 * (not cached).
 *
 * With --gpu (exit 77 without a GPU, or without cuDNN in the build): plans built, cached
 * (a second call builds nothing) and executed against naive references: a broadcast add,
 * conv2d + bias + ReLU, the softmax rows 10 forward and backward (log too, f32/f16/bf16),
 * deterministic mode run twice, the single SDPA node where this cuDNN has it, and the
 * execute-time argument checks.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/internal.h"
#if DLK_HAVE_CUDNN
#include "cudnn/graph.h"
#endif

/* ---- the plan cache's bound -------------------------------------------------------- */

/* Each entry's pointer is its own name; destroying it appends the name to the log. */
static char destroy_log[4096];
static int destroyed;
static void log_destroy(void *p) {
  dlk_appendf(destroy_log, sizeof destroy_log, "%s,", (const char *)p);
  destroyed++;
}

#define CAP 8
static void test_plan_cache_bound(void) {
  t_case = "plan cache bound";
  dlk_context *ctx = t_cpu_context();
  static char handle[] = "handle", other[] = "other", plan[CAP + 2][8];
  destroyed = 0;
  destroy_log[0] = '\0';
  /* As on a GPU context: the handle first, then plans made with it, another owner's entry
     in between. */
  CHECK_OK(ctx, dlk_plan_cache_put(ctx, "cudnn", handle, log_destroy));
  for (int i = 0; i < CAP + 2; i++) {
    char key[32];
    snprintf(plan[i], sizeof plan[i], "p%d", i);
    snprintf(key, sizeof key, "test/graph/p%d", i);
    if (i == 2) CHECK_OK(ctx, dlk_plan_cache_put(ctx, "test/other", other, log_destroy));
    if (i == 3) { /* p0 used again: p1 is now the least recently used */
      void *got = NULL;
      CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/graph/p0", &got));
      CHECK(got == plan[0], "p0 found");
    }
    dlk_plan_cache_trim(ctx, "test/graph/", CAP - 1); /* as graph.c does before each put */
    CHECK_OK(ctx, dlk_plan_cache_put(ctx, key, plan[i], log_destroy));
  }
  /* CAP + 2 plans went in, CAP stay: p1 (least recently used), then p2. */
  CHECK(dlk_plan_cache_count(ctx, "test/graph/") == CAP && dlk_plan_cache_count(ctx, "") == CAP + 2,
        "%zu plans, %zu entries", dlk_plan_cache_count(ctx, "test/graph/"),
        dlk_plan_cache_count(ctx, ""));
  CHECK(strcmp(destroy_log, "p1,p2,") == 0, "evicted: %s", destroy_log);
  void *got = NULL;
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "cudnn", &got));
  CHECK(got == handle, "the handle was evicted");
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/graph/p0", &got));
  CHECK(got == plan[0], "the recently used p0 was evicted");
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/graph/p1", &got));
  CHECK(got == NULL, "the least recently used p1 is still there");
  dlk_plan_cache_trim(ctx, "test/graph/", CAP); /* nothing to do */
  dlk_plan_cache_trim(ctx, "test/none/", 0);
  CHECK(destroyed == 2, "a trim within the bound destroyed %d", destroyed - 2);

  /* Context destroy: newest first, so every plan goes before the handle. */
  destroy_log[0] = '\0';
  dlk_context_destroy(ctx);
  CHECK(strcmp(destroy_log, "p9,p8,p7,p6,p5,p4,p3,other,p0,handle,") == 0, "destroy order: %s",
        destroy_log);
}
#undef CAP

#if DLK_HAVE_CUDNN

/* ---- keys and maps ----------------------------------------------------------------- */

static dlk_tensor fake(void *data, dlk_dtype dt, int ndim, const int64_t *shape,
                       const int64_t *strides) {
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dt;
  t.device = (dlk_device){DLK_CUDA, 0};
  t.ndim = ndim;
  for (int i = 0; i < ndim; i++) t.shape[i] = shape[i], t.strides[i] = strides[i];
  return t;
}

static void test_keys_and_maps(void) {
  t_case = "keys";
  dlk_cg_key k;
  dlk_cg_key_init(&k);
  const int64_t sh[2] = {2, 3}, st[2] = {4, 1};
  dlk_tensor t = fake((void *)(uintptr_t)0x1000, DLK_F16, 2, sh, st);
  dlk_cg_key_tensor(&k, "x", &t);
  t.data = (void *)(uintptr_t)0x1006;
  dlk_cg_key_tensor(&k, "y", &t);
  dlk_cg_key_add(&k, "log%d", 1);
  CHECK(strcmp(k.s, "x:f16:2x3:4,1:a16;y:f16:2x3:4,1:a2;log1") == 0 && !k.overflow, "key '%s'",
        k.s);
  for (int i = 0; i < DLK_CG_KEY_LEN && !k.overflow; i++) dlk_cg_key_add(&k, "0123456789");
  CHECK(k.overflow, "a key past %d characters is not flagged", DLK_CG_KEY_LEN);

  CHECK(dlk_cg_alignment((void *)(uintptr_t)0x100) == 16 &&
            dlk_cg_alignment((void *)(uintptr_t)0x108) == 8 &&
            dlk_cg_alignment((void *)(uintptr_t)0x104) == 4 &&
            dlk_cg_alignment((void *)(uintptr_t)0x103) == 1,
        "alignment");

  t_case = "maps";
  static const cudnnDataType_t want[DLK_DTYPE_COUNT] = {
      CUDNN_DATA_FLOAT, CUDNN_DATA_HALF,  CUDNN_DATA_BFLOAT16, CUDNN_DATA_DOUBLE,
      CUDNN_DATA_INT32, CUDNN_DATA_INT64, CUDNN_DATA_UINT8};
  for (int d = 0; d < DLK_DTYPE_COUNT; d++) {
    cudnnDataType_t got = CUDNN_DATA_FP8_E4M3;
    CHECK(dlk_cg_dtype((dlk_dtype)d, &got) && got == want[d], "dtype %s", dlk_dtype_name(d));
  }
  cudnnDataType_t unused;
  CHECK(!dlk_cg_dtype(DLK_DTYPE_COUNT, &unused), "an invalid dtype maps");
  cudnnPointwiseMode_t f = CUDNN_POINTWISE_ADD, b = CUDNN_POINTWISE_ADD;
  CHECK(!dlk_cg_activation(DLK_ACT_NONE, &f, &b), "NONE maps");
  CHECK(dlk_cg_activation(DLK_ACT_RELU, &f, &b) && f == CUDNN_POINTWISE_RELU_FWD &&
            b == CUDNN_POINTWISE_RELU_BWD,
        "relu");
  CHECK(dlk_cg_activation(DLK_ACT_GELU, &f, &b) && f == CUDNN_POINTWISE_GELU_FWD &&
            b == CUDNN_POINTWISE_GELU_BWD,
        "gelu is the erf form");
  CHECK(dlk_cg_activation(DLK_ACT_SIGMOID, &f, NULL) && f == CUDNN_POINTWISE_SIGMOID_FWD,
        "sigmoid");
  CHECK(dlk_cg_activation(DLK_ACT_TANH, &f, NULL) && f == CUDNN_POINTWISE_TANH_FWD, "tanh");
}

/* ---- tensors read back ------------------------------------------------------------ */

static int64_t get_i64s(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a, int64_t *out,
                        int64_t cap) {
  int64_t n = -1;
  if (cudnnBackendGetAttribute(d, a, CUDNN_TYPE_INT64, cap, &n, out) != CUDNN_STATUS_SUCCESS)
    return -1;
  return n;
}

static bool get_bool(cudnnBackendDescriptor_t d, cudnnBackendAttributeName_t a) {
  bool v = false;
  int64_t n = 0;
  cudnnBackendGetAttribute(d, a, CUDNN_TYPE_BOOLEAN, 1, &n, &v);
  return v;
}

static void test_tensors(void) {
  t_case = "tensors";
  dlk_cg *g = dlk_cg_new(NULL, "tensors");
  /* A transposed view [3, 2] of a [2, 3] f16 matrix, and a broadcast dim of size 1. */
  const int64_t sh[3] = {1, 3, 2}, st[3] = {0, 1, 3};
  dlk_tensor tt = fake((void *)(uintptr_t)0x2008, DLK_F16, 3, sh, st);
  dlk_cg_tensor *x = dlk_cg_tensor_of(g, 7, &tt);
  char why[DLK_CG_WHY_LEN];
  CHECK(dlk_cg_status(g, why, sizeof why) == DLK_OK && x, "tensor_of: %s", why);
  cudnnBackendDescriptor_t d = dlk_cg_tensor_desc(x);
  int64_t v[8];
  CHECK(get_i64s(d, CUDNN_ATTR_TENSOR_DIMENSIONS, v, 8) == 3 && v[0] == 1 && v[1] == 3 && v[2] == 2,
        "dims read back");
  CHECK(get_i64s(d, CUDNN_ATTR_TENSOR_STRIDES, v, 8) == 3 && v[0] == 6 && v[1] == 1 && v[2] == 3,
        "strides read back %lld %lld %lld (stride 0 of a size-1 dim becomes 6)", (long long)v[0],
        (long long)v[1], (long long)v[2]);
  CHECK(get_i64s(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, v, 1) == 1 && v[0] == 7, "uid");
  /* (cuDNN 9.19 does not read BYTE_ALIGNMENT back: GetAttribute says NOT_SUPPORTED.) */
  cudnnDataType_t dt = CUDNN_DATA_FLOAT;
  int64_t n = 0;
  cudnnBackendGetAttribute(d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &n, &dt);
  CHECK(dt == CUDNN_DATA_HALF, "dtype read back %d", (int)dt);
  CHECK(!get_bool(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL), "a real tensor is virtual");

  const int64_t dims[4] = {2, 3, 4, 5};
  dlk_cg_tensor *vt = dlk_cg_virtual(g, 4, dims);
  d = dlk_cg_tensor_desc(vt);
  CHECK(get_bool(d, CUDNN_ATTR_TENSOR_IS_VIRTUAL), "virtual");
  CHECK(get_i64s(d, CUDNN_ATTR_TENSOR_STRIDES, v, 8) == 4 && v[0] == 60 && v[1] == 20 &&
            v[2] == 5 && v[3] == 1,
        "virtual strides are packed");
  CHECK(get_i64s(d, CUDNN_ATTR_TENSOR_UNIQUE_ID, v, 1) == 1 && v[0] >= DLK_CG_VIRTUAL_UID,
        "virtual uid %lld", (long long)v[0]);
  dlk_cg_tensor *like = dlk_cg_virtual_like(g, vt);
  CHECK(get_i64s(dlk_cg_tensor_desc(like), CUDNN_ATTR_TENSOR_DIMENSIONS, v, 8) == 4 && v[3] == 5,
        "virtual_like");
  dlk_cg_tensor *sc = dlk_cg_scalar(g, 9, DLK_F32, 4);
  dlk_cg_tensor *c = dlk_cg_constant(g, DLK_F32, 4, -INFINITY);
  CHECK(get_bool(dlk_cg_tensor_desc(sc), CUDNN_ATTR_TENSOR_IS_BY_VALUE) &&
            get_bool(dlk_cg_tensor_desc(c), CUDNN_ATTR_TENSOR_IS_BY_VALUE),
        "by value");
  CHECK(dlk_cg_status(g, why, sizeof why) == DLK_OK, "%s", why);
  dlk_cg_free(g);
}

/* ---- every node the helper offers, finalized without a device ---------------------- */

static const int64_t X_D[4] = {2, 3, 8, 8}, X_S[4] = {192, 64, 8, 1};
static const int64_t XL_S[4] = {192, 1, 24, 3}; /* channels-last */
static const int64_t W_D[4] = {4, 3, 3, 3}, W_S[4] = {27, 9, 3, 1};
static const int64_t Y_D[4] = {2, 4, 8, 8}, Y_S[4] = {256, 64, 8, 1};
static const int64_t B_D[4] = {1, 4, 1, 1}, B_S[4] = {4, 1, 1, 1};

/* conv2d forward + bias + ReLU, as conv2d_fwd's row will describe it. */
static void conv_bias_relu(dlk_cg *g, const void *arg) {
  const dlk_dtype dt = *(const dlk_dtype *)arg;
  dlk_cg_tensor *x = dlk_cg_tensor_new(g, 1, dt, 4, X_D, X_S, 16);
  dlk_cg_tensor *w = dlk_cg_tensor_new(g, 2, dt, 4, W_D, W_S, 16);
  dlk_cg_tensor *b = dlk_cg_tensor_new(g, 3, dt, 4, B_D, B_S, 16);
  dlk_cg_tensor *y = dlk_cg_tensor_new(g, 4, dt, 4, Y_D, Y_S, 16);
  const int64_t one[2] = {1, 1};
  const dlk_cg_conv c = dlk_cg_conv2d(one, one, NULL); /* stride 1, padding 1 */
  dlk_cg_tensor *acc = dlk_cg_virtual_like(g, y), *z = dlk_cg_virtual_like(g, y);
  dlk_cg_conv_fwd(g, &c, x, w, acc);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_ADD, acc, b, z);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_RELU_FWD, z, NULL, y);
}

static void sdpa_fwd_graph(dlk_cg *g, const void *arg) {
  const int64_t *s = arg; /* B, H, T, D */
  const int64_t d[4] = {s[0], s[1], s[2], s[3]};
  const int64_t st[4] = {s[1] * s[2] * s[3], s[2] * s[3], s[3], 1};
  const int64_t sd[4] = {s[0], s[1], s[2], 1}, ss[4] = {s[1] * s[2], s[2], 1, 1};
  dlk_cg_sdpa_fwd_io io;
  memset(&io, 0, sizeof io);
  io.q = dlk_cg_tensor_new(g, 1, DLK_BF16, 4, d, st, 16);
  io.k = dlk_cg_tensor_new(g, 2, DLK_BF16, 4, d, st, 16);
  io.v = dlk_cg_tensor_new(g, 3, DLK_BF16, 4, d, st, 16);
  io.o = dlk_cg_tensor_new(g, 4, DLK_BF16, 4, d, st, 16);
  io.stats = dlk_cg_tensor_new(g, 5, DLK_F32, 4, sd, ss, 16);
  io.scale = dlk_cg_scalar(g, 6, DLK_F32, 4);
  dlk_cg_sdpa_fwd(g, &io);
}

static void check_built(dlk_cg *g, const char *what, int nodes) {
  char why[DLK_CG_WHY_LEN];
  const dlk_status s = dlk_cg_status(g, why, sizeof why);
  CHECK(s == DLK_OK && dlk_cg_node_count(g) == nodes, "%s: %s, %d nodes: %s", what,
        dlk_status_string(s), dlk_cg_node_count(g), why);
  dlk_cg_free(g);
}

static void test_nodes(void) {
  t_case = "nodes";
  for (int i = 0; i < 3; i++) {
    static const dlk_dtype dts[3] = {DLK_F32, DLK_F16, DLK_BF16};
    dlk_cg *g = dlk_cg_new(NULL, "conv2d_fwd");
    conv_bias_relu(g, &dts[i]);
    check_built(g, "conv + bias + relu", 3);
  }
  const int64_t one[2] = {1, 1};
  const dlk_cg_conv c = dlk_cg_conv2d(one, one, one);
  dlk_cg *g = dlk_cg_new(NULL, "conv2d_bwd_data");
  dlk_cg_conv_bwd_data(g, &c, dlk_cg_tensor_new(g, 2, DLK_F16, 4, W_D, W_S, 16),
                       dlk_cg_tensor_new(g, 4, DLK_F16, 4, Y_D, Y_S, 16),
                       dlk_cg_tensor_new(g, 1, DLK_F16, 4, X_D, XL_S, 16));
  check_built(g, "conv bwd data, channels-last dx", 1);
  g = dlk_cg_new(NULL, "conv2d_bwd_filter");
  dlk_cg_set_compute(g, CUDNN_DATA_DOUBLE);
  dlk_cg_conv_bwd_filter(g, &c, dlk_cg_tensor_new(g, 1, DLK_F64, 4, X_D, X_S, 16),
                         dlk_cg_tensor_new(g, 4, DLK_F64, 4, Y_D, Y_S, 16),
                         dlk_cg_tensor_new(g, 2, DLK_F64, 4, W_D, W_S, 16));
  check_built(g, "conv bwd filter f64", 1);

  /* Relu backward fused after the data gradient (conv2d_bwd with act). */
  g = dlk_cg_new(NULL, "relu_bwd");
  dlk_cg_tensor *z = dlk_cg_tensor_new(g, 1, DLK_F32, 4, Y_D, Y_S, 16);
  dlk_cg_tensor *dy = dlk_cg_tensor_new(g, 2, DLK_F32, 4, Y_D, Y_S, 16);
  dlk_cg_pointwise_bwd(g, CUDNN_POINTWISE_RELU_BWD, z, dy,
                       dlk_cg_tensor_new(g, 3, DLK_F32, 4, Y_D, Y_S, 16));
  check_built(g, "relu bwd", 1);

  /* The composed attention pieces: scores by matmul, a causal mask from indices, the row
     max. */
  g = dlk_cg_new(NULL, "composed");
  const int64_t qd[4] = {1, 2, 16, 8}, qs[4] = {256, 128, 8, 1};
  const int64_t kd[4] = {1, 2, 8, 16}, ks[4] = {256, 128, 1, 8}; /* k transposed */
  const int64_t sd[4] = {1, 2, 16, 16}, rd[4] = {1, 2, 16, 1};
  dlk_cg_tensor *s = dlk_cg_virtual(g, 4, sd), *row = dlk_cg_virtual(g, 4, sd);
  dlk_cg_tensor *col = dlk_cg_virtual(g, 4, sd), *m = dlk_cg_virtual(g, 4, sd);
  dlk_cg_tensor *masked = dlk_cg_virtual(g, 4, sd);
  dlk_cg_matmul(g, dlk_cg_tensor_new(g, 1, DLK_F16, 4, qd, qs, 16),
                dlk_cg_tensor_new(g, 2, DLK_F16, 4, kd, ks, 16), s);
  dlk_cg_gen_index(g, s, 2, row);
  dlk_cg_gen_index(g, s, 3, col);
  dlk_cg_set_compute(g, CUDNN_DATA_BOOLEAN);
  dlk_cg_tensor *keep = dlk_cg_virtual_as(g, CUDNN_DATA_BOOLEAN, 4, sd);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_CMP_GE, row, col, keep);
  dlk_cg_set_compute(g, CUDNN_DATA_FLOAT);
  dlk_cg_select(g, s, dlk_cg_constant(g, DLK_F32, 4, -INFINITY), keep, masked);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_IDENTITY, masked, NULL, m);
  dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_MAX, m, dlk_cg_tensor_new(g, 3, DLK_F32, 4, rd, rd, 16));
  check_built(g, "matmul, gen_index, cmp, select, reduction", 7);

  /* The composed SDPA backward's pieces: a transposed view by reshape (virtual, strided),
     and the grouped reduction of GQA's query heads onto their kv head. */
  g = dlk_cg_new(NULL, "reshape_grouped");
  const int64_t xd[4] = {1, 4, 8, 16}, xs[4] = {512, 128, 16, 1};
  const int64_t td[4] = {1, 4, 16, 8}, ts[4] = {512, 128, 1, 16}, hd[4] = {1, 2, 16, 8};
  dlk_cg_tensor *xt = dlk_cg_virtual_strided(g, CUDNN_DATA_HALF, 4, td, ts);
  dlk_cg_tensor *xf = dlk_cg_virtual(g, 4, td);
  dlk_cg_reshape(g, dlk_cg_tensor_new(g, 1, DLK_F16, 4, xd, xs, 16), xt);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_IDENTITY, xt, NULL, xf);
  dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_ADD, xf,
                   dlk_cg_tensor_new(g, 2, DLK_F32, 4, hd, (const int64_t[4]){256, 128, 8, 1}, 16));
  check_built(g, "reshape to a transposed view, grouped head reduction", 3);

  /* The single SDPA nodes, or the version that lacks them. */
  char why[DLK_CG_WHY_LEN];
  const int64_t shape[4] = {1, 2, 64, 64};
  g = dlk_cg_new(NULL, "sdpa_fwd");
  sdpa_fwd_graph(g, shape);
  if (dlk_cg_sdpa_available(false, why, sizeof why)) {
    check_built(g, "sdpa fwd node", 1);
  } else {
    CHECK(dlk_cg_status(g, NULL, 0) == DLK_ERR_NOT_SUPPORTED && strstr(why, "9.13"),
          "sdpa fwd unavailable: %s", why);
    dlk_cg_free(g);
  }
  g = dlk_cg_new(NULL, "sdpa_bwd");
  const int64_t st[4] = {8192, 4096, 64, 1}, ss[4] = {128, 64, 1, 1}, std_[4] = {1, 2, 64, 1};
  dlk_cg_sdpa_bwd_io io;
  memset(&io, 0, sizeof io);
  dlk_cg_tensor **bt[8] = {&io.q, &io.k, &io.v, &io.o, &io.d_o, &io.dq, &io.dk, &io.dv};
  for (int i = 0; i < 8; i++) *bt[i] = dlk_cg_tensor_new(g, 1 + i, DLK_F16, 4, shape, st, 16);
  io.stats = dlk_cg_tensor_new(g, 9, DLK_F32, 4, std_, ss, 16);
  io.scale = dlk_cg_scalar(g, 10, DLK_F32, 4);
  dlk_cg_sdpa_bwd(g, &io);
  if (dlk_cg_sdpa_available(true, why, sizeof why)) {
    check_built(g, "sdpa bwd node", 1);
  } else {
    CHECK(dlk_cg_status(g, NULL, 0) == DLK_ERR_NOT_SUPPORTED, "sdpa bwd unavailable: %s", why);
    dlk_cg_free(g);
  }
}

/* ---- every builder error, with its message ---------------------------------------- */

typedef struct bad_case {
  const char *what;
  void (*build)(dlk_cg *g);
  dlk_status want;
  const char *says; /* a part of the message */
} bad_case;

static const int64_t D2[2] = {4, 5}, S2[2] = {5, 1};
static dlk_cg_tensor *mat(dlk_cg *g, int64_t uid) {
  return dlk_cg_tensor_new(g, uid, DLK_F32, 2, D2, S2, 16);
}
static void bad_dup_uid(dlk_cg *g) {
  mat(g, 1);
  mat(g, 1);
}
static void bad_no_dims(dlk_cg *g) {
  dlk_cg_tensor_new(g, 1, DLK_F32, 0, D2, S2, 16);
}
static void bad_nine_dims(dlk_cg *g) {
  const int64_t d[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  dlk_cg_tensor_new(g, 1, DLK_F32, 9, d, d, 16);
}
static void bad_empty_dim(dlk_cg *g) {
  const int64_t d[2] = {4, 0};
  dlk_cg_tensor_new(g, 1, DLK_F32, 2, d, S2, 16);
}
static void bad_negative_stride(dlk_cg *g) {
  const int64_t s[2] = {-5, 1};
  dlk_cg_tensor_new(g, 1, DLK_F32, 2, D2, s, 16);
}
static void bad_alignment(dlk_cg *g) {
  dlk_cg_tensor_new(g, 1, DLK_F32, 2, D2, S2, 3);
}
static void bad_helper_uid(dlk_cg *g) {
  mat(g, DLK_CG_VIRTUAL_UID + 1);
}
static void bad_dtype(dlk_cg *g) {
  dlk_cg_tensor_new(g, 1, DLK_DTYPE_COUNT, 2, D2, S2, 16);
}
static void bad_null_operand(dlk_cg *g) {
  dlk_cg_pointwise(g, CUDNN_POINTWISE_EXP, NULL, NULL, mat(g, 1));
}
static void bad_binary_alone(dlk_cg *g) {
  dlk_cg_pointwise(g, CUDNN_POINTWISE_ADD, mat(g, 1), NULL, mat(g, 2));
}
static void bad_unary_pair(dlk_cg *g) {
  dlk_cg_pointwise(g, CUDNN_POINTWISE_EXP, mat(g, 1), mat(g, 2), mat(g, 3));
}
static void bad_reduction_shape(dlk_cg *g) {
  const int64_t d[2] = {3, 1};
  dlk_cg_reduction(g, CUDNN_REDUCE_TENSOR_ADD, mat(g, 1),
                   dlk_cg_tensor_new(g, 2, DLK_F32, 2, d, d, 16));
}
static void bad_conv_rank(dlk_cg *g) {
  const dlk_cg_conv c = dlk_cg_conv2d(NULL, NULL, NULL);
  dlk_cg_conv_fwd(g, &c, mat(g, 1), dlk_cg_tensor_new(g, 2, DLK_F32, 4, W_D, W_S, 16),
                  dlk_cg_tensor_new(g, 3, DLK_F32, 4, Y_D, Y_S, 16));
}
static void bad_conv_channels(dlk_cg *g) { /* x has 3 channels, w expects 5 */
  const int64_t wd[4] = {4, 5, 3, 3};
  const dlk_cg_conv c = dlk_cg_conv2d(NULL, (const int64_t[2]){1, 1}, NULL);
  dlk_cg_conv_fwd(g, &c, dlk_cg_tensor_new(g, 1, DLK_F32, 4, X_D, X_S, 16),
                  dlk_cg_tensor_new(g, 2, DLK_F32, 4, wd, W_S, 16),
                  dlk_cg_tensor_new(g, 3, DLK_F32, 4, Y_D, Y_S, 16));
}
static void bad_axis(dlk_cg *g) {
  dlk_cg_gen_index(g, mat(g, 1), 2, dlk_cg_virtual(g, 2, D2));
}
static void bad_scalar_dtype(dlk_cg *g) {
  dlk_cg_scalar(g, 1, DLK_F16, 4);
}
static void bad_then_more(dlk_cg *g) { /* sticky: the first failure stays, nothing is added */
  bad_dup_uid(g);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_EXP, mat(g, 5), NULL, mat(g, 6));
  bad_alignment(g);
}

static void test_errors(void) {
  static const bad_case cases[] = {
      {"duplicate uid", bad_dup_uid, DLK_ERR_INVALID_ARGUMENT, "tensor uid 1: uid used twice"},
      {"no dims", bad_no_dims, DLK_ERR_INVALID_ARGUMENT, "0 dims"},
      {"nine dims", bad_nine_dims, DLK_ERR_INVALID_ARGUMENT, "9 dims"},
      {"empty dim", bad_empty_dim, DLK_ERR_INVALID_ARGUMENT, "dim 1 is 0"},
      {"negative stride", bad_negative_stride, DLK_ERR_NOT_SUPPORTED, "stride -5"},
      {"alignment 3", bad_alignment, DLK_ERR_INVALID_ARGUMENT, "alignment 3"},
      {"helper's uid", bad_helper_uid, DLK_ERR_INVALID_ARGUMENT, "helper's"},
      {"bad dtype", bad_dtype, DLK_ERR_INVALID_ARGUMENT, "no cuDNN type"},
      {"NULL operand", bad_null_operand, DLK_ERR_INVALID_ARGUMENT, "EXP: x is NULL"},
      {"binary mode alone", bad_binary_alone, DLK_ERR_INVALID_ARGUMENT, "without its b"},
      {"unary mode with b", bad_unary_pair, DLK_ERR_INVALID_ARGUMENT, "unary mode"},
      {"reduction shape", bad_reduction_shape, DLK_ERR_INVALID_ARGUMENT, "divide x's"},
      {"conv rank", bad_conv_rank, DLK_ERR_INVALID_ARGUMENT, "has 2 dims, expected 4"},
      {"conv channels (cuDNN's refusal)", bad_conv_channels, DLK_ERR_NOT_SUPPORTED,
       "conv fwd: finalize: CUDNN_STATUS_BAD_PARAM"},
      {"gen_index axis", bad_axis, DLK_ERR_INVALID_ARGUMENT, "axis 2 of a 2-d"},
      {"scalar dtype", bad_scalar_dtype, DLK_ERR_INVALID_ARGUMENT, "by-value"},
      {"sticky", bad_then_more, DLK_ERR_INVALID_ARGUMENT, "tensor uid 1: uid used twice"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    t_case = cases[i].what;
    dlk_cg *g = dlk_cg_new(NULL, "bad");
    cases[i].build(g);
    char why[DLK_CG_WHY_LEN];
    const dlk_status s = dlk_cg_status(g, why, sizeof why);
    CHECK(s == cases[i].want, "status %s, expected %s (%s)", dlk_status_string(s),
          dlk_status_string(cases[i].want), why);
    CHECK(strncmp(why, "cudnn: bad: ", 12) == 0 && strstr(why, cases[i].says),
          "message '%s' lacks '%s'", why, cases[i].says);
    CHECK(dlk_cg_node_count(g) == 0, "%d nodes after a failure", dlk_cg_node_count(g));
    dlk_cg_free(g);
  }
}

/* ---- plans on a context without a GPU: refusals cached, misuse not -------------------- */

static int builds; /* build functions run so far */
static void refused_graph(dlk_cg *g, const void *arg) {
  (void)arg;
  builds++;
  bad_negative_stride(g);
}
static void misused_graph(dlk_cg *g, const void *arg) {
  (void)arg;
  builds++;
  bad_null_operand(g);
}
static void fine_graph(dlk_cg *g, const void *arg) {
  (void)arg;
  builds++;
  dlk_cg_pointwise(g, CUDNN_POINTWISE_EXP, mat(g, 1), NULL, mat(g, 2));
}

static size_t graph_entries(const dlk_context *ctx) {
  return dlk_plan_cache_count(ctx, DLK_CG_CACHE_PREFIX);
}

static void test_plan_find_cpu(void) {
  t_case = "plan_find on a CPU context";
  dlk_context *ctx = t_cpu_context();
  dlk_cg_key k;
  dlk_cg_key_init(&k);
  dlk_cg_key_add(&k, "shape 1");
  const dlk_cg_plan *p = NULL;
  char why[DLK_CG_WHY_LEN];
  builds = 0;
  for (int rep = 0; rep < 2; rep++) {
    CHECK(dlk_cg_plan_find(ctx, "refused", &k, refused_graph, NULL, &p, why, sizeof why) ==
                  DLK_ERR_NOT_SUPPORTED &&
              !p && strstr(why, "cudnn: refused: tensor uid 1: dim 0 has stride -5"),
          "refusal %d: %s", rep, why);
  }
  CHECK(builds == 1 && graph_entries(ctx) == 1, "a refusal is built %d times, %zu cached", builds,
        graph_entries(ctx));
  void *hit = NULL; /* the key: prefix, name, shape key, options */
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, DLK_CG_CACHE_PREFIX "refused|shape 1|det=0|tf32=0", &hit));
  CHECK(hit != NULL, "the refusal is not under its key");
  CHECK(!dlk_cg_supports(ctx, "refused", &k, refused_graph, NULL, why, sizeof why) &&
            strstr(why, "stride -5") && builds == 1,
        "supports: %s", why);
  /* Another option is another plan. */
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 1));
  dlk_cg_plan_find(ctx, "refused", &k, refused_graph, NULL, &p, why, sizeof why);
  CHECK(builds == 2 && graph_entries(ctx) == 2, "deterministic shares the plan");
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 0));

  builds = 0;
  for (int rep = 0; rep < 2; rep++)
    CHECK(dlk_cg_plan_find(ctx, "misused", &k, misused_graph, NULL, &p, why, sizeof why) ==
              DLK_ERR_INVALID_ARGUMENT,
          "misuse: %s", why);
  CHECK(builds == 2 && graph_entries(ctx) == 2, "misuse cached");
  /* A graph that builds needs a handle: a CPU context has none (not cached either). */
  CHECK(dlk_cg_plan_find(ctx, "fine", &k, fine_graph, NULL, &p, why, sizeof why) ==
                DLK_ERR_DEVICE_MISMATCH &&
            strstr(why, "needs a CUDA context"),
        "fine on CPU: %s", why);
  CHECK(graph_entries(ctx) == 2, "a hard failure was cached");
  CHECK_STATUS(ctx, DLK_ERR_DEVICE_MISMATCH,
               dlk_cg_plan_get(ctx, "fine", &k, fine_graph, NULL, &p));
  CHECK(strstr(dlk_context_last_error(ctx), "needs a CUDA context"), "plan_get message: %s",
        dlk_context_last_error(ctx));
  /* A key that overflowed names no case. */
  for (int i = 0; i < DLK_CG_KEY_LEN; i++) dlk_cg_key_add(&k, "0123456789");
  CHECK(
      dlk_cg_plan_find(ctx, "fine", &k, fine_graph, NULL, &p, why, sizeof why) == DLK_ERR_INTERNAL,
      "overflowed key: %s", why);

  /* The bound: past DLK_CG_PLAN_CAP keys the least recently used goes, and is built again
     when it is asked for. */
  t_case = "plan_find: the bound";
  builds = 0;
  for (int i = 0; i < DLK_CG_PLAN_CAP + 10; i++) {
    dlk_cg_key_init(&k);
    dlk_cg_key_add(&k, "bound %d", i);
    dlk_cg_plan_find(ctx, "refused", &k, refused_graph, NULL, &p, why, sizeof why);
  }
  CHECK(builds == DLK_CG_PLAN_CAP + 10 && graph_entries(ctx) == DLK_CG_PLAN_CAP,
        "%d builds, %zu entries (at most %d)", builds, graph_entries(ctx), DLK_CG_PLAN_CAP);
  dlk_cg_key_init(&k);
  dlk_cg_key_add(&k, "bound %d", DLK_CG_PLAN_CAP + 9); /* the newest: still cached */
  dlk_cg_plan_find(ctx, "refused", &k, refused_graph, NULL, &p, why, sizeof why);
  dlk_cg_key_init(&k);
  dlk_cg_key_add(&k, "bound 0"); /* evicted: built again */
  dlk_cg_plan_find(ctx, "refused", &k, refused_graph, NULL, &p, why, sizeof why);
  CHECK(builds == DLK_CG_PLAN_CAP + 11 && graph_entries(ctx) == DLK_CG_PLAN_CAP,
        "%d builds, %zu entries", builds, graph_entries(ctx));
  dlk_context_destroy(ctx);
}

/* ---- GPU ------------------------------------------------------------------------- */

/* A device tensor filled from doubles (rounded to dt). */
static dlk_tensor upload(dlk_context *ctx, dlk_dtype dt, int ndim, const int64_t *shape,
                         const double *v) {
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  CHECK_OK(ctx, dlk_tensor_alloc(ctx, &t, dt, ndim, shape));
  const int64_t n = dlk_tensor_numel(&t);
  void *h = calloc((size_t)(n > 0 ? n : 1), dlk_dtype_size(dt));
  for (int64_t i = 0; i < n; i++) dlk_store(h, dt, i, v ? v[i] : 0.0);
  CHECK_OK(ctx, dlk_tensor_write(ctx, &t, h, (size_t)n * dlk_dtype_size(dt)));
  free(h);
  return t;
}

static double *download(dlk_context *ctx, const dlk_tensor *t) {
  const int64_t n = dlk_tensor_numel(t);
  void *h = calloc((size_t)(n > 0 ? n : 1), dlk_dtype_size(t->dtype));
  double *v = calloc((size_t)(n > 0 ? n : 1), sizeof(double));
  CHECK_OK(ctx, dlk_tensor_read(ctx, t, h, (size_t)n * dlk_dtype_size(t->dtype)));
  for (int64_t i = 0; i < n; i++) v[i] = dlk_load(h, t->dtype, i);
  free(h);
  return v;
}

static double *randoms(int64_t n, double lo, double hi, dlk_dtype dt) {
  double *v = malloc((size_t)n * sizeof(double));
  for (int64_t i = 0; i < n; i++) {
    char h[8];
    dlk_store(h, dt, 0, t_uniform(lo, hi));
    v[i] = dlk_load(h, dt, 0); /* exactly representable in dt */
  }
  return v;
}

/* y [R, C] = x [R, C] + b [R, 1] */
typedef struct add_arg {
  const dlk_tensor *x, *b, *y;
} add_arg;
static void add_graph(dlk_cg *g, const void *arg) {
  const add_arg *a = arg;
  builds++;
  const int64_t r = a->x->shape[0], c = a->x->shape[1];
  const int64_t d[4] = {1, 1, r, c}, s[4] = {r * c, r * c, c, 1};
  const int64_t bd[4] = {1, 1, r, 1}, bs[4] = {r, r, 1, 1};
  dlk_cg_pointwise(g, CUDNN_POINTWISE_ADD, dlk_cg_tensor_new(g, 1, a->x->dtype, 4, d, s, 16),
                   dlk_cg_tensor_new(g, 2, a->b->dtype, 4, bd, bs, 16),
                   dlk_cg_tensor_new(g, 3, a->y->dtype, 4, d, s, 16));
}

static void gpu_add(dlk_context *ctx) {
  t_case = "gpu: broadcast add";
  const int64_t R = 37, C = 129, xs[2] = {R, C}, bs[2] = {R, 1};
  double *x = randoms(R * C, -2, 2, DLK_F32), *b = randoms(R, -2, 2, DLK_F32);
  dlk_tensor tx = upload(ctx, DLK_F32, 2, xs, x), tb = upload(ctx, DLK_F32, 2, bs, b);
  dlk_tensor ty = upload(ctx, DLK_F32, 2, xs, NULL);
  const add_arg a = {&tx, &tb, &ty};
  dlk_cg_key k;
  dlk_cg_key_init(&k);
  dlk_cg_key_tensor(&k, "x", &tx);
  const dlk_cg_plan *p = NULL;
  builds = 0;
  CHECK_OK(ctx, dlk_cg_plan_get(ctx, "test_add", &k, add_graph, &a, &p));
  if (!p) return;
  printf("broadcast add: %s, workspace %zu\n", dlk_cg_plan_engine(p), dlk_cg_plan_workspace(p));
  const dlk_cg_plan *again = NULL;
  CHECK_OK(ctx, dlk_cg_plan_get(ctx, "test_add", &k, add_graph, &a, &again));
  CHECK(again == p && builds == 1, "a repeated call built %d times", builds);
  void *ws = NULL;
  const size_t wsb = dlk_cg_plan_workspace(p);
  if (wsb) CHECK_OK(ctx, dlk_workspace_reserve(ctx, wsb, &ws));
  const dlk_cg_bind bind[3] = {{1, tx.data}, {2, tb.data}, {3, ty.data}};
  CHECK_OK(ctx, dlk_cg_execute(ctx, p, bind, 3, ws, wsb));
  double *y = download(ctx, &ty), *ref = malloc((size_t)(R * C) * sizeof(double));
  for (int64_t i = 0; i < R; i++)
    for (int64_t j = 0; j < C; j++) ref[i * C + j] = x[i * C + j] + b[i];
  t_close("x + b", y, ref, R * C, 1e-6, 1e-6);

  t_case = "gpu: execute checks";
  CHECK_STATUS(ctx, DLK_ERR_INTERNAL, dlk_cg_execute(ctx, p, bind, 2, ws, wsb));
  CHECK(strstr(dlk_context_last_error(ctx), "uid 3 is not bound"), "%s",
        dlk_context_last_error(ctx));
  const dlk_cg_bind twice[4] = {{1, tx.data}, {2, tb.data}, {3, ty.data}, {3, ty.data}};
  CHECK_STATUS(ctx, DLK_ERR_INTERNAL, dlk_cg_execute(ctx, p, twice, 4, ws, wsb));
  const dlk_cg_bind null[3] = {{1, tx.data}, {2, NULL}, {3, ty.data}};
  CHECK_STATUS(ctx, DLK_ERR_INTERNAL, dlk_cg_execute(ctx, p, null, 3, ws, wsb));
  const dlk_cg_bind extra[4] = {{1, tx.data}, {2, tb.data}, {3, ty.data}, {99, tx.data}};
  CHECK_OK(ctx, dlk_cg_execute(ctx, p, extra, 4, ws, wsb));
  if (wsb) CHECK_STATUS(ctx, DLK_ERR_INTERNAL, dlk_cg_execute(ctx, p, bind, 3, ws, wsb - 1));
  free(x), free(b), free(y), free(ref);
  dlk_tensor_free(ctx, &tx), dlk_tensor_free(ctx, &tb), dlk_tensor_free(ctx, &ty);
}

/* conv2d forward + bias + ReLU (f32, TF32 off) against a direct loop. */
typedef struct conv_arg {
  const dlk_tensor *x, *w, *b, *y;
} conv_arg;
static void conv_graph(dlk_cg *g, const void *arg) {
  const conv_arg *a = arg;
  const int64_t bd[4] = {1, a->b->shape[0], 1, 1}, bs[4] = {a->b->shape[0], 1, 1, 1};
  dlk_cg_tensor *x = dlk_cg_tensor_of(g, 1, a->x), *w = dlk_cg_tensor_of(g, 2, a->w);
  dlk_cg_tensor *b = dlk_cg_tensor_new(g, 3, a->b->dtype, 4, bd, bs, 16);
  dlk_cg_tensor *y = dlk_cg_tensor_of(g, 4, a->y);
  const int64_t one[2] = {1, 1};
  const dlk_cg_conv c = dlk_cg_conv2d(one, one, one);
  dlk_cg_tensor *acc = dlk_cg_virtual_like(g, y), *z = dlk_cg_virtual_like(g, y);
  dlk_cg_conv_fwd(g, &c, x, w, acc);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_ADD, acc, b, z);
  dlk_cg_pointwise(g, CUDNN_POINTWISE_RELU_FWD, z, NULL, y);
}

static void gpu_conv(dlk_context *ctx) {
  t_case = "gpu: conv2d + bias + relu";
  const int64_t N = 2, C = 3, H = 8, W = 8, K = 4;
  const int64_t xs[4] = {N, C, H, W}, ws_[4] = {K, C, 3, 3}, bs[1] = {K}, ys[4] = {N, K, H, W};
  double *x = randoms(N * C * H * W, -1, 1, DLK_F32), *w = randoms(K * C * 9, -1, 1, DLK_F32);
  double *b = randoms(K, -1, 1, DLK_F32);
  dlk_tensor tx = upload(ctx, DLK_F32, 4, xs, x), tw = upload(ctx, DLK_F32, 4, ws_, w);
  dlk_tensor tb = upload(ctx, DLK_F32, 1, bs, b), ty = upload(ctx, DLK_F32, 4, ys, NULL);
  const conv_arg a = {&tx, &tw, &tb, &ty};
  dlk_cg_key k;
  dlk_cg_key_init(&k);
  dlk_cg_key_tensor(&k, "x", &tx);
  dlk_cg_key_tensor(&k, "y", &ty);
  const dlk_cg_plan *p = NULL;
  CHECK_OK(ctx, dlk_cg_plan_get(ctx, "test_conv", &k, conv_graph, &a, &p));
  if (p) {
    printf("conv + bias + relu: %s, workspace %zu\n", dlk_cg_plan_engine(p),
           dlk_cg_plan_workspace(p));
    void *ws = NULL;
    const size_t wsb = dlk_cg_plan_workspace(p);
    if (wsb) CHECK_OK(ctx, dlk_workspace_reserve(ctx, wsb, &ws));
    const dlk_cg_bind bind[4] = {{1, tx.data}, {2, tw.data}, {3, tb.data}, {4, ty.data}};
    CHECK_OK(ctx, dlk_cg_execute(ctx, p, bind, 4, ws, wsb));
    double *y = download(ctx, &ty), *ref = calloc((size_t)(N * K * H * W), sizeof(double));
    for (int64_t n = 0; n < N; n++)
      for (int64_t o = 0; o < K; o++)
        for (int64_t i = 0; i < H; i++)
          for (int64_t j = 0; j < W; j++) {
            double s = b[o];
            for (int64_t c = 0; c < C; c++)
              for (int64_t r = 0; r < 3; r++)
                for (int64_t q = 0; q < 3; q++) {
                  const int64_t hi = i + r - 1, wj = j + q - 1;
                  if (hi >= 0 && hi < H && wj >= 0 && wj < W)
                    s += x[((n * C + c) * H + hi) * W + wj] * w[((o * C + c) * 3 + r) * 3 + q];
                }
            ref[((n * K + o) * H + i) * W + j] = s > 0 ? s : 0;
          }
    t_close("conv + bias + relu", y, ref, N * K * H * W, 1e-4, 1e-4);
    free(y), free(ref);
  }
  free(x), free(w), free(b);
  dlk_tensor_free(ctx, &tx), dlk_tensor_free(ctx, &tw), dlk_tensor_free(ctx, &tb);
  dlk_tensor_free(ctx, &ty);
}

/* The softmax rows 10 (forced) against the formulas, forward and backward. */
static void softmax_ref(const double *x, double *y, int64_t R, int64_t C, int log_) {
  for (int64_t i = 0; i < R; i++) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < C; j++) m = fmax(m, x[i * C + j]);
    for (int64_t j = 0; j < C; j++) s += exp(x[i * C + j] - m);
    for (int64_t j = 0; j < C; j++)
      y[i * C + j] = log_ ? x[i * C + j] - m - log(s) : exp(x[i * C + j] - m) / s;
  }
}

static void gpu_softmax(dlk_context *ctx) {
  static const int64_t shapes[][2] = {{1, 1}, {7, 33}, {64, 1000}, {3, 4097}};
  static const dlk_dtype dts[] = {DLK_F32, DLK_F16, DLK_BF16};
  CHECK_OK(ctx, dlk_force_variant(ctx, "softmax_fwd", 10));
  CHECK_OK(ctx, dlk_force_variant(ctx, "softmax_bwd", 10));
  char name[96];
  for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
    for (size_t di = 0; di < sizeof dts / sizeof dts[0]; di++)
      for (int log_ = 0; log_ < 2; log_++) {
        const int64_t R = shapes[si][0], C = shapes[si][1], n = R * C;
        const dlk_dtype dt = dts[di];
        snprintf(name, sizeof name, "gpu: softmax%s %lldx%lld %s", log_ ? " (log)" : "",
                 (long long)R, (long long)C, dlk_dtype_name(dt));
        t_case = name;
        double atol, rtol;
        t_tolerance(dt, 0, &atol, &rtol);
        double *x = randoms(n, -4, 4, dt), *ref = malloc((size_t)n * sizeof(double));
        softmax_ref(x, ref, R, C, log_);
        dlk_tensor tx = upload(ctx, dt, 2, shapes[si], x),
                   ty = upload(ctx, dt, 2, shapes[si], NULL);
        dlk_softmax_params sp = {log_};
        CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &tx, &ty));
        double *y = download(ctx, &ty);
        t_close("forward", y, ref, n, atol, rtol);
        /* backward from the rounded forward output */
        double *yr = download(ctx, &ty), *dy = randoms(n, -1, 1, dt);
        double *dref = malloc((size_t)n * sizeof(double));
        for (int64_t i = 0; i < R; i++) {
          double dot = 0;
          for (int64_t j = 0; j < C; j++)
            dot += log_ ? dy[i * C + j] : dy[i * C + j] * yr[i * C + j];
          for (int64_t j = 0; j < C; j++) {
            const int64_t q = i * C + j;
            dref[q] = log_ ? dy[q] - exp(yr[q]) * dot : yr[q] * (dy[q] - dot);
          }
        }
        dlk_tensor tdy = upload(ctx, dt, 2, shapes[si], dy),
                   tdx = upload(ctx, dt, 2, shapes[si], NULL);
        CHECK_OK(ctx, dlk_softmax_backward(ctx, &sp, &ty, &tdy, &tdx));
        double *dx = download(ctx, &tdx);
        t_close("backward", dx, dref, n, atol, rtol);
        free(x), free(ref), free(y), free(yr), free(dy), free(dref), free(dx);
        dlk_tensor_free(ctx, &tx), dlk_tensor_free(ctx, &ty);
        dlk_tensor_free(ctx, &tdy), dlk_tensor_free(ctx, &tdx);
      }

  /* Deterministic mode: the same bits twice on rows long enough to split. */
  t_case = "gpu: softmax deterministic";
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 1));
  const int64_t big[2] = {256, 8192}, n = big[0] * big[1];
  double *x = randoms(n, -4, 4, DLK_F32);
  dlk_tensor tx = upload(ctx, DLK_F32, 2, big, x), ty = upload(ctx, DLK_F32, 2, big, NULL);
  dlk_softmax_params sp = {0};
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &tx, &ty));
  double *y1 = download(ctx, &ty);
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &tx, &ty));
  double *y2 = download(ctx, &ty);
  CHECK(memcmp(y1, y2, (size_t)n * sizeof(double)) == 0, "two runs differ");
  CHECK_OK(ctx, dlk_context_set_deterministic(ctx, 0));
  free(x), free(y1), free(y2);
  dlk_tensor_free(ctx, &tx), dlk_tensor_free(ctx, &ty);

  /* explain names the variant as supported (it built its plans). */
  t_case = "gpu: softmax explain";
  const int64_t sh[2] = {5, 77};
  dlk_tensor ex = upload(ctx, DLK_F16, 2, sh, NULL), ey = upload(ctx, DLK_F16, 2, sh, NULL);
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &ex, &ey));
  const char *text = "";
  CHECK_OK(ctx, dlk_explain_report(ctx, &text));
  char line[64];
  snprintf(line, sizeof line, "10 %-14s supported", "cudnn"); /* dispatch.c's format */
  CHECK(strstr(text, line), "explain:\n%s", text);
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  dlk_tensor_free(ctx, &ex), dlk_tensor_free(ctx, &ey);
  CHECK_OK(ctx, dlk_force_variant(ctx, "softmax_fwd", -1));
  CHECK_OK(ctx, dlk_force_variant(ctx, "softmax_bwd", -1));
}

/* The single SDPA forward node (bf16, no mask) against a naive loop. */
static void gpu_sdpa(dlk_context *ctx) {
  t_case = "gpu: sdpa fwd node";
  char why[DLK_CG_WHY_LEN];
  if (!dlk_cg_sdpa_available(false, why, sizeof why)) {
    printf("sdpa fwd node: %s\n", why);
    return;
  }
  const int64_t B = 1, H = 2, T = 64, D = 64, shape[4] = {B, H, T, D}, sh_st[4] = {B, H, T, 1};
  const int64_t n = B * H * T * D;
  double *q = randoms(n, -1, 1, DLK_BF16), *k = randoms(n, -1, 1, DLK_BF16);
  double *v = randoms(n, -1, 1, DLK_BF16);
  dlk_tensor tq = upload(ctx, DLK_BF16, 4, shape, q), tk = upload(ctx, DLK_BF16, 4, shape, k);
  dlk_tensor tv = upload(ctx, DLK_BF16, 4, shape, v), to = upload(ctx, DLK_BF16, 4, shape, NULL);
  dlk_tensor ts = upload(ctx, DLK_F32, 4, sh_st, NULL);
  dlk_cg_key key;
  dlk_cg_key_init(&key);
  dlk_cg_key_add(&key, "b%lld h%lld t%lld d%lld", (long long)B, (long long)H, (long long)T,
                 (long long)D);
  const dlk_cg_plan *p = NULL;
  const dlk_status s =
      dlk_cg_plan_find(ctx, "test_sdpa_fwd", &key, sdpa_fwd_graph, shape, &p, why, sizeof why);
  CHECK(s == DLK_OK, "the plan: %s", why); /* the reason, when cuDNN refuses, is the finding */
  if (p) {
    printf("sdpa fwd node: %s, workspace %zu\n", dlk_cg_plan_engine(p), dlk_cg_plan_workspace(p));
    void *ws = NULL;
    const size_t wsb = dlk_cg_plan_workspace(p);
    if (wsb) CHECK_OK(ctx, dlk_workspace_reserve(ctx, wsb, &ws));
    const float scale = 0.125f;
    const dlk_cg_bind bind[6] = {{1, tq.data}, {2, tk.data}, {3, tv.data},
                                 {4, to.data}, {5, ts.data}, {6, &scale}};
    CHECK_OK(ctx, dlk_cg_execute(ctx, p, bind, 6, ws, wsb));
    double *o = download(ctx, &to), *st = download(ctx, &ts);
    double *oref = calloc((size_t)n, sizeof(double)),
           *sref = calloc((size_t)(B * H * T), sizeof(double));
    double *sc = malloc((size_t)T * sizeof(double));
    for (int64_t bh = 0; bh < B * H; bh++)
      for (int64_t i = 0; i < T; i++) {
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j < T; j++) {
          double d = 0;
          for (int64_t e = 0; e < D; e++) d += q[(bh * T + i) * D + e] * k[(bh * T + j) * D + e];
          sc[j] = d * scale;
          m = fmax(m, sc[j]);
        }
        for (int64_t j = 0; j < T; j++) sum += exp(sc[j] - m);
        sref[bh * T + i] = m + log(sum);
        for (int64_t e = 0; e < D; e++) {
          double acc = 0;
          for (int64_t j = 0; j < T; j++) acc += exp(sc[j] - m) / sum * v[(bh * T + j) * D + e];
          oref[(bh * T + i) * D + e] = acc;
        }
      }
    double atol, rtol;
    t_tolerance(DLK_BF16, 0, &atol, &rtol);
    t_close("o", o, oref, n, atol, rtol);
    t_close("stats (log-sum-exp)", st, sref, B * H * T, 1e-3, 1e-3);
    free(o), free(st), free(oref), free(sref), free(sc);
  }
  free(q), free(k), free(v);
  dlk_tensor_free(ctx, &tq), dlk_tensor_free(ctx, &tk), dlk_tensor_free(ctx, &tv);
  dlk_tensor_free(ctx, &to), dlk_tensor_free(ctx, &ts);
}

#endif /* DLK_HAVE_CUDNN */

int main(int argc, char **argv) {
  if (t_want_gpu(argc, argv)) {
#if DLK_HAVE_CUDNN
    dlk_context *ctx = t_gpu_context_or_skip("test_graph");
    gpu_add(ctx);
    gpu_conv(ctx);
    gpu_softmax(ctx);
    gpu_sdpa(ctx);
    dlk_context_destroy(ctx);
    return t_summary("test_graph --gpu");
#elif defined(DLK_CUDA_EMU)
    printf("test_graph --gpu: needs cuDNN, which is not in the emulated build: skipped\n");
    return 77;
#else
    printf("test_graph --gpu: built without cuDNN: skipped\n");
    return 77;
#endif
  }
  test_plan_cache_bound();
#if DLK_HAVE_CUDNN
  test_keys_and_maps();
  test_tensors();
  test_nodes();
  test_errors();
  test_plan_find_cpu();
#endif
  return t_summary("test_graph");
}
