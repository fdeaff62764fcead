/*
 * gemm_sm90_check: the first-run self-check of gemm variant 4 "wgmma" (kernels/
 * kernels/nn/gemm_sm90.cu, sm_90a: wgmma + TMA). Written before any GPU ran the kernel, so every
 * failure prints enough to tell a broken swizzle, descriptor or fragment mapping from a
 * pipeline or epilogue bug from one log.
 *
 *   1. refusals: on an sm_90a device, supports() gives its exact reasons (f32, a lead dim
 *      not a multiple of 8, a misaligned pointer, no unit stride) and writes nothing;
 *   2. probes (one 128 x 256 x 64 tile, each dtype and operand layout): one operand is an
 *      identity, the other holds small integer ids (exact in bf16), so C must reproduce
 *      the id operand; each wrong element is decoded to the (row, column) of the operand
 *      element that landed there, and wrong elements are counted per 64 x 64 block;
 *   3. a ladder of shapes from 64^3 upward (edges, k not a multiple of 64, one row,
 *      1024^3, 2048 x 2048 x 512) in every layout, f16 and bf16, as a linear layer with
 *      bias + gelu + z, plus batched gemms with alpha/beta and a shared b: variant 4
 *      against variant 1 (naive, f32 accumulation: the oracle) and variant 10 (cuBLAS),
 *      max error per shape and the first wrong element's (m, n);
 *   4. a timing of 4096^3 bf16 against cuBLAS (informational, not a pass criterion).
 *
 * With --host (no GPU needed, any CUDA build): the layout/alignment rules of the kernel
 * file (dlk_k_gemm_supports(impl 4)) on a table of descriptors, accepted or refused with the
 * exact reason.
 *
 * Every device buffer starts as 0xFF bytes (NaN): an element read outside an operand's
 * view or an output element never written shows up as NaN.
 * Exit 77 (skipped) without a GPU, or when variant 4 cannot run here (built without 90a in
 * DLK_CUDA_ARCHS, the device is not compute capability 9.0, or it is the emulated device,
 * which has no inline PTX): the reason is printed. --host too is 77 in the emulated build
 * (DLK_CUDA_EMU): the kernel file is wholly PTX and not compiled there.
 */
#include <time.h>

#include "check.h"
#if DLK_HAVE_CUDA
#include "kernels/nn/nn.h" /* dlk_k_gemm_supports (impl 4): host code, testable without a GPU */
#endif

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

static dlk_context *ctx;

/* ---- device matrices with a chosen layout ---- */

/* A [batch,] rows x cols view. trans 0: row-major with leading dim ld >= cols; trans 1:
   the transposed view of a cols x rows row-major buffer (unit stride along rows). ld is
   the smallest multiple of 8 that fits plus `pad`. The whole allocation starts as NaN. */
typedef struct {
  dlk_tensor buf, v;
  int64_t batch, rows, cols; /* batch 0: 2-D */
} dmat;

static int64_t round8(int64_t v) {
  return (v + 7) / 8 * 8;
}

static int dmat_make(dmat *d, dlk_dtype dt, int64_t batch, int64_t rows, int64_t cols, int trans,
                     int64_t pad) {
  memset(d, 0, sizeof *d);
  d->batch = batch, d->rows = rows, d->cols = cols;
  const int64_t r = trans ? cols : rows, c = trans ? rows : cols, ld = round8(c) + pad;
  const int64_t nb = batch ? batch : 1;
  int64_t shape[3] = {nb, r, ld};
  dlk_status s = dlk_tensor_alloc(ctx, &d->buf, dt, 3, shape);
  CHECK(s == DLK_OK, "alloc %lldx%lldx%lld: %s", (long long)nb, (long long)r, (long long)ld,
        dlk_context_last_error(ctx));
  if (s != DLK_OK) return 0;
  size_t bytes = (size_t)(nb * r * ld) * dlk_dtype_size(dt);
  unsigned char *ff = malloc(bytes ? bytes : 1);
  memset(ff, 0xFF, bytes);
  CHECK_OK(ctx, dlk_tensor_write(ctx, &d->buf, ff, bytes));
  free(ff);
  dlk_tensor v = d->buf;
  int o = batch ? 1 : 0; /* index of the row dim in the view */
  v.ndim = 2 + o;
  if (batch) v.shape[0] = batch, v.strides[0] = r * ld;
  v.shape[o] = rows, v.shape[o + 1] = cols;
  v.strides[o] = trans ? 1 : ld, v.strides[o + 1] = trans ? ld : 1;
  d->v = v;
  return 1;
}

static void dmat_free(dmat *d) {
  if (d->buf.data) dlk_tensor_free(ctx, &d->buf);
  memset(d, 0, sizeof *d);
}

static int64_t dmat_numel(const dmat *d) {
  return (d->batch ? d->batch : 1) * d->rows * d->cols;
}

