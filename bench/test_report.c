/*
 * Unit test of dlk-bench's report side: the peak table lookup, the JSON writer and reader
 * (a round trip of every field, NaN as null, escaped strings, and files it must refuse),
 * and the SVG plot (one panel per case, the vendor bar hatched, unsupported variants
 * shown with their reason). Runs on the CPU, no GPU needed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report.h"
#include "tests/check.h"

static void test_peaks(void) {
  t_case = "peaks";
  bench_peaks p;
  bench_peaks_for("NVIDIA H100 80GB HBM3", 0, 0, &p);
  CHECK(!strcmp(p.label, "H100 SXM5 80GB"), "SXM name gave \"%s\"", p.label);
  CHECK(p.bf16 == 989.4 && p.mem_gbs == 3350.0, "SXM peaks %g %g", p.bf16, p.mem_gbs);
  bench_peaks_for("NVIDIA H100 PCIe", 0, 0, &p);
  CHECK(!strcmp(p.label, "H100 PCIe 80GB") && p.mem_gbs == 2000.0, "PCIe gave \"%s\"", p.label);
  bench_peaks_for("NVIDIA H200 NVL", 0, 0, &p);
  CHECK(!strcmp(p.label, "H200 NVL 141GB"), "H200 NVL gave \"%s\"", p.label);
  bench_peaks_for("NVIDIA H200", 0, 0, &p);
  CHECK(!strcmp(p.label, "H200 SXM 141GB") && p.mem_gbs == 4800.0, "H200 gave \"%s\"", p.label);
  bench_peaks_for("NVIDIA A100-SXM4-40GB", 0, 0, &p);
  CHECK(p.mem_gbs == 1555.0 && p.tf32 == 156.0, "A100 40GB %g %g", p.mem_gbs, p.tf32);
  /* Unknown GPU: bandwidth from the clock, 2 * 2619 MHz * 640 bytes = 3352 GB/s. */
  bench_peaks_for("Some Future GPU", 2619000, 5120, &p);
  CHECK(p.label[0] == '\0' && isnan(p.bf16), "unknown GPU has no compute peak");
  CHECK(fabs(p.mem_gbs - 3352.32) < 0.01, "bandwidth from the clock: %g", p.mem_gbs);
  bench_peaks_for("cpu", 0, 0, &p);
  CHECK(isnan(p.mem_gbs), "no clock, no bandwidth");
  bench_peaks_for("NVIDIA H100 80GB HBM3", 0, 0, &p);
  CHECK(bench_peak_of(&p, "tf32", BENCH_COMPUTE) == 494.7, "tf32 peak");
  CHECK(bench_peak_of(&p, "bf16", BENCH_MEMORY) == 3350.0, "memory peak for any dtype");
  CHECK(isnan(bench_peak_of(&p, "f32", BENCH_HOST)), "host cases have no peak");
}

/* A report like a GPU run's: a memory case with the copy, a GEMM with a vendor and an
   unsupported variant, a host case. */
