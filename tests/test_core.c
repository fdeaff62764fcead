/* Core tests: statuses, context, tensors (copies, views, strided), DLPack layout and
   round trips, dispatch registry, forcing, explain, the autotune cache and bad input. */
#include <signal.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "core/internal.h"
#include "nn/nn.h"

/* ---- statuses ---- */
static void test_status(void) {
  t_case = "status";
  CHECK(DLK_OK == 0, "DLK_OK must be 0");
  CHECK(strcmp(dlk_status_string(DLK_OK), "DLK_OK") == 0, "name of OK");
  CHECK(strcmp(dlk_status_string(DLK_ERR_SHAPE_MISMATCH), "DLK_ERR_SHAPE_MISMATCH") == 0, "name");
  CHECK(strcmp(dlk_status_string((dlk_status)12345), "DLK_UNKNOWN_STATUS") == 0, "unknown");
  for (int s = 0; s < DLK_STATUS_COUNT; s++) {
    CHECK(strncmp(dlk_status_string((dlk_status)s), "DLK_", 4) == 0, "status %d has a name", s);
    CHECK(dlk_status_message((dlk_status)s)[0] != '\0', "status %d has a message", s);
  }
  CHECK(strcmp(dlk_version(), "0.1.0") == 0, "version %s", dlk_version());
  dlk_versions v;
  CHECK(dlk_query_versions(NULL, &v) == DLK_OK, "versions");
  CHECK(v.cuda_archs != NULL, "archs string");
}

/* ---- context ---- */
static void test_context(void) {
  t_case = "context";
  dlk_context *ctx = NULL;
  CHECK(dlk_context_create(NULL, NULL) == DLK_ERR_NULL_POINTER, "NULL out");
  CHECK(dlk_context_last_error(NULL)[0] != '\0', "create error message");
  CHECK(dlk_context_create(&ctx, NULL) == DLK_OK, "default context: %s", dlk_context_last_error(NULL));
  if (!ctx) return;
  CHECK(dlk_context_last_error(ctx) != NULL && dlk_context_last_error(ctx)[0] == '\0',
        "fresh context has no error: \"%s\"", dlk_context_last_error(ctx));
  dlk_device d;
  CHECK_OK(ctx, dlk_context_device(ctx, &d));
  int n = 0;
  dlk_device_count(NULL, &n);
  CHECK(d.type == (n > 0 ? DLK_CUDA : DLK_CPU), "default device is %s with %d GPUs",
        dlk_device_type_name(d.type), n);
  CHECK_OK(ctx, dlk_synchronize(ctx));
  dlk_context_destroy(ctx);
  dlk_context_destroy(NULL); /* no-op */

  dlk_context_options o;
  memset(&o, 0, sizeof o);
  o.device = (dlk_device){DLK_CPU, 3};
  ctx = (dlk_context *)1;
  CHECK(dlk_context_create(&ctx, &o) == DLK_ERR_INVALID_ARGUMENT && ctx == NULL, "cpu:3");
  o.device = (dlk_device){(dlk_device_type)9, 0};
  CHECK(dlk_context_create(&ctx, &o) == DLK_ERR_INVALID_ARGUMENT, "bad device type");
  if (n == 0) {
    o.device = (dlk_device){DLK_CUDA, 0};
    CHECK(dlk_context_create(&ctx, &o) == DLK_ERR_NO_DEVICE, "cuda without GPU");
    CHECK(strstr(dlk_context_last_error(NULL), "cuda") || strstr(dlk_context_last_error(NULL), "CUDA"),
          "message names CUDA: %s", dlk_context_last_error(NULL));
  }
  o.device = (dlk_device){DLK_CPU, 0};
  o.force_variant = "no_such_op:1";
  CHECK(dlk_context_create(&ctx, &o) == DLK_ERR_INVALID_ARGUMENT, "bad forced op");
  CHECK(strstr(dlk_context_last_error(NULL), "no_such_op") != NULL, "msg: %s", dlk_context_last_error(NULL));
  o.force_variant = "garbage";
  CHECK(dlk_context_create(&ctx, &o) == DLK_ERR_INVALID_ARGUMENT, "unparsable forced spec");

  ctx = t_cpu_context();
  CHECK(dlk_context_set_stream(ctx, (void *)0x10) == DLK_ERR_DEVICE_MISMATCH, "stream on CPU");
  CHECK_OK(ctx, dlk_context_set_stream(ctx, NULL));
  size_t ws = 1;
  CHECK_OK(ctx, dlk_context_workspace_size(ctx, &ws));
  CHECK(ws == 0, "no workspace before use");
  void *p;
  CHECK_OK(ctx, dlk_workspace_reserve(ctx, 1000, &p));
  CHECK_OK(ctx, dlk_context_workspace_size(ctx, &ws));
  CHECK(ws >= 1000, "workspace grew to %zu", ws);
  CHECK_OK(ctx, dlk_context_set_workspace_limit(ctx, 4 << 20));
  CHECK(dlk_workspace_reserve(ctx, 8 << 20, &p) == DLK_ERR_WORKSPACE_LIMIT, "cap enforced");
  dlk_context_destroy(ctx);
}

/* ---- tensors ---- */
static void fill_iota(float *p, int n, float base) {
  for (int i = 0; i < n; i++) p[i] = base + (float)i;
}

