/* Links against an installed dlk and runs a softmax on a CPU context. */
#include <dlk.h>
#include <math.h>
#include <stdio.h>

int main(void) {
  dlk_context_options o = {0};
  o.device.type = DLK_CPU;
  dlk_context *ctx;
  if (dlk_context_create(&ctx, &o) != DLK_OK) {
    fprintf(stderr, "context: %s\n", dlk_context_last_error(NULL));
    return 1;
  }
  float x[3] = {1, 2, 3}, y[3];
  int64_t shape[2] = {1, 3};
  dlk_tensor tx, ty;
  dlk_device cpu = {DLK_CPU, 0};
  dlk_tensor_init(ctx, &tx, x, DLK_F32, cpu, 2, shape);
  dlk_tensor_init(ctx, &ty, y, DLK_F32, cpu, 2, shape);
  dlk_softmax_params p = {0};
  dlk_status s = dlk_softmax_forward(ctx, &p, &tx, &ty);
  double want = exp(3.0) / (exp(1.0) + exp(2.0) + exp(3.0));
  int ok = s == DLK_OK && fabs(y[2] - want) < 1e-6;
  printf("dlk %s: softmax %s (%s)\n", dlk_version(), ok ? "ok" : "WRONG", dlk_status_string(s));
  dlk_context_destroy(ctx);
  return ok ? 0 : 1;
}
