/*
 * The plan-cache bound the cuDNN backend-graph helper relies on (dlk_plan_cache_trim in
 * host/core/context.c; test_core covers get/put/replace): the least recently used entry
 * under a prefix goes, a handle's entry never does, the others keep their order, and
 * context destroy still destroys newest first.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/internal.h"

/* ---- the plan cache's bound -------------------------------------------------------- */

/* Each entry's pointer is its own name; destroying it appends the name to the log. */
static char destroy_log[4096];
static int destroyed;
static void log_destroy(void *p) {
  dlk_appendf(destroy_log, sizeof destroy_log, "%s,", (const char *)p);
  destroyed++;
}

#define CAP 8
static void test_plan_cache_bound(void) {
  t_case = "plan cache bound";
  dlk_context *ctx = t_cpu_context();
  static char handle[] = "handle", other[] = "other", plan[CAP + 2][8];
  destroyed = 0;
  destroy_log[0] = '\0';
  /* As on a GPU context: the handle first, then plans made with it, another owner's entry
     in between. */
  CHECK_OK(ctx, dlk_plan_cache_put(ctx, "cudnn", handle, log_destroy));
  for (int i = 0; i < CAP + 2; i++) {
    char key[32];
    snprintf(plan[i], sizeof plan[i], "p%d", i);
    snprintf(key, sizeof key, "test/graph/p%d", i);
    if (i == 2) CHECK_OK(ctx, dlk_plan_cache_put(ctx, "test/other", other, log_destroy));
    if (i == 3) { /* p0 used again: p1 is now the least recently used */
      void *got = NULL;
      CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/graph/p0", &got));
      CHECK(got == plan[0], "p0 found");
    }
    dlk_plan_cache_trim(ctx, "test/graph/", CAP - 1); /* as graph.c does before each put */
    CHECK_OK(ctx, dlk_plan_cache_put(ctx, key, plan[i], log_destroy));
  }
  /* CAP + 2 plans went in, CAP stay: p1 (least recently used), then p2. */
  CHECK(dlk_plan_cache_count(ctx, "test/graph/") == CAP && dlk_plan_cache_count(ctx, "") == CAP + 2,
        "%zu plans, %zu entries", dlk_plan_cache_count(ctx, "test/graph/"),
        dlk_plan_cache_count(ctx, ""));
  CHECK(strcmp(destroy_log, "p1,p2,") == 0, "evicted: %s", destroy_log);
  void *got = NULL;
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "cudnn", &got));
  CHECK(got == handle, "the handle was evicted");
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/graph/p0", &got));
  CHECK(got == plan[0], "the recently used p0 was evicted");
  CHECK_OK(ctx, dlk_plan_cache_get(ctx, "test/graph/p1", &got));
  CHECK(got == NULL, "the least recently used p1 is still there");
  dlk_plan_cache_trim(ctx, "test/graph/", CAP); /* nothing to do */
  dlk_plan_cache_trim(ctx, "test/none/", 0);
  CHECK(destroyed == 2, "a trim within the bound destroyed %d", destroyed - 2);

  /* Context destroy: newest first, so every plan goes before the handle. */
  destroy_log[0] = '\0';
  dlk_context_destroy(ctx);
  CHECK(strcmp(destroy_log, "p9,p8,p7,p6,p5,p4,p3,other,p0,handle,") == 0, "destroy order: %s",
        destroy_log);
}
#undef CAP

int main(int argc, char **argv) {
  if (t_want_gpu(argc, argv)) {
    printf("test_graph --gpu: nothing on the GPU yet: skipped\n");
    return 77;
  }
  test_plan_cache_bound();
  return t_summary("test_graph");
}
