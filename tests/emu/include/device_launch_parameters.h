/* dlk's emulated CUDA device: threadIdx and friends come with cuda_runtime.h. */
#include "cuda_runtime.h"
