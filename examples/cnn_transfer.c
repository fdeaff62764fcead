/* Transfer learning in miniature, on the default device (first GPU, else the CPU): a conv
   backbone with frozen weights (batch norm in inference mode), global average pooling and
   a new linear head trained with cross-entropy on a synthetic two-class task, horizontal
   vs vertical stripes. Prints the held-out accuracy rising well above chance.

     x [N,1,16,16] -> conv1 3x3 (edge filters + fixed random ones) -> batch norm (running
     statistics, inference) -> relu -> maxpool 2x2 -> conv2 3x3 relu [16] -> adaptive avg
     pool 1x1 -> features [N,16] -> head: linear 16 -> 2 -> cross-entropy
   The backbone's batch-norm statistics are measured once on a calibration batch (training
   mode, momentum 1: running = batch statistics), as a pretrained model ships them. Only
   the head is trained (Adam); no gradient goes into the backbone. */
#include <dlk.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define TRY(call)                                                                   \
  do {                                                                              \
    dlk_status s_ = (call);                                                         \
    if (s_ != DLK_OK) {                                                             \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, dlk_status_string(s_), \
              dlk_context_last_error(ctx));                                         \
      return 1;                                                                     \
    }                                                                               \
  } while (0)

enum { S = 16, C1 = 8, C2 = 16, K = 2, BATCH = 32, EVAL = 256, STEPS = 80 };

static dlk_context *ctx;