/* Host values (row-major over [batch,] rows, cols; already rounded to dt) -> device. */
static void dmat_write(dmat *d, const double *v) {
  const int64_t n = dmat_numel(d);
  const size_t es = dlk_dtype_size(d->v.dtype);
  unsigned char *h = malloc((size_t)n * es + 1);
  for (int64_t i = 0; i < n; i++) dlk_store(h, d->v.dtype, i, v[i]);
  CHECK_OK(ctx, dlk_tensor_write(ctx, &d->v, h, (size_t)n * es));
  free(h);
}

static void dmat_read(const dmat *d, double *v) {
  const int64_t n = dmat_numel(d);
  const size_t es = dlk_dtype_size(d->v.dtype);
  unsigned char *h = malloc((size_t)n * es + 1);
  CHECK_OK(ctx, dlk_tensor_read(ctx, &d->v, h, (size_t)n * es));
  for (int64_t i = 0; i < n; i++) v[i] = dlk_load(h, d->v.dtype, i);
  free(h);
}

static double rnd(dlk_dtype dt, double v) {
  unsigned char b[8];
  dlk_store(b, dt, 0, v);
  return dlk_load(b, dt, 0);
}

static double *uniform(dlk_dtype dt, int64_t n, double lo, double hi) {
  double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
  for (int64_t i = 0; i < n; i++) v[i] = rnd(dt, t_uniform(lo, hi));
  return v;
}

static const char *dtn(dlk_dtype dt) {
  return dlk_dtype_name(dt);
}

/* ---- comparison ---- */

typedef struct {
  double max_err;
  int64_t bad, first; /* first wrong flat index, -1 none */
  double first_got, first_ref;
} cmp_t;

static cmp_t compare(const double *got, const double *ref, int64_t n, double atol, double rtol) {
  cmp_t c = {0, 0, -1, 0, 0};
  for (int64_t i = 0; i < n; i++) {
    double err = fabs(got[i] - ref[i]);
    int ok = err <= atol + rtol * fabs(ref[i]) || (isnan(got[i]) && isnan(ref[i]));
    if (isnan(err) && !ok) err = INFINITY;
    if (err > c.max_err) c.max_err = err;
    if (!ok) {
      if (c.first < 0) c.first = i, c.first_got = got[i], c.first_ref = ref[i];
      c.bad++;
    }
  }
  return c;
}

static void print_first(const char *what, cmp_t c, int64_t rows, int64_t cols) {
  if (c.first < 0) return;
  int64_t n = c.first % cols, t = c.first / cols, m = t % rows, b = t / rows;
  printf("      %s: %lld of %lld wrong; first at b=%lld m=%lld n=%lld: got %.6g, want %.6g\n", what,
         (long long)c.bad, (long long)(rows * cols), (long long)b, (long long)m, (long long)n,
         c.first_got, c.first_ref);
}

/* ---- the variant under test ---- */

/* A DLK_ERR_CUDA from a run means a launch or kernel failure (a trap of the barrier
   watchdog, an illegal instruction or address): the CUDA context is gone and every later
   call would fail the same way, so stop with the first message. */
static void stop_if_lost(dlk_status s, const char *where) {
  if (s != DLK_ERR_CUDA) return;
  printf(
      "\n%s: %s\nCUDA error: the context is probably lost (a trap = barrier watchdog, or an "
      "illegal instruction/address); stopping here.\n",
      where, dlk_context_last_error(ctx));
  t_failures++;
  t_summary("gemm_sm90_check");
  exit(1);
}

static dlk_status forced(int id) {
  return dlk_force_variant(ctx, "gemm", id);
}

/* ====================================================================================== */
/* 0. --host: the rules of dlk_k_gemm_supports(impl 4), no GPU needed                     */
/* ====================================================================================== */

#if DLK_HAVE_CUDA
typedef struct {
  const char *what;
  int dtype;
  int64_t batch, m, n, k;
  int64_t a_bs, a_rs, a_cs, b_bs, b_rs, b_cs;
  uintptr_t a_ptr, b_ptr;
  const char *want; /* NULL: accepted; else a substring of the reason */
} host_case;

