// dlk emulated CUDA device: host implementation of the CUB call (see ../dlk_emu_cub.cuh).
#include "../dlk_emu_cub.cuh"