static void make_report(bench_report *r) {
  memset(r, 0, sizeof *r);
  snprintf(r->device, sizeof r->device, "NVIDIA H100 80GB HBM3");
  r->gpu = 1;
  snprintf(r->date, sizeof r->date, "2026-01-02T03:04:05Z");
  snprintf(r->commit, sizeof r->commit, "abc123-dirty");
  snprintf(r->dlk_version, sizeof r->dlk_version, "0.1.0");
  r->versions.cuda_runtime = 13000;
  r->versions.cublas = 130100;
  r->versions.cudnn = 91900;
  r->versions.cudnn_built = 91900;
  snprintf(r->cuda_archs, sizeof r->cuda_archs, "90a");
  bench_peaks_for(r->device, 0, 0, &r->peaks);
  r->copy_gbs = 2950.5;
  snprintf(r->copy_source, sizeof r->copy_source, "copy cudaMemcpyAsync");
  static const struct {
    const char *name, *shape, *dtype, *vname;
    bench_bound bound;
    int variant;
    bench_outcome outcome;
    double ms;
  } rows[] = {
      {"copy", "32768x4096", "f32", "cudaMemcpyAsync", BENCH_MEMORY, 10, BENCH_RAN, 0.36},
      {"gemm", "4096x4096x4096", "bf16", "simple", BENCH_COMPUTE, 1, BENCH_RAN, 2.5},
      {"gemm", "4096x4096x4096", "bf16", "tiled_tc", BENCH_COMPUTE, 3, BENCH_NOT_SUPPORTED, NAN},
      {"gemm", "4096x4096x4096", "bf16", "cublas", BENCH_COMPUTE, 10, BENCH_RAN, 0.18},
      {"dispatch", "noop,cache-hit", "f32", "dlk_dispatch", BENCH_HOST, 0, BENCH_RAN, 15.0},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    bench_result *x = bench_report_push(r);
    if (!x) return;
    snprintf(x->family, sizeof x->family, "%s", i == 1 || i == 2 || i == 3 ? "nn" : "core");
    snprintf(x->name, sizeof x->name, "%s", rows[i].name);
    snprintf(x->shape, sizeof x->shape, "%s", rows[i].shape);
    snprintf(x->dtype, sizeof x->dtype, "%s", rows[i].dtype);
    snprintf(x->op, sizeof x->op, "%s", rows[i].bound == BENCH_COMPUTE ? "gemm" : "");
    snprintf(x->variant_name, sizeof x->variant_name, "%s", rows[i].vname);
    x->bound = rows[i].bound;
    x->variant = rows[i].variant;
    x->vendor = rows[i].variant >= 10;
    x->outcome = rows[i].outcome;
    x->runs = x->outcome == BENCH_RAN ? 20 : 0;
    x->median_ms = rows[i].ms;
    x->min_ms = rows[i].ms * 0.97;
    x->calls = x->bound == BENCH_HOST ? 50000 : 1;
    x->target_us = x->bound == BENCH_HOST ? 2.0 : 0;
    if (x->bound == BENCH_COMPUTE) {
      x->flops = 2.0 * 4096 * 4096 * 4096;
      if (x->outcome == BENCH_RAN) {
        x->tflops = x->flops / (x->median_ms * 1e-3) / 1e12;
        x->peak = 989.4;
        x->pct_peak = x->tflops / x->peak;
        x->x_vendor = 0.18 / x->median_ms;
        x->check_err = x->variant == 1 ? 0 : 2.5e-3;
      }
    } else if (x->bound == BENCH_MEMORY) {
      x->bytes = 2.0 * 32768 * 4096 * 4;
      x->gbs = x->bytes / (x->median_ms * 1e-3) / 1e9;
      x->pct_copy = x->gbs / r->copy_gbs;
    } else {
      x->us_per_call = x->median_ms * 1e3 / x->calls;
    }
    if (x->outcome == BENCH_NOT_SUPPORTED)
      snprintf(x->reason, sizeof x->reason,
               "gemm/tiled_tc (forced): K \"4095\"\nnot a multiple of 8 \\ <&>");
  }
}

static int same_num(double a, double b) {
  return (isnan(a) && isnan(b)) || a == b || fabs(a - b) <= 1e-8 * fabs(b);
}

