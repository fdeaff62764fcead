// nn family, optimizer steps (torch.optim SGD, Adam/AdamW, Adagrad): 1 element per
// thread, 2 four elements per thread with vector loads. Launchers in kernels/nn/nn.h,
// right under the kernels; rows in host/nn/nn_cuda.c.
#include <climits>
#include <cmath>

#include "../common.cuh"
#include "nn.h"

using namespace dlk;

namespace {

// ---- optimizers ========================================================================
// Each element update is a device function of (param, grad, state) in the accumulation
// type; kernel 1 maps one element per thread (grid-stride), kernel 2 four elements per
// thread through aligned 4-element vector loads, with the n % 4 tail in block 0.

template <typename T>
struct alignas(4 * sizeof(T)) Quad {
  T v[4];
};

// torch.optim.SGD: g += wd p; buf = first ? g : momentum buf + (1 - dampening) g;
// g = nesterov ? g + momentum buf : buf; p -= lr g.
template <typename A>
struct SgdOp {
  A lr, momentum, dampening, wd;
  int nesterov, first, has_buf;
  __device__ __forceinline__ void operator()(A &p, A g, A &buf, A &) const {
    if (wd != (A)0) g += wd * p;
    if (has_buf) {
      buf = first ? g : momentum * buf + ((A)1 - dampening) * g;
      g = nesterov ? g + momentum * buf : buf;
    }
    p -= lr * g;
  }
};

// torch.optim.Adam / AdamW: AdamW p *= 1 - lr wd, Adam g += wd p; m += (1 - b1)(g - m)
// (lerp); v = b2 v + (1 - b2) g^2; p -= step_size m / (sqrt(v) / bc2_sqrt + eps).
template <typename A>
struct AdamOp {
  A lr, b1, b2, eps, wd, step_size, bc2_sqrt;
  int adamw;
  __device__ __forceinline__ void operator()(A &p, A g, A &m, A &v) const {
    if (wd != (A)0) {
      if (adamw)
        p *= (A)1 - lr * wd;
      else
        g += wd * p;
    }
    m += ((A)1 - b1) * (g - m);
    v = b2 * v + ((A)1 - b2) * g * g;
    const A denom = m_sqrt(v) / bc2_sqrt + eps;
    p -= step_size * (m / denom);
  }
};

// torch.optim.Adagrad: g += wd p; sum += g^2; p -= clr g / (sqrt(sum) + eps).
template <typename A>
struct AdagradOp {
  A clr, wd, eps;
  __device__ __forceinline__ void operator()(A &p, A g, A &sum, A &) const {
    if (wd != (A)0) g += wd * p;
    sum += g * g;
    p -= clr * (g / (m_sqrt(sum) + eps));
  }
};

// s1 / s2: state arrays of A (s2 may be NULL, then a dummy).
template <typename T, typename Op>
__device__ __forceinline__ void optim_one(const Op &op, T *param, const T *grad,
                                          typename AccT<T>::type *s1, typename AccT<T>::type *s2,
                                          int64_t i) {
  typedef typename AccT<T>::type A;
  A p = to_acc(param[i]), a = s1 ? s1[i] : (A)0, b = s2 ? s2[i] : (A)0;
  op(p, to_acc(grad[i]), a, b);
  param[i] = from_acc<T>(p);
  if (s1) s1[i] = a;
  if (s2) s2[i] = b;
}

template <typename T, typename Op>
__global__ void optim_kernel(Op op, int64_t n, T *param, const T *grad, typename AccT<T>::type *s1,
                             typename AccT<T>::type *s2) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
       i += (int64_t)gridDim.x * blockDim.x)
    optim_one<T, Op>(op, param, grad, s1, s2, i);
}

