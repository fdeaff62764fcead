/*
 * dlk-bench --plot FILE.svg: a plain SVG written by hand (no library).
 *
 * One panel per case (small multiples, grouped by family), one bar per variant: the
 * achieved TFLOP/s (compute-bound), GB/s (memory-bound) or microseconds per call (host
 * overhead, lower is better). Horizontal lines give what the bars are judged against:
 * the device's datasheet peak (red dashes), the copy bandwidth dlk-bench measured (blue
 * dots, memory-bound cases), the target (green dash-dot, host cases). The vendor's bar
 * (cuBLAS, cuDNN, cudaMemcpy) is hatched and outlined, and every other bar is labelled
 * with its ratio to it. A variant that does not support the case leaves a labelled gap
 * ("n/s"; the reason is the SVG tooltip).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

#define W 1240      /* page width */
#define COLS 4      /* panels per row */
#define MARGIN 24   /* page margin */
#define GAP 18      /* between panels */
#define PANEL_H 262 /* panel height */
#define PLOT_L 54   /* inside a panel: room for the y axis labels */
#define PLOT_R 50   /* right gutter: the labels of the reference lines */
#define PLOT_T 46   /* room for the title lines */
#define PLOT_B 70   /* room for the rotated variant names */
#define FONT "DejaVu Sans, Helvetica, Arial, sans-serif"

static void put_esc(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      default: fputc(*s, f);
    }
  }
}

/* Bar colours by variant id: grey CPU reference, blues for the hand-written CUDA ladder
   (darker = higher id), oranges for the vendor libraries, greens for optimised CPU. */
static const char *bar_colour(int id) {
  static const char *blues[] = {"#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b"};
  static const char *oranges[] = {"#fd8d3c", "#e6550d", "#a63603"};
  static const char *greens[] = {"#74c476", "#31a354", "#006d2c"};
  if (id <= 0) return "#969696";
  if (id < 10) return blues[(id - 1) % 6];
  if (id < 20) return oranges[(id - 10) % 3];
  return greens[(id - 20) % 3];
}

