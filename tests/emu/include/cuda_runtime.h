/* dlk's emulated CUDA device (DLK_CUDA_EMU): the runtime API (C) and, for C++, the device
   side kernels are compiled against (dlk_emu/device.h). */
#ifndef DLK_EMU_CUDA_RUNTIME_H
#define DLK_EMU_CUDA_RUNTIME_H
#include "cuda_runtime_api.h"
#ifdef __cplusplus
#include "dlk_emu/device.h"
#endif
#endif
