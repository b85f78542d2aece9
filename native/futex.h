// Process-shared futex wrappers (Linux). Never uses the process-private flag: the words live in
// MAP_SHARED file mappings and are waited on / woken from several processes. Pure C++.
#ifndef COMMY_NATIVE_FUTEX_H_
#define COMMY_NATIVE_FUTEX_H_

#include <cstdint>

namespace commy {

// CLOCK_MONOTONIC in nanoseconds (deadlines for waits and lock polling).
int64_t MonotonicNs();

enum class FutexWaitStatus { kWoken, kTimeout, kMismatch, kError };

// Wakes up to `count` waiters on `addr`. Returns the number woken, or -errno.
long FutexWake(const uint32_t* addr, int count);

// Blocks while *addr == expected, for at most timeout_ns (< 0: forever). EINTR is retried
// with the remaining time. kWoken may be spurious. On kError, *err is set to the errno.
FutexWaitStatus FutexWait(const uint32_t* addr, uint32_t expected, int64_t timeout_ns, int* err);

}  // namespace commy

#endif  // COMMY_NATIVE_FUTEX_H_
