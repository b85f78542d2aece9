#include "mapping.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "futex.h"

namespace commy {

std::shared_ptr<MappedFile> MappedFile::Open(const std::string& path, bool writable,
                                             uint64_t length, OpenError* error) {
  *error = OpenError();
  // O_NONBLOCK: opening a FIFO for reading must not hang the JS thread. It has no effect
  // on regular files (we never read/write through the fd anyway).
  const int flags = (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  int fd;
  do {
    fd = ::open(path.c_str(), flags);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    error->err = errno;
    error->syscall = "open";
    return nullptr;
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    error->err = errno;
    error->syscall = "fstat";
    ::close(fd);
    return nullptr;
  }
  if (S_ISDIR(st.st_mode)) {
    error->err = EISDIR;
    error->syscall = "open";
    ::close(fd);
    return nullptr;
  }
  if (!S_ISREG(st.st_mode)) {
    error->not_regular = true;
    ::close(fd);
    return nullptr;
  }
  error->file_size = static_cast<uint64_t>(st.st_size);
  if (length == 0 || length > static_cast<uint64_t>(st.st_size) ||
      length > static_cast<uint64_t>(SIZE_MAX)) {
    error->too_short = true;
    ::close(fd);
    return nullptr;
  }
  // Read-only: the fd is O_RDONLY so the file cannot change through us, but the pages are
  // MAP_PRIVATE + PROT_WRITE so a stray JS store lands in a private copy-on-write page instead of
  // killing the process with SIGSEGV. Unwritten private pages keep showing the file's page cache.
  // Cost: futexes on a private mapping are process-local (read-only watchers poll instead).
  const int prot = PROT_READ | PROT_WRITE;
  const int map_flags = writable ? MAP_SHARED : MAP_PRIVATE;
  void* addr = ::mmap(nullptr, static_cast<size_t>(length), prot, map_flags, fd, 0);
  if (addr == MAP_FAILED) {
    error->err = errno;
    error->syscall = "mmap";
    ::close(fd);
    return nullptr;
  }
  std::shared_ptr<MappedFile> m(new MappedFile());
  m->fd_ = fd;
  m->data_ = static_cast<uint8_t*>(addr);
  m->length_ = static_cast<size_t>(length);
  m->writable_ = writable;
  m->path_ = path;
  return m;
}

MappedFile::~MappedFile() {
  // Last holder gone: nothing can be pinned any more.
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!released_ && data_ != nullptr) ::munmap(data_, length_);
  released_ = true;
}

int MappedFile::FileSize(uint64_t* size) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return EBADF;
  struct stat st;
  if (::fstat(fd_, &st) != 0) return errno;
  *size = static_cast<uint64_t>(st.st_size);
  return 0;
}

int MappedFile::Sync(size_t offset, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (released_) return EBADF;
  if (offset > length_) offset = length_;
  if (len > length_ - offset) len = length_ - offset;
  if (len == 0) return 0;
  const long page_raw = ::sysconf(_SC_PAGESIZE);
  const size_t page = page_raw > 0 ? static_cast<size_t>(page_raw) : 4096;
  const size_t start = offset - (offset % page);  // data_ itself is page aligned
  const size_t end = offset + len;
  if (::msync(data_ + start, end - start, MS_SYNC) != 0) return errno;
  return 0;
}

int MappedFile::Flock(int operation) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_.load(std::memory_order_relaxed) || fd_ < 0) return kClosed;
  for (;;) {
    if (::flock(fd_, operation) == 0) return 0;
    if (errno != EINTR) return errno;
  }
}

long MappedFile::Wake(size_t offset, int count) {
  if (!Pin()) return -EBADF;
  const long r = FutexWake(reinterpret_cast<const uint32_t*>(data_ + offset), count);
  Unpin();
  return r;
}

bool MappedFile::Pin() {
  std::lock_guard<std::mutex> lock(mu_);
  if (released_) return false;
  pins_++;
  return true;
}

bool MappedFile::BeginWait() {
  std::lock_guard<std::mutex> lock(mu_);
  if (released_ || closed_.load(std::memory_order_relaxed)) return false;
  pins_++;
  return true;
}

void MappedFile::Unpin() {
  std::lock_guard<std::mutex> lock(mu_);
  pins_--;
  if (pins_ == 0 && release_on_unpin_) ReleaseMemoryLocked();
}

void MappedFile::Close(bool allow_release_memory) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_.store(true, std::memory_order_release);
    if (fd_ >= 0) {
      ::close(fd_);  // also drops any flock held through this open file description
      fd_ = -1;
    }
    if (allow_release_memory) {
      if (pins_ == 0) {
        ReleaseMemoryLocked();
      } else {
        release_on_unpin_ = true;
      }
    }
  }
  cv_.notify_all();
}

void MappedFile::ReleaseMemoryLocked() {
  if (released_) return;
  released_ = true;
  release_on_unpin_ = false;
  ::munmap(data_, length_);
}

bool MappedFile::SleepFor(int64_t ns, const std::atomic<bool>* cancel) {
  std::unique_lock<std::mutex> lock(mu_);
  auto stop = [&] {
    return closed_.load(std::memory_order_relaxed) ||
           (cancel != nullptr && cancel->load(std::memory_order_acquire));
  };
  cv_.wait_for(lock, std::chrono::nanoseconds(ns), stop);
  return stop();
}

void MappedFile::NotifySleepers() {
  { std::lock_guard<std::mutex> lock(mu_); }
  cv_.notify_all();
}

}  // namespace commy
