#include "diff.h"

#include <cstring>

#include "cpu.h"
#include "diff_internal.h"

namespace commy {

namespace {

const char* const kNames[kKernelCount] = {"avx512bw", "avx2", "sse2", "neon", "scalar"};

std::vector<Kernel> ComputeAvailable() {
  const CpuFeatures& cpu = DetectCpu();
  std::vector<Kernel> list;
#if defined(COMMY_HAVE_X86_KERNELS)
  // AVX2 before AVX-512BW: the compare is load-bound, so 512-bit vectors buy no bandwidth,
  // and measured on an AMD EPYC (npm run bench -- diff) the avx512bw kernel ran ~45% slower
  // on 16 MiB and no faster below. glibc's memcmp makes the same choice (256-bit vectors on
  // AVX-512 machines). avx512bw stays selectable (COMMY_SIMD_KERNEL, setKernel).
  if (cpu.avx2) list.push_back(Kernel::kAvx2);
  if (cpu.avx512bw) list.push_back(Kernel::kAvx512bw);
  if (cpu.sse2) list.push_back(Kernel::kSse2);
#endif
#if defined(COMMY_HAVE_NEON_KERNEL)
  if (cpu.neon) list.push_back(Kernel::kNeon);
#endif
  (void)cpu;
  list.push_back(Kernel::kScalar);
  return list;
}

KernelFn FunctionFor(Kernel k) {
  switch (k) {
#if defined(COMMY_HAVE_X86_KERNELS)
    case Kernel::kAvx512bw:
      return DiffAvx512bw;
    case Kernel::kAvx2:
      return DiffAvx2;
    case Kernel::kSse2:
      return DiffSse2;
#endif
#if defined(COMMY_HAVE_NEON_KERNEL)
    case Kernel::kNeon:
      return DiffNeon;
#endif
    default:
      return DiffScalar;
  }
}

}  // namespace

const char* KernelName(Kernel k) {
  const int i = static_cast<int>(k);
  return (i >= 0 && i < kKernelCount) ? kNames[i] : "scalar";
}

bool ParseKernel(const char* name, size_t len, Kernel* out) {
  for (int i = 0; i < kKernelCount; i++) {
    if (std::strlen(kNames[i]) == len && std::memcmp(kNames[i], name, len) == 0) {
      *out = static_cast<Kernel>(i);
      return true;
    }
  }
  return false;
}

const std::vector<Kernel>& AvailableKernels() {
  static const std::vector<Kernel> list = ComputeAvailable();
  return list;
}

bool KernelAvailable(Kernel k) {
  for (Kernel a : AvailableKernels()) {
    if (a == k) return true;
  }
  return false;
}

Kernel BestKernel() { return AvailableKernels().front(); }

void DiffScalar(const uint8_t* a, const uint8_t* b, size_t n, RangeSink& sink) {
  detail::ScalarFrom(a, b, 0, n, sink);
}

void Diff(Kernel k, const uint8_t* a, const uint8_t* b, size_t n, std::vector<double>* out) {
  RangeSink sink(out);
  if (n != 0) {
    KernelFn fn = KernelAvailable(k) ? FunctionFor(k) : DiffScalar;
    fn(a, b, n, sink);
  }
  sink.Finish();
}

}  // namespace commy
