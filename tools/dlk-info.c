/*
 * dlk-info: what this build of dlk is and what it can run here.
 *
 *   dlk version; CUDA runtime and driver, cuBLAS, cuDNN (loaded and built against)
 *   versions; the architectures built; each CUDA device (name, compute capability, SMs,
 *   memory, L2, clocks, whether dlk has kernels for it); and for each op its variants
 *   (id, name, device, description) and whether the present machine can run them.
 *
 * Works without a GPU and in a CPU-only build (says so). Exit status 0 unless a device is
 * present whose properties cannot be read.
 */
#include <stdio.h>
#include <string.h>

#include "dlk.h"

#if DLK_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

/* CUDA runtime/driver: 1000 * major + 10 * minor. */
static void fmt_cuda(char *b, size_t n, int v) {
  if (v <= 0)
    snprintf(b, n, "none");
  else
    snprintf(b, n, "%d.%d", v / 1000, (v % 1000) / 10);
}

/* cuBLAS and cuDNN (>= 9): 10000 * major + 100 * minor + patch. */
static void fmt_lib(char *b, size_t n, int v) {
  if (v <= 0)
    snprintf(b, n, "none");
  else
    snprintf(b, n, "%d.%d.%d", v / 10000, (v % 10000) / 100, v % 100);
}

typedef struct device_row {
  dlk_device_props p;
  int ok;
} device_row;

#define MAX_DEVICES 16

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf(
          "usage: dlk-info\n  Prints dlk's version, the CUDA/cuBLAS/cuDNN versions, the "
          "devices and every op's variants.\n");
      return 0;
    }
    fprintf(stderr, "dlk-info: unknown argument \"%s\" (try --help)\n", argv[i]);
    return 2;
  }
  int rc = 0;
  char b1[32], b2[32], b3[32], b4[32];

  printf("dlk %s\n", dlk_version());
  dlk_versions v;
  if (dlk_query_versions(NULL, &v) != DLK_OK) {
    fprintf(stderr, "dlk-info: dlk_query_versions failed: %s\n", dlk_context_last_error(NULL));
    return 1;
  }
#if DLK_HAVE_CUDA
  const int built_cuda = 1;
#else
  const int built_cuda = 0;
#endif
  printf("\nbuild\n");
  printf("  CUDA support        %s\n", built_cuda ? "yes" : "no (CPU reference only)");
  printf("  architectures       %s\n", v.cuda_archs && v.cuda_archs[0] ? v.cuda_archs : "none");
  fmt_cuda(b1, sizeof b1, v.cuda_runtime);
  fmt_cuda(b2, sizeof b2, v.cuda_driver);
  printf("  CUDA runtime        %s\n", b1);
  printf("  CUDA driver         %s%s\n", b2,
         built_cuda && v.cuda_driver <= 0 ? " (no NVIDIA driver loaded)" : "");
  fmt_lib(b3, sizeof b3, v.cublas);
  printf("  cuBLAS              %s\n", b3);
  fmt_lib(b3, sizeof b3, v.cudnn);
  fmt_lib(b4, sizeof b4, v.cudnn_built);
  printf("  cuDNN               %s loaded, %s built against%s\n", b3, b4,
         v.cudnn_built > 0 && v.cudnn > 0 && v.cudnn / 10000 != v.cudnn_built / 10000
             ? " (MAJOR VERSIONS DIFFER)"
             : "");

  /* Devices. */
  int ndev = 0;
  dlk_device_count(NULL, &ndev);
  device_row dev[MAX_DEVICES];
  int any_supported = 0;
  printf("\ndevices\n");
  if (ndev == 0)
    printf("  no CUDA device%s: every op runs its CPU reference\n",
           built_cuda ? " (or no driver)" : " (built without CUDA)");
  for (int i = 0; i < ndev && i < MAX_DEVICES; i++) {
    dev[i].ok = dlk_device_properties(NULL, i, &dev[i].p) == DLK_OK;
    if (!dev[i].ok) {
      printf("  cuda:%d  properties unreadable: %s\n", i, dlk_context_last_error(NULL));
      rc = 1;
      continue;
    }
    const dlk_device_props *p = &dev[i].p;
    any_supported |= p->supported;
    printf("  cuda:%d  %s\n", i, p->name);
    printf("          compute capability %d.%d, %d SMs, %.1f GiB, SM clock %.0f MHz\n",
           p->compute_major, p->compute_minor, p->sm_count,
           (double)p->total_memory / (1024.0 * 1024 * 1024), p->clock_khz / 1e3);
    if (p->memory_clock_khz > 0 && p->memory_bus_bits > 0)
      /* Double data rate: 2 transfers per clock on a bus of memory_bus_bits. */
      printf("          memory %d-bit at %.0f MHz: %.0f GB/s theoretical\n", p->memory_bus_bits,
             p->memory_clock_khz / 1e3,
             2.0 * p->memory_clock_khz * 1e3 * (p->memory_bus_bits / 8.0) / 1e9);
#if DLK_HAVE_CUDA
    int l2 = 0, smem = 0;
    if (cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, i) == cudaSuccess &&
        cudaDeviceGetAttribute(&smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, i) == cudaSuccess)
      printf("          L2 %.0f MiB, shared memory per block up to %d KiB\n", l2 / (1024.0 * 1024),
             smem / 1024);
    cudaGetLastError();
#endif
    printf("          dlk kernels: %s\n",
           p->supported ? "yes"
                        : "NO: this build has no SASS or PTX for it (rebuild with "
                          "-DDLK_CUDA_ARCHS=<its compute capability>)");
  }

  /* Ops and variants. */
  int nops = 0;
  dlk_op_count(NULL, &nops);
  printf(
      "\nops (%d) and their variants: id, name, device, whether this machine can run it (a "
      "variant may still decline a shape: dlk_explain_mode says why), description\n",
      nops);
  for (int i = 0; i < nops; i++) {
    const char *name = NULL;
    if (dlk_op_name(NULL, i, &name) != DLK_OK) continue;
    dlk_variant_info info[64];
    int count = 0;
    if (dlk_op_variants(NULL, name, info, 64, &count) != DLK_OK) {
      printf("  %s: %s\n", name, dlk_context_last_error(NULL));
      continue;
    }
    printf("  %s\n", name);
    for (int k = 0; k < count && k < 64; k++) {
      const char *here;
      if (info[k].device == DLK_CPU)
        here = "yes";
      else if (!built_cuda)
        here = "no: built without CUDA";
      else if (ndev == 0)
        here = "no: no CUDA device";
      else if (!any_supported)
        here = "no: no device this build has kernels for";
      else
        here = "yes";
      printf("    %2d %-18s %-4s  %-30s %s\n", info[k].id, info[k].name,
             dlk_device_type_name(info[k].device), here, info[k].description);
    }
  }
  return rc;
}
