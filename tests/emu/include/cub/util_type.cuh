#include "dlk_emu_cub.cuh"
