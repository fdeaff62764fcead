/* Neural style transfer (Gatys et al.) in miniature, on the default device (first GPU,
   else the CPU): a small fixed-seed conv feature stack, a content loss on the deepest
   features and Gram-matrix style losses on the first two layers, gradients flowing back
   to the image, and Adam on the image. Prints the losses falling and writes the image as
   a PPM (argv[1], default style_transfer.ppm).

     x [1,3,H,W] -> conv1 3x3 relu -> y1 [8]  -> conv2 3x3 relu -> y2 [16] -> maxpool 2x2
                 -> conv3 3x3 relu -> y3 [16]
     L = wc mse(y3, y3_content) + ws (mse(G(y1), G(y1_style)) + mse(G(y2), G(y2_style)))
   with G the Gram matrix normalised by C*H*W. */
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

enum { H = 24, W = 24, C1 = 8, C2 = 16, C3 = 16, STEPS = 200 };

static dlk_context *ctx;

/* A fixed-seed uniform generator (xorshift), so every run draws the same weights. */
static uint64_t rng = 0x243F6A8885A308D3ULL;
static double uniform(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}

/* Allocate a contiguous f32 tensor on the context's device and fill it from host data
   (NULL: leave it undefined). */
static dlk_status make(dlk_tensor *t, int ndim, const int64_t *shape, const float *host) {
  dlk_status s = dlk_tensor_alloc(ctx, t, DLK_F32, ndim, shape);
  if (s != DLK_OK || !host) return s;
  return dlk_tensor_write(ctx, t, host, (size_t)dlk_tensor_numel(t) * sizeof(float));
}

/* He-uniform conv weights [cout, cin, 3, 3]. */
static dlk_status conv_weights(dlk_tensor *w, int cout, int cin) {
  static float buf[C3 * C2 * 9];
  const double a = sqrt(6.0 / (cin * 9));
  for (int i = 0; i < cout * cin * 9; i++) buf[i] = (float)((2 * uniform() - 1) * a);
  return make(w, 4, (int64_t[]){cout, cin, 3, 3}, buf);
}

/* acc += v, elementwise, on any device: the gemm acc[n, 1] = v[n, 1] @ [[1]] + 1 acc. */
static dlk_tensor one;
static dlk_status add_into(dlk_tensor *acc, const dlk_tensor *v) {
  const int64_t n = dlk_tensor_numel(acc);
  dlk_tensor a, c;
  dlk_status s = dlk_tensor_reshape(ctx, &a, v, 2, (int64_t[]){n, 1});
  if (s == DLK_OK) s = dlk_tensor_reshape(ctx, &c, acc, 2, (int64_t[]){n, 1});
  const dlk_gemm_params p = {1.0, 1.0};
  return s == DLK_OK ? dlk_gemm(ctx, &p, &a, &one, &c) : s;
}

static float read_scalar(const dlk_tensor *t) {
  float v = NAN;
  dlk_tensor_read(ctx, t, &v, sizeof v);
  return v;
}

/* The network's tensors: weights, and the activations of one forward pass. */
typedef struct {
  dlk_tensor w1, w2, w3;
  dlk_tensor z1, y1, z2, y2, p2, z3, y3, g1, g2;
} net;

static const dlk_conv2d_params relu_pad1 = {{1, 1}, {1, 1}, {1, 1}, 1, DLK_ACT_RELU};
static const dlk_pool2d_params pool2 = {DLK_POOL_MAX, {2, 2}, {2, 2}, {0, 0}, {1, 1}, 0, 0};
static const dlk_gram_params gram_chw = {DLK_GRAM_CHW};

static dlk_status alloc_acts(net *n) {
  dlk_status s = DLK_OK;
  dlk_tensor *t4[] = {&n->z1, &n->y1, &n->z2, &n->y2, &n->p2, &n->z3, &n->y3};
  const int64_t sh[][4] = {{1, C1, H, W}, {1, C1, H, W}, {1, C2, H, W}, {1, C2, H, W},
                           {1, C2, H / 2, W / 2}, {1, C3, H / 2, W / 2}, {1, C3, H / 2, W / 2}};
  for (int i = 0; i < 7 && s == DLK_OK; i++) s = make(t4[i], 4, sh[i], NULL);
  if (s == DLK_OK) s = make(&n->g1, 3, (int64_t[]){1, C1, C1}, NULL);
  if (s == DLK_OK) s = make(&n->g2, 3, (int64_t[]){1, C2, C2}, NULL);
  return s;
}