/* A "nice" axis step (1, 2 or 5 times a power of ten) giving about `ticks` intervals. */
static double nice_step(double max, int ticks) {
  double raw = max / ticks, p = pow(10, floor(log10(raw))), m = raw / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void fmt_val(char *b, size_t n, double v) {
  if (!isfinite(v))
    snprintf(b, n, "-");
  else if (v >= 1000)
    snprintf(b, n, "%.0f", v);
  else if (v >= 100)
    snprintf(b, n, "%.0f", v);
  else if (v >= 10)
    snprintf(b, n, "%.1f", v);
  else if (v >= 1)
    snprintf(b, n, "%.2f", v);
  else
    snprintf(b, n, "%.3g", v);
}

/* The value a result is drawn at, in the panel's unit. */
static double bar_value(const bench_report *r, const bench_result *x) {
  if (x->outcome != BENCH_RAN) return NAN;
  switch (x->bound) {
    case BENCH_COMPUTE: return r->gpu ? x->tflops : x->tflops * 1e3; /* CPU: GFLOP/s */
    case BENCH_MEMORY: return x->gbs;
    case BENCH_HOST: return x->us_per_call;
    default: return NAN;
  }
}

static const char *unit_of(const bench_report *r, bench_bound b) {
  if (b == BENCH_COMPUTE) return r->gpu ? "TFLOP/s" : "GFLOP/s";
  return b == BENCH_MEMORY ? "GB/s" : "\xc2\xb5s per call";
}

typedef struct ref_line {
  double v;
  const char *name;
  const char *value;
  const char *colour;
  const char *dash;
} ref_line;

static void panel(FILE *f, const bench_report *r, const bench_result *xs, int n, double px,
                  double py, double pw) {
  const bench_result *a = &xs[0];
  double plot_x = px + PLOT_L, plot_w = pw - PLOT_L - PLOT_R;
  double plot_y = py + PLOT_T, plot_h = PANEL_H - PLOT_T - PLOT_B;
  /* Frame and titles. */
  fprintf(f,
          "<g>\n<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%d\" rx=\"6\" "
          "fill=\"#ffffff\" stroke=\"#d9d9d9\"/>\n",
          px, py, pw, PANEL_H);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\">", px + 10,
          py + 19);
  put_esc(f, a->name);
  fputs(" <tspan fill=\"#525252\" font-weight=\"normal\">", f);
  put_esc(f, a->dtype);
  fputs("</tspan></text>\n", f);
  fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"#525252\">", px + 10, py + 35);
  put_esc(f, a->shape);
  if (a->bound == BENCH_HOST)
    fputs("  (host time, lower is better)", f);
  else if (a->bound == BENCH_MEMORY)
    fputs("  (memory-bound)", f);
  else
    fputs("  (compute-bound)", f);
  fputs("</text>\n", f);

  /* Reference lines. */
  ref_line lines[3];
  int nl = 0;
  char peak_v[32], copy_v[32], target_v[32];
  if (a->bound != BENCH_HOST && isfinite(a->peak) && a->peak > 0) {
    fmt_val(peak_v, sizeof peak_v, a->peak);
    lines[nl++] = (ref_line){a->peak, "peak", peak_v, "#cb181d", "6,4"};
  }
  if (a->bound == BENCH_MEMORY && r->copy_gbs > 0) {
    fmt_val(copy_v, sizeof copy_v, r->copy_gbs);
    lines[nl++] = (ref_line){r->copy_gbs, "copy", copy_v, "#2171b5", "2,3"};
  }
  if (a->bound == BENCH_HOST && a->target_us > 0) {
    snprintf(target_v, sizeof target_v, "%.0f \xc2\xb5s", a->target_us);
    lines[nl++] = (ref_line){a->target_us, "target", target_v, "#238b45", "8,3,2,3"};
  }
  double vmax = 0;
  for (int i = 0; i < n; i++) {
    double v = bar_value(r, &xs[i]);
    if (v > vmax) vmax = v;
  }
  /* Lines far above the bars would squash them: such a line is named at the top instead. */
  double axis_max = vmax;
  for (int k = 0; k < nl; k++)
    if (lines[k].v > axis_max && (vmax == 0 || lines[k].v <= 12 * vmax)) axis_max = lines[k].v;
  if (!(axis_max > 0)) axis_max = 1;
  double step = nice_step(axis_max * 1.08, 4);
  double top = ceil(axis_max * 1.08 / step) * step;
