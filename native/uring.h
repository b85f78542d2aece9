// A minimal io_uring used for one thing: FUTEX_WAIT (IORING_OP_FUTEX_WAIT, Linux >= 6.7)
// whose completion wakes the JS thread's own event loop. The ring's fd is pollable, so
// libuv watches it like a socket: a writer's FUTEX_WAKE in another process wakes the JS
// thread directly, one wake-up instead of two (a waiter thread, then the loop). Pure C++
// (raw syscalls, no liburing); io_uring may be missing or blocked (old kernel, seccomp,
// kernel.io_uring_disabled), which FutexRingAvailable() detects once per process.
#ifndef COMMY_NATIVE_URING_H_
#define COMMY_NATIVE_URING_H_

#include <cstddef>
#include <cstdint>

namespace commy {

// True when this process can create a ring and the kernel supports FUTEX_WAIT on it.
// Probed once (thread-safe); the probe creates and closes one small ring.
bool FutexRingAvailable();

class FutexRing {
 public:
  FutexRing() = default;
  ~FutexRing();  // Close()
  FutexRing(const FutexRing&) = delete;
  FutexRing& operator=(const FutexRing&) = delete;

  // Creates the ring. Returns 0 or an errno.
  int Open(unsigned entries);
  // Closes the fd and unmaps the rings; the kernel cancels whatever is still queued.
  void Close();
  int fd() const { return fd_; }

  // Queues and submits a shared (not process-private) 32-bit FUTEX_WAIT on addr while it
  // equals `expected`. Returns 0 or an errno. The kernel computes the futex key at
  // submission: addr is not touched afterwards.
  int SubmitWait(const uint32_t* addr, uint32_t expected, uint64_t user_data);
  // Asks the kernel to cancel the request tagged `target`; its own completion is tagged
  // `user_data`. Returns 0 or an errno.
  int SubmitCancel(uint64_t target, uint64_t user_data);
  // Pops one completion. False when the queue is empty.
  bool Pop(uint64_t* user_data, int32_t* res);

 private:
  int Submit(uint8_t opcode, uint64_t addr, uint64_t addr2, uint64_t addr3, int32_t fd,
             uint64_t user_data);

  int fd_ = -1;
  void* sq_ring_ = nullptr;
  size_t sq_ring_size_ = 0;
  void* cq_ring_ = nullptr;
  size_t cq_ring_size_ = 0;
  void* sqes_ = nullptr;
  size_t sqes_size_ = 0;
  uint32_t* sq_head_ = nullptr;
  uint32_t* sq_tail_ = nullptr;
  uint32_t sq_mask_ = 0;
  uint32_t sq_entries_ = 0;
  uint32_t* sq_array_ = nullptr;
  uint32_t* cq_head_ = nullptr;
  uint32_t* cq_tail_ = nullptr;
  uint32_t cq_mask_ = 0;
  void* cqes_ = nullptr;
};

}  // namespace commy

#endif  // COMMY_NATIVE_URING_H_
