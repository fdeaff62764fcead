# FindCUDNN: cuDNN >= 9 (header cudnn.h, library libcudnn, version from cudnn_version.h).
#
# Looks, in order, in CUDNN_ROOT (CMake or environment variable), the CUDA toolkit, the
# usual system folders, and the `nvidia-cudnn-cu13` / `-cu12` pip package of the python3
# on PATH (where the GPU machines keep cuDNN: <site-packages>/nvidia/cudnn/{include,lib}).
#
# Defines CUDNN_FOUND, CUDNN_INCLUDE_DIR, CUDNN_LIBRARY, CUDNN_LIBRARY_DIR, CUDNN_VERSION
# and the imported target CUDNN::cudnn.

set(_cudnn_hints)
foreach(_r IN ITEMS "${CUDNN_ROOT}" "$ENV{CUDNN_ROOT}")
  if(_r)
    list(APPEND _cudnn_hints "${_r}")
  endif()
endforeach()
if(CUDAToolkit_LIBRARY_ROOT)
  list(APPEND _cudnn_hints "${CUDAToolkit_LIBRARY_ROOT}")
endif()
if(CUDAToolkit_INCLUDE_DIRS)
  foreach(_d IN LISTS CUDAToolkit_INCLUDE_DIRS)
    get_filename_component(_p "${_d}" DIRECTORY)
    list(APPEND _cudnn_hints "${_p}")
  endforeach()
endif()

find_program(_cudnn_python NAMES python3 python)
if(_cudnn_python)
  execute_process(
    COMMAND "${_cudnn_python}" -c
            "import nvidia.cudnn as m; print(list(m.__path__)[0])"
    OUTPUT_VARIABLE _cudnn_pip ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE
    RESULT_VARIABLE _cudnn_pip_rc)
  if(_cudnn_pip_rc EQUAL 0 AND _cudnn_pip)
    list(APPEND _cudnn_hints "${_cudnn_pip}")
  endif()
endif()

find_path(CUDNN_INCLUDE_DIR NAMES cudnn_version.h
  HINTS ${_cudnn_hints} PATH_SUFFIXES include
  PATHS /usr/local/cuda /usr/include /usr/local/include)
# The library from the prefix whose header was found first (a header of one cuDNN with the
# library of another would report one version and run another), each folder tried for
# both names before the next (NAMES_PER_DIR): the pip package ships only libcudnn.so.9,
# and without it an unversioned libcudnn.so anywhere later on the path would win.
set(_cudnn_lib_hints)
if(CUDNN_INCLUDE_DIR)
  get_filename_component(_p "${CUDNN_INCLUDE_DIR}" DIRECTORY)
  list(APPEND _cudnn_lib_hints "${_p}")
endif()
find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 NAMES_PER_DIR
  HINTS ${_cudnn_lib_hints} ${_cudnn_hints} PATH_SUFFIXES lib lib64 lib/x64
  PATHS /usr/local/cuda /usr/lib/x86_64-linux-gnu)

set(CUDNN_VERSION "")
if(CUDNN_INCLUDE_DIR AND EXISTS "${CUDNN_INCLUDE_DIR}/cudnn_version.h")
  file(STRINGS "${CUDNN_INCLUDE_DIR}/cudnn_version.h" _v REGEX "#define CUDNN_(MAJOR|MINOR|PATCHLEVEL) +[0-9]+")
  string(REGEX REPLACE ".*CUDNN_MAJOR +([0-9]+).*" "\\1" _maj "${_v}")
  string(REGEX REPLACE ".*CUDNN_MINOR +([0-9]+).*" "\\1" _min "${_v}")
  string(REGEX REPLACE ".*CUDNN_PATCHLEVEL +([0-9]+).*" "\\1" _pat "${_v}")
  set(CUDNN_VERSION "${_maj}.${_min}.${_pat}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(CUDNN
  REQUIRED_VARS CUDNN_LIBRARY CUDNN_INCLUDE_DIR
  VERSION_VAR CUDNN_VERSION
  FAIL_MESSAGE "cuDNN not found: set CUDNN_ROOT to a folder with include/cudnn.h and lib/libcudnn.so (dlk builds without its cuDNN variants)")

if(CUDNN_FOUND)
  get_filename_component(CUDNN_LIBRARY_DIR "${CUDNN_LIBRARY}" DIRECTORY)
  if(NOT TARGET CUDNN::cudnn)
    add_library(CUDNN::cudnn UNKNOWN IMPORTED)
    set_target_properties(CUDNN::cudnn PROPERTIES
      IMPORTED_LOCATION "${CUDNN_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${CUDNN_INCLUDE_DIR}")
  endif()
endif()
mark_as_advanced(CUDNN_INCLUDE_DIR CUDNN_LIBRARY)
