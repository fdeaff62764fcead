/*
 * dlk-bench's report helpers: the device peak table, names of the enums, the result
 * array. Shared by dlk-bench and its unit test (bench/test_report.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

/* ---- device peaks ------------------------------------------------------------------------ */

/* Dense (no sparsity) tensor-core peaks at boost clock and HBM bandwidth, from NVIDIA's
   datasheets, where the tensor figures are printed "with sparsity" and dense is half:
     H100: "NVIDIA H100 Tensor Core GPU" datasheet (2023), SXM5 / PCIe / NVL columns.
     H200: "NVIDIA H200 Tensor Core GPU" datasheet (2024), SXM / NVL columns.
     A100: "NVIDIA A100 Tensor Core GPU" datasheet (2021), 40GB/80GB PCIe/SXM columns.
   f32 is the non-tensor-core FP32 rate. GB/s are 1e9 bytes/s. Matched in order on
   substrings of cudaDeviceProp.name, so the specific names come first. */
static const struct {
  const char *match, *label;
  double bf16, f16, tf32, f32, mem_gbs;
} peak_table[] = {
    {"H100 PCIe", "H100 PCIe 80GB", 756.0, 756.0, 378.0, 51.2, 2000.0},
    {"H100 NVL", "H100 NVL 94GB", 835.5, 835.5, 417.5, 60.0, 3900.0},
    {"H100", "H100 SXM5 80GB", 989.4, 989.4, 494.7, 66.9, 3350.0},
    {"H200 NVL", "H200 NVL 141GB", 835.5, 835.5, 417.5, 60.0, 4800.0},
    {"H200", "H200 SXM 141GB", 989.4, 989.4, 494.7, 66.9, 4800.0},
    {"A100-SXM4-80GB", "A100 SXM4 80GB", 312.0, 312.0, 156.0, 19.5, 2039.0},
    {"A100 80GB PCIe", "A100 PCIe 80GB", 312.0, 312.0, 156.0, 19.5, 1935.0},
    {"A100-SXM4-40GB", "A100 SXM4 40GB", 312.0, 312.0, 156.0, 19.5, 1555.0},
    {"A100-PCIE-40GB", "A100 PCIe 40GB", 312.0, 312.0, 156.0, 19.5, 1555.0},
};

void bench_peaks_for(const char *name, int memory_clock_khz, int memory_bus_bits,
                     bench_peaks *out) {
  memset(out, 0, sizeof *out);
  out->bf16 = out->f16 = out->tf32 = out->f32 = out->mem_gbs = NAN;
  for (size_t i = 0; i < sizeof peak_table / sizeof peak_table[0]; i++) {
    if (!strstr(name, peak_table[i].match)) continue;
    snprintf(out->label, sizeof out->label, "%s", peak_table[i].label);
    out->bf16 = peak_table[i].bf16;
    out->f16 = peak_table[i].f16;
    out->tf32 = peak_table[i].tf32;
    out->f32 = peak_table[i].f32;
    out->mem_gbs = peak_table[i].mem_gbs;
    snprintf(out->mem_source, sizeof out->mem_source, "datasheet");
    return;
  }
  /* Unknown GPU: the memory bandwidth from the clock the runtime reports (double data
     rate): 2 * clock * bus bytes. Compute peaks stay unknown. */
  if (memory_clock_khz > 0 && memory_bus_bits > 0) {
    out->mem_gbs = 2.0 * memory_clock_khz * 1e3 * (memory_bus_bits / 8.0) / 1e9;
    snprintf(out->mem_source, sizeof out->mem_source, "memory clock x bus width");
  }
}

double bench_peak_of(const bench_peaks *p, const char *dtype, bench_bound bound) {
  if (bound == BENCH_MEMORY) return p->mem_gbs;
  if (bound != BENCH_COMPUTE) return NAN;
  if (!strcmp(dtype, "bf16")) return p->bf16;
  if (!strcmp(dtype, "f16")) return p->f16;
  if (!strcmp(dtype, "tf32")) return p->tf32;
  if (!strcmp(dtype, "f32")) return p->f32;
  return NAN;
}

const char *bench_bound_name(bench_bound b) {
  switch (b) {
    case BENCH_COMPUTE: return "compute";
    case BENCH_MEMORY: return "memory";
    case BENCH_HOST: return "host";
    default: return "?";
  }
}

const char *bench_outcome_name(bench_outcome o) {
  switch (o) {
    case BENCH_RAN: return "ok";
    case BENCH_NOT_SUPPORTED: return "not_supported";
    case BENCH_FAILED: return "failed";
    default: return "?";
  }
}

bench_result *bench_report_push(bench_report *r) {
  if (r->n == r->cap) {
    int ncap = r->cap ? r->cap * 2 : 64;
    bench_result *nr = realloc(r->results, (size_t)ncap * sizeof *nr);
    if (!nr) return NULL;
    r->results = nr;
    r->cap = ncap;
  }
  bench_result *x = &r->results[r->n++];
  memset(x, 0, sizeof *x);
  x->median_ms = x->min_ms = x->tflops = x->gbs = x->us_per_call = NAN;
  x->peak = x->pct_peak = x->pct_copy = x->x_vendor = x->check_err = NAN;
  return x;
}

void bench_report_free(bench_report *r) {
  free(r->results);
  r->results = NULL;
  r->n = r->cap = 0;
}