static void test_tensors(dlk_context *ctx, dlk_device dev) {
  t_case = dev.type == DLK_CUDA ? "tensors/cuda" : "tensors/cpu";
  dlk_tensor a, b;
  int64_t shape[3] = {3, 4, 5};
  CHECK_OK(ctx, dlk_tensor_alloc(ctx, &a, DLK_F32, 3, shape));
  CHECK(a.device.type == dev.type, "alloc on the context's device");
  CHECK(dlk_tensor_numel(&a) == 60 && dlk_tensor_is_contiguous(&a), "numel/contiguous");
  CHECK(a.strides[0] == 20 && a.strides[1] == 5 && a.strides[2] == 1, "strides");
  float host[60], back[60];
  fill_iota(host, 60, 1.0f);
  CHECK_OK(ctx, dlk_tensor_write(ctx, &a, host, sizeof host));
  memset(back, 0, sizeof back);
  CHECK_OK(ctx, dlk_tensor_read(ctx, &a, back, sizeof back));
  CHECK(memcmp(host, back, sizeof host) == 0, "write/read round trip");
  CHECK(dlk_tensor_read(ctx, &a, back, 10) == DLK_ERR_SHAPE_MISMATCH, "short buffer");

  /* Transposed view [5,4,3] copied to a contiguous tensor. */
  dlk_tensor at, tmp;
  CHECK_OK(ctx, dlk_tensor_transpose(ctx, &tmp, &a, 0, 2));
  at = tmp;
  CHECK(!dlk_tensor_is_contiguous(&at), "transpose is strided");
  int64_t tshape[3] = {5, 4, 3};
  CHECK_OK(ctx, dlk_tensor_alloc(ctx, &b, DLK_F32, 3, tshape));
  CHECK_OK(ctx, dlk_tensor_copy(ctx, &b, &at));
  CHECK_OK(ctx, dlk_tensor_read(ctx, &b, back, sizeof back));
  int bad = 0;
  for (int i = 0; i < 5; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 3; k++) bad += back[i * 12 + j * 3 + k] != host[k * 20 + j * 5 + i];
  CHECK(bad == 0, "strided device copy: %d wrong", bad);

  /* Read a strided view straight into a dense host buffer, and write one. */
  dlk_tensor sl;
  CHECK_OK(ctx, dlk_tensor_slice(ctx, &sl, &a, 2, 1, 3)); /* [3,4,3], row stride 5 */
  float part[36];
  CHECK_OK(ctx, dlk_tensor_read(ctx, &sl, part, sizeof part));
  bad = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 3; k++) bad += part[i * 12 + j * 3 + k] != host[i * 20 + j * 5 + k + 1];
  CHECK(bad == 0, "read of slice: %d wrong", bad);
  for (int i = 0; i < 36; i++) part[i] = -1.0f - (float)i;
  CHECK_OK(ctx, dlk_tensor_write(ctx, &sl, part, sizeof part));
  CHECK_OK(ctx, dlk_tensor_read(ctx, &a, back, sizeof back));
  bad = 0;
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 4; j++)
      for (int k = 0; k < 5; k++) {
        float want = (k >= 1 && k < 4) ? -1.0f - (float)(i * 12 + j * 3 + k - 1) : host[i * 20 + j * 5 + k];
        bad += back[i * 20 + j * 5 + k] != want;
      }
  CHECK(bad == 0, "write through slice touched only the slice: %d wrong", bad);

  /* Zero a strided view. */
  CHECK_OK(ctx, dlk_tensor_zero(ctx, &sl));
  CHECK_OK(ctx, dlk_tensor_read(ctx, &a, back, sizeof back));
  bad = 0;
  for (int i = 0; i < 60; i++) {
    int k = i % 5;
    bad += (k >= 1 && k < 4) ? back[i] != 0.0f : back[i] != host[i];
  }
  CHECK(bad == 0, "zero of a slice: %d wrong", bad);

  /* Reshape needs contiguity. */
  dlk_tensor r;
  int64_t flat[1] = {60}, wrong[1] = {61};
  CHECK_OK(ctx, dlk_tensor_reshape(ctx, &r, &a, 1, flat));
  CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_tensor_reshape(ctx, &r, &a, 1, wrong));
  CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_tensor_reshape(ctx, &r, &at, 1, flat));
  CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, dlk_tensor_slice(ctx, &r, &a, 1, 3, 2));
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_tensor_transpose(ctx, &r, &a, 0, 3));

  /* Copies that must be refused. */
  CHECK_STATUS(ctx, DLK_ERR_SHAPE_MISMATCH, dlk_tensor_copy(ctx, &b, &a));
  dlk_tensor a_i32 = a;
  a_i32.dtype = DLK_I32;
  CHECK_STATUS(ctx, DLK_ERR_DTYPE_MISMATCH, dlk_tensor_copy(ctx, &a, &a_i32));
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_tensor_copy(ctx, &a, &a)); /* overlap */
  dlk_tensor bcast = a;
  bcast.strides[0] = 0;
  CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_tensor_copy(ctx, &bcast, &b.shape[0] ? &a : &a));

  /* All dtypes survive a round trip. */
  for (int dt = 0; dt < DLK_DTYPE_COUNT; dt++) {
    dlk_tensor x;
    int64_t s2[2] = {7, 3};
    CHECK_OK(ctx, dlk_tensor_alloc(ctx, &x, (dlk_dtype)dt, 2, s2));
    unsigned char in[21 * 8], out[21 * 8];
    for (size_t i = 0; i < sizeof in; i++) in[i] = (unsigned char)(i * 37 + dt);
    size_t bytes = 21 * dlk_dtype_size((dlk_dtype)dt);
    CHECK_OK(ctx, dlk_tensor_write(ctx, &x, in, bytes));
    CHECK_OK(ctx, dlk_tensor_read(ctx, &x, out, bytes));
    CHECK(memcmp(in, out, bytes) == 0, "round trip %s", dlk_dtype_name((dlk_dtype)dt));
    CHECK_OK(ctx, dlk_tensor_free(ctx, &x));
  }
  CHECK_OK(ctx, dlk_tensor_free(ctx, &a));
  CHECK_OK(ctx, dlk_tensor_free(ctx, &b));
  CHECK(a.data == NULL, "free clears the descriptor");
}

/* Strided copies for every element size (the device kernel has one instantiation per size:
   1, 2, 4 and 8 bytes; the f32 cases above reach only 4): a [3,4,5] tensor a, its
   transpose at [5,4,3] copied into the transpose of another [3,4,5] tensor (both sides
   strided on the context's device: c must equal a), into a host buffer through its
   transposed view (host and device strided at once), and a 0-d tensor. Byte patterns, so
   every byte of every element is checked (the copies never convert). */
