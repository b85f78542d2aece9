// AArch64 Advanced SIMD kernel. Compiled only on arm64 (NEON is mandatory there).
#include "diff.h"

#if defined(COMMY_HAVE_NEON_KERNEL)

#include <arm_neon.h>

#include "diff_internal.h"

namespace commy {

namespace {

// 0xFF/0x00 byte lanes -> 64-bit mask with one nibble (0xF or 0x0) per byte lane.
inline uint64_t NibbleMask(uint8x16_t v) {
  return vget_lane_u64(vreinterpret_u64_u8(vshrn_n_u16(vreinterpretq_u16_u8(v), 4)), 0);
}

// Like detail::EmitMask but with 4 bits per byte; `m` is a 16-byte block at `base`.
inline void EmitNibbles(uint64_t m, size_t base, RangeSink& sink) {
  while (m != 0) {
    const unsigned start = static_cast<unsigned>(__builtin_ctzll(m)) >> 2;
    const uint64_t zeros = ~m & (~uint64_t{0} << (start * 4));
    if (zeros == 0) {
      sink.Add(base + start, base + 16);
      return;
    }
    const unsigned end = static_cast<unsigned>(__builtin_ctzll(zeros)) >> 2;  // < 16
    sink.Add(base + start, base + end);
    m &= ~uint64_t{0} << (end * 4);
  }
}

}  // namespace

void DiffNeon(const uint8_t* a, const uint8_t* b, size_t n, RangeSink& sink) {
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const uint8x16_t a0 = vld1q_u8(a + i), b0 = vld1q_u8(b + i);
    const uint8x16_t a1 = vld1q_u8(a + i + 16), b1 = vld1q_u8(b + i + 16);
    const uint8x16_t a2 = vld1q_u8(a + i + 32), b2 = vld1q_u8(b + i + 32);
    const uint8x16_t a3 = vld1q_u8(a + i + 48), b3 = vld1q_u8(b + i + 48);
    const uint8x16_t x0 = veorq_u8(a0, b0), x1 = veorq_u8(a1, b1);
    const uint8x16_t x2 = veorq_u8(a2, b2), x3 = veorq_u8(a3, b3);
    const uint8x16_t x = vorrq_u8(vorrq_u8(x0, x1), vorrq_u8(x2, x3));
    if (vmaxvq_u8(x) == 0) continue;  // all equal
    // vtstq: 0xFF where the xor is non-zero, i.e. where the bytes differ.
    EmitNibbles(NibbleMask(vtstq_u8(x0, x0)), i, sink);
    EmitNibbles(NibbleMask(vtstq_u8(x1, x1)), i + 16, sink);
    EmitNibbles(NibbleMask(vtstq_u8(x2, x2)), i + 32, sink);
    EmitNibbles(NibbleMask(vtstq_u8(x3, x3)), i + 48, sink);
  }
  for (; i + 16 <= n; i += 16) {
    const uint8x16_t x = veorq_u8(vld1q_u8(a + i), vld1q_u8(b + i));
    const uint64_t m = NibbleMask(vtstq_u8(x, x));
    if (m != 0) EmitNibbles(m, i, sink);
  }
  detail::ScalarFrom(a, b, i, n, sink);
}

}  // namespace commy

#endif  // COMMY_HAVE_NEON_KERNEL