#define Y(v) (plot_y + plot_h - (v) / top * plot_h)

  /* Grid and y axis. */
  for (double t = 0; t <= top * 1.0001; t += step) {
    char lab[32];
    fmt_val(lab, sizeof lab, t);
    fprintf(f, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n", plot_x,
            plot_x + plot_w, Y(t), Y(t), t == 0 ? "#737373" : "#f0f0f0");
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" fill=\"#525252\" "
            "text-anchor=\"end\">%s</text>\n",
            plot_x - 5, Y(t) + 3.5, lab);
  }
  fprintf(f,
          "<text transform=\"translate(%.1f %.1f) rotate(-90)\" font-size=\"10.5\" "
          "fill=\"#525252\" text-anchor=\"middle\">%s</text>\n",
          px + 12, plot_y + plot_h / 2, unit_of(r, a->bound));

  /* Bars. */
  double slot = plot_w / (n > 0 ? n : 1);
  double bw = slot * 0.62 > 46 ? 46 : slot * 0.62;
  for (int i = 0; i < n; i++) {
    const bench_result *x = &xs[i];
    double cx = plot_x + slot * (i + 0.5);
    double v = bar_value(r, x);
    /* Variant label under the slot, rotated. */
    fprintf(f,
            "<text transform=\"translate(%.1f %.1f) rotate(-35)\" font-size=\"10.5\" "
            "text-anchor=\"end\" fill=\"#252525\">",
            cx + 3, plot_y + plot_h + 12);
    if (x->variant >= 0) fprintf(f, "%d ", x->variant);
    put_esc(f, x->variant >= 0 ? x->variant_name : "(setup)");
    fputs("</text>\n", f);
    if (x->outcome != BENCH_RAN) {
      const char *word = x->outcome == BENCH_NOT_SUPPORTED ? "n/s" : "failed";
      fprintf(f, "<g><title>");
      put_esc(f, x->reason);
      fprintf(f,
              "</title><rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
              "fill=\"#f7f7f7\" stroke=\"#bdbdbd\" stroke-dasharray=\"3,2\"/>"
              "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10\" text-anchor=\"middle\" "
              "fill=\"%s\">%s</text></g>\n",
              cx - bw / 2, plot_y + plot_h - 22, bw, 22.0, cx, plot_y + plot_h - 7,
              x->outcome == BENCH_FAILED ? "#cb181d" : "#737373", word);
      continue;
    }
    double y = Y(v), h = plot_y + plot_h - y;
    if (h < 1) h = 1, y = plot_y + plot_h - 1;
    char val[32];
    fmt_val(val, sizeof val, v);
    fprintf(f, "<g><title>%d %s: median %.4g ms, min %.4g ms, %d runs</title>", x->variant,
            x->variant_name, x->median_ms, x->min_ms, x->runs);
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\"%s/>",
            cx - bw / 2, y, bw, h, bar_colour(x->variant),
            x->vendor ? " stroke=\"#7f2704\" stroke-width=\"2\"" : "");
    if (x->vendor)
      fprintf(f,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"url(#hatch)\"/>",
              cx - bw / 2, y, bw, h);
    fputs("</g>\n", f);
    /* Above the bar, bottom up: x vendor, % of the peak (or of the copy bandwidth), the
       value; white halos keep them readable over the reference lines. */
    double ly = y - 4;
    char sub[2][32];
    int ns = 0;
    if (!x->vendor && isfinite(x->x_vendor))
      snprintf(sub[ns++], sizeof sub[0], "%.2f\xc3\x97v", x->x_vendor);
    if (x->bound == BENCH_MEMORY && isfinite(x->pct_copy))
      snprintf(sub[ns++], sizeof sub[0], "%.0f%% copy", x->pct_copy * 100);
    else if (x->bound != BENCH_HOST && isfinite(x->pct_peak))
      snprintf(sub[ns++], sizeof sub[0], "%.0f%% peak", x->pct_peak * 100);
    for (int k = 0; k < ns; k++, ly -= 10)
      fprintf(f,
              "<text x=\"%.1f\" y=\"%.1f\" font-size=\"8.5\" text-anchor=\"middle\" "
              "fill=\"#525252\" stroke=\"#ffffff\" stroke-width=\"2.5\" "
              "paint-order=\"stroke\">%s</text>\n",
              cx, ly, sub[k]);
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"10.5\" font-weight=\"bold\" "
            "text-anchor=\"middle\" fill=\"#252525\" stroke=\"#ffffff\" stroke-width=\"3\" "
            "paint-order=\"stroke\">%s</text>\n",
            cx, ly - 1, val);
  }

  /* Reference lines over the bars, labelled in the right gutter (name over value),
     labels pushed apart when two lines are close. */
  double ly_of[3];
  int order[3], no = 0, off_scale = 0;
  for (int k = 0; k < nl; k++) {
    if (lines[k].v > top) {
      /* Named on the title line, right-aligned (titles are short). */
      fprintf(f,
              "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9.5\" text-anchor=\"end\" fill=\"%s\">"
              "%s %s \xe2\x86\x91 off scale</text>\n",
              px + pw - 8, py + 14 + 11 * off_scale++, lines[k].colour, lines[k].name,
              lines[k].value);
      continue;
    }
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"1.6\" stroke-dasharray=\"%s\"/>\n",
            plot_x, plot_x + plot_w + 2, Y(lines[k].v), Y(lines[k].v), lines[k].colour,
            lines[k].dash);
    ly_of[k] = Y(lines[k].v);
    order[no++] = k;
  }
  for (int a1 = 0; a1 < no; a1++) /* sort by y, top first */
    for (int b1 = a1 + 1; b1 < no; b1++)
      if (ly_of[order[b1]] < ly_of[order[a1]]) {
        int t = order[a1];
        order[a1] = order[b1];
        order[b1] = t;
      }
  double prev = -1e9;
  for (int q = 0; q < no; q++) {
    int k = order[q];
    double ly = ly_of[k] < prev + 22 ? prev + 22 : ly_of[k];
    prev = ly;
    fprintf(f,
            "<text x=\"%.1f\" y=\"%.1f\" font-size=\"9.5\" fill=\"%s\">"
            "<tspan>%s</tspan><tspan x=\"%.1f\" dy=\"10\">%s</tspan></text>\n",
            plot_x + plot_w + 5, ly - 1, lines[k].colour, lines[k].name, plot_x + plot_w + 5,
            lines[k].value);
  }
