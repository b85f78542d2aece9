// x86 kernels. Each is compiled for its ISA with a function target attribute, so the
// rest of the addon stays baseline x86-64 and the dispatcher picks at run time.
#include "diff.h"

#if defined(COMMY_HAVE_X86_KERNELS)

#include <immintrin.h>

#include "diff_internal.h"

namespace commy {

// ---- SSE2: 64-byte blocks (4 x 16) --------------------------------------------------
__attribute__((target("sse2"))) void DiffSse2(const uint8_t* a, const uint8_t* b, size_t n,
                                              RangeSink& sink) {
  size_t i = 0;
  const __m128i zero = _mm_setzero_si128();
  for (; i + 64 <= n; i += 64) {
    const __m128i a0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i a1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 16));
    const __m128i a2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 32));
    const __m128i a3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i + 48));
    const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 16));
    const __m128i b2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 32));
    const __m128i b3 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i + 48));
    const __m128i x = _mm_or_si128(_mm_or_si128(_mm_xor_si128(a0, b0), _mm_xor_si128(a1, b1)),
                                   _mm_or_si128(_mm_xor_si128(a2, b2), _mm_xor_si128(a3, b3)));
    if (_mm_movemask_epi8(_mm_cmpeq_epi8(x, zero)) == 0xFFFF) continue;  // all equal
    const uint64_t e0 = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(a0, b0)));
    const uint64_t e1 = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(a1, b1)));
    const uint64_t e2 = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(a2, b2)));
    const uint64_t e3 = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(a3, b3)));
    const uint64_t eq = e0 | (e1 << 16) | (e2 << 32) | (e3 << 48);
    detail::EmitMask(~eq, i, sink);
  }
  for (; i + 16 <= n; i += 16) {
    const __m128i va = _mm_loadu_si128(reinterpret_cast<const __m128i*>(a + i));
    const __m128i vb = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    const uint32_t eq = static_cast<uint32_t>(_mm_movemask_epi8(_mm_cmpeq_epi8(va, vb)));
    if (eq != 0xFFFF) detail::EmitMask(~eq & 0xFFFFu, i, sink);
  }
  detail::ScalarFrom(a, b, i, n, sink);
}

// ---- AVX2: 128-byte blocks (4 x 32) -------------------------------------------------
__attribute__((target("avx2"))) void DiffAvx2(const uint8_t* a, const uint8_t* b, size_t n,
                                              RangeSink& sink) {
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    const __m256i a0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i a1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 32));
    const __m256i a2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 64));
    const __m256i a3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 96));
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 32));
    const __m256i b2 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 64));
    const __m256i b3 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i + 96));
    const __m256i x =
        _mm256_or_si256(_mm256_or_si256(_mm256_xor_si256(a0, b0), _mm256_xor_si256(a1, b1)),
                        _mm256_or_si256(_mm256_xor_si256(a2, b2), _mm256_xor_si256(a3, b3)));
    if (_mm256_testz_si256(x, x)) continue;  // all equal
    const uint64_t e0 = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a0, b0)));
    const uint64_t e1 = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a1, b1)));
    const uint64_t e2 = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a2, b2)));
    const uint64_t e3 = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(a3, b3)));
    detail::EmitMask(~(e0 | (e1 << 32)), i, sink);
    detail::EmitMask(~(e2 | (e3 << 32)), i + 64, sink);
  }
  for (; i + 32 <= n; i += 32) {
    const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    const uint32_t eq = static_cast<uint32_t>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(va, vb)));
    if (eq != 0xFFFFFFFFu) detail::EmitMask(static_cast<uint32_t>(~eq), i, sink);
  }
  detail::ScalarFrom(a, b, i, n, sink);
  _mm256_zeroupper();
}

// ---- AVX-512BW: 256-byte blocks (4 x 64), masked-load tail ---------------------------
__attribute__((target("avx512f,avx512bw"))) void DiffAvx512bw(const uint8_t* a,
                                                              const uint8_t* b, size_t n,
                                                              RangeSink& sink) {
  size_t i = 0;
  for (; i + 256 <= n; i += 256) {
    const __m512i a0 = _mm512_loadu_si512(a + i);
    const __m512i a1 = _mm512_loadu_si512(a + i + 64);
    const __m512i a2 = _mm512_loadu_si512(a + i + 128);
    const __m512i a3 = _mm512_loadu_si512(a + i + 192);
    const __m512i b0 = _mm512_loadu_si512(b + i);
    const __m512i b1 = _mm512_loadu_si512(b + i + 64);
    const __m512i b2 = _mm512_loadu_si512(b + i + 128);
    const __m512i b3 = _mm512_loadu_si512(b + i + 192);
    const __m512i x =
        _mm512_or_si512(_mm512_or_si512(_mm512_xor_si512(a0, b0), _mm512_xor_si512(a1, b1)),
                        _mm512_or_si512(_mm512_xor_si512(a2, b2), _mm512_xor_si512(a3, b3)));
    if (_mm512_test_epi8_mask(x, x) == 0) continue;  // all equal
    detail::EmitMask(_mm512_cmpneq_epi8_mask(a0, b0), i, sink);
    detail::EmitMask(_mm512_cmpneq_epi8_mask(a1, b1), i + 64, sink);
    detail::EmitMask(_mm512_cmpneq_epi8_mask(a2, b2), i + 128, sink);
    detail::EmitMask(_mm512_cmpneq_epi8_mask(a3, b3), i + 192, sink);
  }
  for (; i + 64 <= n; i += 64) {
    const __m512i va = _mm512_loadu_si512(a + i);
    const __m512i vb = _mm512_loadu_si512(b + i);
    const uint64_t m = _mm512_cmpneq_epi8_mask(va, vb);
    if (m != 0) detail::EmitMask(m, i, sink);
  }
  if (i < n) {
    // Masked loads never touch (or fault on) the bytes whose mask bit is clear.
    const __mmask64 k = (uint64_t{1} << (n - i)) - 1;  // n - i < 64
    const __m512i va = _mm512_maskz_loadu_epi8(k, a + i);
    const __m512i vb = _mm512_maskz_loadu_epi8(k, b + i);
    const uint64_t m = _mm512_mask_cmpneq_epi8_mask(k, va, vb);
    if (m != 0) detail::EmitMask(m, i, sink);
  }
  _mm256_zeroupper();
}

}  // namespace commy

#endif  // COMMY_HAVE_X86_KERNELS
