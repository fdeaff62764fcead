/*
 * dlk-bench's own side: one result per (case, variant), the report they make up, the
 * device peak table, and the JSON writer/reader and SVG plot over a report. Family files
 * do not need this header (they include bench.h).
 */
#ifndef DLK_BENCH_REPORT_H
#define DLK_BENCH_REPORT_H

#include <stdio.h>

#include "bench.h"

typedef enum bench_outcome {
  BENCH_RAN = 0,
  BENCH_NOT_SUPPORTED, /* the variant said no; reason holds why */
  BENCH_FAILED,        /* any other error; reason holds the message */
  BENCH_OUTCOME_COUNT
} bench_outcome;

typedef struct bench_result {
  char family[16], name[48], shape[64], dtype[8], op[48];
  bench_bound bound;
  double flops, bytes, calls, target_us;
  int variant;
  char variant_name[48];
  int vendor; /* id in 10..19 */
  bench_outcome outcome;
  char reason[320];
  int runs;
  double median_ms, min_ms; /* per run */
  /* Derived (NAN when not meaningful or unknown). */
  double tflops, gbs, us_per_call;
  double peak;      /* what pct_peak divides by: TFLOP/s, GB/s, or the target in us */
  double pct_peak;  /* achieved / peak (for BENCH_HOST: target / achieved) */
  double pct_copy;  /* BENCH_MEMORY: GB/s / measured copy GB/s */
  double x_vendor;  /* best vendor median / this median (> 1: faster than the vendor) */
  double check_err; /* max |out - first variant's out| / max(1, max |first|); NAN: none */
  int check_bad;    /* check_err above the dtype's tolerance */
} bench_result;

/* Dense peaks at boost clock. */
typedef struct bench_peaks {
  char label[64];              /* "H100 SXM5 80GB" or "" when the device is not in the table */
  double bf16, f16, tf32, f32; /* TFLOP/s, NAN when unknown */
  double mem_gbs;              /* GB/s (1e9 B/s), NAN when unknown */
  char mem_source[64];         /* "datasheet" or "memory clock x bus width" */
} bench_peaks;

typedef struct bench_report {
  char device[256];
  int gpu;
  int quick;
  char date[32];   /* ISO 8601 UTC */
  char commit[48]; /* git commit at build time or "unknown" */
  char dlk_version[16];
  dlk_versions versions;
  char cuda_archs[64];
  bench_peaks peaks;
  double copy_gbs; /* measured device copy bandwidth (bytes read + written per second) */
  char copy_source[112];
  bench_result *results;
  int n, cap;
} bench_report;

/* The row of the peak table for a device name (cc and the memory clock/bus for the
   fallback); fills `out` (label "" and NANs when unknown). */
void bench_peaks_for(const char *device_name, int memory_clock_khz, int memory_bus_bits,
                     bench_peaks *out);
/* The peak a result is rated against (NAN when unknown). */
double bench_peak_of(const bench_peaks *p, const char *dtype, bench_bound bound);

const char *bench_bound_name(bench_bound b);
const char *bench_outcome_name(bench_outcome o);

/* JSON: write the report; read one back (only files written by bench_json_write: the
   parser is a small general JSON reader, unknown keys are ignored). Return 0 on success;
   on failure write the reason to err. */
int bench_json_write(const bench_report *r, const char *path, char *err, size_t err_len);
int bench_json_read(bench_report *r, const char *path, char *err, size_t err_len);

/* SVG: one panel per case, a bar per variant. Returns 0 on success. */
int bench_plot_svg(const bench_report *r, const char *path, char *err, size_t err_len);

/* Append a result (grows the array); returns NULL when out of memory. */
bench_result *bench_report_push(bench_report *r);
void bench_report_free(bench_report *r);

#endif /* DLK_BENCH_REPORT_H */