/* Pointers are never dereferenced by the check: only their alignment matters. */
static const host_case host_cases[] = {
    {"row-major a and b", DLK_BF16, 1, 128, 256, 64, 0, 64, 1, 0, 256, 1, 0x1000, 0x2000, NULL},
    {"linear: b = w^T (k-major)", DLK_F16, 1, 100, 300, 72, 0, 72, 1, 0, 1, 72, 0x1000, 0x2000,
     NULL},
    {"a^T (m-major) and w^T", DLK_BF16, 1, 100, 300, 72, 0, 1, 104, 0, 1, 72, 0x1000, 0x2000, NULL},
    {"padded leading dims", DLK_F16, 1, 7, 5, 3, 0, 16, 1, 0, 24, 1, 0x1000, 0x2000, NULL},
    {"k = 1, contiguous [M,1] a (m-major)", DLK_BF16, 1, 50, 64, 1, 0, 1, 1, 0, 64, 1, 0x1000,
     0x2000, NULL},
    {"m = 1, lda irrelevant", DLK_BF16, 1, 1, 64, 24, 0, 3, 1, 0, 64, 1, 0x1000, 0x2000, NULL},
    {"batched, b shared (batch stride 0)", DLK_BF16, 4, 64, 64, 64, 4096, 64, 1, 0, 64, 1, 0x1000,
     0x2000, NULL},
    {"batched, both strided", DLK_F16, 3, 64, 64, 64, 4096, 64, 1, 4096, 64, 1, 0x1000, 0x2000,
     NULL},
    {"f32", DLK_F32, 1, 64, 64, 64, 0, 64, 1, 0, 64, 1, 0x1000, 0x2000,
     "f32 not supported (f16/bf16 only)"},
    {"f64", DLK_F64, 1, 64, 64, 64, 0, 64, 1, 0, 64, 1, 0x1000, 0x2000, "f64 not supported"},
    {"lda 100", DLK_BF16, 1, 64, 64, 96, 0, 100, 1, 0, 64, 1, 0x1000, 0x2000,
     "lda 100 not a multiple of 8"},
    {"ldb 100 (n-major b)", DLK_BF16, 1, 64, 96, 64, 0, 64, 1, 0, 100, 1, 0x1000, 0x2000,
     "ldb 100 not a multiple of 8"},
    {"lda 100 on m-major a", DLK_BF16, 1, 64, 64, 64, 0, 1, 100, 0, 64, 1, 0x1000, 0x2000,
     "lda 100 not a multiple of 8"},
    {"a misaligned", DLK_BF16, 1, 64, 64, 64, 0, 64, 1, 0, 64, 1, 0x1002, 0x2000,
     "a not 16-byte aligned"},
    {"b misaligned", DLK_F16, 1, 64, 64, 64, 0, 64, 1, 0, 64, 1, 0x1000, 0x2008,
     "b not 16-byte aligned"},
    {"b with no unit stride", DLK_BF16, 1, 64, 64, 64, 0, 64, 1, 0, 128, 2, 0x1000, 0x2000,
     "b has no unit stride"},
    {"a with no unit stride", DLK_BF16, 1, 64, 64, 64, 0, 128, 2, 0, 64, 1, 0x1000, 0x2000,
     "a has no unit stride"},
    {"overlapping rows", DLK_BF16, 1, 64, 64, 16, 0, 8, 1, 0, 64, 1, 0x1000, 0x2000,
     "lda 8 is below the row length 16"},
    {"batch stride 100", DLK_BF16, 2, 64, 64, 64, 100, 64, 1, 0, 64, 1, 0x1000, 0x2000,
     "a batch stride 100 not a positive multiple of 8"},
    {"negative batch stride", DLK_BF16, 2, 64, 64, 64, 0, 64, 1, -4096, 64, 1, 0x1000, 0x2000,
     "b batch stride -4096"},
    {"k = 0", DLK_BF16, 1, 64, 64, 0, 0, 8, 1, 0, 64, 1, 0x1000, 0x2000, "k = 0"},
    {"m beyond 2^31", DLK_BF16, 1, 3000000000LL, 64, 64, 0, 64, 1, 0, 64, 1, 0x1000, 0x2000,
     "32-bit coordinates"},
};

static void test_host_table(void) {
  printf("0. dlk_k_gemm_supports(impl 4) on %d descriptors\n", N_OF(host_cases));
  for (int i = 0; i < N_OF(host_cases); i++) {
    const host_case *h = &host_cases[i];
    t_case = h->what;
    dlk_k_gemm_desc g;
    memset(&g, 0, sizeof g);
    g.dtype = h->dtype;
    g.alpha = 1;
    g.a = (dlk_k_mat){(void *)h->a_ptr, h->batch, h->m, h->k, h->a_bs, h->a_rs, h->a_cs};
    g.b = (dlk_k_mat){(void *)h->b_ptr, h->batch, h->k, h->n, h->b_bs, h->b_rs, h->b_cs};
    g.c = (dlk_k_mat){(void *)0x3000, h->batch, h->m, h->n, h->m * h->n, h->n, 1};
    char why[256] = "";
    int ok = dlk_k_gemm_supports(&g, 4, why, sizeof why);
    if (!h->want) {
      CHECK(ok == 1, "%s: refused (\"%s\"), expected accepted", h->what, why);
      printf("  %-40s accepted%s\n", h->what, ok ? "" : "  <- WRONG");
    } else {
      CHECK(ok == 0 && strstr(why, h->want) != NULL, "%s: %s \"%s\", expected refused with \"%s\"",
            h->what, ok ? "accepted" : "refused", why, h->want);
      printf("  %-40s refused: %s\n", h->what, why);
    }
  }
}
#endif

/* ====================================================================================== */
/* 1. refusals                                                                            */
/* ====================================================================================== */

/* dlk_gemm forced to variant 4 on a case it must refuse: DLK_ERR_NOT_SUPPORTED, a message
   containing `want`, and c untouched (still NaN). */