static void test_strided_copy_sizes(dlk_context *ctx, dlk_device dev) {
  static const dlk_dtype types[] = {DLK_U8, DLK_F16, DLK_I32, DLK_F64};
  for (int t = 0; t < 4; t++) {
    const dlk_dtype dt = types[t];
    const size_t es = dlk_dtype_size(dt);
    t_case = dev.type == DLK_CUDA ? "strided copy sizes/cuda" : "strided copy sizes/cpu";
    int64_t shape[3] = {3, 4, 5};
    dlk_tensor a, c, at, ct, h, hv;
    CHECK_OK(ctx, dlk_tensor_alloc(ctx, &a, dt, 3, shape));
    CHECK_OK(ctx, dlk_tensor_alloc(ctx, &c, dt, 3, shape));
    if (!a.data || !c.data) return;
    unsigned char in[60 * 8], out[60 * 8], hb[60 * 8];
    for (size_t i = 0; i < 60 * es; i++) in[i] = (unsigned char)(i * 7 + (size_t)t + 1);
    CHECK_OK(ctx, dlk_tensor_write(ctx, &a, in, 60 * es));
    CHECK_OK(ctx, dlk_tensor_zero(ctx, &c));
    CHECK_OK(ctx, dlk_tensor_transpose(ctx, &at, &a, 0, 2));
    CHECK_OK(ctx, dlk_tensor_transpose(ctx, &ct, &c, 0, 2));
    CHECK_OK(ctx, dlk_tensor_copy(ctx, &ct, &at));
    memset(out, 0, sizeof out);
    CHECK_OK(ctx, dlk_tensor_read(ctx, &c, out, 60 * es));
    CHECK(memcmp(in, out, 60 * es) == 0, "%s: strided to strided on the device", dlk_dtype_name(dt));
    /* host [3,4,5] seen through its transpose [5,4,3]: hv = at, so h = a */
    memset(hb, 0, sizeof hb);
    CHECK_OK(ctx, dlk_tensor_init(ctx, &h, hb, dt, (dlk_device){DLK_CPU, 0}, 3, shape));
    CHECK_OK(ctx, dlk_tensor_transpose(ctx, &hv, &h, 0, 2));
    CHECK_OK(ctx, dlk_tensor_copy(ctx, &hv, &at));
    CHECK(memcmp(in, hb, 60 * es) == 0, "%s: strided device to strided host", dlk_dtype_name(dt));
    /* and back: c = 0, then host (strided) to device (strided) */
    CHECK_OK(ctx, dlk_tensor_zero(ctx, &c));
    CHECK_OK(ctx, dlk_tensor_copy(ctx, &ct, &hv));
    memset(out, 0, sizeof out);
    CHECK_OK(ctx, dlk_tensor_read(ctx, &c, out, 60 * es));
    CHECK(memcmp(in, out, 60 * es) == 0, "%s: strided host to strided device", dlk_dtype_name(dt));
    /* a 0-d tensor */
    dlk_tensor z;
    CHECK_OK(ctx, dlk_tensor_alloc(ctx, &z, dt, 0, NULL));
    CHECK_OK(ctx, dlk_tensor_write(ctx, &z, in + es, es));
    memset(out, 0, sizeof out);
    CHECK_OK(ctx, dlk_tensor_read(ctx, &z, out, es));
    CHECK(memcmp(in + es, out, es) == 0, "%s: 0-d round trip", dlk_dtype_name(dt));
    CHECK_OK(ctx, dlk_tensor_free(ctx, &z));
    CHECK_OK(ctx, dlk_tensor_free(ctx, &a));
    CHECK_OK(ctx, dlk_tensor_free(ctx, &c));
  }
}

/* ---- DLPack: the ABI layout of the published v1.x header (x86-64 / aarch64 LP64) ---- */
static void test_dlpack_layout(void) {
  t_case = "dlpack-layout";
  CHECK(sizeof(DLPackVersion) == 8, "DLPackVersion %zu", sizeof(DLPackVersion));
  CHECK(sizeof(DLDevice) == 8 && offsetof(DLDevice, device_id) == 4, "DLDevice");
  CHECK(sizeof(DLDataType) == 4 && offsetof(DLDataType, bits) == 1 && offsetof(DLDataType, lanes) == 2,
        "DLDataType");
  CHECK(offsetof(DLTensor, data) == 0 && offsetof(DLTensor, device) == 8 &&
            offsetof(DLTensor, ndim) == 16 && offsetof(DLTensor, dtype) == 20 &&
            offsetof(DLTensor, shape) == 24 && offsetof(DLTensor, strides) == 32 &&
            offsetof(DLTensor, byte_offset) == 40 && sizeof(DLTensor) == 48,
        "DLTensor layout");
  CHECK(offsetof(DLManagedTensor, manager_ctx) == 48 && offsetof(DLManagedTensor, deleter) == 56 &&
            sizeof(DLManagedTensor) == 64,
        "DLManagedTensor layout");
  CHECK(offsetof(DLManagedTensorVersioned, version) == 0 &&
            offsetof(DLManagedTensorVersioned, manager_ctx) == 8 &&
            offsetof(DLManagedTensorVersioned, deleter) == 16 &&
            offsetof(DLManagedTensorVersioned, flags) == 24 &&
            offsetof(DLManagedTensorVersioned, dl_tensor) == 32 &&
            sizeof(DLManagedTensorVersioned) == 80,
        "DLManagedTensorVersioned layout");
  CHECK(kDLCPU == 1 && kDLCUDA == 2 && kDLCUDAHost == 3 && kDLCUDAManaged == 13 && kDLMAIA == 17,
        "device codes");
  CHECK(kDLInt == 0 && kDLUInt == 1 && kDLFloat == 2 && kDLBfloat == 4 && kDLBool == 6 &&
            kDLFloat4_e2m1fn == 17,
        "dtype codes");
  CHECK(DLPACK_FLAG_BITMASK_READ_ONLY == 1 && DLPACK_FLAG_BITMASK_IS_COPIED == 2, "flags");
  CHECK((int)DLK_CPU == (int)kDLCPU && (int)DLK_CUDA == (int)kDLCUDA, "dlk device values");
}