static dlk_status forward(net *n, const dlk_tensor *x) {
  dlk_status s = dlk_conv2d_forward(ctx, &relu_pad1, x, &n->w1, NULL, &n->y1, &n->z1);
  if (s == DLK_OK) s = dlk_conv2d_forward(ctx, &relu_pad1, &n->y1, &n->w2, NULL, &n->y2, &n->z2);
  if (s == DLK_OK) s = dlk_pool2d_forward(ctx, &pool2, &n->y2, &n->p2);
  if (s == DLK_OK) s = dlk_conv2d_forward(ctx, &relu_pad1, &n->p2, &n->w3, NULL, &n->y3, &n->z3);
  if (s == DLK_OK) s = dlk_gram_forward(ctx, &gram_chw, &n->y1, &n->g1);
  if (s == DLK_OK) s = dlk_gram_forward(ctx, &gram_chw, &n->y2, &n->g2);
  return s;
}

/* Content and style pictures: a soft disc on a gradient, and diagonal colour stripes. */
static void pictures(float *content, float *style) {
  for (int c = 0; c < 3; c++)
    for (int i = 0; i < H; i++)
      for (int j = 0; j < W; j++) {
        const double r = hypot(i - H / 2.0, j - W / 2.0) / (H / 3.0);
        content[(c * H + i) * W + j] = (float)(0.2 + 0.6 / (1 + r * r * r * r) + 0.1 * c * j / W);
        style[(c * H + i) * W + j] = (float)(0.5 + 0.45 * sin(0.9 * (i + j) + 2.1 * c));
      }
}

static void write_ppm(const char *path, const float *img) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fprintf(f, "P6\n%d %d\n255\n", W, H);
  for (int i = 0; i < H; i++)
    for (int j = 0; j < W; j++)
      for (int c = 0; c < 3; c++) {
        double v = img[(c * H + i) * W + j];
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        fputc((int)lround(v * 255), f);
      }
  fclose(f);
}