static void refusal(const char *what, dmat *a, dmat *b, dmat *c, const char *want) {
  t_case = what;
  dlk_gemm_params p = {1, 0};
  dlk_status s = dlk_gemm(ctx, &p, &a->v, &b->v, &c->v);
  const char *msg = dlk_context_last_error(ctx);
  CHECK(s == DLK_ERR_NOT_SUPPORTED && strstr(msg, want) != NULL,
        "%s: got %s \"%s\", expected NOT_SUPPORTED with \"%s\"", what, dlk_status_string(s), msg,
        want);
  double *out = malloc((size_t)dmat_numel(c) * sizeof(double));
  dmat_read(c, out);
  int64_t written = 0;
  for (int64_t i = 0; i < dmat_numel(c); i++) written += !isnan(out[i]);
  CHECK(written == 0, "%s: %lld output elements written by a refused call", what,
        (long long)written);
  free(out);
  printf("  refused as expected: %-40s \"%s\"\n", what, msg);
}

static void test_refusals(void) {
  printf("1. refusals of variant 4\n");
  forced(4);
  dmat a, b, c;
  /* f32 */
  dmat_make(&a, DLK_F32, 0, 64, 64, 0, 0), dmat_make(&b, DLK_F32, 0, 64, 64, 0, 0);
  dmat_make(&c, DLK_F32, 0, 64, 64, 0, 0);
  refusal("f32 operands", &a, &b, &c, "f32 not supported (f16/bf16 only)");
  dmat_free(&a), dmat_free(&b), dmat_free(&c);
  /* lda 100: a 64 x 96 view of rows 100 apart */
  dmat_make(&a, DLK_BF16, 0, 64, 100, 0, 0), dmat_make(&b, DLK_BF16, 0, 96, 64, 0, 0);
  dmat_make(&c, DLK_BF16, 0, 64, 64, 0, 0);
  {
    dmat av = a;
    av.v.shape[1] = 96, av.cols = 96, av.v.strides[0] = 100;
    refusal("lda 100", &av, &b, &c, "lda 100 not a multiple of 8");
  }
  dmat_free(&a), dmat_free(&b), dmat_free(&c);
  /* a misaligned: the view starts one element in */
  dmat_make(&a, DLK_BF16, 0, 64, 72, 0, 0), dmat_make(&b, DLK_BF16, 0, 64, 64, 0, 0);
  dmat_make(&c, DLK_BF16, 0, 64, 64, 0, 0);
  {
    dmat av = a;
    av.v.data = (char *)a.v.data + 2, av.v.shape[1] = 64, av.cols = 64;
    refusal("a misaligned by 2 bytes", &av, &b, &c, "a not 16-byte aligned");
  }
  dmat_free(&a), dmat_free(&b), dmat_free(&c);
  /* b with no unit stride: every other column of a row-major buffer */
  dmat_make(&a, DLK_F16, 0, 64, 64, 0, 0), dmat_make(&b, DLK_F16, 0, 64, 128, 0, 0);
  dmat_make(&c, DLK_F16, 0, 64, 64, 0, 0);
  {
    dmat bv = b;
    bv.v.shape[1] = 64, bv.cols = 64, bv.v.strides[1] = 2;
    refusal("b strided in both dims", &a, &bv, &c, "b has no unit stride");
  }
  dmat_free(&a), dmat_free(&b), dmat_free(&c);
}

/* ====================================================================================== */
/* 2. probes                                                                              */
/* ====================================================================================== */

#define PM 128
#define PN 256
#define PK 64

/* One run of the 128 x 256 x 64 probe gemm: C = A @ B with A, B as given (host values),
   layouts ta (A transposed: unit stride along m) and tb (B given as the transposed view of
   an N x K buffer: unit stride along k). Returns C in out (PM x PN). 0 when the call
   failed. */
static int probe_run(dlk_dtype dt, int ta, int tb, const double *ha, const double *hb,
                     double *out) {
  dmat a, b, c;
  int ok = dmat_make(&a, dt, 0, PM, PK, ta, 0) & dmat_make(&b, dt, 0, PK, PN, tb, 0) &
           dmat_make(&c, dt, 0, PM, PN, 0, 0);
  if (ok) {
    dmat_write(&a, ha);
    dmat_write(&b, hb);
    dlk_gemm_params p = {1, 0};
    dlk_status s = dlk_gemm(ctx, &p, &a.v, &b.v, &c.v);
    if (s == DLK_OK) s = dlk_synchronize(ctx);
    stop_if_lost(s, t_case);
    CHECK(s == DLK_OK, "probe gemm: %s: %s", dlk_status_string(s), dlk_context_last_error(ctx));
    ok = s == DLK_OK;
    if (ok) dmat_read(&c, out);
  }
  dmat_free(&a), dmat_free(&b), dmat_free(&c);
  return ok;
}

/* Decode an id probe value: v = id + 1 for an integer id in [0, lim), else -1 (0 means a
   zero: no product landed; a fraction means several products were mixed). */