static void test_dlpack(dlk_context *ctx, dlk_device dev) {
  t_case = "dlpack";
  dlk_tensor a;
  int64_t shape[2] = {4, 6};
  CHECK_OK(ctx, dlk_tensor_alloc(ctx, &a, DLK_BF16, 2, shape));
  dlk_tensor v;
  CHECK_OK(ctx, dlk_tensor_transpose(ctx, &v, &a, 0, 1));
  DLManagedTensorVersioned *m = NULL;
  CHECK_OK(ctx, dlk_tensor_to_dlpack(ctx, &v, &m));
  if (!m) return;
  CHECK(m->version.major == 1 && m->dl_tensor.ndim == 2 && m->dl_tensor.dtype.code == kDLBfloat &&
            m->dl_tensor.dtype.bits == 16 && m->dl_tensor.dtype.lanes == 1,
        "export header");
  CHECK(m->dl_tensor.device.device_type == (dev.type == DLK_CUDA ? kDLCUDA : kDLCPU), "device");
  CHECK(m->dl_tensor.shape[0] == 6 && m->dl_tensor.strides[0] == 1 && m->dl_tensor.strides[1] == 6,
        "shape/strides");
  dlk_tensor back;
  CHECK_OK(ctx, dlk_tensor_from_dlpack(ctx, &back, m, 1));
  CHECK(back.data == a.data && back.dtype == DLK_BF16 && back.shape[0] == 6 && back.strides[1] == 6 &&
            back.device.type == dev.type,
        "import gives the same view without copying");
  /* byte_offset and NULL strides (compact). */
  m->dl_tensor.strides = NULL;
  m->dl_tensor.byte_offset = 4;
  CHECK_OK(ctx, dlk_tensor_from_dlpack(ctx, &back, m, 0));
  CHECK((char *)back.data == (char *)a.data + 4 && back.strides[0] == 4 && back.strides[1] == 1,
        "byte_offset / compact strides");
  /* Refusals. */
  m->flags = DLPACK_FLAG_BITMASK_READ_ONLY;
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_tensor_from_dlpack(ctx, &back, m, 1));
  CHECK_OK(ctx, dlk_tensor_from_dlpack(ctx, &back, m, 0));
  m->flags = 0;
  m->version.major = 2;
  CHECK_STATUS(ctx, DLK_ERR_NOT_SUPPORTED, dlk_tensor_from_dlpack(ctx, &back, m, 0));
  m->version.major = 1;
  m->dl_tensor.dtype.lanes = 4;
  CHECK_STATUS(ctx, DLK_ERR_DTYPE_MISMATCH, dlk_tensor_from_dlpack(ctx, &back, m, 0));
  m->dl_tensor.dtype = (DLDataType){kDLComplex, 64, 1};
  CHECK_STATUS(ctx, DLK_ERR_DTYPE_MISMATCH, dlk_tensor_from_dlpack(ctx, &back, m, 0));
  m->dl_tensor.dtype = (DLDataType){kDLFloat, 32, 1};
  m->dl_tensor.device.device_type = kDLROCM;
  CHECK_STATUS(ctx, DLK_ERR_NOT_SUPPORTED, dlk_tensor_from_dlpack(ctx, &back, m, 0));
  m->dl_tensor.device.device_type = kDLCPU;
  m->dl_tensor.ndim = 9;
  CHECK_STATUS(ctx, DLK_ERR_NOT_SUPPORTED, dlk_tensor_from_dlpack(ctx, &back, m, 0));
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_tensor_from_dlpack(ctx, &back, NULL, 0));
  m->deleter(m);
  CHECK_OK(ctx, dlk_tensor_free(ctx, &a));
}

/* ---- bad descriptors: every one a status and a message ---- */
static void test_bad_tensors(dlk_context *ctx) {
  t_case = "bad-tensors";
  float buf[16];
  dlk_tensor ok;
  int64_t s2[2] = {4, 4};
  CHECK_OK(ctx, dlk_tensor_init(ctx, &ok, buf, DLK_F32, (dlk_device){DLK_CPU, 0}, 2, s2));
  struct {
    const char *what;
    dlk_status want;
    void (*mutate)(dlk_tensor *);
  } cases[] = {
      {"bad dtype", DLK_ERR_DTYPE_MISMATCH, NULL},
  };
  (void)cases;
  dlk_tensor t;
  t = ok, t.dtype = (dlk_dtype)77;
  CHECK_STATUS(ctx, DLK_ERR_DTYPE_MISMATCH, dlk_tensor_validate(ctx, &t, "t"));
  t = ok, t.ndim = 9;
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_tensor_validate(ctx, &t, "t"));
  t = ok, t.ndim = -1;
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_tensor_validate(ctx, &t, "t"));
  t = ok, t.shape[0] = -4;
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_tensor_validate(ctx, &t, "t"));
  CHECK(strstr(dlk_context_last_error(ctx), "negative") != NULL, "msg: %s", dlk_context_last_error(ctx));
  t = ok, t.strides[1] = -1;
  CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_tensor_validate(ctx, &t, "t"));
  t = ok, t.shape[0] = INT64_MAX / 2, t.shape[1] = 3;
  CHECK_STATUS(ctx, DLK_ERR_OVERFLOW, dlk_tensor_validate(ctx, &t, "t"));
  t = ok, t.data = NULL;
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_tensor_validate(ctx, &t, "t"));
  t = ok, t.device.type = (dlk_device_type)5;
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_tensor_validate(ctx, &t, "t"));
  t = ok, t.device.id = 2;
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_tensor_validate(ctx, &t, "t"));
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_tensor_validate(ctx, NULL, "t"));
  t = ok, t.data = NULL, t.shape[0] = 0; /* empty tensors may have NULL data */
  CHECK_OK(ctx, dlk_tensor_validate(ctx, &t, "t"));
  int64_t neg[2] = {-1, 2};
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_tensor_alloc(ctx, &t, DLK_F32, 2, neg));
  int64_t huge[2] = {INT64_MAX / 4, 8};
  CHECK_STATUS(ctx, DLK_ERR_OVERFLOW, dlk_tensor_alloc(ctx, &t, DLK_F32, 2, huge));
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_tensor_alloc(ctx, NULL, DLK_F32, 2, s2));
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_tensor_init(ctx, &t, buf, DLK_F32, (dlk_device){DLK_CPU, 0}, 2, NULL));
  t = ok, t.device = (dlk_device){DLK_CUDA, 0};
  CHECK_STATUS(ctx, DLK_ERR_DEVICE_MISMATCH, dlk_tensor_copy(ctx, &t, &ok));
  /* The context is still usable after all of that. */
  float src[16], dst[16];
  fill_iota(src, 16, 0);
  CHECK_OK(ctx, dlk_tensor_write(ctx, &ok, src, sizeof src));
  CHECK_OK(ctx, dlk_tensor_read(ctx, &ok, dst, sizeof dst));
  CHECK(memcmp(src, dst, sizeof src) == 0, "context works after failures");
}

/* ---- hostile but memory-valid descriptors (every row once broke the library) ----
   Each descriptor's bytes are real memory (or it has no elements): the library must
   answer, a result or a refusal with a message, and touch nothing it must not. */

/* A descriptor over `data` with explicit strides. */
static dlk_tensor desc(void *data, dlk_dtype dt, int ndim, const int64_t *shape, const int64_t *strides) {
  dlk_tensor t;
  memset(&t, 0, sizeof t);
  t.data = data;
  t.dtype = dt;
  t.device = (dlk_device){DLK_CPU, 0};
  t.ndim = ndim;
  for (int i = 0; i < ndim; i++) t.shape[i] = shape[i], t.strides[i] = strides[i];
  return t;
}