int main(int argc, char **argv) {
  const char *out_path = argc > 1 ? argv[1] : "style_transfer.ppm";
  if (dlk_context_create(&ctx, NULL) != DLK_OK) {
    fprintf(stderr, "%s\n", dlk_context_last_error(NULL));
    return 1;
  }
  static float content[3 * H * W], style[3 * H * W];
  pictures(content, style);
  const float one_f = 1.0f, wc = 0.2f, ws = 50.0f;
  const int64_t img_shape[4] = {1, 3, H, W};
  net n;
  memset(&n, 0, sizeof n);
  dlk_tensor x, dx, m, v, t3, s1, s2, l_c, l_s1, l_s2, d_c, d_s, dy3, dp2, dy2, dy2s, dy1, dy1s, dg1, dg2;
  TRY(make(&one, 2, (int64_t[]){1, 1}, &one_f));
  TRY(conv_weights(&n.w1, C1, 3));
  TRY(conv_weights(&n.w2, C2, C1));
  TRY(conv_weights(&n.w3, C3, C2));
  TRY(alloc_acts(&n));

  /* Targets: the content picture's deepest features, the style picture's Gram matrices. */
  TRY(make(&x, 4, img_shape, style));
  TRY(forward(&n, &x));
  TRY(make(&s1, 3, (int64_t[]){1, C1, C1}, NULL));
  TRY(make(&s2, 3, (int64_t[]){1, C2, C2}, NULL));
  TRY(dlk_tensor_copy(ctx, &s1, &n.g1));
  TRY(dlk_tensor_copy(ctx, &s2, &n.g2));
  TRY(dlk_tensor_write(ctx, &x, content, sizeof content));
  TRY(forward(&n, &x));
  TRY(make(&t3, 4, (int64_t[]){1, C3, H / 2, W / 2}, NULL));
  TRY(dlk_tensor_copy(ctx, &t3, &n.y3));

  /* The image starts as the content picture; Adam moves it. */
  TRY(make(&dx, 4, img_shape, NULL));
  TRY(make(&m, 4, img_shape, NULL));
  TRY(make(&v, 4, img_shape, NULL));
  TRY(dlk_tensor_zero(ctx, &m));
  TRY(dlk_tensor_zero(ctx, &v));
  TRY(make(&l_c, 0, NULL, NULL));
  TRY(make(&l_s1, 0, NULL, NULL));
  TRY(make(&l_s2, 0, NULL, NULL));
  TRY(make(&d_c, 0, NULL, &wc)); /* dloss: the weights of the losses */
  TRY(make(&d_s, 0, NULL, &ws));
  TRY(make(&dy3, 4, (int64_t[]){1, C3, H / 2, W / 2}, NULL));
  TRY(make(&dp2, 4, (int64_t[]){1, C2, H / 2, W / 2}, NULL));
  TRY(make(&dy2, 4, (int64_t[]){1, C2, H, W}, NULL));
  TRY(make(&dy2s, 4, (int64_t[]){1, C2, H, W}, NULL));
  TRY(make(&dy1, 4, (int64_t[]){1, C1, H, W}, NULL));
  TRY(make(&dy1s, 4, (int64_t[]){1, C1, H, W}, NULL));
  TRY(make(&dg1, 3, (int64_t[]){1, C1, C1}, NULL));
  TRY(make(&dg2, 3, (int64_t[]){1, C2, C2}, NULL));

  const dlk_mse_params mean = {DLK_REDUCE_MEAN};
  dlk_adam_params adam = {0.05, 0.9, 0.999, 1e-8, 0.0, 0, 0};
  double first = 0, last = 0;
  for (int step = 0; step <= STEPS; step++) {
    TRY(forward(&n, &x));
    TRY(dlk_mse_loss_forward(ctx, &mean, &n.y3, &t3, &l_c));
    TRY(dlk_mse_loss_forward(ctx, &mean, &n.g1, &s1, &l_s1));
    TRY(dlk_mse_loss_forward(ctx, &mean, &n.g2, &s2, &l_s2));
    const double lc = read_scalar(&l_c), ls = read_scalar(&l_s1) + read_scalar(&l_s2);
    const double total = wc * lc + ws * ls;
    if (step == 0) first = total;
    last = total;
    if (step % 25 == 0) printf("step %3d  loss %.6f  (content %.6f, style %.6f)\n", step, total, wc * lc, ws * ls);
    if (step == STEPS) break;

    /* Backward, deepest layer first; where two losses meet, their gradients add. */
    TRY(dlk_mse_loss_backward(ctx, &mean, &n.y3, &t3, &d_c, &dy3));
    TRY(dlk_conv2d_backward(ctx, &relu_pad1, &n.p2, &n.w3, &n.z3, &dy3, &dp2, NULL, NULL));
    TRY(dlk_pool2d_backward(ctx, &pool2, &n.y2, &n.p2, &dp2, &dy2));
    TRY(dlk_mse_loss_backward(ctx, &mean, &n.g2, &s2, &d_s, &dg2));
    TRY(dlk_gram_backward(ctx, &gram_chw, &n.y2, &dg2, &dy2s));
    TRY(add_into(&dy2, &dy2s));
    TRY(dlk_conv2d_backward(ctx, &relu_pad1, &n.y1, &n.w2, &n.z2, &dy2, &dy1, NULL, NULL));
    TRY(dlk_mse_loss_backward(ctx, &mean, &n.g1, &s1, &d_s, &dg1));
    TRY(dlk_gram_backward(ctx, &gram_chw, &n.y1, &dg1, &dy1s));
    TRY(add_into(&dy1, &dy1s));
    TRY(dlk_conv2d_backward(ctx, &relu_pad1, &x, &n.w1, &n.z1, &dy1, &dx, NULL, NULL));
    adam.step = step + 1;
    TRY(dlk_adam_step(ctx, &adam, &x, &dx, &m, &v));
  }
  static float img[3 * H * W];
  TRY(dlk_tensor_read(ctx, &x, img, sizeof img));
  write_ppm(out_path, img);
  printf("loss %.6f -> %.6f; image written to %s\n", first, last, out_path);

  dlk_tensor *all[] = {&one, &n.w1, &n.w2, &n.w3, &n.z1, &n.y1, &n.z2, &n.y2, &n.p2, &n.z3, &n.y3, &n.g1, &n.g2,
                       &x, &dx, &m, &v, &t3, &s1, &s2, &l_c, &l_s1, &l_s2, &d_c, &d_s, &dy3, &dp2, &dy2, &dy2s,
                       &dy1, &dy1s, &dg1, &dg2};
  for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) dlk_tensor_free(ctx, all[i]);
  dlk_context_destroy(ctx);
  if (!(last < 0.5 * first)) {
    fprintf(stderr, "the loss did not fall enough (%.6f -> %.6f)\n", first, last);
    return 1;
  }
  return 0;
}