static int64_t decode(double v, int64_t lim) {
  if (!(v >= 1 && v <= (double)lim) || v != floor(v)) return -1;
  return (int64_t)v - 1;
}

/* which = 0: identity A (m == k, m < 64), B holds ids: C[m][n] must be B[m][n] for m < 64,
   0 below. which = 1: identity B (k == n, n < 64), A holds ids: C[m][n] = A[m][n] for
   n < 64, 0 to the right. Two runs put the row id + 1 and then the column id + 1 in the id
   operand; a wrong element prints the operand element each run says it came from. */
static void probe(dlk_dtype dt, int ta, int tb, int which) {
  char name[128];
  snprintf(name, sizeof name, "probe %s a%s b%s, %s", dtn(dt), ta ? "^T(m-major)" : "(k-major)",
           tb ? "(k-major)" : "(n-major)",
           which == 0 ? "identity a, ids in b" : "ids in a, identity b");
  t_case = name;
  double *ha = calloc(PM * PK, sizeof(double)), *hb = calloc(PK * PN, sizeof(double));
  double *row = malloc(PM * PN * sizeof(double)), *col = malloc(PM * PN * sizeof(double));
  int ok = 1;
  for (int run = 0; run < 2 && ok; run++) {
    for (int m = 0; m < PM; m++)
      for (int k = 0; k < PK; k++)
        ha[m * PK + k] = which == 0 ? (m == k) : (run == 0 ? m + 1 : k + 1);
    for (int k = 0; k < PK; k++)
      for (int n = 0; n < PN; n++)
        hb[k * PN + n] = which == 1 ? (k == n) : (run == 0 ? k + 1 : n + 1);
    ok = probe_run(dt, ta, tb, ha, hb, run == 0 ? row : col);
  }
  if (!ok) {
    printf("  %-62s CALL FAILED (see above)\n", name);
    goto done;
  }
  int64_t bad = 0, blocks[2][4] = {{0}};
  int shown = 0;
  for (int m = 0; m < PM; m++)
    for (int n = 0; n < PN; n++) {
      /* expected (row id, col id) of the id operand element at (m, n), or -1: zero */
      const int inside = which == 0 ? m < PK : n < PK;
      const double want_r = inside ? m + 1 : 0, want_c = inside ? n + 1 : 0;
      const double gr = row[m * PN + n], gc = col[m * PN + n];
      if (gr == want_r && gc == want_c) continue;
      bad++;
      blocks[m / 64][n / 64]++;
      if (shown++ < 6) {
        const int64_t lim_r = which == 0 ? PK : PM, lim_c = which == 0 ? PN : PK;
        const int64_t r = decode(gr, lim_r), c = decode(gc, lim_c);
        printf("      c[%d][%d]: row run %.6g, column run %.6g (want %.0f, %.0f)", m, n, gr, gc,
               want_r, want_c);
        if (r >= 0 && c >= 0)
          printf(" -> holds %s[%lld][%lld]\n", which == 0 ? "b" : "a", (long long)r, (long long)c);
        else
          printf(" -> %s\n", gr == 0 && gc == 0 ? "zero (no product landed here)"
                             : isnan(gr) || isnan(gc)
                                 ? "NaN (read outside the operand, or never written)"
                                 : "not a single element (mixed products)");
      }
    }
  CHECK(bad == 0, "%s: %lld of %d elements wrong", name, (long long)bad, PM * PN);
  if (bad) {
    printf("  %-62s FAIL %lld wrong; per 64x64 block (rows down, columns across):\n", name,
           (long long)bad);
    for (int i = 0; i < 2; i++)
      printf("        %5lld %5lld %5lld %5lld\n", (long long)blocks[i][0], (long long)blocks[i][1],
             (long long)blocks[i][2], (long long)blocks[i][3]);
  } else {
    printf("  %-62s ok\n", name);
  }
done:
  free(ha), free(hb), free(row), free(col);
}

static void test_probes(void) {
  printf("2. probes: one 128x256x64 tile, identity x ids (exact in f16 and bf16)\n");
  printf(
      "   reading a failure: NaN = never written, or read outside an operand (launch, TMA\n"
      "   map); zero = TMA loaded zeros (coordinates, box) or the wrong stage; another\n"
      "   element's value = a layout error, and the decoded origin shows which index moved:\n"
      "   moves within groups of 8 rows or 8 k -> swizzle; a wrong k (row of b, column of a)\n"
      "   -> k step, SBO or transpose bit; a wrong m or n, the same in both probes -> the\n"
      "   accumulator-to-(m, n) mapping of the epilogue (or LBO across 64-wide atoms);\n"
      "   'mixed products' = several k landed in one output (k step or transpose bit).\n");
  forced(4);
  static const dlk_dtype dts[2] = {DLK_BF16, DLK_F16};
  for (int d = 0; d < 2; d++)
    for (int ta = 0; ta < 2; ta++)
      for (int tb = 1; tb >= 0; tb--) /* first the layout without transpose bits */
        for (int which = 0; which < 2; which++) probe(dts[d], ta, tb, which);
}

