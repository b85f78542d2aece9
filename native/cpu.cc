#include "cpu.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <cstdint>
#endif

namespace commy {

namespace {

#if defined(__x86_64__) || defined(__i386__)
// xgetbv via inline asm, so no -mxsave target is needed. Only valid when OSXSAVE is set.
uint64_t ReadXcr0() {
  uint32_t eax = 0, edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}
#endif

CpuFeatures Detect() {
  CpuFeatures f;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  unsigned max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 1) return f;
  __cpuid(1, eax, ebx, ecx, edx);
  f.sse2 = (edx >> 26) & 1;
  const bool osxsave = (ecx >> 27) & 1;
  const bool avx = (ecx >> 28) & 1;
  uint64_t xcr0 = 0;
  if (osxsave) xcr0 = ReadXcr0();
  // XCR0: bit1 SSE (XMM), bit2 AVX (YMM upper), bit5 opmask, bit6 ZMM_Hi256, bit7 Hi16_ZMM.
  const bool os_ymm = osxsave && (xcr0 & 0x6) == 0x6;
  const bool os_zmm = osxsave && (xcr0 & 0xE6) == 0xE6;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    const bool avx2 = (ebx >> 5) & 1;
    const bool avx512f = (ebx >> 16) & 1;
    const bool avx512bw = (ebx >> 30) & 1;
    f.avx2 = avx && avx2 && os_ymm;
    f.avx512bw = avx512f && avx512bw && os_zmm;
  }
#elif defined(__aarch64__)
  f.neon = true;  // Advanced SIMD is mandatory on AArch64.
#endif
  return f;
}

}  // namespace

const CpuFeatures& DetectCpu() {
  static const CpuFeatures features = Detect();
  return features;
}

}  // namespace commy