static uint64_t rng = 0x9E3779B97F4A7C15ULL;
static double uniform(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

static dlk_status make(dlk_tensor *t, dlk_dtype dt, int ndim, const int64_t *shape, const void *host) {
  dlk_status s = dlk_tensor_alloc(ctx, t, dt, ndim, shape);
  if (s != DLK_OK || !host) return s;
  return dlk_tensor_write(ctx, t, host, (size_t)dlk_tensor_numel(t) * dlk_dtype_size(dt));
}

/* n stripe images with labels: class 0 horizontal (intensity varies down the rows),
   class 1 vertical; random period, phase, contrast and pixel noise. */
static void stripes(int n, float *img, int32_t *label) {
  for (int i = 0; i < n; i++) {
    const int cls = uniform() < 0.5;
    const double period = 3 + 4 * uniform(), phase = 6.2831853 * uniform(), amp = 0.3 + 0.5 * uniform();
    for (int r = 0; r < S; r++)
      for (int c = 0; c < S; c++) {
        const double t = cls ? c : r;
        img[(i * S + r) * S + c] = (float)(amp * sin(6.2831853 * t / period + phase) + 0.3 * (uniform() - 0.5));
      }
    label[i] = cls;
  }
}

/* The frozen backbone. */
typedef struct {
  dlk_tensor w1, w2, running_mean, running_var;
} backbone;

static const dlk_conv2d_params pad1 = {{1, 1}, {1, 1}, {1, 1}, 1, DLK_ACT_NONE};
static const dlk_conv2d_params pad1_relu = {{1, 1}, {1, 1}, {1, 1}, 1, DLK_ACT_RELU};
static const dlk_pool2d_params pool2 = {DLK_POOL_MAX, {2, 2}, {2, 2}, {0, 0}, {1, 1}, 0, 0};

/* features [n, C2] of images x [n, 1, S, S]; bn: training (calibration) or inference. */
static dlk_status features(backbone *b, int n, const dlk_tensor *x, int bn_training, dlk_tensor *feat) {
  dlk_tensor a1, a2, p1, a3, g, sm, sr;
  memset(&a1, 0, sizeof a1), a2 = p1 = a3 = g = sm = sr = a1;
  dlk_status s = make(&a1, DLK_F32, 4, (int64_t[]){n, C1, S, S}, NULL);
  if (s == DLK_OK) s = make(&a2, DLK_F32, 4, (int64_t[]){n, C1, S, S}, NULL);
  if (s == DLK_OK) s = make(&p1, DLK_F32, 4, (int64_t[]){n, C1, S / 2, S / 2}, NULL);
  if (s == DLK_OK) s = make(&a3, DLK_F32, 4, (int64_t[]){n, C2, S / 2, S / 2}, NULL);
  if (s == DLK_OK) s = make(&g, DLK_F32, 4, (int64_t[]){n, C2, 1, 1}, NULL);
  if (s == DLK_OK) s = make(&sm, DLK_F32, 1, (int64_t[]){C1}, NULL);
  if (s == DLK_OK) s = make(&sr, DLK_F32, 1, (int64_t[]){C1}, NULL);
  /* momentum 1: the running statistics become this batch's (calibration) */
  const dlk_batchnorm_params bn = {1e-5, 1.0, bn_training};
  const dlk_bias_act_params relu = {DLK_ACT_RELU};
  if (s == DLK_OK) s = dlk_conv2d_forward(ctx, &pad1, x, &b->w1, NULL, &a1, NULL);
  if (s == DLK_OK)
    s = dlk_batchnorm_forward(ctx, &bn, &a1, NULL, NULL, &b->running_mean, &b->running_var, &a2,
                              bn_training ? &sm : NULL, bn_training ? &sr : NULL);
  if (s == DLK_OK) s = dlk_bias_act_forward(ctx, &relu, &a2, NULL, &a2); /* in place */
  if (s == DLK_OK) s = dlk_pool2d_forward(ctx, &pool2, &a2, &p1);
  if (s == DLK_OK) s = dlk_conv2d_forward(ctx, &pad1_relu, &p1, &b->w2, NULL, &a3, NULL);
  if (s == DLK_OK) s = dlk_adaptive_avg_pool2d_forward(ctx, &a3, &g); /* global average */
  dlk_tensor g2;
  if (s == DLK_OK) s = dlk_tensor_reshape(ctx, &g2, &g, 2, (int64_t[]){n, C2});
  if (s == DLK_OK) s = dlk_tensor_copy(ctx, feat, &g2);
  dlk_tensor *all[] = {&a1, &a2, &p1, &a3, &g, &sm, &sr};
  for (int i = 0; i < 7; i++) dlk_tensor_free(ctx, all[i]);
  return s;
}

/* Accuracy of the head on features [n, C2] with labels. */
static double accuracy(int n, const dlk_tensor *feat, const dlk_tensor *w, const dlk_tensor *bias,
                       const int32_t *label) {
  static float logits[EVAL * K];
  dlk_tensor lt;
  const dlk_linear_params lin = {DLK_ACT_NONE};
  if (make(&lt, DLK_F32, 2, (int64_t[]){n, K}, NULL) != DLK_OK) return -1;
  double acc = -1;
  if (dlk_linear_forward(ctx, &lin, feat, w, bias, &lt, NULL) == DLK_OK &&
      dlk_tensor_read(ctx, &lt, logits, (size_t)n * K * sizeof(float)) == DLK_OK) {
    int right = 0;
    for (int i = 0; i < n; i++) right += (logits[i * K + 1] > logits[i * K]) == (label[i] == 1);
    acc = (double)right / n;
  }
  dlk_tensor_free(ctx, &lt);
  return acc;
}

int main(void) {
  if (dlk_context_create(&ctx, NULL) != DLK_OK) {
    fprintf(stderr, "%s\n", dlk_context_last_error(NULL));
    return 1;
  }
  /* The "pretrained" backbone: conv1 holds a horizontal and a vertical edge filter beside
     fixed random ones; conv2 is fixed random (He-uniform). */
  static float w1[C1 * 9], w2[C2 * C1 * 9], ones[C1], zeros[C1];
  static const float sobel[9] = {-1, -2, -1, 0, 0, 0, 1, 2, 1};
  for (int k = 0; k < C1; k++)
    for (int i = 0; i < 9; i++)
      w1[k * 9 + i] = k == 0 ? sobel[i] / 4 : k == 1 ? sobel[(i % 3) * 3 + i / 3] / 4 : (float)(uniform() - 0.5);
  for (int i = 0; i < C2 * C1 * 9; i++) w2[i] = (float)((2 * uniform() - 1) * sqrt(6.0 / (C1 * 9)));
  for (int k = 0; k < C1; k++) ones[k] = 1, zeros[k] = 0;
  backbone b;
  TRY(make(&b.w1, DLK_F32, 4, (int64_t[]){C1, 1, 3, 3}, w1));
  TRY(make(&b.w2, DLK_F32, 4, (int64_t[]){C2, C1, 3, 3}, w2));
  TRY(make(&b.running_mean, DLK_F32, 1, (int64_t[]){C1}, zeros));
  TRY(make(&b.running_var, DLK_F32, 1, (int64_t[]){C1}, ones));

  /* Calibrate the batch-norm statistics once; evaluation images and their features. */
  static float img[EVAL * S * S];
  static int32_t label[EVAL], eval_label[EVAL];
  dlk_tensor x, eval_x, eval_feat, feat;
  TRY(make(&x, DLK_F32, 4, (int64_t[]){BATCH, 1, S, S}, NULL));
  TRY(make(&eval_x, DLK_F32, 4, (int64_t[]){EVAL, 1, S, S}, NULL));
  TRY(make(&eval_feat, DLK_F32, 2, (int64_t[]){EVAL, C2}, NULL));
  TRY(make(&feat, DLK_F32, 2, (int64_t[]){BATCH, C2}, NULL));
  stripes(EVAL, img, label);
  TRY(dlk_tensor_write(ctx, &eval_x, img, sizeof img));
  TRY(features(&b, EVAL, &eval_x, 1, &eval_feat)); /* calibration pass (training mode) */
  stripes(EVAL, img, eval_label);
  TRY(dlk_tensor_write(ctx, &eval_x, img, sizeof img));
  TRY(features(&b, EVAL, &eval_x, 0, &eval_feat)); /* held-out set, inference mode */

  /* The new head and its Adam states. */
  static float hw[K * C2];
  for (int i = 0; i < K * C2; i++) hw[i] = (float)(0.1 * (uniform() - 0.5));
  dlk_tensor w, bias, dw, db, mw, vw, mb, vb, logits, dlogits, targets, loss, dloss;
  const float one = 1;
  TRY(make(&w, DLK_F32, 2, (int64_t[]){K, C2}, hw));
  TRY(make(&bias, DLK_F32, 1, (int64_t[]){K}, zeros));
  TRY(make(&dw, DLK_F32, 2, (int64_t[]){K, C2}, NULL));
  TRY(make(&db, DLK_F32, 1, (int64_t[]){K}, NULL));
  dlk_tensor *states[] = {&mw, &vw, &mb, &vb};
  for (int i = 0; i < 4; i++) {
    TRY(make(states[i], DLK_F32, i < 2 ? 2 : 1, i < 2 ? (int64_t[]){K, C2} : (int64_t[]){K}, NULL));
    TRY(dlk_tensor_zero(ctx, states[i]));
  }
  TRY(make(&logits, DLK_F32, 2, (int64_t[]){BATCH, K}, NULL));
  TRY(make(&dlogits, DLK_F32, 2, (int64_t[]){BATCH, K}, NULL));
  TRY(make(&targets, DLK_I32, 1, (int64_t[]){BATCH}, NULL));
  TRY(make(&loss, DLK_F32, 0, NULL, NULL));
  TRY(make(&dloss, DLK_F32, 0, NULL, &one));

  const dlk_linear_params lin = {DLK_ACT_NONE};
  const dlk_cross_entropy_params ce = {DLK_REDUCE_MEAN, -100};
  dlk_adam_params adam = {0.01, 0.9, 0.999, 1e-8, 0.0, 0, 0};
  double acc0 = accuracy(EVAL, &eval_feat, &w, &bias, eval_label), acc = acc0;
  printf("step   0  held-out accuracy %.3f (chance 0.5)\n", acc0);
  for (int step = 1; step <= STEPS; step++) {
    stripes(BATCH, img, label);
    TRY(dlk_tensor_write(ctx, &x, img, (size_t)BATCH * S * S * sizeof(float)));
    TRY(dlk_tensor_write(ctx, &targets, label, BATCH * sizeof(int32_t)));
    TRY(features(&b, BATCH, &x, 0, &feat)); /* frozen: inference mode, no backward */
    TRY(dlk_linear_forward(ctx, &lin, &feat, &w, &bias, &logits, NULL));
    TRY(dlk_cross_entropy_forward(ctx, &ce, &logits, &targets, &loss, NULL));
    TRY(dlk_cross_entropy_backward(ctx, &ce, &logits, &targets, &dloss, &dlogits));
    TRY(dlk_linear_backward(ctx, &lin, &feat, &w, NULL, &dlogits, NULL, &dw, &db));
    adam.step = step;
    TRY(dlk_adam_step(ctx, &adam, &w, &dw, &mw, &vw));
    TRY(dlk_adam_step(ctx, &adam, &bias, &db, &mb, &vb));
    if (step == 2 || step == 5 || step == 10 || step % 20 == 0) {
      float l = NAN;
      TRY(dlk_tensor_read(ctx, &loss, &l, sizeof l));
      acc = accuracy(EVAL, &eval_feat, &w, &bias, eval_label);
      printf("step %3d  batch loss %.4f  held-out accuracy %.3f\n", step, l, acc);
    }
  }
  dlk_tensor *all[] = {&b.w1, &b.w2, &b.running_mean, &b.running_var, &x, &eval_x, &eval_feat, &feat, &w, &bias,
                       &dw, &db, &mw, &vw, &mb, &vb, &logits, &dlogits, &targets, &loss, &dloss};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dlk_tensor_free(ctx, all[i]);
  dlk_context_destroy(ctx);
  if (!(acc >= 0.9)) {
    fprintf(stderr, "held-out accuracy %.3f: expected >= 0.9\n", acc);
    return 1;
  }
  return 0;
}