#undef Y
  fputs("</g>\n", f);
}

static int same_case(const bench_result *a, const bench_result *b) {
  return !strcmp(a->family, b->family) && !strcmp(a->name, b->name) &&
         !strcmp(a->shape, b->shape) && !strcmp(a->dtype, b->dtype);
}

static void legend(FILE *f, double x, double y) {
  static const struct {
    int id;
    const char *label;
  } swatches[] = {{0, "CPU reference (0)"},
                  {2,
                   "hand-written CUDA (1\xe2\x80\x93"
                   "9, darker = later)"},
                  {10,
                   "vendor: cuBLAS / cuDNN / memcpy (10\xe2\x80\x93"
                   "19)"},
                  {20, "optimised CPU (20+)"}};
  double cx = x;
  for (size_t i = 0; i < sizeof swatches / sizeof swatches[0]; i++) {
    fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"12\" fill=\"%s\"%s/>", cx, y - 10,
            bar_colour(swatches[i].id),
            swatches[i].id >= 10 && swatches[i].id < 20 ? " stroke=\"#7f2704\" stroke-width=\"2\""
                                                        : "");
    if (swatches[i].id >= 10 && swatches[i].id < 20)
      fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"14\" height=\"12\" fill=\"url(#hatch)\"/>",
              cx, y - 10);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11.5\">%s</text>\n", cx + 19, y,
            swatches[i].label);
    cx += 19 + 7.0 * (double)strlen(swatches[i].label) + 22;
  }
  static const struct {
    const char *colour, *dash, *label;
  } lines[] = {{"#cb181d", "6,4", "device peak (datasheet)"},
               {"#2171b5", "2,3", "copy bandwidth measured by dlk-bench"},
               {"#238b45", "8,3,2,3", "target"}};
  cx = x;
  for (size_t i = 0; i < 3; i++) {
    fprintf(f,
            "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"2\" stroke-dasharray=\"%s\"/>",
            cx, cx + 26, y + 16, y + 16, lines[i].colour, lines[i].dash);
    fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11.5\">%s</text>\n", cx + 32, y + 20,
            lines[i].label);
    cx += 32 + 6.6 * (double)strlen(lines[i].label) + 26;
  }
  fprintf(f,
          "<text x=\"%.1f\" y=\"%.1f\" font-size=\"11.5\" fill=\"#525252\">above each bar: the "
          "value, %% of peak (or of the copy bandwidth), and \"\xc3\x97v\" = speed relative to "
          "the best vendor variant \xc2\xb7 n/s: the variant does not support the case (hover "
          "for why)</text>\n",
          x, y + 40);
}