template <typename T, typename Op>
__global__ void optim_vec_kernel(Op op, int64_t n, T *param, const T *grad,
                                 typename AccT<T>::type *s1, typename AccT<T>::type *s2) {
  typedef typename AccT<T>::type A;
  const int64_t nq = n / 4;
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < nq;
       i += (int64_t)gridDim.x * blockDim.x) {
    Quad<T> pq = reinterpret_cast<Quad<T> *>(param)[i];
    const Quad<T> gq = reinterpret_cast<const Quad<T> *>(grad)[i];
    Quad<A> aq, bq;
    if (s1) aq = reinterpret_cast<Quad<A> *>(s1)[i];
    if (s2) bq = reinterpret_cast<Quad<A> *>(s2)[i];
#pragma unroll
    for (int k = 0; k < 4; k++) {
      A p = to_acc(pq.v[k]), a = s1 ? aq.v[k] : (A)0, b = s2 ? bq.v[k] : (A)0;
      op(p, to_acc(gq.v[k]), a, b);
      pq.v[k] = from_acc<T>(p);
      aq.v[k] = a;
      bq.v[k] = b;
    }
    reinterpret_cast<Quad<T> *>(param)[i] = pq;
    if (s1) reinterpret_cast<Quad<A> *>(s1)[i] = aq;
    if (s2) reinterpret_cast<Quad<A> *>(s2)[i] = bq;
  }
  if (blockIdx.x == 0 && threadIdx.x < n - nq * 4)
    optim_one<T, Op>(op, param, grad, s1, s2, nq * 4 + threadIdx.x);
}

template <typename T, typename Op>
int optim_launch(const Op &op, int impl, int64_t n, void *param, const void *grad, void *s1,
                 void *s2, cudaStream_t st) {
  typedef typename AccT<T>::type A;
  if (n <= 0) return 0;
  const bool aligned = aligned_ptr(param, 4 * sizeof(T)) && aligned_ptr(grad, 4 * sizeof(T)) &&
                       (!s1 || aligned_ptr(s1, 4 * sizeof(A))) &&
                       (!s2 || aligned_ptr(s2, 4 * sizeof(A)));
  if (impl == 2 && aligned)
    DLK_LAUNCH(optim_vec_kernel<T, Op>, grid_for((n + 3) / 4, 256), 256, 0, st)(
        op, n, (T *)param, (const T *)grad, (A *)s1, (A *)s2);
  else
    DLK_LAUNCH(optim_kernel<T, Op>, grid_for(n, 256), 256, 0, st)(op, n, (T *)param, (const T *)grad, (A *)s1, (A *)s2);
  return (int)cudaGetLastError();
}

}  // namespace

extern "C" int dlk_k_sgd_step(const dlk_k_sgd_step_desc *p, int impl, void *ws, void *stream) {
  (void)ws;
  cudaStream_t st = (cudaStream_t)stream;
  const bool has_buf = p->momentum != 0.0;
  if (has_buf && !p->buf) return (int)cudaErrorInvalidValue;
  DLK_DISPATCH_FLOAT(p->dtype, T, {
    typedef typename AccT<T>::type A;
    SgdOp<A> op{(A)p->lr,    (A)p->momentum, (A)p->dampening, (A)p->weight_decay,
                p->nesterov, p->first_step,  has_buf};
    return optim_launch<T>(op, impl, p->n, p->param, p->grad, has_buf ? p->buf : nullptr, nullptr,
                           st);
  });
  return 0;
}

extern "C" int dlk_k_adam_step(const dlk_k_adam_step_desc *p, int impl, void *ws, void *stream) {
  (void)ws;
  cudaStream_t st = (cudaStream_t)stream;
  DLK_DISPATCH_FLOAT(p->dtype, T, {
    typedef typename AccT<T>::type A;
    AdamOp<A> op{(A)p->lr,
                 (A)p->beta1,
                 (A)p->beta2,
                 (A)p->eps,
                 (A)p->weight_decay,
                 (A)p->step_size,
                 (A)p->bias_correction2_sqrt,
                 p->adamw};
    return optim_launch<T>(op, impl, p->n, p->param, p->grad, p->m, p->v, st);
  });
  return 0;
}

extern "C" int dlk_k_adagrad_step(const dlk_k_adagrad_step_desc *p, int impl, void *ws, void *stream) {
  (void)ws;
  cudaStream_t st = (cudaStream_t)stream;
  DLK_DISPATCH_FLOAT(p->dtype, T, {
    typedef typename AccT<T>::type A;
    AdagradOp<A> op{(A)p->clr, (A)p->weight_decay, (A)p->eps};
    return optim_launch<T>(op, impl, p->n, p->param, p->grad, p->sum, nullptr, st);
  });
  return 0;
}
