// The emulated device (DLK_CUDA_EMU) cannot run inline PTX: the kernel files that are PTX
// through and through (DLK_EMU_PTX_ONLY in cmake/dlk_emu.cmake: the wgmma/TMA gemm and
// SDPA forward, sm_90a) are not compiled there, and their entry points here refuse every
// case with the reason. (Kernels with some inline PTX guard it in their own file with
// #if !defined(DLK_CUDA_EMU).)
#include <stdio.h>

#include "../../kernels/attention/attention.h"
#include "../../kernels/nn/gemm.cuh"

static const char kWhy[] = "needs a real GPU (inline PTX: wgmma, TMA, mbarrier)";

namespace dlk {
int gemm_wgmma_supports(const dlk_k_gemm_desc *, char *why, size_t why_len) {
  snprintf(why, why_len, "%s", kWhy);
  return 0;
}
int gemm_wgmma(const dlk_k_gemm_desc *g, cudaStream_t) {
  if (g->err && g->err_len) snprintf(g->err, g->err_len, "%s", kWhy);
  return (int)cudaErrorNotSupported;
}
}  // namespace dlk

extern "C" int dlk_k_sdpa_fwd_wgmma_supports(const dlk_k_sdpa_fwd_desc *, char *why, size_t n) {
  snprintf(why, n, "%s", kWhy);
  return 0;
}
extern "C" int dlk_k_sdpa_fwd_wgmma(const dlk_k_sdpa_fwd_desc *, char *err, size_t err_len, void *) {
  snprintf(err, err_len, "%s", kWhy);
  return (int)cudaErrorNotSupported;
}