static void test_json(const char *dir) {
  t_case = "json";
  char path[512], err[256];
  snprintf(path, sizeof path, "%s/report.json", dir);
  bench_report a, b;
  make_report(&a);
  CHECK(bench_json_write(&a, path, err, sizeof err) == 0, "write: %s", err);
  CHECK(bench_json_read(&b, path, err, sizeof err) == 0, "read: %s", err);
  CHECK(!strcmp(a.device, b.device) && a.gpu == b.gpu && !strcmp(a.commit, b.commit) &&
            !strcmp(a.date, b.date) && !strcmp(a.cuda_archs, b.cuda_archs),
        "header differs after the round trip");
  CHECK(a.versions.cublas == b.versions.cublas && a.versions.cudnn == b.versions.cudnn,
        "versions differ");
  CHECK(!strcmp(a.peaks.label, b.peaks.label) && same_num(a.peaks.tf32, b.peaks.tf32) &&
            same_num(a.copy_gbs, b.copy_gbs),
        "peaks or copy bandwidth differ");
  CHECK(a.n == b.n, "%d results written, %d read", a.n, b.n);
  for (int i = 0; i < a.n && i < b.n; i++) {
    const bench_result *x = &a.results[i], *y = &b.results[i];
    CHECK(!strcmp(x->name, y->name) && !strcmp(x->shape, y->shape) && !strcmp(x->dtype, y->dtype) &&
              !strcmp(x->family, y->family) && !strcmp(x->variant_name, y->variant_name) &&
              !strcmp(x->reason, y->reason),
          "result %d: strings differ (reason \"%s\" vs \"%s\")", i, x->reason, y->reason);
    CHECK(x->bound == y->bound && x->variant == y->variant && x->vendor == y->vendor &&
              x->outcome == y->outcome && x->runs == y->runs && x->check_bad == y->check_bad,
          "result %d: enums or ints differ", i);
    CHECK(same_num(x->median_ms, y->median_ms) && same_num(x->min_ms, y->min_ms) &&
              same_num(x->tflops, y->tflops) && same_num(x->gbs, y->gbs) &&
              same_num(x->us_per_call, y->us_per_call) && same_num(x->pct_peak, y->pct_peak) &&
              same_num(x->pct_copy, y->pct_copy) && same_num(x->x_vendor, y->x_vendor) &&
              same_num(x->check_err, y->check_err) && same_num(x->flops, y->flops) &&
              same_num(x->bytes, y->bytes),
          "result %d: numbers differ (median %.17g vs %.17g)", i, x->median_ms, y->median_ms);
  }
  bench_report_free(&b);

  /* Files the reader must refuse, each with a message. */
  static const char *bad[] = {
      "",                                                                     /* empty */
      "{\"dlk_bench\": 1, \"results\": [",                                    /* truncated */
      "{\"something\": \"else\"}",                                            /* not ours */
      "{\"dlk_bench\": 1}",                                                   /* no results */
      "{\"dlk_bench\": 1, \"results\": [{\"case\": \"x\" \"shape\": 1}]}",    /* missing comma */
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]", /* too deep */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    FILE *f = fopen(path, "w");
    if (!f) break;
    fputs(bad[i], f);
    fclose(f);
    err[0] = '\0';
    CHECK(bench_json_read(&b, path, err, sizeof err) != 0 && err[0], "bad file %zu accepted", i);
  }
  snprintf(path, sizeof path, "%s/does-not-exist.json", dir);
  CHECK(bench_json_read(&b, path, err, sizeof err) != 0, "a missing file is an error");
  bench_report_free(&a);
}

static int count(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

static void test_plot(const char *dir) {
  t_case = "plot";
  char path[512], err[256];
  snprintf(path, sizeof path, "%s/report.svg", dir);
  bench_report r;
  make_report(&r);
  CHECK(bench_plot_svg(&r, path, err, sizeof err) == 0, "plot: %s", err);
  FILE *f = fopen(path, "rb");
  CHECK(f != NULL, "no SVG written");
  if (f) {
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    CHECK(!strncmp(buf, "<svg ", 5) && n > 7 && !strcmp(buf + n - 7, "</svg>\n"),
          "not a complete SVG document");
    /* Panels are the only rounded rectangles: one per case (copy, gemm, dispatch). */
    CHECK(count(buf, "rx=\"6\"") == 3, "%d panels, want 3", count(buf, "rx=\"6\""));
    CHECK(count(buf, "fill=\"url(#hatch)\"") == 3,
          "%d hatched rects, want 3: the copy and gemm "
          "vendor bars and the legend's swatch",
          count(buf, "fill=\"url(#hatch)\""));
    CHECK(strstr(buf, ">n/s<") != NULL, "unsupported variant shown as n/s");
    CHECK(strstr(buf, "not a multiple of 8 \\ &lt;&amp;&gt;") != NULL,
          "reason escaped in the tooltip");
    CHECK(strstr(buf, "peak") && strstr(buf, "copy") && strstr(buf, "target"),
          "reference lines named");
    CHECK(strstr(buf, "H100 SXM5 80GB") != NULL, "peaks source named");
    CHECK(!strstr(buf, "\"nan") && !strstr(buf, "\"-nan") && !strstr(buf, ">nan") &&
              !strstr(buf, "\"inf") && !strstr(buf, ">inf") && !strstr(buf, " nan"),
          "a NaN or inf leaked into the SVG");
  }
  bench_report_free(&r);
  bench_report empty;
  memset(&empty, 0, sizeof empty);
  CHECK(bench_plot_svg(&empty, path, err, sizeof err) != 0, "an empty report is refused");
}

int main(void) {
  char dir[] = "/tmp/dlk-bench-test-XXXXXX";
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_peaks();
  test_json(dir);
  test_plot(dir);
  char p[600];
  snprintf(p, sizeof p, "%s/report.json", dir);
  remove(p);
  snprintf(p, sizeof p, "%s/report.svg", dir);
  remove(p);
  rmdir(dir);
  return t_summary("test_bench_report");
}
