// Change detection kernels: pure C++, no Node-API, so they can be unit tested standalone
// (native/test/diff_test.cc) under ASan/UBSan.
//
// A kernel compares two equal-length byte ranges and reports the changed bytes as merged,
// byte-exact half-open ranges [start, end) relative to the start of the inputs.
#ifndef COMMY_NATIVE_DIFF_H_
#define COMMY_NATIVE_DIFF_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace commy {

enum class Kernel : int { kAvx512bw = 0, kAvx2 = 1, kSse2 = 2, kNeon = 3, kScalar = 4 };
constexpr int kKernelCount = 5;

// Collects ranges, merging a range that starts exactly where the previous one ended
// (this is how a run left open at a block boundary continues into the next block).
// Offsets are stored as doubles because the JS side receives a Float64Array; every
// offset is < 2^53 (inputs are views of ArrayBuffers), so the values are exact.
class RangeSink {
 public:
  explicit RangeSink(std::vector<double>* out) : out_(out) {}
  inline void Add(size_t start, size_t end) {
    if (open_) {
      if (start == end_) {
        end_ = end;
        return;
      }
      Flush();
    }
    start_ = start;
    end_ = end;
    open_ = true;
  }
  inline void Finish() {
    if (open_) {
      Flush();
      open_ = false;
    }
  }

 private:
  inline void Flush() {
    out_->push_back(static_cast<double>(start_));
    out_->push_back(static_cast<double>(end_));
  }
  std::vector<double>* out_;
  size_t start_ = 0;
  size_t end_ = 0;
  bool open_ = false;
};

using KernelFn = void (*)(const uint8_t* a, const uint8_t* b, size_t n, RangeSink& sink);

// "avx512bw", "avx2", "sse2", "neon", "scalar".
const char* KernelName(Kernel k);
// Parses a kernel name (exact, case-sensitive). Returns false for unknown names.
bool ParseKernel(const char* name, size_t len, Kernel* out);
// True if the kernel is compiled into this build AND the CPU/OS can run it.
bool KernelAvailable(Kernel k);
// Usable kernels, best first; always ends with kScalar. Computed once (thread-safe).
const std::vector<Kernel>& AvailableKernels();
// Best usable kernel.
Kernel BestKernel();

// Appends the changed ranges of a[0..n) vs b[0..n) to *out as [start, end) pairs.
// The kernel must be available (caller checks KernelAvailable); an unavailable kernel
// falls back to scalar rather than executing unsupported instructions.
void Diff(Kernel k, const uint8_t* a, const uint8_t* b, size_t n, std::vector<double>* out);

// Individual kernels (exposed for tests). Each returns without calling Finish().
void DiffScalar(const uint8_t* a, const uint8_t* b, size_t n, RangeSink& sink);
#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__)
#define COMMY_HAVE_X86_KERNELS 1
void DiffSse2(const uint8_t* a, const uint8_t* b, size_t n, RangeSink& sink);
void DiffAvx2(const uint8_t* a, const uint8_t* b, size_t n, RangeSink& sink);
void DiffAvx512bw(const uint8_t* a, const uint8_t* b, size_t n, RangeSink& sink);
#endif
#if defined(__aarch64__)
#define COMMY_HAVE_NEON_KERNEL 1
void DiffNeon(const uint8_t* a, const uint8_t* b, size_t n, RangeSink& sink);
#endif

}  // namespace commy

#endif  // COMMY_NATIVE_DIFF_H_
