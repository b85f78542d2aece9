#include "waiter.h"

#include <signal.h>

#include <chrono>
#include <climits>

#include "futex.h"

namespace commy {

const char* WaitResultName(WaitResult r) {
  switch (r) {
    case WaitResult::kWoken:
      return "woken";
    case WaitResult::kTimeout:
      return "timeout";
    case WaitResult::kMismatch:
      return "mismatch";
    case WaitResult::kCancelled:
    default:
      return "cancelled";
  }
}

WaitCore::WaitCore(std::shared_ptr<MappedFile> mapping, Completion completion, void* ctx)
    : mapping_(std::move(mapping)), completion_(completion), ctx_(ctx) {}

WaitCore::~WaitCore() { Stop(); }

int WaitCore::Start() {
  pthread_attr_t attr;
  int r = pthread_attr_init(&attr);
  if (r != 0) return r;
  pthread_attr_setstacksize(&attr, 256 * 1024);
  // The thread inherits a fully blocked signal mask: process signals go to other threads
  // and never interrupt (or get handled on) the waiter.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  r = pthread_create(&thread_, &attr, &WaitCore::ThreadMain, this);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  pthread_attr_destroy(&attr);
  if (r == 0) started_ = true;
  return r;
}

void* WaitCore::ThreadMain(void* self) {
  static_cast<WaitCore*>(self)->Run();
  return nullptr;
}

void WaitCore::Submit(uint64_t generation, size_t offset, uint32_t expected,
                      int64_t timeout_ns) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    gen_ = generation;
    offset_ = offset;
    expected_ = expected;
    timeout_ns_ = timeout_ns;
    has_request_ = true;
    cancel_current_ = false;
  }
  cv_.notify_one();
}

void WaitCore::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || has_request_; });
    if (stop_) break;
    has_request_ = false;
    const uint64_t gen = gen_;
    const size_t offset = offset_;
    const uint32_t expected = expected_;
    const int64_t timeout_ns = timeout_ns_;
    WaitResult result = WaitResult::kCancelled;
    // BeginWait pins the memory (no munmap while we are in the futex) and fails once the
    // mapping is closed. It is taken under mu_, so Cancel() sees in_futex_ consistently.
    if (mapping_->BeginWait()) {
      in_futex_ = true;
      lock.unlock();
      const uint32_t* addr = reinterpret_cast<const uint32_t*>(mapping_->data() + offset);
      int err = 0;
      const FutexWaitStatus s = FutexWait(addr, expected, timeout_ns, &err);
      mapping_->Unpin();
      lock.lock();
      in_futex_ = false;
      switch (s) {
        case FutexWaitStatus::kWoken:
          result = WaitResult::kWoken;
          break;
        case FutexWaitStatus::kTimeout:
          result = WaitResult::kTimeout;
          break;
        case FutexWaitStatus::kMismatch:
          result = WaitResult::kMismatch;
          break;
        case FutexWaitStatus::kError:
        default:
          // Cannot happen for a validated, mapped, aligned word; report as a (spurious) wake
          // so that callers re-check the word.
          result = WaitResult::kWoken;
          break;
      }
      if (cancel_current_) result = WaitResult::kCancelled;
      cancel_current_ = false;
      ack_cv_.notify_all();
    }
    lock.unlock();
    completion_(ctx_, gen, result);
    lock.lock();
  }
}

void WaitCore::Cancel() {
  std::unique_lock<std::mutex> lock(mu_);
  if (has_request_) {  // not picked up yet: just drop it
    has_request_ = false;
    return;
  }
  if (!in_futex_) return;
  cancel_current_ = true;
  // Pin so the word stays mapped while we wake it (the thread may leave and unpin first).
  const bool pinned = mapping_->Pin();
  const uint32_t* addr = reinterpret_cast<const uint32_t*>(mapping_->data() + offset_);
  // Between the thread setting in_futex_ and actually entering the kernel, a wake would be
  // lost, so repeat the wake until the thread acknowledges. Normally one round suffices.
  while (in_futex_) {
    lock.unlock();
    if (pinned) FutexWake(addr, INT_MAX);
    lock.lock();
    if (!in_futex_) break;
    ack_cv_.wait_for(lock, std::chrono::microseconds(200));
  }
  lock.unlock();
  if (pinned) mapping_->Unpin();
}

void WaitCore::Stop() {
  if (!started_ || joined_) return;
  Cancel();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  pthread_join(thread_, nullptr);
  joined_ = true;
}

}  // namespace commy
