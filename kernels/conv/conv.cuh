// conv family device helpers shared by kernels/conv/*.cu: element access through a
// tensor's strides, the implicit-GEMM index decode, and the inline-PTX wrappers of the
// tensor-core kernel (cp.async, ldmatrix, mma.sync), which the emulated build compiles out.
#ifndef DLK_CONV_CUH
#define DLK_CONV_CUH

#include "../common.cuh"
#include "conv.h"

namespace dlk {
namespace conv {

// Element [i0, i1, i2, i3] of a 4-D tensor, as the accumulation type.
template <typename T>
__device__ __forceinline__ typename AccT<T>::type ld4(const dlk_k_t4 &t, int64_t i0, int64_t i1, int64_t i2,
                                                       int64_t i3) {
  return to_acc(((const T *)t.data)[i0 * t.st[0] + i1 * t.st[1] + i2 * t.st[2] + i3 * t.st[3]]);
}
template <typename T>
__device__ __forceinline__ void st4(const dlk_k_t4 &t, int64_t i0, int64_t i1, int64_t i2, int64_t i3,
                                    typename AccT<T>::type v) {
  ((T *)t.data)[i0 * t.st[0] + i1 * t.st[1] + i2 * t.st[2] + i3 * t.st[3]] = from_acc<T>(v);
}

// The shared-memory implicit-GEMM rung (variant 2 of fwd, bwd_data, bwd_filter): a 64x64
// output tile per 256-thread block, K staged 16 at a time in As[16][64], Bs[16][64]; thread
// (tx, ty) = (t % 16, t / 16) owns the 4x4 register block rows ty*4.., columns tx*4...
constexpr int IG_BM = 64, IG_BN = 64, IG_BK = 16, IG_THREADS = 256;

// acc += the staged K slice's contribution to this thread's 4x4 block (between the two
// __syncthreads of the stage).
template <typename A>
__device__ __forceinline__ void ig_tile_fma(const A (&As)[IG_BK][IG_BM], const A (&Bs)[IG_BK][IG_BN], int tx, int ty,
                                            A (&acc)[4][4]) {
#pragma unroll
  for (int kr = 0; kr < IG_BK; kr++) {
    A ar[4], br[4];
#pragma unroll
    for (int i = 0; i < 4; i++) ar[i] = As[kr][ty * 4 + i], br[i] = Bs[kr][tx * 4 + i];
#pragma unroll
    for (int i = 0; i < 4; i++)
#pragma unroll
      for (int j = 0; j < 4; j++) acc[i][j] += ar[i] * br[j];
  }
}

// Input position of output position o through tap q: o*stride - pad + q*dil.
__device__ __forceinline__ int64_t in_pos(int64_t o, int64_t q, int64_t stride, int64_t pad, int64_t dil) {
  return o * stride - pad + q * dil;
}

// The output position that reaches input position i through tap q, or -1: o = (i + pad -
// q*dil) / stride when that divides exactly and lies in [0, out).
__device__ __forceinline__ int64_t out_pos(int64_t i, int64_t q, int64_t stride, int64_t pad, int64_t dil,
                                           int64_t out) {
  const int64_t t = i + pad - q * dil;
  if (t < 0) return -1;
  const int64_t o = t / stride;
  return (o * stride == t && o < out) ? o : -1;
}

// Grid-stride loop bounds for 1-D launches.
__device__ __forceinline__ int64_t gidx() {
  return blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t gstride() {
  return (int64_t)gridDim.x * blockDim.x;
}

// ---- inline PTX (tensor-core kernels only; not under the emulator) ----
#if !defined(DLK_CUDA_EMU)
__device__ __forceinline__ uint32_t smem_u32(const void *p) {
  return (uint32_t)__cvta_generic_to_shared(p);
}
// 16-byte global->shared copy; src_bytes 0 zero-fills the destination without reading.
__device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src), "r"(src_bytes)
               : "memory");
}
__device__ __forceinline__ void cp_async_commit() {
  asm volatile("cp.async.commit_group;\n" ::: "memory");
}
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
// The same with .trans: each 8x8 block is transposed on the way to the registers.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(smem_u32(p)));
}
// d += a @ b for one m16n8k16 tile (f16 or bf16 inputs, f32 accumulators).
template <typename T>
__device__ __forceinline__ void mma_16816(float d[4], const uint32_t a[4], const uint32_t b[2]);
template <>
__device__ __forceinline__ void mma_16816<f16>(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
template <>
__device__ __forceinline__ void mma_16816<bf16>(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// d += a @ b for one m16n8k8 TF32 tile (operands already rounded to tf32 bit patterns).
__device__ __forceinline__ void mma_1688_tf32(float d[4], const uint32_t a[4], const uint32_t b[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// f32 -> tf32 with round-to-nearest (ties away), as cuDNN and cuBLAS round.
__device__ __forceinline__ uint32_t to_tf32(float v) {
  uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;\n" : "=r"(r) : "f"(v));
  return r;
}
#endif

}  // namespace conv
}  // namespace dlk

#endif  // DLK_CONV_CUH
