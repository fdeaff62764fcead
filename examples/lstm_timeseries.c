/* Next-value prediction on a synthetic multi-sine series: a 2-layer LSTM and a linear
   head, trained with MSE and Adam through dlk's public API, on the default device (the
   first GPU, else the CPU). Prints the loss falling, then 20 steps past the training data
   beside the truth: the next-step forecast (the model sees the true past) and the
   free-running one (it feeds its own predictions back). Both run one step per call,
   carrying the LSTM states from each call's hn/cn to the next call's h0/c0. */
#include <dlk.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY(call)                                                                          \
  do {                                                                                     \
    dlk_status s_ = (call);                                                                \
    if (s_ != DLK_OK) {                                                                    \
      fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, dlk_status_string(s_),         \
              dlk_context_last_error(ctx));                                                \
      exit(1);                                                                             \
    }                                                                                      \
  } while (0)

enum { L = 2, H = 16, B = 8, T = 24, N = 400, STEPS = 300, AHEAD = 20 };

static dlk_context *ctx;

static float series(int t) { return sinf(0.07f * t) + 0.5f * sinf(0.23f * t + 1.0f) + 0.25f * sinf(0.61f * t + 2.0f); }

static float frand(unsigned *s) {
  *s = *s * 1664525u + 1013904223u;
  return (float)(*s >> 8) / 16777216.0f;
}

/* A parameter: the tensor, its gradient and Adam's two moments. */
typedef struct param {
  dlk_tensor w, g, m, v;
  int64_t n;
} param;

static void param_init(param *p, int ndim, const int64_t *shape, float scale, unsigned *seed) {
  TRY(dlk_tensor_alloc(ctx, &p->w, DLK_F32, ndim, shape));
  TRY(dlk_tensor_alloc(ctx, &p->g, DLK_F32, ndim, shape));
  TRY(dlk_tensor_alloc(ctx, &p->m, DLK_F32, ndim, shape));
  TRY(dlk_tensor_alloc(ctx, &p->v, DLK_F32, ndim, shape));
  p->n = dlk_tensor_numel(&p->w);
  float *h = malloc((size_t)p->n * sizeof(float));
  for (int64_t i = 0; i < p->n; i++) h[i] = scale * (2.0f * frand(seed) - 1.0f);
  TRY(dlk_tensor_write(ctx, &p->w, h, (size_t)p->n * sizeof(float)));
  TRY(dlk_tensor_zero(ctx, &p->m));
  TRY(dlk_tensor_zero(ctx, &p->v));
  free(h);
}

static void param_free(param *p) {
  dlk_tensor_free(ctx, &p->w), dlk_tensor_free(ctx, &p->g);
  dlk_tensor_free(ctx, &p->m), dlk_tensor_free(ctx, &p->v);
}

static dlk_tensor tensor(int ndim, const int64_t *shape) {
  dlk_tensor t;
  TRY(dlk_tensor_alloc(ctx, &t, DLK_F32, ndim, shape));
  return t;
}

