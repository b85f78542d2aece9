// A memory-mapped file shared between the JS thread, the ArrayBuffer finalizer, waiter
// threads and lock threads through std::shared_ptr. Pure C++ (no Node-API), so it can be
// exercised under ASan by native/test/core_test.cc.
//
// Lifetime: munmap + close(fd) happen exactly once. close(fd) happens in Close() (which
// also drops flock locks). munmap happens in Close() if the caller allows it and no thread
// has the memory pinned (is inside a futex call on it); otherwise when the last pin is
// dropped after Close(), or at destruction (when the last shared_ptr holder goes).
#ifndef COMMY_NATIVE_MAPPING_H_
#define COMMY_NATIVE_MAPPING_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

namespace commy {

class MappedFile {
 public:
  struct OpenError {
    int err = 0;                  // errno, when syscall is set
    const char* syscall = nullptr;
    bool too_short = false;       // file smaller than the requested length
    bool not_regular = false;     // not a regular file (FIFO, socket, device, ...)
    uint64_t file_size = 0;
  };
  // Returned by Flock() when the mapping is closed.
  static constexpr int kClosed = -1;

  // Opens `path` (never creates) and maps its first `length` (>= 1) bytes MAP_SHARED.
  static std::shared_ptr<MappedFile> Open(const std::string& path, bool writable,
                                          uint64_t length, OpenError* error);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  uint8_t* data() const { return data_; }
  size_t length() const { return length_; }
  bool writable() const { return writable_; }
  const std::string& path() const { return path_; }
  bool closed() const { return closed_.load(std::memory_order_acquire); }

  // --- operations; each returns 0 or an errno (Flock may also return kClosed) ---
  int FileSize(uint64_t* size) const;
  int Sync(size_t offset, size_t len);  // msync(MS_SYNC), page-rounded, clamped to mapping
  int Flock(int operation);             // flock(2) on our fd; EINTR retried; under the lock
  // FUTEX_WAKE (shared) on the word at offset (caller validated). Returns woken or -errno.
  long Wake(size_t offset, int count);

  // Keeps the memory mapped while a syscall uses it. Pin() fails once released;
  // BeginWait() also fails once closed (used before starting a new FUTEX_WAIT).
  bool Pin();
  bool BeginWait();
  void Unpin();

  // Marks closed, closes the fd, wakes lock sleepers; releases the memory now if
  // allow_release_memory and nothing is pinned. Idempotent.
  void Close(bool allow_release_memory);

  // Lock threads: sleeps up to ns; returns early (true) if closed or *cancel is set.
  bool SleepFor(int64_t ns, const std::atomic<bool>* cancel);
  void NotifySleepers();

 private:
  MappedFile() = default;
  void ReleaseMemoryLocked();

  mutable std::mutex mu_;
  std::condition_variable cv_;
  int fd_ = -1;
  uint8_t* data_ = nullptr;
  size_t length_ = 0;
  bool writable_ = false;
  std::string path_;
  std::atomic<bool> closed_{false};
  bool released_ = false;
  bool release_on_unpin_ = false;
  int pins_ = 0;
};

}  // namespace commy

#endif  // COMMY_NATIVE_MAPPING_H_
