/* nn family: argument checks and dispatch. */
#include "internal.h"

const dlk_op *const dlk_nn_ops[] = {NULL};
