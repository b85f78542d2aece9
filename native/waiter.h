// One dedicated thread that runs FUTEX_WAIT requests off the JS thread. Pure C++ (no
// Node-API); the JS layer (js_waiter.cc) delivers completions through a thread-safe
// function. The thread blocks on a condition variable between requests and in the futex
// during a wait: it never sleep-polls.
#ifndef COMMY_NATIVE_WAITER_H_
#define COMMY_NATIVE_WAITER_H_

#include <pthread.h>

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>

#include "mapping.h"

namespace commy {

enum class WaitResult : int { kWoken = 0, kTimeout = 1, kMismatch = 2, kCancelled = 3 };
const char* WaitResultName(WaitResult r);

class WaitCore {
 public:
  // Called on the waiter thread after each request it ran (also for cancelled ones;
  // the receiver filters by generation). Must not block on the JS thread.
  using Completion = void (*)(void* ctx, uint64_t generation, WaitResult result);

  WaitCore(std::shared_ptr<MappedFile> mapping, Completion completion, void* ctx);
  ~WaitCore();  // Stop()
  WaitCore(const WaitCore&) = delete;
  WaitCore& operator=(const WaitCore&) = delete;

  // Starts the thread. Returns 0 or an errno (from pthread_create).
  int Start();
  // Hands a request to the thread. offset is validated by the caller (4-aligned, inside).
  // timeout_ns < 0 means no timeout. At most one request may be outstanding.
  void Submit(uint64_t generation, size_t offset, uint32_t expected, int64_t timeout_ns);
  // Cancels the outstanding request (queued or inside FUTEX_WAIT). On return the thread is
  // no longer blocked in a futex call for it. Wakes every waiter on that word (FUTEX_WAKE
  // INT_MAX), so other waiters, also in other processes, may see a spurious wake.
  void Cancel();
  // Cancel, stop and join the thread. Idempotent. Never call from the waiter thread.
  void Stop();

  const std::shared_ptr<MappedFile>& mapping() const { return mapping_; }

 private:
  static void* ThreadMain(void* self);
  void Run();

  std::shared_ptr<MappedFile> mapping_;
  Completion completion_;
  void* ctx_;

  std::mutex mu_;
  std::condition_variable cv_;      // requests / stop, for the thread
  std::condition_variable ack_cv_;  // "left the futex", for Cancel()
  pthread_t thread_{};
  bool started_ = false;
  bool joined_ = false;
  bool stop_ = false;
  bool has_request_ = false;
  bool in_futex_ = false;
  bool cancel_current_ = false;
  uint64_t gen_ = 0;
  size_t offset_ = 0;
  uint32_t expected_ = 0;
  int64_t timeout_ns_ = -1;
};

}  // namespace commy

#endif  // COMMY_NATIVE_WAITER_H_
