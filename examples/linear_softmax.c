/* A linear layer + softmax on the default device (first GPU, else the CPU). */
#include <dlk.h>
#include <stdio.h>

#define TRY(call) do { dlk_status s_ = (call); if (s_ != DLK_OK) { \
    fprintf(stderr, "%s: %s\n", dlk_status_string(s_), dlk_context_last_error(ctx)); return 1; } } while (0)

int main(void) {
  dlk_context *ctx = NULL;
  if (dlk_context_create(&ctx, NULL) != DLK_OK) {            /* NULL: default options */
    fprintf(stderr, "%s\n", dlk_context_last_error(NULL));
    return 1;
  }
  enum { N = 4, IN = 3, OUT = 5 };
  float x[N][IN] = {{1, 2, 3}, {0, 1, 0}, {-1, 0, 1}, {2, 2, 2}}, w[OUT][IN], b[OUT], p[N][OUT];
  for (int o = 0; o < OUT; o++) { b[o] = 0.1f * o; for (int i = 0; i < IN; i++) w[o][i] = 0.01f * (o - i); }
  dlk_tensor tx, tw, tb, ty, tp;                               /* tensors on the context's device */
  TRY(dlk_tensor_alloc(ctx, &tx, DLK_F32, 2, (int64_t[]){N, IN}));
  TRY(dlk_tensor_alloc(ctx, &tw, DLK_F32, 2, (int64_t[]){OUT, IN}));
  TRY(dlk_tensor_alloc(ctx, &tb, DLK_F32, 1, (int64_t[]){OUT}));
  TRY(dlk_tensor_alloc(ctx, &ty, DLK_F32, 2, (int64_t[]){N, OUT}));
  TRY(dlk_tensor_alloc(ctx, &tp, DLK_F32, 2, (int64_t[]){N, OUT}));
  TRY(dlk_tensor_write(ctx, &tx, x, sizeof x));
  TRY(dlk_tensor_write(ctx, &tw, w, sizeof w));
  TRY(dlk_tensor_write(ctx, &tb, b, sizeof b));
  dlk_linear_params lp = {DLK_ACT_RELU};                       /* y = relu(x w^T + b) */
  TRY(dlk_linear_forward(ctx, &lp, &tx, &tw, &tb, &ty, NULL));
  dlk_softmax_params sp = {0};                                 /* p = softmax(y) over the last dim */
  TRY(dlk_softmax_forward(ctx, &sp, &ty, &tp));
  TRY(dlk_tensor_read(ctx, &tp, p, sizeof p));                 /* synchronous read back */
  for (int n = 0; n < N; n++) printf("row %d: %.4f %.4f %.4f %.4f %.4f\n", n, p[n][0], p[n][1], p[n][2], p[n][3], p[n][4]);
  dlk_tensor *all[] = {&tx, &tw, &tb, &ty, &tp};
  for (int i = 0; i < 5; i++) dlk_tensor_free(ctx, all[i]);
  dlk_context_destroy(ctx);
  return 0;
}
