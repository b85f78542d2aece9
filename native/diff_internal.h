// Helpers shared by the kernels (internal to diff*.cc).
#ifndef COMMY_NATIVE_DIFF_INTERNAL_H_
#define COMMY_NATIVE_DIFF_INTERNAL_H_

#include <cstring>

#include "diff.h"

namespace commy {
namespace detail {

// Turns a bitmask of differing bytes (bit i = byte base+i differs) into runs.
// Works for any mask width <= 64: bits above the width are zero in `m`, so the first
// zero bit above a run is found at the latest at the width. A run that reaches the top
// of the block is left open in the sink and merges with one starting the next block.
inline void EmitMask(uint64_t m, size_t base, RangeSink& sink) {
  while (m != 0) {
    const unsigned start = static_cast<unsigned>(__builtin_ctzll(m));
    const uint64_t zeros = ~m & (~uint64_t{0} << start);
    if (zeros == 0) {
      sink.Add(base + start, base + 64);
      return;
    }
    const unsigned end = static_cast<unsigned>(__builtin_ctzll(zeros));  // end < 64
    sink.Add(base + start, base + end);
    m &= ~uint64_t{0} << end;
  }
}

// Unaligned little-endian 8-byte load (memcpy compiles to a single mov).
inline uint64_t Load64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

// Bit i of the result is set iff byte i (little-endian order) of x is non-zero.
inline uint32_t ByteMask(uint64_t x) {
  x |= x >> 4;
  x |= x >> 2;
  x |= x >> 1;
  x &= 0x0101010101010101ULL;
  // Moves bit 8i to bit 56+i; the partial products never overlap, so no carries.
  return static_cast<uint32_t>((x * 0x0102040810204080ULL) >> 56);
}

// Scalar comparison of [i, n): 32-byte blocks of four u64 xors OR-ed together for the
// equal fast path, then 8-byte words, then single bytes. Also used for kernel tails.
inline void ScalarFrom(const uint8_t* a, const uint8_t* b, size_t i, size_t n,
                       RangeSink& sink) {
  for (; i + 32 <= n; i += 32) {
    const uint64_t x0 = Load64(a + i) ^ Load64(b + i);
    const uint64_t x1 = Load64(a + i + 8) ^ Load64(b + i + 8);
    const uint64_t x2 = Load64(a + i + 16) ^ Load64(b + i + 16);
    const uint64_t x3 = Load64(a + i + 24) ^ Load64(b + i + 24);
    if ((x0 | x1 | x2 | x3) == 0) continue;
    const uint64_t m = static_cast<uint64_t>(ByteMask(x0)) |
                       (static_cast<uint64_t>(ByteMask(x1)) << 8) |
                       (static_cast<uint64_t>(ByteMask(x2)) << 16) |
                       (static_cast<uint64_t>(ByteMask(x3)) << 24);
    EmitMask(m, i, sink);
  }
  for (; i + 8 <= n; i += 8) {
    const uint64_t x = Load64(a + i) ^ Load64(b + i);
    if (x != 0) EmitMask(ByteMask(x), i, sink);
  }
  for (; i < n; i++) {
    if (a[i] != b[i]) sink.Add(i, i + 1);
  }
}

}  // namespace detail
}  // namespace commy

#endif  // COMMY_NATIVE_DIFF_INTERNAL_H_
