// nn family, the id range check the gathers run first (embedding ids, cross-entropy
// targets). Launcher in kernels/nn/nn.h, right under the kernel; used by host/nn/nn_cuda.c.
#include <climits>
#include <cmath>

#include "../common.cuh"
#include "nn.h"

using namespace dlk;

namespace {

// ---- id checks =========================================================================

// One block of 1024 threads: thread t scans ids t, t + 1024, ... and keeps the first bad
// position it sees; the block takes the minimum position (so the report is the first bad
// id, the same every run) and thread 0 writes {position, id} (or {-1, 0}) to `flag`,
// host-mapped memory the host reads after synchronising.
template <typename I>
__global__ __launch_bounds__(1024) void check_ids_kernel(dlk_k_vec ids, int64_t limit, int use_skip,
                                                         int64_t skip, int64_t *flag) {
  __shared__ long long sm[32];
  long long first = LLONG_MAX;
  for (int64_t i = threadIdx.x; i < ids.n; i += blockDim.x) {
    int64_t id = (int64_t)((const I *)ids.data)[i * ids.s];
    if ((id < 0 || id >= limit) && !(use_skip && id == skip)) {
      first = i;
      break;
    }
  }
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    long long other = __shfl_xor_sync(0xffffffffu, first, o);
    first = other < first ? other : first;
  }
  if ((threadIdx.x & 31) == 0) sm[threadIdx.x >> 5] = first;
  __syncthreads();
  if (threadIdx.x == 0) {
    long long best = sm[0];
    for (int w = 1; w < (int)(blockDim.x >> 5); w++) best = sm[w] < best ? sm[w] : best;
    if (best == LLONG_MAX) {
      flag[0] = -1;
      flag[1] = 0;
    } else {
      flag[0] = best;
      flag[1] = (int64_t)((const I *)ids.data)[best * ids.s];
    }
    __threadfence_system();
  }
}

}  // namespace

extern "C" int dlk_k_check_ids(const dlk_k_check_ids_desc *a, void *stream) {
  cudaStream_t st = (cudaStream_t)stream;
  if (a->id_dtype == DLK_I64)
    DLK_LAUNCH(check_ids_kernel<int64_t>, 1, 1024, 0, st)(a->ids, a->limit, a->use_skip, a->skip, a->flag);
  else if (a->id_dtype == DLK_I32)
    DLK_LAUNCH(check_ids_kernel<int32_t>, 1, 1024, 0, st)(a->ids, a->limit, a->use_skip, a->skip, a->flag);
  else
    return (int)cudaErrorInvalidValue;
  return (int)cudaGetLastError();
}
