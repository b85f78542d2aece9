// Standalone (no Node) test of every available diff kernel against a naive byte-by-byte
// oracle. Built and run under ASan/UBSan by scripts/native-asan.sh. Each input lives in
// its own exact-size heap allocation that ENDS at the last byte of the view, so any
// over-read past the end is reported by ASan.
//
//   diff_test            run the randomized tests (exit 1 on any mismatch)
//   diff_test --bench    throughput on an unchanged 1 MiB buffer, per kernel vs memcmp
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../diff.h"

using commy::Kernel;

namespace {

std::vector<double> Oracle(const uint8_t* a, const uint8_t* b, size_t n) {
  std::vector<double> out;
  size_t i = 0;
  while (i < n) {
    if (a[i] == b[i]) {
      i++;
      continue;
    }
    size_t j = i;
    while (j < n && a[j] != b[j]) j++;
    out.push_back(static_cast<double>(i));
    out.push_back(static_cast<double>(j));
    i = j;
  }
  return out;
}

// A view of n bytes at misalignment `off` whose allocation ends exactly at the view's end.
struct Buf {
  uint8_t* base = nullptr;
  uint8_t* p = nullptr;
  Buf(size_t n, size_t off) {
    base = static_cast<uint8_t*>(std::malloc(n + off == 0 ? 1 : n + off));
    p = base + off;
  }
  ~Buf() { std::free(base); }
  Buf(const Buf&) = delete;
  Buf& operator=(const Buf&) = delete;
};

std::mt19937_64 rng(0xC0FFEE);
size_t Rand(size_t lo, size_t hi) {  // inclusive
  return lo + static_cast<size_t>(rng() % (hi - lo + 1));
}

int failures = 0;
long checks = 0;

void Check(const char* what, const uint8_t* a, const uint8_t* b, size_t n, size_t oa,
           size_t ob) {
  const std::vector<double> want = Oracle(a, b, n);
  for (Kernel k : commy::AvailableKernels()) {
    std::vector<double> got;
    commy::Diff(k, a, b, n, &got);
    checks++;
    if (got != want) {
      failures++;
      if (failures <= 20) {
        std::fprintf(stderr,
                     "FAIL kernel=%s pattern=%s n=%zu offA=%zu offB=%zu: got %zu values, "
                     "want %zu\n",
                     commy::KernelName(k), what, n, oa, ob, got.size(), want.size());
        for (size_t i = 0; i < got.size() || i < want.size(); i += 2) {
          if (i >= got.size() || i >= want.size() || got[i] != want[i] ||
              got[i + 1] != want[i + 1]) {
            std::fprintf(stderr, "  first difference at pair %zu: got [%g,%g) want [%g,%g)\n",
                         i / 2, i < got.size() ? got[i] : -1, i < got.size() ? got[i + 1] : -1,
                         i < want.size() ? want[i] : -1, i < want.size() ? want[i + 1] : -1);
            break;
          }
        }
      }
    }
  }
}

enum Pattern { kNone, kSingles, kRuns, kHalf, kAll, kEdges, kPatternCount };
const char* kPatternNames[] = {"none", "singles", "runs", "half", "all", "edges"};

void OneCase(size_t n, Pattern pat) {
  const size_t oa = Rand(0, 63), ob = Rand(0, 63);
  Buf A(n, oa), B(n, ob);
  for (size_t i = 0; i < n; i++) A.p[i] = static_cast<uint8_t>(rng());
  if (n) std::memcpy(B.p, A.p, n);
  auto flip = [&](size_t i) { B.p[i] = static_cast<uint8_t>(A.p[i] ^ (1 + rng() % 255)); };
  switch (pat) {
    case kNone:
      break;
    case kSingles: {
      const size_t count = n ? Rand(1, 1 + n / 64) : 0;
      for (size_t c = 0; c < count; c++) flip(Rand(0, n - 1));
      break;
    }
    case kRuns: {
      const size_t count = n ? Rand(1, 1 + n / 512) : 0;
      for (size_t c = 0; c < count; c++) {
        const size_t s = Rand(0, n - 1);
        const size_t len = Rand(1, 300);
        for (size_t i = s; i < n && i < s + len; i++) flip(i);
      }
      break;
    }
    case kHalf:
      for (size_t i = 0; i < n; i++)
        if (rng() & 1) flip(i);
      break;
    case kAll:
      for (size_t i = 0; i < n; i++) flip(i);
      break;
    case kEdges:
      // Bytes around every 16/32/64/128/256-byte block boundary, first and last byte.
      for (size_t i = 0; i < n; i++) {
        const size_t r = i % 64;
        if (r == 0 || r == 63 || (i % 256) == 255 || (i % 256) == 0 || i == n - 1) flip(i);
      }
      break;
    default:
      break;
  }
  Check(kPatternNames[pat], A.p, B.p, n, oa, ob);
}

void EdgeMaskCases() {
  // Runs ending exactly at / starting exactly at block boundaries of each kernel.
  const size_t sizes[] = {64, 128, 256, 512, 1024};
  for (size_t n : sizes) {
    for (size_t s = 0; s < n; s += 7) {
      for (size_t len : {size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{63},
                         size_t{64}, size_t{65}, size_t{200}}) {
        Buf A(n, 0), B(n, 1);
        std::memset(A.p, 0x5A, n);
        std::memset(B.p, 0x5A, n);
        for (size_t i = s; i < n && i < s + len; i++) B.p[i] = 0xA5;
        Check("edge-runs", A.p, B.p, n, 0, 1);
      }
    }
  }
}

void RunTests() {
  std::printf("kernels:");
  for (Kernel k : commy::AvailableKernels()) std::printf(" %s", commy::KernelName(k));
  std::printf("\n");
  // Every small length exhaustively (covers all tail sizes of every kernel).
  for (size_t n = 0; n <= 600; n++)
    for (int p = 0; p < kPatternCount; p++) OneCase(n, static_cast<Pattern>(p));
  // Random medium lengths.
  for (int it = 0; it < 300; it++) {
    OneCase(Rand(600, 70000), static_cast<Pattern>(it % kPatternCount));
  }
  // Large lengths up to ~1.1 MiB.
  for (int it = 0; it < 18; it++) {
    OneCase(Rand(1 << 20, (1 << 20) + (1 << 17)), static_cast<Pattern>(it % kPatternCount));
  }
  EdgeMaskCases();
  // Parse / names.
  Kernel k;
  if (!commy::ParseKernel("avx2", 4, &k) || k != Kernel::kAvx2) failures++;
  if (commy::ParseKernel("avx", 3, &k)) failures++;
  if (commy::ParseKernel("scalarx", 7, &k)) failures++;
  if (commy::AvailableKernels().back() != Kernel::kScalar) failures++;
  std::printf("%ld kernel checks, %d failures\n", checks, failures);
  std::printf("%ld passed, %d failed\n", checks - failures, failures);
}

void Bench() {
  const size_t n = 1 << 20;
  std::vector<uint8_t> a(n + 64), b(n + 64);
  for (size_t i = 0; i < a.size(); i++) a[i] = b[i] = static_cast<uint8_t>(i * 131);
  const int reps = 4000;
  auto run = [&](const char* name, auto&& fn) {
    fn();  // warm up
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < reps; r++) fn();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-9s %8.2f GB/s (%.1f us per MiB)\n", name, (double)n * reps / s / 1e9,
                s / reps * 1e6);
  };
  volatile int sink = 0;
  for (size_t off : {size_t{0}, size_t{1}}) {
    std::printf("-- offsets a+%zu, b+%zu\n", off, off * 3);
    const uint8_t* pa = a.data() + off;
    const uint8_t* pb = b.data() + off * 3;
    std::memcpy(b.data() + off * 3, a.data() + off, n);  // unchanged content
    run("memcmp", [&] {
      __asm__ volatile("" : "+r"(pa), "+r"(pb));  // defeat hoisting of the pure call
      sink = sink + std::memcmp(pa, pb, n);
    });
    for (Kernel k : commy::AvailableKernels()) {
      std::vector<double> out;
      run(commy::KernelName(k), [&] {
        out.clear();
        commy::Diff(k, pa, pb, n, &out);
      });
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "--bench") {
    Bench();
    return 0;
  }
  RunTests();
  return failures == 0 ? 0 : 1;
}
