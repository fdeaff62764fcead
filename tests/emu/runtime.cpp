// dlk's emulated CUDA device: the CUDA runtime calls dlk uses, and the scheduler that runs
// kernels on the CPU (DLK_CUDA_EMU builds; tests/emu/README.md has the user's view).
//
// Scheduler. A launch runs its whole grid before it returns. Blocks are handed out from an
// atomic counter to a small pool of OS threads (DLK_EMU_THREADS, default the core count;
// the launching thread is one of them); a block runs on one OS thread from start to end.
// Each CUDA thread of the block is a fiber with its own stack (64 KiB, DLK_EMU_STACK_KB;
// four times that under AddressSanitizer), reused from block to block, so a launch
// allocates nothing after the first. Fibers are cooperative: a fiber runs until it
// reaches a barrier, a warp collective, __nanosleep or its end, then the next ready fiber
// of the block runs (FIFO). A switch is a few instructions (dlk_emu_swap below: callee-
// saved registers and the stack pointer; no signal-mask syscall), annotated for ASan.
//
// Bug finders (each stops the block and fails the launch with cudaErrorLaunchFailure,
// printed with kernel, block and thread, and kept for dlk_emu_last_report()):
//   - divergent __syncthreads: live threads wait at different barriers, or some threads
//     of the block exited before a barrier the others wait at;
//   - warp collectives: a mask that does not name the calling lane, names lanes absent
//     from the block or already exited, lanes of one warp in different collectives or with
//     different masks, a shuffle reading a lane outside the mask;
//   - deadlock: no fiber can run (e.g. a lane waits in a shuffle for a lane that waits at
//     a barrier); __trap(); launch-configuration errors as CUDA reports them.
//   - co-residency deadlock: every block running has spun (__nanosleep) for DLK_EMU_SPIN_S
//     seconds (default 5) while blocks of the grid have not started. A block runs to its end
//     on its OS thread, so a grid that waits on itself (a hand-rolled grid barrier) must
//     have at most dlk_emu_resident_blocks() blocks, as on a GPU it must fit co-resident
//     (cudaLaunchCooperativeKernel); a larger grid is reported instead of hanging. A spin
//     must call __nanosleep (it yields the fiber); a bare spin on a volatile load never
//     returns to the scheduler.
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <cxxabi.h>
#include <dlfcn.h>
#include <link.h>

#include "cuda_runtime.h"

#if defined(__SANITIZE_ADDRESS__)
#define DLK_EMU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DLK_EMU_ASAN 1
#endif
#endif
#ifdef DLK_EMU_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

__thread dlk_emu::Thread *dlk_emu_thread __attribute__((tls_model("initial-exec")));

