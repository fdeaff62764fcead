# DLK_CUDA_EMU=ON: libdlk with every CUDA code path compiled (DLK_HAVE_CUDA=1) against the
# emulated device of tests/emu instead of the CUDA toolkit: kernels/**/*.cu compiled as C++17
# by the host C++ compiler with tests/emu/include first on the include path (common.cuh then
# takes DLK_LAUNCH and DLK_DYNAMIC_SHARED from tests/emu/include/emu_launch.h), linked with
# the emulator's runtime (tests/emu/runtime.cpp). No nvcc, no GPU, no CUDA toolkit needed.
#   - Vendor rows (cuBLAS, cuBLASLt, cuDNN) stay in the op tables: the family files are
#     compiled with DLK_HAVE_CUDNN=1 (DLK_EMU_OBJECT_CUDNN), their implementation files
#     (host/cublas/, host/cudnn/, host/*/*_cudnn.c, host/*/*_cublas.c) are left out, and
#     tests/emu/vendor_stubs.c gives rows that refuse every case ("not in the emulated
#     build"). DLK_HAVE_CUDNN stays 0 for everything else (tests, tools: no cuDNN to call).
#   - Kernel files that are inline PTX through and through (DLK_EMU_PTX_ONLY) are not
#     compiled; tests/emu/ptx_stubs.cpp gives their entry points, which refuse ("needs a
#     real GPU (inline PTX)"). Kernels with some inline PTX guard it with
#     #if !defined(DLK_CUDA_EMU).
#   - DLK_EMU_RACECHECK (default ON, off under DLK_SANITIZE): the kernels are instrumented
#     for the shared-memory race check that DLK_EMU_RACECHECK=1 turns on at run time.
# Sets DLK_HAVE_CUDA, DLK_HAVE_CUDNN, DLK_HAVE_SM90A, DLK_EMU_OBJECT_CUDNN, DLK_EMU_SOURCES,
# DLK_EMU_KERNEL_SOURCES, DLK_EMU_VENDOR_REGEX, DLK_EMU_INCLUDE_DIR, DLK_EMU_DEFS,
# DLK_EMU_KERNEL_FLAGS, and the CUDA::cudart interface target the tools link.
enable_language(CXX)
set(CMAKE_CXX_STANDARD 17)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
option(DLK_EMU_RACECHECK "Emulated build: instrument the kernels for DLK_EMU_RACECHECK=1" ON)
# The case set of the emulated --gpu tests (DLK_TEST_QUICK): 2 every case but the big ones in
# every dtype, 1 a few f32/f16 cases (an ASan build's budget).
set(DLK_EMU_TEST_QUICK 2 CACHE STRING "DLK_TEST_QUICK for the emulated --gpu tests (1 or 2)")

set(DLK_HAVE_CUDA 1)
set(DLK_HAVE_CUDNN 0)
set(DLK_EMU_OBJECT_CUDNN 1)
set(DLK_HAVE_SM90A 0)
# Host files replaced by tests/emu/vendor_stubs.c.
set(DLK_EMU_VENDOR_REGEX "/host/(cublas|cudnn)/|/host/[^/]+/[^/]+_(cudnn|cublas)\\.c$")
set(DLK_EMU_INCLUDE_DIR ${CMAKE_CURRENT_SOURCE_DIR}/tests/emu/include)
# Wholly inline-PTX kernel files (their launchers come from ptx_stubs.cpp).
set(DLK_EMU_PTX_ONLY kernels/nn/gemm_sm90.cu kernels/attention/sdpa_sm90.cu)

file(GLOB DLK_EMU_KERNEL_SOURCES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/kernels/*/*.cu)
foreach(_p IN LISTS DLK_EMU_PTX_ONLY)
  list(REMOVE_ITEM DLK_EMU_KERNEL_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${_p})
endforeach()
set_source_files_properties(${DLK_EMU_KERNEL_SOURCES} PROPERTIES LANGUAGE CXX)
set(DLK_EMU_SOURCES ${DLK_EMU_KERNEL_SOURCES} tests/emu/runtime.cpp tests/emu/ptx_stubs.cpp
    tests/emu/vendor_stubs.c)

# nvcc's #pragma unroll means nothing to the host compiler (and GCC cannot silence it with a
# diagnostic pragma in a header).
set(DLK_EMU_KERNEL_FLAGS -Wno-unknown-pragmas)
set(DLK_EMU_DEFS DLK_CUDA_EMU=1)
if(DLK_EMU_RACECHECK AND NOT DLK_SANITIZE)
  # GCC's outline address-sanitizer instrumentation, kernel mode: every load/store of the
  # kernels becomes a call to __asan_{load,store}N_noabort, which runtime.cpp implements
  # (no sanitizer runtime is linked). Stack and globals are not instrumented.
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    message(FATAL_ERROR "DLK_EMU_RACECHECK needs GCC (or set -DDLK_EMU_RACECHECK=OFF)")
  endif()
  list(APPEND DLK_EMU_KERNEL_FLAGS -fsanitize=kernel-address --param=asan-instrumentation-with-call-threshold=0
      --param=asan-stack=0 --param=asan-globals=0)
  list(APPEND DLK_EMU_DEFS DLK_EMU_RACECHECK_BUILD=1)
endif()
set_source_files_properties(${DLK_EMU_KERNEL_SOURCES} PROPERTIES COMPILE_OPTIONS "${DLK_EMU_KERNEL_FLAGS}")
# ptx_stubs.cpp includes the kernels' headers (their #pragma unroll), and is no kernel.
set_source_files_properties(tests/emu/ptx_stubs.cpp PROPERTIES COMPILE_OPTIONS -Wno-unknown-pragmas)

# Tools and benches link CUDA::cudart for the runtime API: here, the emulator's headers (the
# functions are in libdlk).
if(NOT TARGET CUDA::cudart)
  add_library(CUDA::cudart INTERFACE IMPORTED)
  set_target_properties(CUDA::cudart PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${DLK_EMU_INCLUDE_DIR}
    INTERFACE_COMPILE_DEFINITIONS DLK_CUDA_EMU=1)
endif()
message(STATUS "dlk: emulated CUDA device (DLK_CUDA_EMU): kernels compiled as C++ by "
               "${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}; racecheck instrumentation "
               "${DLK_EMU_RACECHECK}")