static void test_hostile_descriptors(dlk_context *ctx) {
  t_case = "hostile/validate";
  static _Alignas(16) unsigned char raw[256];
  const int64_t T40 = (int64_t)1 << 40, T61 = (int64_t)1 << 61, T62 = (int64_t)1 << 62;
  struct {
    const char *what;
    void *data;
    dlk_dtype dt;
    int ndim;
    int64_t shape[3], strides[3];
    dlk_status want;
  } rows[] = {
      /* issue 14 item 3: span + 1 overflowed (undefined behaviour) in every API */
      {"u8 [0, 2] strides {0, INT64_MAX}", NULL, DLK_U8, 2, {0, 2}, {0, INT64_MAX}, DLK_ERR_OVERFLOW},
      {"f32 [2^62, 0] (empty, huge other dim)", NULL, DLK_F32, 2, {T62, 0}, {0, 1}, DLK_OK},
      {"f32 [2^61, 0] (the embedding table of item 1)", raw, DLK_F32, 2, {T61, 0}, {0, 1}, DLK_OK},
      {"f32 [2^40, 2^40, 0]: nonzero dims overflow", NULL, DLK_F32, 3, {T40, T40, 0}, {0, 0, 1}, DLK_ERR_OVERFLOW},
      {"f32 [0, 2^40, 2^40]: nonzero dims overflow", NULL, DLK_F32, 3, {0, T40, T40}, {0, 0, 1}, DLK_ERR_OVERFLOW},
      /* item 4: data misaligned for its element type */
      {"f32 at raw + 1", raw + 1, DLK_F32, 1, {4}, {1}, DLK_ERR_LAYOUT},
      {"f64 at raw + 4", raw + 4, DLK_F64, 1, {2}, {1}, DLK_ERR_LAYOUT},
      {"bf16 at raw + 3", raw + 3, DLK_BF16, 1, {2}, {1}, DLK_ERR_LAYOUT},
      {"empty f32 at raw + 2", raw + 2, DLK_F32, 1, {0}, {1}, DLK_ERR_LAYOUT},
      {"u8 at raw + 1 (bytes need no alignment)", raw + 1, DLK_U8, 1, {4}, {1}, DLK_OK},
      {"f64 at raw + 8", raw + 8, DLK_F64, 1, {2}, {1}, DLK_OK},
      /* addresses that wrap: no memory can be there */
      {"f32 [2] at UINTPTR_MAX - 3", (void *)(UINTPTR_MAX - 3), DLK_F32, 1, {2}, {1}, DLK_ERR_OVERFLOW},
      {"u8 [1] at UINTPTR_MAX", (void *)UINTPTR_MAX, DLK_U8, 1, {1}, {1}, DLK_OK},
  };
  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    dlk_tensor t = desc(rows[i].data, rows[i].dt, rows[i].ndim, rows[i].shape, rows[i].strides);
    dlk_context_clear_error(ctx);
    dlk_status s = dlk_tensor_validate(ctx, &t, "t");
    CHECK(s == rows[i].want, "%s: %s, expected %s (%s)", rows[i].what, dlk_status_string(s),
          dlk_status_string(rows[i].want), dlk_context_last_error(ctx));
    if (s != DLK_OK) CHECK(dlk_context_last_error(ctx)[0], "%s: no message", rows[i].what);
    if (s == rows[i].want && s == DLK_ERR_LAYOUT)
      CHECK(strstr(dlk_context_last_error(ctx), "aligned"), "%s: %s", rows[i].what, dlk_context_last_error(ctx));
  }
  dlk_tensor t;
  int64_t four = 4;
  CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_tensor_init(ctx, &t, raw + 1, DLK_F32, (dlk_device){DLK_CPU, 0}, 1, &four));
  CHECK_OK(ctx, dlk_tensor_init(ctx, &t, raw + 4, DLK_F32, (dlk_device){DLK_CPU, 0}, 1, &four));
  /* dlk_tensor_alloc validates with a stand-in address before it allocates: it must be
     aligned for every dtype. */
  for (int dt = 0; dt < DLK_DTYPE_COUNT; dt++) {
    CHECK_OK(ctx, dlk_tensor_alloc(ctx, &t, (dlk_dtype)dt, 1, &four));
    CHECK_OK(ctx, dlk_tensor_free(ctx, &t));
  }
  /* A misaligned input is refused by an op before anything is written. */
  float *f = (float *)(void *)raw;
  for (int i = 0; i < 8; i++) f[i] = 1.0f;
  dlk_tensor xm = desc(raw + 2, DLK_F32, 1, &four, (int64_t[]){1}), ym = desc(raw + 64, DLK_F32, 1, &four, (int64_t[]){1});
  dlk_softmax_params sp = {0};
  unsigned char before[256];
  memcpy(before, raw, sizeof raw);
  CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_softmax_forward(ctx, &sp, &xm, &ym));
  CHECK(memcmp(before, raw, sizeof raw) == 0, "refused softmax wrote something");

  t_case = "hostile/pure helpers";
  /* item 3: dlk_tensor_is_contiguous overflowed on [2^62, 4]; it is pure and total. */
  dlk_tensor c = desc(NULL, DLK_F32, 2, (int64_t[]){T62, 4}, (int64_t[]){4, 1});
  CHECK(dlk_tensor_is_contiguous(&c) == 1, "[2^62, 4] strides {4, 1} is contiguous");
  /* The product overflowing 2^64 once wrapped to 0 and made stride 0 match. */
  c = desc(NULL, DLK_F32, 3, (int64_t[]){2, T62, 4}, (int64_t[]){0, 4, 1});
  CHECK(dlk_tensor_is_contiguous(&c) == 0, "[2, 2^62, 4] strides {0, 4, 1} is not contiguous");
  c = desc(NULL, DLK_F32, 2, (int64_t[]){-3, 4}, (int64_t[]){4, 1});
  CHECK(dlk_tensor_is_contiguous(&c) == 0 && dlk_tensor_numel(&c) == 0, "negative size");
  c.ndim = 99;
  CHECK(dlk_tensor_is_contiguous(&c) == 0 && dlk_tensor_numel(&c) == 0, "ndim 99");
  CHECK(dlk_tensor_is_contiguous(NULL) == 0 && dlk_tensor_numel(NULL) == 0, "NULL");
  CHECK(dlk_dtype_size((dlk_dtype)-5) == 0 && strcmp(dlk_dtype_name((dlk_dtype)99), "invalid-dtype") == 0,
        "dtype helpers total");
  /* item 3: slicing an empty tensor with NULL data added an offset to NULL. */
  dlk_tensor e = desc(NULL, DLK_F32, 2, (int64_t[]){0, 4}, (int64_t[]){4, 1}), v;
  CHECK_OK(ctx, dlk_tensor_slice(ctx, &v, &e, 1, 1, 2));
  CHECK(v.data == NULL && v.shape[1] == 2, "slice of an empty tensor keeps NULL data");
  CHECK_OK(ctx, dlk_tensor_reshape(ctx, &v, &e, 1, (int64_t[]){0}));
  CHECK(v.data == NULL, "reshape of an empty tensor keeps NULL data");
  /* A tensor with no elements is contiguous whatever its strides: dlk_tensor_init's own
     strides for [2, 0] ({1, 1}) were not, so its result could not be reshaped (fuzz_api). */
  CHECK_OK(ctx, dlk_tensor_init(ctx, &e, raw, DLK_F16, (dlk_device){DLK_CPU, 0}, 2, (int64_t[]){2, 0}));
  CHECK(dlk_tensor_is_contiguous(&e) == 1, "init's [2, 0] is contiguous");
  CHECK_OK(ctx, dlk_tensor_reshape(ctx, &v, &e, 3, (int64_t[]){0, 5, 7}));
  /* NULL arguments of the helpers are refused, never dereferenced (fuzz_api). */
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_tensor_copy(ctx, NULL, &e));
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_tensor_copy(ctx, &e, NULL));
  CHECK_STATUS(ctx, DLK_ERR_NULL_POINTER, dlk_tensor_zero(ctx, NULL));

  t_case = "hostile/dlpack";
  /* item 4 / issue 10 item 12: byte_offset that misaligns or wraps. */
  int64_t dshape[1] = {4};
  DLManagedTensorVersioned m;
  memset(&m, 0, sizeof m);
  m.version.major = DLPACK_MAJOR_VERSION;
  m.dl_tensor.data = raw;
  m.dl_tensor.device.device_type = kDLCPU;
  m.dl_tensor.ndim = 1;
  m.dl_tensor.dtype = (DLDataType){kDLFloat, 32, 1};
  m.dl_tensor.shape = dshape;
  const uint64_t offsets[] = {2, 1, 6, UINT64_MAX, UINT64_MAX - 3, (uint64_t)-(uintptr_t)raw};
  for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
    m.dl_tensor.byte_offset = offsets[i];
    dlk_tensor out = desc(NULL, DLK_U8, 0, NULL, NULL);
    CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_tensor_from_dlpack(ctx, &out, &m, 0));
    CHECK(out.ndim == 0 && out.data == NULL, "byte_offset %llu: out untouched", (unsigned long long)offsets[i]);
  }
  m.dl_tensor.byte_offset = 8;
  CHECK_OK(ctx, dlk_tensor_from_dlpack(ctx, &t, &m, 0));
  CHECK(t.data == raw + 8, "byte_offset 8");

  t_case = "hostile/overlapping destinations";
  /* item 5 / issue 10 item 13: zero, write and copy took a destination whose elements
     overlap; every op refuses such an output, with this message. */
  double dbuf[16];
  for (int i = 0; i < 16; i++) dbuf[i] = i + 1;
  double dsave[16];
  memcpy(dsave, dbuf, sizeof dbuf);
  dlk_tensor z = desc(dbuf, DLK_F64, 2, (int64_t[]){4, 3}, (int64_t[]){2, 1});
  CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_tensor_zero(ctx, &z));
  CHECK(strstr(dlk_context_last_error(ctx), "dlk_tensor_zero: output t has overlapping elements (stride 2 in dim 0"),
        "zero's message: %s", dlk_context_last_error(ctx));
  CHECK(memcmp(dbuf, dsave, sizeof dbuf) == 0, "refused zero wrote");
  float fb[64], src[64], fsave[64];
  for (int i = 0; i < 64; i++) fb[i] = (float)i, src[i] = -1.0f - (float)i;
  memcpy(fsave, fb, sizeof fb);
  dlk_tensor ov = desc(fb, DLK_F32, 2, (int64_t[]){8, 8}, (int64_t[]){1, 1});
  dlk_tensor sv;
  CHECK_OK(ctx, dlk_tensor_init(ctx, &sv, src, DLK_F32, (dlk_device){DLK_CPU, 0}, 2, (int64_t[]){8, 8}));
  CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_tensor_copy(ctx, &ov, &sv));
  char copy_msg[DLK_ERRMSG_LEN];
  snprintf(copy_msg, sizeof copy_msg, "%s", dlk_context_last_error(ctx));
  CHECK(strstr(copy_msg, "dlk_tensor_copy: output dst has overlapping elements (stride 1 in dim"), "copy: %s", copy_msg);
  CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_tensor_write(ctx, &ov, src, sizeof src));
  CHECK(strstr(dlk_context_last_error(ctx), "dlk_tensor_write: output t has overlapping elements"), "write: %s",
        dlk_context_last_error(ctx));
  CHECK(memcmp(fb, fsave, sizeof fb) == 0, "refused copy/write wrote");
  /* The same rule and words as an op's output. */
  CHECK_STATUS(ctx, DLK_ERR_LAYOUT, dlk_softmax_forward(ctx, &sp, &sv, &ov));
  const char *op_msg = strstr(dlk_context_last_error(ctx), "output y has overlapping elements");
  CHECK(op_msg && strstr(copy_msg, op_msg + strlen("output y")), "softmax: %s vs copy: %s",
        dlk_context_last_error(ctx), copy_msg);
  /* Reading into a host buffer is a copy whose destination is dense: never refused so. */
  CHECK_OK(ctx, dlk_tensor_read(ctx, &ov, src, sizeof src));

  t_case = "hostile/empty outputs";
  /* item 2: calls whose outputs have no elements but whose other dims are 2^40 looped
     2^40 times doing nothing. The dispatcher now finishes them at once, every op. */
  t_watchdog_arm("test_core: a call on empty tensors");
  const dlk_tensor r0 = desc(NULL, DLK_F32, 2, (int64_t[]){T40, 0}, (int64_t[]){0, 1});
  const dlk_tensor e00 = desc(NULL, DLK_F32, 2, (int64_t[]){0, 0}, (int64_t[]){0, 1});
  const dlk_tensor e0 = desc(NULL, DLK_F32, 1, (int64_t[]){0}, (int64_t[]){1});
  dlk_tensor y = r0, dx = r0, c2 = r0, dw = e00, db = e0;
  double t0 = t_now_s();
  dlk_gemm_params gp = {1.0, 0.0};
  dlk_linear_params lp = {DLK_ACT_NONE};
  dlk_layernorm_params lnp = {1e-5};
  dlk_dropout_params dp = {0.5, 1, 0};
  CHECK_OK(ctx, dlk_softmax_forward(ctx, &sp, &r0, &y));
  CHECK_OK(ctx, dlk_softmax_backward(ctx, &sp, &r0, &r0, &dx));
  CHECK_OK(ctx, dlk_gemm(ctx, &gp, &r0, &e00, &c2));
  dlk_bias_act_params bp = {DLK_ACT_RELU};
  CHECK_OK(ctx, dlk_bias_act_forward(ctx, &bp, &r0, NULL, &y));
  CHECK_OK(ctx, dlk_bias_act_backward(ctx, &bp, &r0, &e0, &r0, &dx, &db));
  CHECK_OK(ctx, dlk_layernorm_forward(ctx, &lnp, &r0, NULL, NULL, &y, NULL, NULL));
  CHECK_OK(ctx, dlk_linear_forward(ctx, &lp, &r0, &e00, NULL, &y, NULL));
  CHECK_OK(ctx, dlk_linear_backward(ctx, &lp, &r0, &e00, NULL, &r0, &dx, &dw, &db));
  CHECK_OK(ctx, dlk_dropout_forward(ctx, &dp, &r0, &y));
  /* item 1: embedding_backward on an empty table [V, 0]: V = 2^61 made the reference's
     workspace wrap to 16 bytes and its counting sort write far past it; V = 2^40 looped
     V times; V = INT64_MAX overflowed already in the workspace explain mode asks for. */
  int64_t id = 5;
  dlk_embedding_params ep = {-1};
  dlk_tensor ids = desc(&id, DLK_I64, 1, (int64_t[]){1}, (int64_t[]){1});
  dlk_tensor dout = desc(raw, DLK_F32, 2, (int64_t[]){1, 0}, (int64_t[]){1, 1});
  const int64_t vocabs[] = {T61, T40, INT64_MAX};
  for (int i = 0; i < 3; i++) {
    dlk_tensor dtable = desc(raw, DLK_F32, 2, (int64_t[]){vocabs[i], 0}, (int64_t[]){0, 1});
    CHECK_OK(ctx, dlk_embedding_backward(ctx, &ep, &ids, &dout, &dtable));
  }
  double took = t_now_s() - t0;
  CHECK(took < 1.0, "the calls on empty outputs took %.3f s", took);
  /* Explain mode says so and calls no variant's supports() or workspace(). */
  CHECK_OK(ctx, dlk_explain_mode(ctx, 1));
  dlk_tensor dtable = desc(raw, DLK_F32, 2, (int64_t[]){INT64_MAX, 0}, (int64_t[]){0, 1});
  CHECK_OK(ctx, dlk_embedding_backward(ctx, &ep, &ids, &dout, &dtable));
  const char *report = "";
  CHECK_OK(ctx, dlk_explain_report(ctx, &report));
  CHECK(strstr(report, "embedding_bwd") && strstr(report, "every output is empty"), "report: %s", report);
  CHECK_OK(ctx, dlk_explain_mode(ctx, 0));
  t_watchdog_disarm();
  /* The reference's workspace is checked: a count that does not fit asks for SIZE_MAX
     (no arena grants it) instead of wrapping to a few bytes. */
  dlk_embedding_bwd_args ea;
  memset(&ea, 0, sizeof ea);
  ea.ids = ids;
  ea.dtable = desc(raw, DLK_F32, 2, (int64_t[]){T61, 1}, (int64_t[]){1, 1});
  CHECK(dlk_embedding_bwd_cpu_workspace(ctx, &ea, 0) == SIZE_MAX, "V = 2^61: workspace wraps");
  ea.dtable.shape[0] = INT64_MAX;
  CHECK(dlk_embedding_bwd_cpu_workspace(ctx, &ea, 0) == SIZE_MAX, "V = INT64_MAX: workspace overflows");
  ea.dtable.shape[0] = 10;
  CHECK(dlk_embedding_bwd_cpu_workspace(ctx, &ea, 0) == (10 + 1 + 1) * 8, "V = 10: (V + 1 + N) * 8");
}