/* ====================================================================================== */
/* 3. the ladder                                                                          */
/* ====================================================================================== */

typedef struct {
  int64_t m, n, k;
} shape3;

static const shape3 ladder[] = {
    {64, 64, 64},     {128, 256, 64},     {128, 256, 128},   {256, 512, 256},  {1, 256, 64},
    {7, 5, 3},        {129, 257, 72},     {200, 300, 136},   {64, 1000, 1000}, {1000, 64, 520},
    {333, 777, 4100}, {1024, 1024, 1024}, {2048, 2048, 512},
};

/* Linear layer y = gelu(x @ w^T + bias), z = pre-activation, with x [M,K] (ta: the
   transposed view, unit stride along m) and w [N,K] (tw: the transposed view of a K x N
   buffer, so bmat = w^T is row-major [K,N], n-major; else bmat is k-major). Runs variants
   4, 1 and 10 on the same inputs and compares. */
static void ladder_linear(dlk_dtype dt, shape3 s, int ta, int tw) {
  char name[160];
  snprintf(name, sizeof name, "linear %s x%s w%s M=%lld N=%lld K=%lld bias+gelu+z", dtn(dt),
           ta ? "^T" : "", tw ? "^T" : "", (long long)s.m, (long long)s.n, (long long)s.k);
  t_case = name;
  double atol, rtol;
  t_tolerance(dt, 0, &atol, &rtol);
  double *hx = uniform(dt, s.m * s.k, -1, 1);
  const double sc = 1 / sqrt((double)s.k);
  double *hw = uniform(dt, s.n * s.k, -sc, sc), *hb = uniform(dt, s.n, -0.5, 0.5);
  dmat x, w, bias, y[3], z[3];
  int ok = dmat_make(&x, dt, 0, s.m, s.k, ta, 0) & dmat_make(&w, dt, 0, s.n, s.k, tw, 0);
  ok &= dmat_make(&bias, dt, 0, 1, s.n, 0, 0);
  for (int i = 0; i < 3; i++)
    ok &= dmat_make(&y[i], dt, 0, s.m, s.n, 0, 0) & dmat_make(&z[i], dt, 0, s.m, s.n, 0, 0);
  const int64_t n_out = s.m * s.n;
  double *out[6];
  for (int i = 0; i < 6; i++) out[i] = malloc((size_t)n_out * sizeof(double));
  static const int ids[3] = {4, 1, 10};
  dlk_status st[3] = {DLK_ERR_INTERNAL, DLK_ERR_INTERNAL, DLK_ERR_INTERNAL};
  if (ok) {
    dmat_write(&x, hx), dmat_write(&w, hw), dmat_write(&bias, hb);
    dlk_tensor b1 = bias.v; /* [1, N] -> [N] */
    b1.ndim = 1, b1.shape[0] = s.n, b1.strides[0] = 1;
    dlk_linear_params lp = {DLK_ACT_GELU};
    for (int i = 0; i < 3; i++) {
      forced(ids[i]);
      st[i] = dlk_linear_forward(ctx, &lp, &x.v, &w.v, &b1, &y[i].v, &z[i].v);
      if (st[i] == DLK_OK) st[i] = dlk_synchronize(ctx);
      stop_if_lost(st[i], name);
      if (st[i] != DLK_OK)
        printf("      variant %d: %s: %s\n", ids[i], dlk_status_string(st[i]),
               dlk_context_last_error(ctx));
      if (st[i] == DLK_OK) dmat_read(&y[i], out[2 * i]), dmat_read(&z[i], out[2 * i + 1]);
    }
  }
  CHECK(st[0] == DLK_OK, "%s: variant 4 failed", name);
  CHECK(st[1] == DLK_OK, "%s: the naive oracle failed", name);
  if (st[0] == DLK_OK && st[1] == DLK_OK) {
    cmp_t cy = compare(out[0], out[2], n_out, atol, rtol);
    cmp_t cz = compare(out[1], out[3], n_out, atol, rtol);
    double vs_cublas = -1;
    if (st[2] == DLK_OK) {
      cmp_t cb = compare(out[0], out[4], n_out, atol, rtol);
      vs_cublas = cb.max_err;
    }
    CHECK(cy.bad == 0 && cz.bad == 0, "%s: y %lld, z %lld elements off the naive oracle", name,
          (long long)cy.bad, (long long)cz.bad);
    printf("  %-66s vs naive: y %.2e z %.2e, vs cublas: y %.2e  %s\n", name, cy.max_err, cz.max_err,
           vs_cublas, cy.bad || cz.bad ? "FAIL" : "ok");
    print_first("y", cy, s.m, s.n);
    print_first("z", cz, s.m, s.n);
  }
  for (int i = 0; i < 6; i++) free(out[i]);
  free(hx), free(hw), free(hb);
  dmat_free(&x), dmat_free(&w), dmat_free(&bias);
  for (int i = 0; i < 3; i++) dmat_free(&y[i]), dmat_free(&z[i]);
}

