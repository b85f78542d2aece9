/*
 * What one minor page fault costs on this machine: first writes to fresh anonymous pages, then
 * again after MADV_DONTNEED (what V8 does to heap pages it hands back). Linux only.
 *
 *   cc -O2 -o /tmp/faultCost bench/probes/faultCost.c && /tmp/faultCost
 *
 * Session 7 (docs/benchmarks.md), the 2-vCPU PVM guest: p50 ~11 µs, p99 ~50 µs per fault.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

enum { PAGES = 20000, PAGE = 4096 };

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

static int ascending(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static void touchAll(volatile char* memory, double* took, const char* what) {
  for (int i = 0; i < PAGES; i++) {
    double start = now();
    memory[(size_t)i * PAGE] = 1;
    took[i] = now() - start;
  }
  qsort(took, PAGES, sizeof *took, ascending);
  printf("%-22s p50 %6.0f p90 %6.0f p99 %6.0f max %7.0f ns per page\n", what, took[PAGES / 2],
         took[PAGES * 9 / 10], took[PAGES * 99 / 100], took[PAGES - 1]);
}

int main(void) {
  double* took = malloc(PAGES * sizeof *took);
  char* memory = mmap(0, (size_t)PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (took == NULL || memory == MAP_FAILED) {
    perror("alloc");
    return 2;
  }
  touchAll(memory, took, "first touch");
  madvise(memory, (size_t)PAGES * PAGE, MADV_DONTNEED);
  touchAll(memory, took, "after MADV_DONTNEED");
  return 0;
}