/* Every registered op lists its outputs (dlk_op.outputs): the dispatcher finishes a call
   whose outputs are all empty at once only for ops that do. A new family's op without it
   fails here (see how to write one at dlk_list_output in core/internal.h). */
static void test_ops_list_outputs(void) {
  t_case = "ops list their outputs";
  int n = 0;
  for (const dlk_op *const *const *f = dlk_families; *f; f++)
    for (const dlk_op *const *o = *f; *o; o++, n++)
      CHECK((*o)->outputs != NULL, "op %s has no outputs member (dlk_op.outputs)", (*o)->name);
  CHECK(n > 0, "no ops registered");
}

/* ---- dispatch: registry, forcing, explain, autotune cache ---- */
static void test_dispatch(dlk_context *ctx) {
  t_case = "dispatch";
  int nops = -1;
  CHECK_OK(ctx, dlk_op_count(ctx, &nops));
  CHECK(nops >= 0, "op count");
  for (int i = 0; i < nops; i++) {
    const char *name = NULL;
    CHECK_OK(ctx, dlk_op_name(ctx, i, &name));
    if (!name) continue;
    dlk_variant_info v[32];
    int nv = 0;
    CHECK_OK(ctx, dlk_op_variants(ctx, name, v, 32, &nv));
    CHECK(nv >= 1 && v[0].id == 0 && v[0].device == DLK_CPU, "%s: variant 0 is the CPU reference", name);
    for (int k = 0; k < nv && k < 32; k++) {
      CHECK(v[k].name && v[k].description && v[k].description[0], "%s/%d described", name, v[k].id);
      for (int j = 0; j < k; j++) {
        CHECK(v[j].id != v[k].id, "%s: duplicate id %d", name, v[k].id);
        CHECK(strcmp(v[j].name, v[k].name) != 0, "%s: duplicate name %s", name, v[k].name);
      }
      /* The id ranges of core/internal.h: 0 and 20..29 run on the CPU, 1..9 and 10..19 on a
         CUDA device. */
      const int id = v[k].id;
      if (v[k].device == DLK_CPU)
        CHECK(id == DLK_VARIANT_CPU_REF ||
                  (id >= DLK_VARIANT_CPU_OPT_FIRST && id <= DLK_VARIANT_CPU_OPT_LAST),
              "%s/%s: CPU variant with id %d (0 or 20..29)", name, v[k].name, id);
      else
        CHECK(v[k].device == DLK_CUDA && id >= DLK_VARIANT_CUDA_FIRST &&
                  id <= DLK_VARIANT_VENDOR_LAST,
              "%s/%s: CUDA variant with id %d (1..19)", name, v[k].name, id);
    }
  }
  const char *name;
  CHECK_STATUS(ctx, DLK_ERR_OUT_OF_RANGE, dlk_op_name(ctx, nops, &name));
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_force_variant(ctx, "nope", 1));
  int count;
  CHECK_STATUS(ctx, DLK_ERR_INVALID_ARGUMENT, dlk_op_variants(ctx, "nope", NULL, 0, &count));
}