/* Batched gemm c = alpha a @ b + beta c with batch nb, b shared (2-D) or batched, c with a
   padded leading dim (no 32-bit pair stores when odd): variants 4 and 1 from the same c. */
static void ladder_batched(dlk_dtype dt, int64_t nb, shape3 s, int ta, int tb, int shared_b,
                           int64_t c_pad) {
  char name[160];
  snprintf(name, sizeof name, "gemm %s batch %lld%s a%s b%s M=%lld N=%lld K=%lld a.5 b.7 ldc+%lld",
           dtn(dt), (long long)nb, shared_b ? " shared b" : "", ta ? "^T" : "", tb ? "^T" : "",
           (long long)s.m, (long long)s.n, (long long)s.k, (long long)c_pad);
  t_case = name;
  double atol, rtol;
  t_tolerance(dt, 0, &atol, &rtol);
  const int64_t bb = shared_b ? 1 : nb;
  const double sc = 1 / sqrt((double)s.k);
  double *ha = uniform(dt, nb * s.m * s.k, -1, 1), *hb = uniform(dt, bb * s.k * s.n, -sc, sc);
  double *hc = uniform(dt, nb * s.m * s.n, -1, 1);
  dmat a, b, c[2];
  int ok = dmat_make(&a, dt, nb, s.m, s.k, ta, 0) &
           dmat_make(&b, dt, shared_b ? 0 : nb, s.k, s.n, tb, 0);
  for (int i = 0; i < 2; i++) ok &= dmat_make(&c[i], dt, nb, s.m, s.n, 0, c_pad);
  const int64_t n_out = nb * s.m * s.n;
  double *out[2] = {malloc((size_t)n_out * sizeof(double)), malloc((size_t)n_out * sizeof(double))};
  dlk_status st[2] = {DLK_ERR_INTERNAL, DLK_ERR_INTERNAL};
  static const int ids[2] = {4, 1};
  if (ok) {
    dmat_write(&a, ha), dmat_write(&b, hb);
    dlk_gemm_params p = {0.5, 0.7};
    for (int i = 0; i < 2; i++) {
      dmat_write(&c[i], hc);
      forced(ids[i]);
      st[i] = dlk_gemm(ctx, &p, &a.v, &b.v, &c[i].v);
      if (st[i] == DLK_OK) st[i] = dlk_synchronize(ctx);
      stop_if_lost(st[i], name);
      if (st[i] != DLK_OK)
        printf("      variant %d: %s: %s\n", ids[i], dlk_status_string(st[i]),
               dlk_context_last_error(ctx));
      else
        dmat_read(&c[i], out[i]);
    }
  }
  CHECK(st[0] == DLK_OK && st[1] == DLK_OK, "%s: a call failed", name);
  if (st[0] == DLK_OK && st[1] == DLK_OK) {
    cmp_t cc = compare(out[0], out[1], n_out, atol, rtol);
    CHECK(cc.bad == 0, "%s: %lld elements off the naive oracle", name, (long long)cc.bad);
    printf("  %-66s vs naive: %.2e  %s\n", name, cc.max_err, cc.bad ? "FAIL" : "ok");
    print_first("c", cc, s.m, s.n);
  }
  free(out[0]), free(out[1]), free(ha), free(hb), free(hc);
  dmat_free(&a), dmat_free(&b), dmat_free(&c[0]), dmat_free(&c[1]);
}

static void test_ladder(void) {
  printf("3. ladder: variant 4 against naive (1) and cuBLAS (10)\n");
  static const dlk_dtype dts[2] = {DLK_BF16, DLK_F16};
  for (int i = 0; i < N_OF(ladder); i++)
    for (int d = 0; d < 2; d++)
      for (int ta = 0; ta < 2; ta++)
        for (int tw = 0; tw < 2; tw++) {
          /* the two largest shapes in the linear layer's own layout only */
          if (ladder[i].m * ladder[i].n * ladder[i].k > (1LL << 29) && (ta || tw)) continue;
          ladder_linear(dts[d], ladder[i], ta, tw);
        }
  const shape3 s1 = {100, 200, 72}, s2 = {64, 256, 128};
  for (int d = 0; d < 2; d++) {
    ladder_batched(dts[d], 3, s1, 0, 0, 0, 0);
    ladder_batched(dts[d], 3, s1, 1, 1, 0, 3);
    ladder_batched(dts[d], 4, s2, 0, 1, 1, 0);
    ladder_batched(dts[d], 5, s1, 1, 0, 1, 8);
  }
}

