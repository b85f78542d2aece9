#include "futex.h"

#include <cerrno>
#include <ctime>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace commy {

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}

#if defined(__linux__)

long FutexWake(const uint32_t* addr, int count) {
  // Shared futex: plain FUTEX_WAKE, without the process-private flag.
  long r = syscall(SYS_futex, addr, FUTEX_WAKE, count, nullptr, nullptr, 0);
  return r < 0 ? -errno : r;
}

FutexWaitStatus FutexWait(const uint32_t* addr, uint32_t expected, int64_t timeout_ns,
                          int* err) {
  const int64_t deadline = timeout_ns >= 0 ? MonotonicNs() + timeout_ns : -1;
  for (;;) {
    timespec ts;
    timespec* tsp = nullptr;
    if (deadline >= 0) {
      int64_t remaining = deadline - MonotonicNs();
      if (remaining < 0) remaining = 0;
      ts.tv_sec = static_cast<time_t>(remaining / 1000000000LL);
      ts.tv_nsec = static_cast<long>(remaining % 1000000000LL);
      tsp = &ts;
    }
    // FUTEX_WAIT takes a relative timeout (measured against CLOCK_MONOTONIC).
    long r = syscall(SYS_futex, addr, FUTEX_WAIT, expected, tsp, nullptr, 0);
    if (r == 0) return FutexWaitStatus::kWoken;
    const int e = errno;
    if (e == EAGAIN) return FutexWaitStatus::kMismatch;
    if (e == ETIMEDOUT) return FutexWaitStatus::kTimeout;
    if (e == EINTR) {
      if (deadline >= 0 && MonotonicNs() >= deadline) return FutexWaitStatus::kTimeout;
      continue;
    }
    if (err) *err = e;
    return FutexWaitStatus::kError;
  }
}

#else  // !__linux__: not supported yet (macOS would need __ulock_wait/os_sync_wait_on_address).

long FutexWake(const uint32_t*, int) { return -ENOSYS; }

FutexWaitStatus FutexWait(const uint32_t*, uint32_t, int64_t, int* err) {
  if (err) *err = ENOSYS;
  return FutexWaitStatus::kError;
}

#endif

}  // namespace commy