/* The per-context plan cache: get of a missing key, put, replace (the old pointer is
   destroyed), and every entry destroyed newest first with the context. */
static char plan_log[64];
static void plan_destroy(void *p) { dlk_appendf(plan_log, sizeof plan_log, "%s,", (const char *)p); }

static void test_plan_cache(void) {
  t_case = "plan cache";
  plan_log[0] = '\0';
  dlk_context *ctx = t_cpu_context();
  void *got = (void *)1;
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/a", &got));
  CHECK(got == NULL, "missing key gives NULL");
  static char a[] = "a", b[] = "b", b2[] = "b2", c[] = "c";
  CHECK_OK(ctx, dlk_plan_cache_put(ctx, "test/a", a, plan_destroy));
  CHECK_OK(ctx, dlk_plan_cache_put(ctx, "test/b", b, plan_destroy));
  CHECK_OK(ctx, dlk_plan_cache_put(ctx, "test/c", c, plan_destroy));
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/b", &got));
  CHECK(got == b, "b stored");
  CHECK_OK(ctx, dlk_plan_cache_put(ctx, "test/b", b2, plan_destroy));
  CHECK(strcmp(plan_log, "b,") == 0, "replacing b destroys it first: %s", plan_log);
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/b", &got));
  CHECK(got == b2, "b replaced");
  for (int i = 0; i < 40; i++) { /* growth past the first block of entries */
    char key[32];
    snprintf(key, sizeof key, "test/n%d", i);
    CHECK_OK(ctx, dlk_plan_cache_put(ctx, key, NULL, NULL));
  }
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/a", &got));
  CHECK(got == a, "a still found after growth");
  plan_log[0] = '\0';
  dlk_context_destroy(ctx);
  CHECK(strcmp(plan_log, "c,b2,a,") == 0, "destroyed newest first: %s", plan_log);
}