/* ====================================================================================== */
/* 4. timing (informational)                                                              */
/* ====================================================================================== */

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Median-free quick figure: 3 warm-up calls, then 20 back to back, one synchronise. */
static double time_variant(int id, dlk_tensor *a, dlk_tensor *b, dlk_tensor *c) {
  dlk_gemm_params p = {1, 0};
  if (forced(id) != DLK_OK) return -1;
  for (int i = 0; i < 3; i++)
    if (dlk_gemm(ctx, &p, a, b, c) != DLK_OK) return -1;
  if (dlk_synchronize(ctx) != DLK_OK) return -1;
  const double t0 = now_s();
  for (int i = 0; i < 20; i++)
    if (dlk_gemm(ctx, &p, a, b, c) != DLK_OK) return -1;
  if (dlk_synchronize(ctx) != DLK_OK) return -1;
  return (now_s() - t0) / 20;
}

static void test_timing(void) {
  printf(
      "4. timing, 4096^3 bf16, C = A @ B row-major (informational; dlk-bench has the real "
      "figures)\n");
  const int64_t n = 4096;
  dmat a, b, c;
  if (!(dmat_make(&a, DLK_BF16, 0, n, n, 0, 0) & dmat_make(&b, DLK_BF16, 0, n, n, 0, 0) &
        dmat_make(&c, DLK_BF16, 0, n, n, 0, 0))) {
    dmat_free(&a), dmat_free(&b), dmat_free(&c);
    return;
  }
  /* uniform [-1, 1) bf16 values (zeros would flatter the tensor cores' power draw) */
  uint16_t *h = malloc((size_t)(n * n) * sizeof *h);
  for (dmat *d = &a; d; d = d == &a ? &b : NULL) {
    for (int64_t i = 0; i < n * n; i++) h[i] = dlk_f32_to_bf16((float)t_uniform(-1, 1));
    CHECK_OK(ctx, dlk_tensor_write(ctx, &d->v, h, (size_t)(n * n) * sizeof *h));
  }
  free(h);
  const double flops = 2.0 * (double)n * n * n;
  const double t4 = time_variant(4, &a.v, &b.v, &c.v), t10 = time_variant(10, &a.v, &b.v, &c.v);
  if (t4 > 0 && t10 > 0)
    printf(
        "  wgmma %.1f us = %.0f TFLOP/s, cublas %.1f us = %.0f TFLOP/s: ratio %.2f (target >= "
        "0.7)\n",
        t4 * 1e6, flops / t4 * 1e-12, t10 * 1e6, flops / t10 * 1e-12, t10 / t4);
  else
    printf("  timing failed: %s\n", dlk_context_last_error(ctx));
  dmat_free(&a), dmat_free(&b), dmat_free(&c);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--host") == 0) {
#if defined(DLK_CUDA_EMU)
    printf("gemm_sm90_check --host: the emulated build leaves the wgmma kernel file out (inline PTX "
           "through and through), so its layout rules are not here: skipped\n");
    (void)test_host_table;
    return 77;
#elif DLK_HAVE_CUDA
    test_host_table();
    return t_summary("gemm_sm90_check --host");
#else
    printf("gemm_sm90_check --host: a CPU-only build has no CUDA kernels: skipped\n");
    return 77;
#endif
  }
  ctx = t_gpu_context_or_skip("gemm_sm90_check");
  /* Can variant 4 run here at all? The explain report of the smallest probe shape says
     (and goes into the log: every variant of the case and why not). */
  {
    dmat a, b, c;
    dmat_make(&a, DLK_BF16, 0, 64, 64, 0, 0), dmat_make(&b, DLK_BF16, 0, 64, 64, 0, 0);
    dmat_make(&c, DLK_BF16, 0, 64, 64, 0, 0);
    dlk_gemm_params p = {1, 0};
    const char *report = NULL;
    CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
    CHECK_OK(ctx, dlk_gemm(ctx, &p, &a.v, &b.v, &c.v));
    CHECK_OK(ctx, dlk_explain_report(ctx, &report));
    static char text[8192]; /* the report lives in the context until explain mode ends */
    snprintf(text, sizeof text, "%s", report ? report : "");
    report = text;
    CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
    dmat_free(&a), dmat_free(&b), dmat_free(&c);
    char line[512] = "";
    const char *w = report ? strstr(report, " wgmma ") : NULL;
    if (w) {
      size_t len = strcspn(w, "\n");
      snprintf(line, sizeof line, "%.*s", (int)(len < sizeof line - 1 ? len : sizeof line - 1), w);
    }
    printf("gemm 64x64x64 bf16 on this device:\n%s\n", report ? report : "(no report)");
    CHECK(w != NULL, "variant 4 (wgmma) is not in the gemm table");
    if (w && strstr(line, "not supported") &&
        (strstr(line, "sm_90a") || strstr(line, "needs sm_90") || strstr(line, "needs a real GPU"))) {
      printf("gemm_sm90_check: variant 4 cannot run here:%s: skipped\n", line);
      dlk_context_destroy(ctx);
      return 77;
    }
    CHECK(w && !strstr(line, "not supported"), "variant 4 refuses the 64^3 bf16 case:%s", line);
  }
  test_refusals();
  test_probes();
  test_ladder();
  test_timing();
  dlk_force_variant(ctx, "gemm", -1);
  dlk_context_destroy(ctx);
  return t_summary("gemm_sm90_check");
}
