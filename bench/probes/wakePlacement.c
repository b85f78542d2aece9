/*
 * Where does the kernel run a woken receiver: on the writer's CPU, or on the other one?
 * A writer process wakes a receiver process every ~1 ms (N times) through a futex, a pipe or a
 * unix datagram socket (the last two wake with the scheduler's WF_SYNC hint); the receiver
 * starts pinned to CPU 1, is unpinned after the first wake, and records the latency and whether
 * it ran on the writer's CPU. Linux only; needs two CPUs.
 *
 *   cc -O2 -o /tmp/wakePlacement bench/probes/wakePlacement.c
 *   /tmp/wakePlacement futex|pipe|sock [N=3000]
 *
 * Session 7 (docs/benchmarks.md): all three kept the receiver on the writer's CPU for
 * 99.7–99.8% of the wakes, p50 10–15 µs.
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int ascending(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return x < y ? -1 : x > y;
}

static void pinTo(int cpu) { /* cpu < 0: both CPUs 0 and 1 */
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu < 0) {
    CPU_SET(0, &set);
    CPU_SET(1, &set);
  } else {
    CPU_SET(cpu, &set);
  }
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    perror("sched_setaffinity");
    exit(2);
  }
}

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  const int futex = strcmp(mode, "futex") == 0;
  if (!futex && strcmp(mode, "pipe") != 0 && strcmp(mode, "sock") != 0) {
    fprintf(stderr, "usage: %s futex|pipe|sock [N]\n", argv[0]);
    return 2;
  }
  const int n = argc > 2 ? atoi(argv[2]) : 3000;
  if (n <= 0 || n > 1000000) {
    fprintf(stderr, "N must be 1..1000000\n");
    return 2;
  }
  int fds[2];
  if ((strcmp(mode, "pipe") == 0 ? pipe(fds) : socketpair(AF_UNIX, SOCK_DGRAM, 0, fds)) != 0) {
    perror("pipe/socketpair");
    return 2;
  }
  /* Shared: [0] the write's timestamp, [1] the writer's CPU; word 16: the futex; 24/25: counts. */
  volatile uint64_t* shared = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  uint64_t* latency = mmap(0, (size_t)n * 8, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (shared == MAP_FAILED || latency == MAP_FAILED) {
    perror("mmap");
    return 2;
  }
  volatile int* word = (volatile int*)(shared + 8);
  volatile int* placed = (volatile int*)(shared + 12); /* [0] writer's CPU, [1] the other */
  pid_t child = fork();
  if (child < 0) {
    perror("fork");
    return 2;
  }
  if (child == 0) {
    pinTo(1);
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev);
    for (int i = 0; i < n; i++) {
      uint64_t written;
      if (futex) {
        while (*word == i) syscall(SYS_futex, word, FUTEX_WAIT, i, 0, 0, 0);
        written = shared[0];
      } else {
        struct epoll_event out;
        epoll_wait(ep, &out, 1, -1);
        if (read(fds[0], &written, 8) != 8) _exit(3);
      }
      if (i == 0) pinTo(-1);
      latency[i] = now() - written;
      if (sched_getcpu() == (int)shared[1]) placed[0]++;
      else placed[1]++;
    }
    _exit(0);
  }
  pinTo(0);
  usleep(100000);
  pinTo(-1);
  for (int i = 0; i < n; i++) {
    uint64_t t = now();
    shared[1] = (uint64_t)sched_getcpu();
    shared[0] = t;
    if (futex) {
      __atomic_store_n(word, i + 1, __ATOMIC_SEQ_CST);
      syscall(SYS_futex, word, FUTEX_WAKE, 1, 0, 0, 0);
    } else if (write(fds[1], &t, 8) != 8) {
      perror("write");
      return 2;
    }
    struct timespec ms = {0, 1000000};
    nanosleep(&ms, 0);
  }
  waitpid(child, 0, 0);
  qsort(latency, (size_t)n, 8, ascending);
  printf("%-5s p50 %6.1f p90 %6.1f p99 %6.1f µs; receiver on the writer's CPU %d times, on the other %d\n", mode,
         latency[n / 2] / 1e3, latency[n * 9 / 10] / 1e3, latency[n * 99 / 100] / 1e3, placed[0], placed[1]);
  return 0;
}