int main(void) {
  if (dlk_context_create(&ctx, NULL) != DLK_OK) {
    fprintf(stderr, "%s\n", dlk_context_last_error(NULL));
    return 1;
  }
  /* The model: weights[l] as PyTorch's nn.LSTM(1, H, num_layers=2), head = nn.Linear(H, 1). */
  unsigned seed = 7;
  const float k = 1.0f / sqrtf((float)H);
  param lw[L][4], head_w, head_b;
  dlk_rnn_weights weights[L];
  dlk_rnn_grads grads[L];
  for (int l = 0; l < L; l++) {
    int64_t sih[2] = {4 * H, l == 0 ? 1 : H}, shh[2] = {4 * H, H}, sb[1] = {4 * H};
    param_init(&lw[l][0], 2, sih, k, &seed);
    param_init(&lw[l][1], 2, shh, k, &seed);
    param_init(&lw[l][2], 1, sb, k, &seed);
    param_init(&lw[l][3], 1, sb, k, &seed);
    weights[l] = (dlk_rnn_weights){&lw[l][0].w, &lw[l][1].w, &lw[l][2].w, &lw[l][3].w, NULL};
    grads[l] = (dlk_rnn_grads){&lw[l][0].g, &lw[l][1].g, &lw[l][2].g, &lw[l][3].g, NULL};
  }
  param_init(&head_w, 2, (int64_t[]){1, H}, k, &seed);
  param_init(&head_b, 1, (int64_t[]){1}, k, &seed);
  param *all[4 * L + 2];
  int np = 0;
  for (int l = 0; l < L; l++)
    for (int j = 0; j < 4; j++) all[np++] = &lw[l][j];
  all[np++] = &head_w, all[np++] = &head_b;

  /* Batches of windows: x [B, T, 1] = s(t0 .. t0+T-1), target = s(t0+1 .. t0+T). */
  dlk_rnn_params rp = {.mode = DLK_RNN_LSTM, .hidden_size = H, .num_layers = L, .batch_first = 1, .training = 1};
  dlk_tensor x = tensor(3, (int64_t[]){B, T, 1}), target = tensor(3, (int64_t[]){B, T, 1});
  dlk_tensor y = tensor(3, (int64_t[]){B, T, H}), pred = tensor(3, (int64_t[]){B, T, 1});
  dlk_tensor dpred = tensor(3, (int64_t[]){B, T, 1}), dy = tensor(3, (int64_t[]){B, T, H});
  dlk_tensor loss = tensor(1, (int64_t[]){1}), dloss = tensor(1, (int64_t[]){1});
  size_t rbytes = 0;
  TRY(dlk_rnn_reserve_size(ctx, &rp, &x, &rbytes));
  dlk_tensor reserve;
  TRY(dlk_tensor_alloc(ctx, &reserve, DLK_U8, 1, (int64_t[]){(int64_t)rbytes}));
  const float one = 1.0f;
  TRY(dlk_tensor_write(ctx, &dloss, &one, sizeof one));
  dlk_linear_params lin = {DLK_ACT_NONE};
  dlk_mse_params mse = {DLK_REDUCE_MEAN};
  float hx[B][T], ht[B][T];
  for (int step = 1; step <= STEPS; step++) {
    for (int b = 0; b < B; b++) {
      int t0 = (int)(frand(&seed) * (N - T - 1));
      for (int t = 0; t < T; t++) hx[b][t] = series(t0 + t), ht[b][t] = series(t0 + t + 1);
    }
    TRY(dlk_tensor_write(ctx, &x, hx, sizeof hx));
    TRY(dlk_tensor_write(ctx, &target, ht, sizeof ht));
    /* forward: LSTM, head, loss */
    TRY(dlk_rnn_forward(ctx, &rp, weights, &x, NULL, NULL, NULL, &y, NULL, NULL, &reserve));
    TRY(dlk_linear_forward(ctx, &lin, &y, &head_w.w, &head_b.w, &pred, NULL));
    TRY(dlk_mse_loss_forward(ctx, &mse, &pred, &target, &loss));
    /* backward: loss, head (written), LSTM (accumulated: zero first) */
    TRY(dlk_mse_loss_backward(ctx, &mse, &pred, &target, &dloss, &dpred));
    TRY(dlk_linear_backward(ctx, &lin, &y, &head_w.w, NULL, &dpred, &dy, &head_w.g, &head_b.g));
    for (int l = 0; l < L; l++)
      for (int j = 0; j < 4; j++) TRY(dlk_tensor_zero(ctx, &lw[l][j].g));
    TRY(dlk_rnn_backward(ctx, &rp, weights, &x, NULL, NULL, NULL, &y, &reserve, &dy, NULL, NULL, NULL, NULL, NULL,
                         grads));
    /* Adam */
    dlk_adam_params ap = {1e-2, 0.9, 0.999, 1e-8, 0.0, 0, step};
    for (int i = 0; i < np; i++) TRY(dlk_adam_step(ctx, &ap, &all[i]->w, &all[i]->g, &all[i]->m, &all[i]->v));
    if (step == 1 || step % 50 == 0) {
      float lv;
      TRY(dlk_tensor_read(ctx, &loss, &lv, sizeof lv));
      printf("step %3d  mse %.5f\n", step, lv);
    }
  }

  /* Forecast: warm the states on s(N-T .. N-1) (inference, one call), then one step per
     call: chain 0 is fed the truth, chain 1 its own predictions. */
  dlk_rnn_params ip = rp;
  ip.training = 0;
  dlk_tensor wx = tensor(3, (int64_t[]){1, T, 1}), wy = tensor(3, (int64_t[]){1, T, H}), wp = tensor(3, (int64_t[]){1, T, 1});
  dlk_tensor hs[2][2], cs[2][2]; /* [chain][ping-pong] */
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < 2; i++) hs[c][i] = tensor(3, (int64_t[]){L, 1, H}), cs[c][i] = tensor(3, (int64_t[]){L, 1, H});
  float warm[T];
  for (int t = 0; t < T; t++) warm[t] = series(N - T + t);
  TRY(dlk_tensor_write(ctx, &wx, warm, sizeof warm));
  TRY(dlk_rnn_forward(ctx, &ip, weights, &wx, NULL, NULL, NULL, &wy, &hs[0][0], &cs[0][0], NULL));
  TRY(dlk_tensor_copy(ctx, &hs[1][0], &hs[0][0]));
  TRY(dlk_tensor_copy(ctx, &cs[1][0], &cs[0][0]));
  TRY(dlk_linear_forward(ctx, &lin, &wy, &head_w.w, &head_b.w, &wp, NULL));
  float p[T];
  TRY(dlk_tensor_read(ctx, &wp, p, sizeof p));
  float next[2] = {p[T - 1], p[T - 1]}; /* both chains' forecast of s(N) */
  dlk_tensor x1 = tensor(3, (int64_t[]){1, 1, 1}), y1 = tensor(3, (int64_t[]){1, 1, H}), p1 = tensor(3, (int64_t[]){1, 1, 1});
  printf("\nforecast past the training data (t >= %d):\n   t    truth  next-step  free-running\n", N);
  double err[2] = {0, 0};
  for (int i = 0; i < AHEAD; i++) {
    const float truth = series(N + i);
    printf("%4d  %7.4f  %9.4f  %12.4f\n", N + i, truth, next[0], next[1]);
    for (int c = 0; c < 2; c++) {
      err[c] += fabs(truth - next[c]);
      const float in = c == 0 ? truth : next[c];
      const int a = i % 2, b = 1 - a;
      TRY(dlk_tensor_write(ctx, &x1, &in, sizeof in));
      TRY(dlk_rnn_forward(ctx, &ip, weights, &x1, NULL, &hs[c][a], &cs[c][a], &y1, &hs[c][b], &cs[c][b], NULL));
      TRY(dlk_linear_forward(ctx, &lin, &y1, &head_w.w, &head_b.w, &p1, NULL));
      TRY(dlk_tensor_read(ctx, &p1, &next[c], sizeof next[c]));
    }
  }
  printf("mean |error| over %d steps: next-step %.4f, free-running %.4f\n", AHEAD, err[0] / AHEAD, err[1] / AHEAD);

  dlk_tensor *ts[] = {&x, &target, &y, &pred, &dpred, &dy, &loss, &dloss, &reserve, &wx, &wy, &wp, &x1, &y1, &p1};
  for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) dlk_tensor_free(ctx, ts[i]);
  for (int c = 0; c < 2; c++)
    for (int i = 0; i < 2; i++) dlk_tensor_free(ctx, &hs[c][i]), dlk_tensor_free(ctx, &cs[c][i]);
  for (int i = 0; i < np; i++) param_free(all[i]);
  dlk_context_destroy(ctx);
  return err[0] / AHEAD < 0.1 ? 0 : 1; /* a model that learnt nothing fails the test */
}