int bench_plot_svg(const bench_report *r, const char *path, char *err, size_t err_len) {
  /* Lay out: family sections, each a grid of panels. */
  int ncases = 0;
  for (int i = 0; i < r->n; i++)
    if (i == 0 || !same_case(&r->results[i - 1], &r->results[i])) ncases++;
  if (ncases == 0) {
    snprintf(err, err_len, "no results to plot");
    return 1;
  }
  FILE *f = fopen(path, "w");
  if (!f) {
    snprintf(err, err_len, "cannot write: %s", strerror(errno));
    return 1;
  }
  double pw = (W - 2 * MARGIN - (COLS - 1) * GAP) / (double)COLS;
  /* First pass: height. */
  double header_h = 162, section_h = 30;
  double h = header_h;
  const char *fam = NULL;
  int col = 0;
  for (int i = 0; i < r->n;) {
    int j = i + 1;
    while (j < r->n && same_case(&r->results[i], &r->results[j])) j++;
    if (!fam || strcmp(fam, r->results[i].family)) {
      if (fam && col) h += PANEL_H + GAP;
      h += section_h;
      fam = r->results[i].family;
      col = 0;
    }
    if (++col == COLS) h += PANEL_H + GAP, col = 0;
    i = j;
  }
  if (col) h += PANEL_H + GAP;
  h += MARGIN;

  fprintf(f,
          "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
          "viewBox=\"0 0 %d %.0f\" font-family=\"%s\">\n",
          W, h, W, h, FONT);
  fputs(
      "<defs><pattern id=\"hatch\" width=\"6\" height=\"6\" patternUnits=\"userSpaceOnUse\" "
      "patternTransform=\"rotate(45)\"><line x1=\"0\" y1=\"0\" x2=\"0\" y2=\"6\" "
      "stroke=\"#ffffff\" stroke-width=\"2\" stroke-opacity=\"0.55\"/></pattern></defs>\n",
      f);
  fprintf(f, "<rect width=\"%d\" height=\"%.0f\" fill=\"#fafafa\"/>\n", W, h);
  /* Header. */
  fprintf(f,
          "<text x=\"%d\" y=\"40\" font-size=\"22\" font-weight=\"bold\">dlk-bench \xe2\x80\x94 ",
          MARGIN);
  put_esc(f, r->device);
  fputs("</text>\n", f);
  fprintf(f, "<text x=\"%d\" y=\"62\" font-size=\"12\" fill=\"#525252\">dlk ", MARGIN);
  put_esc(f, r->dlk_version);
  fputs(" \xc2\xb7 commit ", f);
  put_esc(f, r->commit);
  fputs(" \xc2\xb7 ", f);
  put_esc(f, r->date);
  fputs("</text>\n", f);
  fprintf(f, "<text x=\"%d\" y=\"78\" font-size=\"12\" fill=\"#525252\">", MARGIN);
  if (r->gpu) {
    const dlk_versions *v = &r->versions;
    /* CUDA 13000 -> 13.0; cuBLAS and cuDNN encode major*10000 + minor*100 + patch. */
    fprintf(f, "CUDA %d.%d, cuBLAS %d.%d.%d, cuDNN %d.%d.%d \xc2\xb7 ", v->cuda_runtime / 1000,
            (v->cuda_runtime % 1000) / 10, v->cublas / 10000, (v->cublas % 10000) / 100,
            v->cublas % 100, v->cudnn / 10000, (v->cudnn % 10000) / 100, v->cudnn % 100);
  }
  fprintf(f, "median of \xe2\x89\xa5 %d runs, %s", r->quick ? 5 : 20,
          r->gpu ? "CUDA events, L2 flushed before each run" : "CPU reference, monotonic clock");
  if (r->peaks.label[0]) {
    fputs(" \xc2\xb7 peaks: ", f);
    put_esc(f, r->peaks.label);
    fputs(" datasheet, dense", f);
  } else if (!r->gpu) {
    fputs(" \xc2\xb7 no peak table for CPUs", f);
  }
  if (r->copy_gbs > 0) fprintf(f, " \xc2\xb7 measured copy bandwidth %.1f GB/s", r->copy_gbs);
  fputs("</text>\n", f);
  legend(f, MARGIN, 106);

  double y = header_h;
  fam = NULL;
  col = 0;
  for (int i = 0; i < r->n;) {
    int j = i + 1;
    while (j < r->n && same_case(&r->results[i], &r->results[j])) j++;
    if (!fam || strcmp(fam, r->results[i].family)) {
      if (fam && col) y += PANEL_H + GAP;
      fam = r->results[i].family;
      fprintf(f,
              "<text x=\"%d\" y=\"%.1f\" font-size=\"16\" font-weight=\"bold\" "
              "fill=\"#252525\">",
              MARGIN, y + 20);
      put_esc(f, fam);
      fputs(" family</text>\n", f);
      y += section_h;
      col = 0;
    }
    panel(f, r, &r->results[i], j - i, MARGIN + col * (pw + GAP), y, pw);
    if (++col == COLS) y += PANEL_H + GAP, col = 0;
    i = j;
  }
  fputs("</svg>\n", f);
  int bad = ferror(f);
  if (fclose(f) != 0 || bad) {
    snprintf(err, err_len, "write error");
    return 1;
  }
  return 0;
}
