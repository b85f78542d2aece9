#include "uring.h"

#include <cerrno>
#include <cstring>
#include <mutex>

#if defined(__linux__)
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace commy {

#if defined(__linux__) && defined(__NR_io_uring_setup) && defined(__NR_io_uring_enter)

namespace {

// Not in older kernel headers (they predate Linux 6.7): values from include/uapi.
constexpr uint8_t kOpFutexWait = 51;
constexpr uint8_t kOpAsyncCancel = 14;
constexpr int32_t kFutex2SizeU32 = 0x02;  // FUTEX2_SIZE_U32; no FUTEX2_PRIVATE: shared
constexpr uint64_t kFutexBitsetMatchAny = 0xffffffffull;

uint32_t LoadAcquire(const uint32_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
void StoreRelease(uint32_t* p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

bool Probe() {
  FutexRing ring;
  if (ring.Open(2) != 0) return false;
  // A wait whose expected value does not match completes at once: -EAGAIN when the
  // opcode is supported, -EINVAL when the kernel does not know it.
  uint32_t word = 1;
  if (ring.SubmitWait(&word, 0, 7) != 0) return false;
  // The completion of a mismatched wait is posted during submission.
  uint64_t tag = 0;
  int32_t res = 0;
  if (ring.Pop(&tag, &res)) return tag == 7 && res == -EAGAIN;
  return false;
}

}  // namespace

bool FutexRingAvailable() {
  static std::once_flag once;
  static bool available = false;
  std::call_once(once, [] { available = Probe(); });
  return available;
}

FutexRing::~FutexRing() { Close(); }

int FutexRing::Open(unsigned entries) {
  io_uring_params p;
  std::memset(&p, 0, sizeof p);
  const int fd = static_cast<int>(syscall(__NR_io_uring_setup, entries, &p));
  if (fd < 0) return errno;
  fd_ = fd;
  sq_ring_size_ = p.sq_off.array + p.sq_entries * sizeof(uint32_t);
  cq_ring_size_ = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  sqes_size_ = p.sq_entries * sizeof(io_uring_sqe);
  void* sq = mmap(nullptr, sq_ring_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                  IORING_OFF_SQ_RING);
  void* cq = mmap(nullptr, cq_ring_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                  IORING_OFF_CQ_RING);
  void* sqes = mmap(nullptr, sqes_size_, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd,
                    IORING_OFF_SQES);
  sq_ring_ = sq == MAP_FAILED ? nullptr : sq;
  cq_ring_ = cq == MAP_FAILED ? nullptr : cq;
  sqes_ = sqes == MAP_FAILED ? nullptr : sqes;
  if (!sq_ring_ || !cq_ring_ || !sqes_) {
    const int e = errno;
    Close();
    return e != 0 ? e : ENOMEM;
  }
  char* s = static_cast<char*>(sq_ring_);
  char* c = static_cast<char*>(cq_ring_);
  sq_head_ = reinterpret_cast<uint32_t*>(s + p.sq_off.head);
  sq_tail_ = reinterpret_cast<uint32_t*>(s + p.sq_off.tail);
  sq_mask_ = *reinterpret_cast<uint32_t*>(s + p.sq_off.ring_mask);
  sq_entries_ = p.sq_entries;
  sq_array_ = reinterpret_cast<uint32_t*>(s + p.sq_off.array);
  cq_head_ = reinterpret_cast<uint32_t*>(c + p.cq_off.head);
  cq_tail_ = reinterpret_cast<uint32_t*>(c + p.cq_off.tail);
  cq_mask_ = *reinterpret_cast<uint32_t*>(c + p.cq_off.ring_mask);
  cqes_ = c + p.cq_off.cqes;
  return 0;
}

void FutexRing::Close() {
  if (sqes_) munmap(sqes_, sqes_size_);
  if (cq_ring_) munmap(cq_ring_, cq_ring_size_);
  if (sq_ring_) munmap(sq_ring_, sq_ring_size_);
  sqes_ = cq_ring_ = sq_ring_ = nullptr;
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

int FutexRing::Submit(uint8_t opcode, uint64_t addr, uint64_t addr2, uint64_t addr3, int32_t fd,
                      uint64_t user_data) {
  if (fd_ < 0) return EBADF;
  const uint32_t tail = *sq_tail_;  // only this thread writes the tail
  if (tail - LoadAcquire(sq_head_) >= sq_entries_) return EBUSY;
  const uint32_t index = tail & sq_mask_;
  io_uring_sqe* sqe = static_cast<io_uring_sqe*>(sqes_) + index;
  std::memset(sqe, 0, sizeof *sqe);
  sqe->opcode = opcode;
  sqe->fd = fd;
  sqe->addr = addr;
  sqe->off = addr2;  // `addr2` shares this union
  sqe->addr3 = addr3;
  sqe->user_data = user_data;
  sq_array_[index] = index;
  StoreRelease(sq_tail_, tail + 1);
  for (;;) {
    const long r = syscall(__NR_io_uring_enter, fd_, 1, 0, 0u, nullptr, 0);
    if (r >= 0) return r == 1 ? 0 : EAGAIN;
    if (errno != EINTR) return errno;
  }
}

int FutexRing::SubmitWait(const uint32_t* addr, uint32_t expected, uint64_t user_data) {
  return Submit(kOpFutexWait, reinterpret_cast<uint64_t>(addr), expected, kFutexBitsetMatchAny,
                kFutex2SizeU32, user_data);
}

int FutexRing::SubmitCancel(uint64_t target, uint64_t user_data) {
  return Submit(kOpAsyncCancel, target, 0, 0, 0, user_data);
}

bool FutexRing::Pop(uint64_t* user_data, int32_t* res) {
  if (fd_ < 0) return false;
  const uint32_t head = *cq_head_;
  if (head == LoadAcquire(cq_tail_)) return false;
  const io_uring_cqe* cqe = static_cast<const io_uring_cqe*>(cqes_) + (head & cq_mask_);
  *user_data = cqe->user_data;
  *res = cqe->res;
  StoreRelease(cq_head_, head + 1);
  return true;
}

#else  // no io_uring: the thread waiter is used

bool FutexRingAvailable() { return false; }
FutexRing::~FutexRing() {}
int FutexRing::Open(unsigned) { return ENOSYS; }
void FutexRing::Close() {}
int FutexRing::Submit(uint8_t, uint64_t, uint64_t, uint64_t, int32_t, uint64_t) { return ENOSYS; }
int FutexRing::SubmitWait(const uint32_t*, uint32_t, uint64_t) { return ENOSYS; }
int FutexRing::SubmitCancel(uint64_t, uint64_t) { return ENOSYS; }
bool FutexRing::Pop(uint64_t*, int32_t*) { return false; }

#endif

}  // namespace commy