/* Autotune cache files: save/load round trip, and each corruption refused. */
static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  if (!f) return;
  fputs(text, f);
  fclose(f);
}

static void test_autotune_file(dlk_context *ctx) {
  t_case = "autotune-file";
  char path[256];
  snprintf(path, sizeof path, "/tmp/dlk-test-tune-%d.txt", (int)getpid());
  CHECK_OK(ctx, dlk_autotune_save(ctx, path));
  CHECK_OK(ctx, dlk_autotune_load(ctx, path));
  int n = -1;
  CHECK_OK(ctx, dlk_autotune_entries(ctx, &n));
  CHECK(n == 0, "empty cache round trip");
  /* Each refused, with the line the trouble is on (never "line 0"). */
  const struct {
    const char *text, *line;
  } bad[] = {
      {"", "line 1:"},                                                     /* empty */
      {"dlk-autotune 1\ndevice cpu\n", "line 2:"},                          /* no checksum */
      {"dlk-autotune 1\ndevice cpu\nchecksum 0000000000000000\n", "line 3:"}, /* wrong checksum */
      {"not a cache at all\n", "line 1:"},
      {"\x01\x02\x03", "line 1:"},
      {"dlk-autotune 1\ndevice cpu\nx 1\nchecksum 00", "line 4:"},           /* no final newline */
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    write_file(path, bad[i].text);
    CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_autotune_load(ctx, path));
    CHECK(strstr(dlk_context_last_error(ctx), bad[i].line) != NULL, "case %zu: \"%s\", expected %s", i,
          dlk_context_last_error(ctx), bad[i].line);
  }
  /* Truncate a valid file by one byte. */
  CHECK_OK(ctx, dlk_autotune_save(ctx, path));
  FILE *f = fopen(path, "rb");
  char buf[512];
  size_t len = f ? fread(buf, 1, sizeof buf, f) : 0;
  if (f) fclose(f);
  if (len > 1) {
    f = fopen(path, "wb");
    fwrite(buf, 1, len - 1, f);
    fclose(f);
    CHECK_STATUS(ctx, DLK_ERR_CORRUPT_FILE, dlk_autotune_load(ctx, path));
  }
  CHECK_STATUS(ctx, DLK_ERR_IO, dlk_autotune_load(ctx, "/nonexistent/dir/cache"));
  CHECK_STATUS(ctx, DLK_ERR_IO, dlk_autotune_save(ctx, "/nonexistent/dir/cache"));
  remove(path);

  /* A corrupt DLK_AUTOTUNE_CACHE at creation: the context works, the message says why. */
  write_file(path, "garbage\n");
  setenv("DLK_AUTOTUNE_CACHE", path, 1);
  dlk_context *c2 = t_cpu_context();
  CHECK(strstr(dlk_context_last_error(c2), "DLK_AUTOTUNE_CACHE") != NULL, "reported: \"%s\"",
        dlk_context_last_error(c2));
  dlk_context_destroy(c2);
  unsetenv("DLK_AUTOTUNE_CACHE");
  remove(path);
}

/* --list-ops: every op dlk_op_count lists, one per line (ctest's sweep_coverage compares
   them with the ops the family programs' sweep rows force). */
static int list_ops(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--list-ops") != 0) continue;
    dlk_context *ctx = t_cpu_context();
    int n = 0;
    if (dlk_op_count(ctx, &n) != DLK_OK) exit(1);
    for (int k = 0; k < n; k++) {
      const char *name;
      if (dlk_op_name(ctx, k, &name) != DLK_OK) exit(1);
      printf("%s\n", name);
    }
    dlk_context_destroy(ctx);
    return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (list_ops(argc, argv)) return 0;
  if (t_want_gpu(argc, argv)) {
    dlk_context *g = t_gpu_context_or_skip("test_core");
    dlk_device dev;
    dlk_context_device(g, &dev);
    test_tensors(g, dev);
    test_strided_copy_sizes(g, dev);
    test_dlpack(g, dev);
    test_dispatch(g);
    /* Copies between a host tensor and a device one, in both directions, strided. */
    dlk_context_destroy(g);
    return t_summary("test_core --gpu");
  }
  test_status();
  test_context();
  test_dlpack_layout();
  dlk_context *ctx = t_cpu_context();
  test_tensors(ctx, (dlk_device){DLK_CPU, 0});
  test_strided_copy_sizes(ctx, (dlk_device){DLK_CPU, 0});
  test_dlpack(ctx, (dlk_device){DLK_CPU, 0});
  test_bad_tensors(ctx);
  test_hostile_descriptors(ctx);
  test_ops_list_outputs();
  test_dispatch(ctx);
  test_autotune_file(ctx);
  dlk_context_destroy(ctx);
  test_plan_cache();
  return t_summary("test_core");
}
