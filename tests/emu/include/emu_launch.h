// The emulated device's side of kernels/common.cuh's launch and shared-memory macros
// (common.cuh includes this file under DLK_CUDA_EMU instead of defining them for nvcc):
//   DLK_LAUNCH(kernel, grid, block, smem, stream)(args...)
//       runs the whole grid on the CPU before it returns (tests/emu/runtime.cpp); the
//       launch text names the kernel in reports and in the coverage list (the part before
//       the first top-level comma, template arguments dropped).
//   DLK_DYNAMIC_SHARED(T, name); / DLK_DYNAMIC_SHARED(T, name, align);
//       T *name pointing at the block's dynamic shared memory (1024-byte aligned, sized by
//       the launch: ASan sees accesses past it).
#ifndef DLK_EMU_LAUNCH_H
#define DLK_EMU_LAUNCH_H
#include "dlk_emu/device.h"

#define DLK_LAUNCH(...) ::dlk_emu::make_launcher(#__VA_ARGS__, __VA_ARGS__)
#define DLK_DYNAMIC_SHARED_2(T, name) T *name = static_cast<T *>(::dlk_emu::dynamic_smem())
#define DLK_DYNAMIC_SHARED_3(T, name, align) DLK_DYNAMIC_SHARED_2(T, name)
#define DLK_DYNAMIC_SHARED_PICK(a, b, c, which, ...) which
#define DLK_DYNAMIC_SHARED(...) \
  DLK_DYNAMIC_SHARED_PICK(__VA_ARGS__, DLK_DYNAMIC_SHARED_3, DLK_DYNAMIC_SHARED_2, _)(__VA_ARGS__)
#endif  // DLK_EMU_LAUNCH_H