// ---- context switch ---------------------------------------------------------------------
// dlk_emu_swap(save, to): push the callee-saved registers (and the FP control words) on the
// current stack, store the stack pointer in *save, load `to`, pop, return into the other
// context. A new fiber's stack is laid out as if it had called dlk_emu_swap itself, with
// the return address pointing at fiber_entry.
extern "C" void dlk_emu_swap(void **save, void *to);
#if defined(__x86_64__) && !defined(DLK_EMU_UCONTEXT)
asm(R"(
.text
.globl dlk_emu_swap
.hidden dlk_emu_swap
.type dlk_emu_swap,@function
dlk_emu_swap:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  subq $8, %rsp
  stmxcsr (%rsp)
  fnstcw 4(%rsp)
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  ldmxcsr (%rsp)
  fldcw 4(%rsp)
  addq $8, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size dlk_emu_swap,.-dlk_emu_swap
)");
#define DLK_EMU_ASM_SWAP 1
#elif defined(__aarch64__) && !defined(DLK_EMU_UCONTEXT)
asm(R"(
.text
.globl dlk_emu_swap
.hidden dlk_emu_swap
.type dlk_emu_swap,%function
dlk_emu_swap:
  sub sp, sp, #176
  stp x19, x20, [sp, #0]
  stp x21, x22, [sp, #16]
  stp x23, x24, [sp, #32]
  stp x25, x26, [sp, #48]
  stp x27, x28, [sp, #64]
  stp x29, x30, [sp, #80]
  stp d8, d9, [sp, #96]
  stp d10, d11, [sp, #112]
  stp d12, d13, [sp, #128]
  stp d14, d15, [sp, #144]
  mov x9, sp
  str x9, [x0]
  mov sp, x1
  ldp x19, x20, [sp, #0]
  ldp x21, x22, [sp, #16]
  ldp x23, x24, [sp, #32]
  ldp x25, x26, [sp, #48]
  ldp x27, x28, [sp, #64]
  ldp x29, x30, [sp, #80]
  ldp d8, d9, [sp, #96]
  ldp d10, d11, [sp, #112]
  ldp d12, d13, [sp, #128]
  ldp d14, d15, [sp, #144]
  add sp, sp, #176
  ret
.size dlk_emu_swap,.-dlk_emu_swap
)");
#define DLK_EMU_ASM_SWAP 1
#else
#include <ucontext.h>
#endif

namespace dlk_emu {

namespace {

enum FiberState { F_READY, F_RUNNING, F_BAR, F_COLL, F_EXITED };

const char *coll_name(int k) {
  static const char *const n[] = {"__shfl_sync",   "__shfl_up_sync", "__shfl_down_sync",
                                  "__shfl_xor_sync", "__ballot_sync", "__any_sync",
                                  "__all_sync",    "__syncwarp",     "__match_any_sync"};
  return k >= 0 && k < (int)(sizeof n / sizeof n[0]) ? n[k] : "?";
}

const char *base_name(const char *s) {
  const char *b = strrchr(s, '/');
  return b ? b + 1 : s;
}

struct RaceState;
bool race_enabled();
RaceState *race_new();  // for the calling worker thread
void race_free(RaceState *r);
void race_barrier(RaceState *r);
void race_warp_sync(RaceState *r, int warp);
void race_block_begin(RaceState *r, size_t dyn_bytes);
void race_block_end(RaceState *r);

struct Fiber {
  Thread t;  // what the kernel reads through threadIdx and friends
  void *sp = nullptr;
#ifndef DLK_EMU_ASM_SWAP
  ucontext_t uc;
#endif
  char *map = nullptr;  // mmap base (guard page first)
  char *stack_lo = nullptr;
  size_t stack_size = 0;
  int state = F_EXITED;
  int linear = 0, lane = 0, warp = 0;
  const char *file = "";
  int line = 0;
  int bar_op = 0, bar_pred = 0, bar_result = 0;
  uint64_t coll_val = 0, coll_result = 0;
  int coll_arg = 0, coll_width = 32;
  bool dirty = false;  // abandoned mid-kernel: its stack's ASan shadow needs clearing
#ifdef DLK_EMU_ASAN
  void *asan_fake = nullptr;
#endif
};

struct WarpState {
  unsigned present = 0, exited = 0;
  bool pending = false;
  int kind = 0;
  unsigned mask = 0, arrived = 0;
  const char *file = "";
  int line = 0;
};

struct Job {
  LaunchConfig cfg;
  std::string name;  // base name of the kernel
  void (*thunk)(void *) = nullptr;
  void *pack = nullptr;
  uint64_t nblocks = 0;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  cudaError_t err = cudaSuccess;
  std::string report;
  // Co-residency: OS threads taking part, blocks running now, and of those the ones whose
  // every runnable thread has only been spinning (__nanosleep) for a while.
  int threads = 1;
  std::atomic<int> running{0}, spinning{0};
};

size_t stack_bytes() {
  static size_t b = [] {
    const char *e = getenv("DLK_EMU_STACK_KB");
    long kb = e && *e ? atol(e) : 0;
#ifdef DLK_EMU_ASAN
    if (kb <= 0) kb = 256;
#else
    if (kb <= 0) kb = 64;
#endif
    if (kb < 16) kb = 16;
    return (size_t)kb * 1024;
  }();
  return b;
}

extern "C" void dlk_emu_fiber_entry();

struct Worker {
  std::vector<Fiber *> fibers;
  void *sched_sp = nullptr;
#ifndef DLK_EMU_ASM_SWAP
  ucontext_t sched_uc;
#endif
  const void *sched_bottom = nullptr;
  size_t sched_size = 0;
  // the block running on this worker
  Job *job = nullptr;
  Fiber *cur = nullptr;
  int nthreads = 0, live = 0, at_bar = 0, exited = 0;
  bool aborted = false;
  std::vector<int> q;
  size_t qhead = 0, qtail = 0;
  WarpState warps[32];
  unsigned char *dyn = nullptr;
  size_t dyn_cap = 0;
  RaceState *race = nullptr;

  ~Worker() {
    for (Fiber *f : fibers) {
      if (f->map) munmap(f->map, f->stack_size + 4096);
      delete f;
    }
    free(dyn);
    race_free(race);
  }

  void push(int i) {
    q[qtail] = i;
    qtail = (qtail + 1) % q.size();
  }
  bool empty() const { return qhead == qtail; }
  int pop() {
    int i = q[qhead];
    qhead = (qhead + 1) % q.size();
    return i;
  }

  void ensure(int n) {
    while ((int)fibers.size() < n) {
      Fiber *f = new Fiber;
      f->stack_size = stack_bytes();
      void *m = mmap(nullptr, f->stack_size + 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
      if (m == MAP_FAILED) {
        fprintf(stderr, "dlk-emu: cannot map a %zu-byte fiber stack\n", f->stack_size);
        abort();
      }
      mprotect(m, 4096, PROT_NONE);  // guard page: an overflow faults instead of corrupting
      f->map = (char *)m;
      f->stack_lo = f->map + 4096;
      fibers.push_back(f);
    }
    if (q.size() < (size_t)n + 1) q.assign((size_t)n + 1, 0);
    if (!dyn) {
      dyn_cap = 232448;  // 227 KiB: the sm_90 opt-in maximum
      dyn = (unsigned char *)aligned_alloc(1024, dyn_cap);
    }
  }
};

thread_local Worker *tl_worker = nullptr;
thread_local struct WorkerOwner {
  ~WorkerOwner() {
    delete tl_worker;
    tl_worker = nullptr;
  }
} tl_owner;

Worker *self_worker() {
  if (!tl_worker) {
    (void)&tl_owner;
    tl_worker = new Worker;
  }
  return tl_worker;
}

// ---- errors -------------------------------------------------------------------------------
thread_local cudaError_t tl_last = cudaSuccess;
std::mutex g_report_mu;
std::string g_last_report;

cudaError_t set_err(cudaError_t e) {
  if (e != cudaSuccess) tl_last = e;
  return e;
}

std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char *f, ...) {
  char buf[2048];
  va_list ap;
  va_start(ap, f);
  vsnprintf(buf, sizeof buf, f, ap);
  va_end(ap);
  return buf;
}

std::string where(const Worker *w, const Fiber *f) {
  const Thread &t = f->t;
  return fmt("kernel %s, block (%u,%u,%u), thread (%u,%u,%u)", w->job->name.c_str(), t.bid.x,
             t.bid.y, t.bid.z, t.tid.x, t.tid.y, t.tid.z);
}

// Fail the launch (first report wins) and stop this block.
void fail(Worker *w, cudaError_t code, const std::string &msg) {
  Job *j = w->job;
  w->aborted = true;
  std::lock_guard<std::mutex> g(j->mu);
  if (j->err == cudaSuccess) {
    j->err = code;
    j->report = "dlk-emu: " + msg;
    fprintf(stderr, "%s\n", j->report.c_str());
  }
  j->failed = true;
}

// ---- switching ------------------------------------------------------------------------------
void init_stack(Worker *w, Fiber *f) {
#ifdef DLK_EMU_ASAN
  // A fiber leaves its stack without returning (fiber_entry's frame, or every frame of an
  // abandoned fiber): clear the redzones it left where the next thread's frames go.
  if (f->dirty)
    __asan_unpoison_memory_region(f->stack_lo, f->stack_size);
  else
    __asan_unpoison_memory_region(f->stack_lo + f->stack_size - 4096, 4096);
#endif
  f->dirty = false;
#if defined(__x86_64__) && defined(DLK_EMU_ASM_SWAP)
  void **sp = (void **)(((uintptr_t)(f->stack_lo + f->stack_size)) & ~(uintptr_t)15);
  *--sp = nullptr;                                 // fiber_entry's return address: none
  *--sp = (void *)&dlk_emu_fiber_entry;            // where dlk_emu_swap returns to
  for (int i = 0; i < 6; i++) *--sp = nullptr;     // rbp rbx r12 r13 r14 r15
  *--sp = (void *)(uintptr_t)(0x1f80ull | (0x037full << 32));  // mxcsr, x87 control word
  f->sp = sp;
#elif defined(__aarch64__) && defined(DLK_EMU_ASM_SWAP)
  void **top = (void **)(((uintptr_t)(f->stack_lo + f->stack_size)) & ~(uintptr_t)15);
  void **sp = top - 22;  // 176 bytes
  memset(sp, 0, 176);
  sp[11] = (void *)&dlk_emu_fiber_entry;  // x30
  f->sp = sp;
#else
  getcontext(&f->uc);
  f->uc.uc_stack.ss_sp = f->stack_lo;
  f->uc.uc_stack.ss_size = f->stack_size;
  f->uc.uc_link = nullptr;
  makecontext(&f->uc, (void (*)())dlk_emu_fiber_entry, 0);
#endif
  (void)w;
}

// Scheduler -> fiber, until the fiber yields, blocks or ends.
void run_fiber(Worker *w, Fiber *f) {
  w->cur = f;
  dlk_emu_thread = &f->t;
#ifdef DLK_EMU_ASAN
  void *fake = nullptr;
  __sanitizer_start_switch_fiber(&fake, f->stack_lo, f->stack_size);
#endif
#ifdef DLK_EMU_ASM_SWAP
  dlk_emu_swap(&w->sched_sp, f->sp);
#else
  swapcontext(&w->sched_uc, &f->uc);
#endif
#ifdef DLK_EMU_ASAN
  __sanitizer_finish_switch_fiber(fake, nullptr, nullptr);
#endif
  dlk_emu_thread = nullptr;
  w->cur = nullptr;
}

// Fiber -> scheduler. `dying`: this fiber is never resumed.
void to_scheduler(Worker *w, Fiber *f, bool dying) {
#ifdef DLK_EMU_ASAN
  __sanitizer_start_switch_fiber(dying ? nullptr : &f->asan_fake, w->sched_bottom, w->sched_size);
#else
  (void)dying;
#endif
#ifdef DLK_EMU_ASM_SWAP
  dlk_emu_swap(&f->sp, w->sched_sp);
#else
  swapcontext(&f->uc, &w->sched_uc);
#endif
#ifdef DLK_EMU_ASAN
  __sanitizer_finish_switch_fiber(f->asan_fake, &w->sched_bottom, &w->sched_size);
#endif
}

// Leave the block for good (a finder fired): the scheduler sees w->aborted.
[[noreturn]] void abandon(Worker *w, Fiber *f) {
  f->dirty = true;
  to_scheduler(w, f, true);
  __builtin_unreachable();
}

// ---- barriers ------------------------------------------------------------------------------
std::string thread_name(const Fiber *f) {
  return fmt("(%u,%u,%u)", f->t.tid.x, f->t.tid.y, f->t.tid.z);
}

// Every live thread is at a barrier: check they agree, then release them all.
void complete_barrier(Worker *w) {
  Fiber *first = nullptr;
  for (int i = 0; i < w->nthreads; i++) {
    Fiber *f = w->fibers[i];
    if (f->state != F_BAR) continue;
    if (!first) {
      first = f;
    } else if (f->file != first->file || f->line != first->line || f->bar_op != first->bar_op) {
      fail(w, cudaErrorLaunchFailure,
           fmt("divergent __syncthreads in %s: it waits at %s:%d while thread %s waits at %s:%d",
               where(w, f).c_str(), base_name(f->file), f->line, thread_name(first).c_str(),
               base_name(first->file), first->line));
      return;
    }
  }
  if (w->exited > 0) {
    const Fiber *gone = nullptr;
    for (int i = 0; i < w->nthreads && !gone; i++)
      if (w->fibers[i]->state == F_EXITED) gone = w->fibers[i];
    fail(w, cudaErrorLaunchFailure,
         fmt("divergent __syncthreads in %s: it waits at %s:%d, which %d thread(s) of the block "
             "never reach: they exited (first: thread %s)",
             where(w, first).c_str(), base_name(first->file), first->line, w->exited,
             thread_name(gone).c_str()));
    return;
  }
  int count = 0, all = 1;
  for (int i = 0; i < w->nthreads; i++) {
    Fiber *f = w->fibers[i];
    if (f->state != F_BAR) continue;
    count += f->bar_pred;
    all &= f->bar_pred;
  }
  const int op = first->bar_op;
  const int result = op == BAR_COUNT ? count : op == BAR_AND ? all : op == BAR_OR ? count > 0 : 0;
  for (int i = 0; i < w->nthreads; i++) {
    Fiber *f = w->fibers[i];
    if (f->state != F_BAR) continue;
    f->bar_result = result;
    f->state = F_READY;
    if (f != w->cur) w->push(i);
  }
  w->at_bar = 0;
  if (w->race) race_barrier(w->race);
}

// ---- warp collectives ----------------------------------------------------------------------
std::string lanes(unsigned m) {
  std::string s;
  for (int i = 0; i < 32;) {
    if (!(m >> i & 1)) {
      i++;
      continue;
    }
    int j = i;
    while (j + 1 < 32 && (m >> (j + 1) & 1)) j++;
    if (!s.empty()) s += ",";
    s += j > i ? fmt("%d-%d", i, j) : fmt("%d", i);
    i = j + 1;
  }
  return s.empty() ? "none" : s;
}

void complete_coll(Worker *w, WarpState &ws, int warp) {
  Fiber **lane_f = &w->fibers[warp * 32];
  const unsigned mask = ws.mask;
  for (int l = 0; l < 32; l++) {
    if (!(mask >> l & 1)) continue;
    Fiber *f = lane_f[l];
    uint64_t r = 0;
    switch (ws.kind) {
      case SHFL_IDX:
      case SHFL_UP:
      case SHFL_DOWN:
      case SHFL_XOR: {
        const int wd = f->coll_width, seg = l & ~(wd - 1);
        int src;
        if (ws.kind == SHFL_IDX)
          src = seg + (((f->coll_arg % wd) + wd) % wd);
        else if (ws.kind == SHFL_UP)
          src = l - f->coll_arg < seg ? l : l - f->coll_arg;
        else if (ws.kind == SHFL_DOWN)
          src = l + f->coll_arg >= seg + wd ? l : l + f->coll_arg;
        else
          src = (l ^ f->coll_arg) >= seg + wd ? l : (l ^ f->coll_arg);
        if (src < 0 || src > 31 || !(mask >> src & 1)) {
          fail(w, cudaErrorLaunchFailure,
               fmt("%s in %s at %s:%d reads lane %d, which mask 0x%08x does not name (its value "
                   "is undefined on a GPU)",
                   coll_name(ws.kind), where(w, f).c_str(), base_name(ws.file), ws.line, src, mask));
          return;
        }
        r = lane_f[src]->coll_val;
        break;
      }
      case BALLOT:
      case ANY:
      case ALL: {
        unsigned b = 0;
        for (int k = 0; k < 32; k++)
          if ((mask >> k & 1) && lane_f[k]->coll_val) b |= 1u << k;
        r = ws.kind == BALLOT ? b : ws.kind == ANY ? (b != 0) : (b == mask);
        break;
      }
      case MATCH_ANY: {
        unsigned b = 0;
        for (int k = 0; k < 32; k++)
          if ((mask >> k & 1) && lane_f[k]->coll_val == f->coll_val) b |= 1u << k;
        r = b;
        break;
      }
      default: break;
    }
    f->coll_result = r;
  }
  for (int l = 0; l < 32; l++) {
    if (!(mask >> l & 1)) continue;
    Fiber *f = lane_f[l];
    f->state = F_READY;
    if (f != w->cur) w->push(warp * 32 + l);
  }
  ws.pending = false;
  ws.arrived = 0;
  if (w->race && mask == ws.present) race_warp_sync(w->race, warp);
}

// ---- the block loop ------------------------------------------------------------------------
void deadlock(Worker *w) {
  // Name one stuck collective (and what its missing lanes do), else the barrier.
  for (int wi = 0; wi < (w->nthreads + 31) / 32; wi++) {
    WarpState &ws = w->warps[wi];
    if (!ws.pending) continue;
    const unsigned missing = ws.mask & ~ws.arrived;
    int l = __builtin_ctz(missing ? missing : 1u);
    Fiber *m = w->fibers[wi * 32 + l];
    Fiber *waiter = w->fibers[wi * 32 + __builtin_ctz(ws.arrived)];
    std::string doing = m->state == F_BAR   ? fmt("waits at __syncthreads %s:%d", base_name(m->file), m->line)
                        : m->state == F_COLL ? fmt("waits in %s %s:%d", coll_name(w->warps[wi].kind),
                                                   base_name(m->file), m->line)
                                             : std::string("cannot run");
    fail(w, cudaErrorLaunchFailure,
         fmt("deadlock in %s: lanes %s wait in %s (mask 0x%08x) at %s:%d for lanes %s; lane %d %s",
             where(w, waiter).c_str(), lanes(ws.arrived).c_str(), coll_name(ws.kind), ws.mask,
             base_name(ws.file), ws.line, lanes(missing).c_str(), l, doing.c_str()));
    return;
  }
  for (int i = 0; i < w->nthreads; i++) {
    Fiber *f = w->fibers[i];
    if (f->state == F_BAR) {
      fail(w, cudaErrorLaunchFailure,
           fmt("deadlock in %s: %d of %d live threads wait at __syncthreads %s:%d", where(w, f).c_str(),
               w->at_bar, w->live, base_name(f->file), f->line));
      return;
    }
  }
  fail(w, cudaErrorLaunchFailure, fmt("deadlock in kernel %s: no thread can run", w->job->name.c_str()));
}

int pool_threads();
uint64_t spin_limit_ns() {
  static const uint64_t ns = [] {
    const char *e = getenv("DLK_EMU_SPIN_S");
    const double s = e && *e ? atof(e) : 5.0;
    return (uint64_t)((s > 0.01 ? s : 0.01) * 1e9);
  }();
  return ns;
}

void run_block(Worker *w, Job *j, uint64_t b) {
  const dim3 g = j->cfg.grid, bd = j->cfg.block;
  const uint3 bid{(unsigned)(b % g.x), (unsigned)((b / g.x) % g.y), (unsigned)(b / ((uint64_t)g.x * g.y))};
  const int n = (int)(bd.x * bd.y * bd.z);
  w->ensure(n);
  w->job = j;
  w->nthreads = n;
  w->live = n;
  w->at_bar = 0;
  w->exited = 0;
  w->aborted = false;
  w->qhead = w->qtail = 0;
  const int nw = (n + 31) / 32;
  for (int i = 0; i < nw; i++) {
    WarpState &ws = w->warps[i];
    const int in = n - 32 * i;
    ws = WarpState();
    ws.present = in >= 32 ? 0xffffffffu : ((1u << in) - 1);
  }
  for (int i = 0; i < n; i++) {
    Fiber *f = w->fibers[i];
    f->t.tid = uint3{(unsigned)(i % bd.x), (unsigned)((i / bd.x) % bd.y), (unsigned)(i / (bd.x * bd.y))};
    f->t.bid = bid;
    f->t.bdim = bd;
    f->t.gdim = g;
    f->state = F_READY;
    f->linear = i;
    f->lane = i & 31;
    f->warp = i >> 5;
    init_stack(w, f);
    w->push(i);
  }
#ifdef DLK_EMU_ASAN
  // Dynamic shared memory past what the launch asked for is out of bounds.
  __asan_unpoison_memory_region(w->dyn, w->dyn_cap);
  if (j->cfg.smem < w->dyn_cap) __asan_poison_memory_region(w->dyn + j->cfg.smem, w->dyn_cap - j->cfg.smem);
#endif
  if (race_enabled() && !w->race) w->race = race_new();
  if (w->race) race_block_begin(w->race, j->cfg.smem);
  int idle = 0;
  bool spinning = false;  // only __nanosleep yields since spin_t0
  uint64_t spin_t0 = 0;
  j->running.fetch_add(1);
  while (!w->aborted) {
    if (w->empty()) {
      if (w->live > 0) deadlock(w);
      break;
    }
    const int i = w->pop();
    Fiber *f = w->fibers[i];
    if (f->state != F_READY) continue;
    f->state = F_RUNNING;
    run_fiber(w, f);
    if (f->state == F_READY) {  // yielded (__nanosleep): it waits for another block
      if (++idle > 2 * w->live) {
        idle = 0;
        sched_yield();
        if (!spinning) {
          spinning = true;
          spin_t0 = globaltimer_ns();
          j->spinning.fetch_add(1);
        } else if (globaltimer_ns() - spin_t0 > spin_limit_ns()) {
          const uint64_t started = std::min<uint64_t>(j->next.load(), j->nblocks);
          if (started < j->nblocks && j->running.load() == j->threads && j->spinning.load() == j->threads)
            fail(w, cudaErrorLaunchFailure,
                 fmt("deadlock in %s: all %d blocks running (the emulated device runs %d at once: "
                     "dlk_emu_resident_blocks(), DLK_EMU_THREADS) have spun in __nanosleep for %.1f s "
                     "while %llu of the grid's %llu blocks have not started: a kernel that waits for "
                     "other blocks of its grid needs them all resident (cooperative launch)",
                     where(w, f).c_str(), j->threads, pool_threads(), spin_limit_ns() * 1e-9,
                     (unsigned long long)(j->nblocks - started), (unsigned long long)j->nblocks));
        }
      }
    } else {
      idle = 0;
      if (spinning) {
        spinning = false;
        j->spinning.fetch_sub(1);
      }
    }
    if (j->failed.load(std::memory_order_relaxed)) w->aborted = true;
  }
  if (spinning) j->spinning.fetch_sub(1);
  j->running.fetch_sub(1);
  if (w->aborted)
    for (int i = 0; i < n; i++)
      if (w->fibers[i]->state != F_EXITED) w->fibers[i]->dirty = true;
  if (w->race) race_block_end(w->race);
  w->job = nullptr;
}

void run_blocks(Worker *w, Job *j) {
  for (;;) {
    if (j->failed.load(std::memory_order_relaxed)) return;
    const uint64_t b = j->next.fetch_add(1);
    if (b >= j->nblocks) return;
    run_block(w, j, b);
  }
}

// ---- the pool ---------------------------------------------------------------------------------
struct Pool {
  std::mutex mu;
  std::condition_variable cv, done;
  std::vector<std::thread> threads;
  Job *job = nullptr;
  uint64_t gen = 0;
  int want = 0, active = 0;
  bool stop = false;

  static int configured() {
    const char *e = getenv("DLK_EMU_THREADS");
    int n = e && *e ? atoi(e) : (int)std::thread::hardware_concurrency();
    if (n < 1) n = 1;
    if (n > 64) n = 64;
    return n;
  }
  void worker_main() {
    uint64_t seen = 0;
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      cv.wait(lk, [&] { return stop || (gen != seen && want > 0); });
      if (stop) return;
      seen = gen;
      want--;
      active++;
      Job *j = job;
      lk.unlock();
      run_blocks(self_worker(), j);
      lk.lock();
      if (--active == 0) done.notify_all();
    }
  }
  // Run j with `extra` pool threads besides the caller.
  void run(Job *j, int extra) {
    {
      std::lock_guard<std::mutex> g(mu);
      while ((int)threads.size() < extra) threads.emplace_back([this] { worker_main(); });
      job = j;
      want = extra;
      gen++;
    }
    if (extra > 0) cv.notify_all();
    run_blocks(self_worker(), j);
    std::unique_lock<std::mutex> lk(mu);
    want = 0;  // threads that did not wake in time are not needed any more
    done.wait(lk, [&] { return active == 0; });
    job = nullptr;
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> g(mu);
      stop = true;
    }
    cv.notify_all();
    for (auto &t : threads) t.join();
  }
};
Pool &pool() {
  static Pool p;
  return p;
}
// OS threads a launch runs its blocks on (the caller and pool threads): how many blocks of
// one grid run at once.
int pool_threads() {
  static const int n = Pool::configured();
  return n;
}
std::mutex g_launch_mu;

// ---- kernel report -----------------------------------------------------------------------------
std::mutex g_names_mu;
// Per kernel name: launches, CUDA threads run, wall time in the launches (the report at
// exit says where an emulated test spends its time).
struct KernelStats {
  long long launches = 0, threads = 0, ns = 0;
};
std::map<std::string, KernelStats> g_names;

// The kernel's name from DLK_LAUNCH's argument text ("ns::k<T, 4>, grid, block, 0, st" or
// "(k<T, 4>), ..."): up to the first top-level comma, template arguments, parentheses and
// the namespace dropped.
std::string kernel_base(const char *s) {
  std::string r;
  int depth = 0, paren = 0;
  for (const char *p = s; *p; p++) {
    if (*p == '<') depth++;
    else if (*p == '>') depth--;
    else if (*p == '(') paren++;
    else if (*p == ')') paren--;
    else if (*p == ',' && depth == 0 && paren == 0) break;
    else if (depth == 0 && *p != ' ' && *p != '&') r += *p;
  }
  const size_t c = r.rfind("::");
  return c == std::string::npos ? r : r.substr(c + 2);
}

void report_at_exit() {
  const char *e = getenv("DLK_EMU_REPORT");
  if (!e || !*e || strcmp(e, "0") == 0) return;
  if (strcmp(e, "1") != 0) {
    std::lock_guard<std::mutex> g(g_names_mu);
    FILE *f = fopen(e, "a");
    if (f) {
      for (auto &kv : g_names) fprintf(f, "%s %lld\n", kv.first.c_str(), kv.second.launches);
      fclose(f);
    }
  }
  dlk_emu_print_report();
}

// ---- device memory -------------------------------------------------------------------------------
std::mutex g_mem_mu;
std::unordered_map<void *, size_t> g_allocs;
size_t g_allocated = 0;
const size_t kTotalMem = (size_t)16 << 30;

struct Handle {
  int kind;  // 1 stream, 2 event
  double t_ms;
};

double now_ms() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

// ---- function attributes ---------------------------------------------------------------------
std::mutex g_func_mu;
std::unordered_map<const void *, int> g_func_smem;
size_t func_max_dynamic_smem(const void *fn) {
  std::lock_guard<std::mutex> g(g_func_mu);
  auto it = g_func_smem.find(fn);
  return it == g_func_smem.end() ? 48 * 1024 : (size_t)it->second;
}

// ---- racecheck --------------------------------------------------------------------------------
// DLK_EMU_RACECHECK=1, in an emulated build whose kernels were compiled with
// DLK_EMU_RACECHECK_BUILD: GCC's outline address-sanitizer instrumentation in its kernel
// mode (-fsanitize=kernel-address with a call threshold of 0) turns every load and store of
// kernel code into a call to __asan_{load,store}N_noabort, and no sanitizer runtime is
// linked: the callbacks below are that runtime. An access is checked when it falls in
// shared memory: the TLS blocks of the worker thread (every __shared__ variable is a
// thread_local there; the one other TLS variable kernel code reads, dlk_emu_thread, is
// left out) or the dynamic shared memory the launch asked for. Per byte the shadow keeps
// the last writer and the readers of the current barrier interval; two different threads,
// at least one writing, in one interval is a race, unless both are lanes of one warp and
// the warp met in a full-warp collective (__syncwarp, a shuffle) in between. A read of a
// byte that no thread of the block has written is reported too (uninitialised shared
// memory). Atomics are not instrumented (not races). Limits: the first race per launch is
// reported, by address and code address (module+offset, for addr2line), not by source line;
// intra-warp ordering through a partial-mask collective is not seen (reported as a race).
bool race_on() {
  static const int on = [] {
    const char *e = getenv("DLK_EMU_RACECHECK");
    if (!e || !*e || strcmp(e, "0") == 0) return 0;
#if defined(DLK_EMU_RACECHECK_BUILD) && !defined(DLK_EMU_ASAN)
    fprintf(stderr, "dlk-emu: racecheck on (shared memory, per barrier interval)\n");
    return 1;
#else
    fprintf(stderr, "dlk-emu: DLK_EMU_RACECHECK is set but this build's kernels are not "
                    "instrumented (DLK_EMU_RACECHECK=OFF or an ASan build): racecheck off\n");
    return 0;
#endif
  }();
  return on != 0;
}

struct Cell {
  uint32_t block, epoch;
  int32_t writer, reader, rwarp;  // reader -2: several; rwarp -1: readers in several warps
  uint32_t wgen_w, wgen_r;
  bool written;
  uintptr_t pc_w, pc_r;
};
struct Range {
  uintptr_t lo, hi;
  std::vector<Cell> cells;
};
struct RaceState {
  Worker *w = nullptr;
  std::vector<Range> ranges;  // [0]: dynamic shared memory; then the TLS blocks
  uint32_t block = 0, epoch = 0;
  uint32_t wsync[32] = {};
  bool reported = false;
  // Reads of bytes no thread of the block had written yet: a race if another thread writes
  // them later in the interval, uninitialised if nobody has by the interval's end.
  struct Unwritten {
    uintptr_t a, pc;
    int t;
  };
  std::vector<Unwritten> unwritten;
};

int tls_ranges(struct dl_phdr_info *info, size_t, void *p) {
  RaceState *r = static_cast<RaceState *>(p);
  if (!info->dlpi_tls_modid || !info->dlpi_tls_data) return 0;
  for (int i = 0; i < info->dlpi_phnum; i++) {
    if (info->dlpi_phdr[i].p_type != PT_TLS) continue;
    Range g;
    g.lo = (uintptr_t)info->dlpi_tls_data;
    g.hi = g.lo + info->dlpi_phdr[i].p_memsz;
    g.cells.assign(g.hi - g.lo, Cell());
    r->ranges.push_back(std::move(g));
  }
  return 0;
}

bool race_enabled() { return race_on(); }
RaceState *race_new() {
  RaceState *r = new RaceState;
  r->w = tl_worker;
  Range d;
  d.lo = (uintptr_t)r->w->dyn;
  d.hi = d.lo;  // set per block
  d.cells.assign(r->w->dyn_cap, Cell());
  r->ranges.push_back(std::move(d));
  dl_iterate_phdr(tls_ranges, r);
  for (Range &g : r->ranges)
    for (Cell &c : g.cells) c.block = ~0u;
  return r;
}
void race_free(RaceState *r) { delete r; }
void race_block_begin(RaceState *r, size_t dyn_bytes) {
  r->block++;
  r->epoch++;
  r->ranges[0].hi = r->ranges[0].lo + dyn_bytes;
  memset(r->wsync, 0, sizeof r->wsync);
  r->reported = false;
}
void race_report(RaceState *r, Fiber *f, uintptr_t a, bool write, const char *what, int other,
                 uintptr_t other_pc, uintptr_t pc);
Cell *race_cell(RaceState *r, uintptr_t a) {
  for (Range &g : r->ranges)
    if (a >= g.lo && a < g.hi) return &g.cells[a - g.lo];
  return nullptr;
}
// The interval ends: reads of bytes still unwritten read uninitialised shared memory.
void race_interval_end(RaceState *r) {
  for (const auto &u : r->unwritten) {
    Cell *c = race_cell(r, u.a);
    if (c && c->block == r->block && !c->written) {
      race_report(r, r->w->fibers[u.t], u.a, false, nullptr, -1, 0, u.pc);
      break;
    }
  }
  r->unwritten.clear();
}
void race_block_end(RaceState *r) {
  if (!r->w->aborted) race_interval_end(r);
  r->unwritten.clear();
}
void race_barrier(RaceState *r) {
  race_interval_end(r);
  r->epoch++;
}
void race_warp_sync(RaceState *r, int warp) { r->wsync[warp]++; }

std::string code_at(uintptr_t pc) {
  Dl_info di;
  if (pc && dladdr((void *)pc, &di) && di.dli_fname) {
    std::string s = fmt("%s+0x%lx", base_name(di.dli_fname), (unsigned long)(pc - (uintptr_t)di.dli_fbase));
    if (di.dli_sname && di.dli_saddr) {
      int st = 0;
      char *dm = abi::__cxa_demangle(di.dli_sname, nullptr, nullptr, &st);
      s += fmt(" (%s)", st == 0 && dm ? dm : di.dli_sname);
      free(dm);
    }
    return s;
  }
  return fmt("0x%lx", (unsigned long)pc);
}

void race_report(RaceState *r, Fiber *f, uintptr_t a, bool write, const char *what, int other,
                 uintptr_t other_pc, uintptr_t pc) {
  if (r->reported) return;
  r->reported = true;
  Worker *w = r->w;
  std::string o = other >= 0 ? thread_name(w->fibers[other]) : std::string("another thread");
  if (!what)
    fail(w, cudaErrorLaunchFailure,
         fmt("uninitialised shared memory read in %s: address 0x%lx has not been written by any "
             "thread of this block (code %s)",
             where(w, f).c_str(), (unsigned long)a, code_at(pc).c_str()));
  else
    fail(w, cudaErrorLaunchFailure,
         fmt("shared-memory race in %s: %s of address 0x%lx (code %s) after a %s by thread %s "
             "(code %s) with no __syncthreads between",
             where(w, f).c_str(), write ? "write" : "read", (unsigned long)a, code_at(pc).c_str(),
             what, o.c_str(), code_at(other_pc).c_str()));
}

[[maybe_unused]] void race_access(uintptr_t a, size_t n, bool write, uintptr_t pc) {
  Worker *w = tl_worker;
  if (!w || !w->cur || !w->race || w->aborted) return;
  RaceState *r = w->race;
  if (a <= (uintptr_t)&dlk_emu_thread && (uintptr_t)&dlk_emu_thread < a + n) return;
  for (Range &g : r->ranges) {
    if (a < g.lo || a >= g.hi) continue;
    Fiber *f = w->cur;
    const int t = f->linear, warp = f->warp;
    const uint32_t ws = r->wsync[warp];
    for (uintptr_t b = a; b < a + n && b < g.hi; b++) {
      Cell &c = g.cells[b - g.lo];
      if (c.block != r->block) {
        c = Cell();
        c.block = r->block;
        c.epoch = r->epoch - 1;
        c.writer = c.reader = c.rwarp = -1;
      }
      if (c.epoch != r->epoch) {
        c.epoch = r->epoch;
        c.writer = c.reader = c.rwarp = -1;
      }
      const bool w_ordered = c.writer >= 0 && (c.writer >> 5) == warp && c.wgen_w != ws;
      if (!write) {
        if (!c.written && r->unwritten.size() < 4096) r->unwritten.push_back({b, pc, t});
        if (c.writer >= 0 && c.writer != t && !w_ordered)
          return race_report(r, f, b, false, "write", c.writer, c.pc_w, pc);
        if (c.reader == -1) {
          c.reader = t;
          c.rwarp = warp;
        } else if (c.reader != t) {
          c.reader = -2;
          if (c.rwarp != warp) c.rwarp = -1;
        }
        c.wgen_r = ws;
        c.pc_r = pc;
      } else {
        if (c.writer >= 0 && c.writer != t && !w_ordered)
          return race_report(r, f, b, true, "write", c.writer, c.pc_w, pc);
        if ((c.reader == -2 || (c.reader >= 0 && c.reader != t)) && !(c.rwarp == warp && c.wgen_r != ws))
          return race_report(r, f, b, true, "read", c.reader, c.pc_r, pc);
        c.writer = t;
        c.wgen_w = ws;
        c.pc_w = pc;
        c.written = true;
      }
    }
    return;
  }
}

}  // namespace

// ---- device-side entry points (dlk_emu/device.h) ------------------------------------------------
int barrier(int op, int pred, const char *file, int line) {
  Worker *w = tl_worker;
  Fiber *f = w ? w->cur : nullptr;
  if (!f) {
    fprintf(stderr, "dlk-emu: __syncthreads called outside a kernel\n");
    abort();
  }
  f->state = F_BAR;
  f->file = file;
  f->line = line;
  f->bar_op = op;
  f->bar_pred = pred;
  w->at_bar++;
  if (w->at_bar == w->live) complete_barrier(w);
  if (w->aborted) abandon(w, f);
  if (f->state == F_BAR) to_scheduler(w, f, false);
  if (w->aborted) abandon(w, f);
  f->state = F_RUNNING;
  return f->bar_result;
}

uint64_t warp_coll(int kind, unsigned mask, uint64_t value, int arg, int width, const char *file,
                   int line) {
  Worker *w = tl_worker;
  Fiber *f = w ? w->cur : nullptr;
  if (!f) {
    fprintf(stderr, "dlk-emu: %s called outside a kernel\n", coll_name(kind));
    abort();
  }
  WarpState &ws = w->warps[f->warp];
  const unsigned bit = 1u << f->lane;
  if (width < 1 || width > 32 || (width & (width - 1)))
    fail(w, cudaErrorLaunchFailure,
         fmt("%s in %s at %s:%d: width %d is not a power of two in [1, 32]", coll_name(kind),
             where(w, f).c_str(), base_name(file), line, width));
  else if (!(mask & bit))
    fail(w, cudaErrorLaunchFailure,
         fmt("%s in %s at %s:%d: mask 0x%08x does not name the calling lane %d", coll_name(kind),
             where(w, f).c_str(), base_name(file), line, mask, f->lane));
  else if (mask & ~ws.present)
    fail(w, cudaErrorLaunchFailure,
         fmt("%s in %s at %s:%d: mask 0x%08x names lanes %s, absent from this warp (the block "
             "has %d threads)",
             coll_name(kind), where(w, f).c_str(), base_name(file), line, mask,
             lanes(mask & ~ws.present).c_str(), w->nthreads));
  else if (mask & ws.exited)
    fail(w, cudaErrorLaunchFailure,
         fmt("%s in %s at %s:%d: mask 0x%08x names lanes %s, which have exited", coll_name(kind),
             where(w, f).c_str(), base_name(file), line, mask, lanes(mask & ws.exited).c_str()));
  else if (ws.pending && (ws.kind != kind || ws.mask != mask))
    fail(w, cudaErrorLaunchFailure,
         fmt("%s in %s at %s:%d with mask 0x%08x, while lanes %s of its warp wait in %s at %s:%d "
             "with mask 0x%08x",
             coll_name(kind), where(w, f).c_str(), base_name(file), line, mask,
             lanes(ws.arrived).c_str(), coll_name(ws.kind), base_name(ws.file), ws.line, ws.mask));
  if (w->aborted) abandon(w, f);
  if (!ws.pending) {
    ws.pending = true;
    ws.kind = kind;
    ws.mask = mask;
    ws.arrived = 0;
    ws.file = file;
    ws.line = line;
  }
  ws.arrived |= bit;
  f->coll_val = value;
  f->coll_arg = arg;
  f->coll_width = width;
  f->file = file;
  f->line = line;
  f->state = F_COLL;
  if (ws.arrived == mask) complete_coll(w, ws, f->warp);
  if (w->aborted) abandon(w, f);
  if (f->state == F_COLL) to_scheduler(w, f, false);
  if (w->aborted) abandon(w, f);
  f->state = F_RUNNING;
  return f->coll_result;
}

unsigned activemask() {
  Worker *w = tl_worker;
  Fiber *f = w->cur;
  const WarpState &ws = w->warps[f->warp];
  return ws.present & ~ws.exited;
}

void yield() {
  Worker *w = tl_worker;
  Fiber *f = w ? w->cur : nullptr;
  if (!f) return;
  f->state = F_READY;
  w->push(f->linear);
  to_scheduler(w, f, false);
  if (w->aborted) abandon(w, f);
  f->state = F_RUNNING;
}

void trap(const char *what, const char *file, int line) {
  Worker *w = tl_worker;
  Fiber *f = w ? w->cur : nullptr;
  if (!f) {
    fprintf(stderr, "dlk-emu: %s outside a kernel at %s:%d\n", what, file, line);
    abort();
  }
  fail(w, cudaErrorLaunchFailure, fmt("%s in %s at %s:%d", what, where(w, f).c_str(), base_name(file), line));
  abandon(w, f);
}

void *dynamic_smem() {
  Worker *w = tl_worker;
  return w ? w->dyn : nullptr;
}

uint64_t globaltimer_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

extern "C" void dlk_emu_fiber_entry() {
  Worker *w = tl_worker;
  Fiber *f = w->cur;
#ifdef DLK_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &w->sched_bottom, &w->sched_size);
#endif
  w->job->thunk(w->job->pack);
  // The thread has ended: it is counted out of barriers and never resumed.
  w = tl_worker;
  f = w->cur;
  f->state = F_EXITED;
  w->live--;
  w->exited++;
  WarpState &ws = w->warps[f->warp];
  ws.exited |= 1u << f->lane;
  if (ws.pending && (ws.mask >> f->lane & 1))
    fail(w, cudaErrorLaunchFailure,
         fmt("%s exited while lanes %s of its warp wait for it in %s (mask 0x%08x) at %s:%d",
             where(w, f).c_str(), lanes(ws.arrived).c_str(), coll_name(ws.kind), ws.mask,
             base_name(ws.file), ws.line));
  else if (w->at_bar > 0 && w->at_bar == w->live)
    complete_barrier(w);  // reports the divergence: the others wait at a barrier it skipped
  to_scheduler(w, f, true);
  fprintf(stderr, "dlk-emu: an exited fiber was resumed\n");
  abort();
}

cudaError_t launch(const LaunchConfig &c, void (*thunk)(void *), void *pack) {
  if (tl_worker && tl_worker->cur) {
    fprintf(stderr, "dlk-emu: kernel %s launched from a kernel (dynamic parallelism is not emulated)\n",
            c.name);
    return set_err(cudaErrorNotSupported);
  }
  const dim3 g = c.grid, b = c.block;
  const uint64_t threads = (uint64_t)b.x * b.y * b.z;
  // The checks a GPU's launch makes, with the errors CUDA returns (sm_90 limits).
  if (g.x == 0 || g.y == 0 || g.z == 0 || b.x == 0 || b.y == 0 || b.z == 0 || threads > 1024 ||
      b.x > 1024 || b.y > 1024 || b.z > 64 || g.x > 2147483647u || g.y > 65535 || g.z > 65535)
    return set_err(cudaErrorInvalidConfiguration);
  const size_t smem_max = func_max_dynamic_smem(c.fn);
  if (c.smem > smem_max) return set_err(cudaErrorInvalidValue);
  Job j;
  j.cfg = c;
  j.name = kernel_base(c.name);
  j.thunk = thunk;
  j.pack = pack;
  j.nblocks = (uint64_t)g.x * g.y * g.z;
  {
    std::lock_guard<std::mutex> lg(g_names_mu);
    static bool registered = false;
    if (!registered) {
      registered = true;
      atexit(report_at_exit);
    }
    g_names[j.name].launches++;
  }
  const uint64_t t0 = globaltimer_ns();
  static const bool trace = getenv("DLK_EMU_TRACE") && *getenv("DLK_EMU_TRACE");
  if (trace)
    fprintf(stderr, "dlk-emu: launch %s grid (%u,%u,%u) block (%u,%u,%u) smem %zu\n", c.name, g.x, g.y,
            g.z, b.x, b.y, b.z, c.smem);
  {
    std::lock_guard<std::mutex> lg(g_launch_mu);
    const uint64_t extra = std::min<uint64_t>((uint64_t)pool_threads() - 1, j.nblocks - 1);
    j.threads = (int)extra + 1;
    pool().run(&j, (int)extra);
  }
  {
    std::lock_guard<std::mutex> lg(g_names_mu);
    KernelStats &ks = g_names[j.name];
    ks.threads += (long long)(j.nblocks * ((uint64_t)b.x * b.y * b.z));
    ks.ns += (long long)(globaltimer_ns() - t0);
  }
  if (j.err != cudaSuccess) {
    std::lock_guard<std::mutex> lg(g_report_mu);
    g_last_report = j.report;
  }
  return set_err(j.err);
}

}  // namespace dlk_emu

using namespace dlk_emu;

// ---- the runtime API -----------------------------------------------------------------------------
extern "C" {

const char *cudaGetErrorName(cudaError_t e) {
  switch (e) {
#define N(x) \
  case x: return #x;
    N(cudaSuccess) N(cudaErrorInvalidValue) N(cudaErrorMemoryAllocation) N(cudaErrorInitializationError)
    N(cudaErrorInvalidConfiguration) N(cudaErrorInvalidSymbol) N(cudaErrorInvalidDevicePointer)
    N(cudaErrorInvalidMemcpyDirection) N(cudaErrorInvalidResourceHandle) N(cudaErrorNotReady)
    N(cudaErrorNoDevice) N(cudaErrorInvalidDevice) N(cudaErrorNoKernelImageForDevice)
    N(cudaErrorUnsupportedPtxVersion) N(cudaErrorInvalidDeviceFunction) N(cudaErrorIllegalAddress)
    N(cudaErrorLaunchOutOfResources) N(cudaErrorLaunchTimeout) N(cudaErrorAssert)
    N(cudaErrorIllegalInstruction) N(cudaErrorLaunchFailure) N(cudaErrorNotSupported) N(cudaErrorUnknown)
#undef N
  }
  return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidSymbol: return "invalid device symbol";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorNoKernelImageForDevice: return "no kernel image is available for execution on the device";
    case cudaErrorUnsupportedPtxVersion: return "the provided PTX was compiled with an unsupported toolchain.";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorLaunchTimeout: return "the launch timed out and was terminated";
    case cudaErrorAssert: return "device-side assert triggered";
    case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorNotSupported: return "operation not supported";
    default: return "unknown error";
  }
}

cudaError_t cudaGetLastError(void) {
  cudaError_t e = tl_last;
  tl_last = cudaSuccess;
  return e;
}
cudaError_t cudaPeekAtLastError(void) { return tl_last; }

const char *dlk_emu_last_report(void) {
  std::lock_guard<std::mutex> g(g_report_mu);
  return g_last_report.c_str();
}

int dlk_emu_kernel_counts(const char **names, long long *counts, int cap) {
  std::lock_guard<std::mutex> g(g_names_mu);
  int i = 0;
  for (auto &kv : g_names) {
    if (i < cap) {
      names[i] = kv.first.c_str();
      counts[i] = kv.second.launches;
    }
    i++;
  }
  return i;
}

int dlk_emu_resident_blocks(void) { return pool_threads(); }

void dlk_emu_print_report(void) {
  std::lock_guard<std::mutex> g(g_names_mu);
  fprintf(stderr, "dlk-emu: %zu kernels launched (launches, CUDA threads, seconds in them):\n", g_names.size());
  for (auto &kv : g_names)
    fprintf(stderr, "  %-32s %8lld %12lld %8.2f\n", kv.first.c_str(), kv.second.launches, kv.second.threads,
            kv.second.ns * 1e-9);
}

cudaError_t cudaGetDeviceCount(int *n) {
  if (!n) return set_err(cudaErrorInvalidValue);
  *n = 1;
  return cudaSuccess;
}
static thread_local int tl_device = 0;
cudaError_t cudaGetDevice(int *d) {
  if (!d) return set_err(cudaErrorInvalidValue);
  *d = tl_device;
  return cudaSuccess;
}
cudaError_t cudaSetDevice(int d) {
  if (d != 0) return set_err(cudaErrorInvalidDevice);
  tl_device = d;
  return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int dev) {
  if (!p) return set_err(cudaErrorInvalidValue);
  if (dev != 0) return set_err(cudaErrorInvalidDevice);
  memset(p, 0, sizeof *p);
  snprintf(p->name, sizeof p->name, "dlk-emu");
  p->totalGlobalMem = kTotalMem;
  p->sharedMemPerBlock = 48 * 1024;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->memPitch = 2147483647;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024, p->maxThreadsDim[1] = 1024, p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 2147483647, p->maxGridSize[1] = 65535, p->maxGridSize[2] = 65535;
  p->clockRate = 1980000;
  p->totalConstMem = 65536;
  p->major = 9;
  p->minor = 0;
  p->multiProcessorCount = 132;
  p->l2CacheSize = 50 * 1024 * 1024;
  p->maxThreadsPerMultiProcessor = 2048;
  p->sharedMemPerMultiprocessor = 233472;
  p->sharedMemPerBlockOptin = 232448;
  p->memoryClockRate = 2619000;
  p->memoryBusWidth = 5120;
  p->regsPerMultiprocessor = 65536;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *v, enum cudaDeviceAttr a, int dev) {
  if (!v) return set_err(cudaErrorInvalidValue);
  struct cudaDeviceProp p;
  cudaError_t e = cudaGetDeviceProperties(&p, dev);
  if (e != cudaSuccess) return e;
  switch (a) {
    case cudaDevAttrMaxThreadsPerBlock: *v = p.maxThreadsPerBlock; break;
    case cudaDevAttrMaxBlockDimX: *v = p.maxThreadsDim[0]; break;
    case cudaDevAttrMaxBlockDimY: *v = p.maxThreadsDim[1]; break;
    case cudaDevAttrMaxBlockDimZ: *v = p.maxThreadsDim[2]; break;
    case cudaDevAttrMaxGridDimX: *v = p.maxGridSize[0]; break;
    case cudaDevAttrMaxGridDimY: *v = p.maxGridSize[1]; break;
    case cudaDevAttrMaxGridDimZ: *v = p.maxGridSize[2]; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *v = (int)p.sharedMemPerBlock; break;
    case cudaDevAttrTotalConstantMemory: *v = (int)p.totalConstMem; break;
    case cudaDevAttrWarpSize: *v = 32; break;
    case cudaDevAttrMaxRegistersPerBlock: *v = p.regsPerBlock; break;
    case cudaDevAttrClockRate: *v = p.clockRate; break;
    case cudaDevAttrMultiProcessorCount: *v = p.multiProcessorCount; break;
    case cudaDevAttrComputeCapabilityMajor: *v = p.major; break;
    case cudaDevAttrComputeCapabilityMinor: *v = p.minor; break;
    case cudaDevAttrMemoryClockRate: *v = p.memoryClockRate; break;
    case cudaDevAttrGlobalMemoryBusWidth: *v = p.memoryBusWidth; break;
    case cudaDevAttrL2CacheSize: *v = p.l2CacheSize; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: *v = p.maxThreadsPerMultiProcessor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: *v = (int)p.sharedMemPerMultiprocessor; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *v = (int)p.sharedMemPerBlockOptin; break;
    default: return set_err(cudaErrorInvalidValue);
  }
  return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) { return cudaSuccess; }
cudaError_t cudaDeviceReset(void) { return cudaSuccess; }
cudaError_t cudaRuntimeGetVersion(int *v) {
  if (!v) return set_err(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaDriverGetVersion(int *v) {
  if (!v) return set_err(cudaErrorInvalidValue);
  *v = CUDART_VERSION;
  return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *fr, size_t *tot) {
  std::lock_guard<std::mutex> g(g_mem_mu);
  if (fr) *fr = kTotalMem > g_allocated ? kTotalMem - g_allocated : 0;
  if (tot) *tot = kTotalMem;
  return cudaSuccess;
}

// Device memory is ordinary heap memory (malloc'd, so AddressSanitizer bounds every buffer
// exactly: a kernel's out-of-bounds access is reported where it happens), 256-byte aligned
// as cudaMalloc's.
cudaError_t cudaMalloc(void **p, size_t bytes) {
  if (!p) return set_err(cudaErrorInvalidValue);
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  std::lock_guard<std::mutex> g(g_mem_mu);
  if (bytes > kTotalMem - g_allocated) return set_err(cudaErrorMemoryAllocation);
  void *q = nullptr;
  if (posix_memalign(&q, 256, bytes) != 0 || !q) return set_err(cudaErrorMemoryAllocation);
  g_allocs[q] = bytes;
  g_allocated += bytes;
  *p = q;
  return cudaSuccess;
}
cudaError_t cudaFree(void *p) {
  if (!p) return cudaSuccess;
  std::lock_guard<std::mutex> g(g_mem_mu);
  auto it = g_allocs.find(p);
  if (it == g_allocs.end()) return set_err(cudaErrorInvalidDevicePointer);
  g_allocated -= it->second;
  g_allocs.erase(it);
  free(p);
  return cudaSuccess;
}
cudaError_t cudaMallocHost(void **p, size_t bytes) {
  if (!p) return set_err(cudaErrorInvalidValue);
  *p = nullptr;
  if (posix_memalign(p, 256, bytes ? bytes : 1) != 0) return set_err(cudaErrorMemoryAllocation);
  return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned) { return cudaMallocHost(p, bytes); }
cudaError_t cudaFreeHost(void *p) {
  free(p);
  return cudaSuccess;
}
// memcpy, not memmove: overlapping copies are undefined in CUDA too, and ASan reports them.
cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind) {
  if ((int)kind < 0 || (int)kind > 4) return set_err(cudaErrorInvalidMemcpyDirection);
  if (bytes == 0) return cudaSuccess;
  if (!dst || !src) return set_err(cudaErrorInvalidValue);
  if (dst != src) memcpy(dst, src, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, enum cudaMemcpyKind kind,
                            cudaStream_t) {
  return cudaMemcpy(dst, src, bytes, kind);
}
cudaError_t cudaMemset(void *p, int value, size_t bytes) {
  if (bytes == 0) return cudaSuccess;
  if (!p) return set_err(cudaErrorInvalidValue);
  memset(p, value, bytes);
  return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *p, int value, size_t bytes, cudaStream_t) {
  return cudaMemset(p, value, bytes);
}

// Streams and events: work is done when the call returns, so they only need identities
// (and events a time stamp).
cudaError_t cudaStreamCreate(cudaStream_t *s) { return cudaStreamCreateWithFlags(s, 0); }
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned) {
  if (!s) return set_err(cudaErrorInvalidValue);
  *s = (cudaStream_t) new Handle{1, 0.0};
  return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
  if (!s) return set_err(cudaErrorInvalidResourceHandle);
  delete (Handle *)s;
  return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaStreamQuery(cudaStream_t) { return cudaSuccess; }
cudaError_t cudaEventCreate(cudaEvent_t *e) { return cudaEventCreateWithFlags(e, 0); }
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned) {
  if (!e) return set_err(cudaErrorInvalidValue);
  *e = (cudaEvent_t) new Handle{2, -1.0};
  return cudaSuccess;
}
cudaError_t cudaEventDestroy(cudaEvent_t e) {
  if (!e) return set_err(cudaErrorInvalidResourceHandle);
  delete (Handle *)e;
  return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t) {
  if (!e) return set_err(cudaErrorInvalidResourceHandle);
  ((Handle *)e)->t_ms = now_ms();
  return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t e) {
  return e ? cudaSuccess : set_err(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventQuery(cudaEvent_t e) {
  return e ? cudaSuccess : set_err(cudaErrorInvalidResourceHandle);
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
  if (!ms) return set_err(cudaErrorInvalidValue);
  if (!a || !b) return set_err(cudaErrorInvalidResourceHandle);
  const Handle *ha = (const Handle *)a, *hb = (const Handle *)b;
  if (ha->t_ms < 0 || hb->t_ms < 0) return set_err(cudaErrorNotReady);
  *ms = (float)(hb->t_ms - ha->t_ms);
  return cudaSuccess;
}

cudaError_t dlk_emu_func_get_attributes(struct cudaFuncAttributes *a, const void *fn) {
  if (!a || !fn) return set_err(cudaErrorInvalidDeviceFunction);
  memset(a, 0, sizeof *a);
  a->maxThreadsPerBlock = 1024;
  a->numRegs = 32;
  a->ptxVersion = 90;
  a->binaryVersion = 90;
  a->maxDynamicSharedSizeBytes = (int)func_max_dynamic_smem(fn);
  return cudaSuccess;
}
cudaError_t dlk_emu_func_set_attribute(const void *fn, enum cudaFuncAttribute attr, int v) {
  if (!fn) return set_err(cudaErrorInvalidDeviceFunction);
  if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
    if (v < 0 || v > 232448) return set_err(cudaErrorInvalidValue);
    std::lock_guard<std::mutex> g(g_func_mu);
    g_func_smem[fn] = v;
  }
  return cudaSuccess;
}
// As if each thread needed 32 registers and the shared memory asked for: 2048 threads and
// 228 KiB per SM, at most 32 blocks.
cudaError_t dlk_emu_occupancy(int *blocks, const void *fn, int threads, size_t smem) {
  if (!blocks || !fn || threads <= 0) return set_err(cudaErrorInvalidValue);
  int b = 2048 / threads;
  if (smem > 0 && (int)(233472 / smem) < b) b = (int)(233472 / smem);
  if (b > 32) b = 32;
  *blocks = b;
  return cudaSuccess;
}
cudaError_t cudaGetDriverEntryPointByVersion(const char *, void **fn, unsigned, unsigned long long,
                                             enum cudaDriverEntryPointQueryResult *status) {
  if (fn) *fn = nullptr;
  if (status) *status = cudaDriverEntryPointSymbolNotFound;
  return cudaSuccess;
}

}  // extern "C"

// The instrumentation's callbacks (racecheck builds only; an ASan build has the real ones).
#if defined(DLK_EMU_RACECHECK_BUILD) && !defined(DLK_EMU_ASAN)
#define DLK_EMU_RC_CB(N)                                                                     \
  extern "C" void __asan_load##N##_noabort(uintptr_t a) {                                    \
    if (dlk_emu::race_on()) dlk_emu::race_access(a, N, false, (uintptr_t)__builtin_return_address(0)); \
  }                                                                                          \
  extern "C" void __asan_store##N##_noabort(uintptr_t a) {                                   \
    if (dlk_emu::race_on()) dlk_emu::race_access(a, N, true, (uintptr_t)__builtin_return_address(0)); \
  }
DLK_EMU_RC_CB(1)
DLK_EMU_RC_CB(2)
DLK_EMU_RC_CB(4)
DLK_EMU_RC_CB(8)
DLK_EMU_RC_CB(16)
extern "C" void __asan_handle_no_return(void) {}
extern "C" void __asan_loadN_noabort(uintptr_t a, size_t n) {
  if (dlk_emu::race_on()) dlk_emu::race_access(a, n, false, (uintptr_t)__builtin_return_address(0));
}
extern "C" void __asan_storeN_noabort(uintptr_t a, size_t n) {
  if (dlk_emu::race_on()) dlk_emu::race_access(a, n, true, (uintptr_t)__builtin_return_address(0));
}
#endif
