// CPU feature detection (cpuid + xgetbv on x86, always-on NEON on arm64). Pure C++.
#ifndef COMMY_NATIVE_CPU_H_
#define COMMY_NATIVE_CPU_H_

namespace commy {

struct CpuFeatures {
  bool sse2 = false;
  bool avx2 = false;      // CPU has AVX2 and the OS saves YMM state (XCR0 bits 1,2)
  bool avx512bw = false;  // CPU has AVX512F+BW and the OS saves opmask/ZMM state (XCR0 5,6,7)
  bool neon = false;
};

// Detected once, on first call (thread-safe static initialisation).
const CpuFeatures& DetectCpu();

}  // namespace commy

#endif  // COMMY_NATIVE_CPU_H_
