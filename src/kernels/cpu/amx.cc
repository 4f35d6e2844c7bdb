// Prompt processing on AMX-INT8 (Intel Sapphire Rapids and later) over PackedWeight's
// kPackedLanePairs layout, for 16 tokens at a time.
//
// Per 32-block, one TDPBUSD multiplies a 16-row x 32 tile of unsigned weight bytes (Q4_0
// nibbles, Q8_0 w + 128, re-laid out from the packed 8-row groups: a qword transpose) by a
// 32 x 16-token tile of signed activation bytes, giving the 16 x 16 exact integer block
// dots. Then, per (row, token), exactly what the VNNI tiles do (matmul.cc, TilePairs):
//   p = dot + offset(token)                  (Q4_0: -8 * sum(x); Q8_0: -128 * sum(x))
//   acc = fma(cvt(p) * dw(row), dx(token), acc)
// block after block, so the results are bit-identical to the other paths (batch
// invariance), only the integer dot is computed by the tile unit. The float steps run on
// 16-token vectors, one per row.
//
// The functions carry their own target attribute (no file-wide flags, so no inline
// library code of this file is built for a CPU the binary may not run on); they run only
// when AmxUsable() says the CPU has AMX-INT8 and AVX-512 and the kernel granted the tile
// state (arch_prctl ARCH_REQ_XCOMP_PERM, Linux 5.16+).
#include "kernels/cpu/amx.h"

#include <atomic>
#include <cstring>
#include <type_traits>
#include <vector>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#define POCKET_AMX_COMPILED 1
#endif
#if defined(__GNUC__) && !defined(__clang__)
// GCC 12 flags the AVX-512 intrinsics' own _mm512_undefined_* operands in functions with a
// target attribute (false positives inside immintrin.h).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace pocket::kernels::cpu {

#if POCKET_AMX_COMPILED
namespace {

std::atomic<bool> g_amx_disabled{false};

bool DetectAmx() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool amx_tile = (d >> 24) & 1, amx_int8 = (d >> 25) & 1;
  if (!amx_tile || !amx_int8) return false;
  if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
      !__builtin_cpu_supports("avx512vl") || !__builtin_cpu_supports("avx512dq")) {
    return false;
  }
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

#define POCKET_AMX_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,f16c,fma,amx-tile,amx-int8")))

struct alignas(64) TileConfig {
  uint8_t palette_id = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

constexpr size_t kTokens = 16;     // tokens per tile (N)
constexpr size_t kBTileBytes = 8 * 64;  // K = 32: 8 rows of 16 tokens x 4 bytes

// Scratch per thread, grown as needed (the model's widest input, d_ff, sets the size).
struct Scratch {
  std::vector<uint8_t> b;       // [token tile][nb][kBTileBytes]: activations as B tiles
  std::vector<float> dx;        // [token tile][nb][16]: their block scales
  std::vector<int32_t> offset;  // [token tile][nb][16]: the weights' zero-point terms
  std::vector<uint8_t> a;       // [nb][16 * 32]: one 16-row tile's weights as A tiles
  std::vector<float> dw;        // [nb][16]: their block scales
};

// 4 x 64-byte vectors whose qword j belongs to row j -> rows 0..7 of 32 bytes each, row j
// = v0.q[j] v1.q[j] v2.q[j] v3.q[j].
POCKET_AMX_TARGET inline void TransposeQwords(__m512i v0, __m512i v1, __m512i v2, __m512i v3,
                                              uint8_t* out) {
  const __m512i pick = _mm512_setr_epi64(0, 1, 8, 9, 4, 5, 12, 13);
  for (int i = 0; i < 4; ++i) {
    const __m512i idx = _mm512_setr_epi64(2 * i, 8 + 2 * i, 0, 0, 2 * i + 1, 8 + 2 * i + 1, 0, 0);
    const __m512i a = _mm512_permutex2var_epi64(v0, idx, v1);
    const __m512i b = _mm512_permutex2var_epi64(v2, idx, v3);
    _mm512_store_si512(out + 64 * i, _mm512_permutex2var_epi64(a, pick, b));
  }
}

// Rows 0..7 of an A tile (32 unsigned bytes each, elements 0..31 in order) from one
// packed 8-row group's block.
template <bool kQ4>
POCKET_AMX_TARGET inline void GroupRows(const uint8_t* blk, uint8_t* out) {
  if constexpr (kQ4) {
    // Byte i of a row holds element i (low nibble) and i + 16 (high); the first vector
    // has bytes 0..7 of each row, the second bytes 8..15.
    const __m512i m = _mm512_set1_epi8(0x0F);
    const __m512i lo = _mm512_loadu_si512(blk + 16), hi = _mm512_loadu_si512(blk + 80);
    TransposeQwords(_mm512_and_si512(lo, m), _mm512_and_si512(hi, m),
                    _mm512_and_si512(_mm512_srli_epi16(lo, 4), m),
                    _mm512_and_si512(_mm512_srli_epi16(hi, 4), m), out);
  } else {
    TransposeQwords(_mm512_loadu_si512(blk + 16), _mm512_loadu_si512(blk + 80),
                    _mm512_loadu_si512(blk + 144), _mm512_loadu_si512(blk + 208), out);
  }
}

// One 16-row x 16-token tile's pass over the blocks; `acc` holds a row's 16 tokens per
// vector. Three blocks are in flight, each with its own C tile (0, 3, 6; the A and B tiles
// alternate between 1-2 and 4-5): the vector units scale and accumulate block b while the
// tile unit computes blocks b + 1 and b + 2, so a block's C tile has long been stored when
// it is read back.
struct RowTile {
  const uint8_t* a;    // [nb][16 * 32]
  const float* dw;     // [nb][16]
  const uint8_t* bt;   // [nb][kBTileBytes]
  const float* dx;     // [nb][16]
  const int32_t* off;  // [nb][16]
  int32_t (*c_tile)[16 * 16];
  __m512* acc;

  template <int kS>
  POCKET_AMX_TARGET inline __attribute__((always_inline)) void Issue(size_t b) {
    const uint8_t* at = a + b * 16 * 32;
    const uint8_t* bb = bt + b * kBTileBytes;
    // (The tile intrinsics take literal register numbers.)
    if constexpr (kS == 0) {
      _tile_loadd(1, at, 32);
      _tile_loadd(2, bb, 64);
      _tile_zero(0);
      _tile_dpbusd(0, 1, 2);
      _tile_stored(0, c_tile[0], 64);
    } else if constexpr (kS == 1) {
      _tile_loadd(4, at, 32);
      _tile_loadd(5, bb, 64);
      _tile_zero(3);
      _tile_dpbusd(3, 4, 5);
      _tile_stored(3, c_tile[1], 64);
    } else {
      _tile_loadd(1, at, 32);
      _tile_loadd(2, bb, 64);
      _tile_zero(6);
      _tile_dpbusd(6, 1, 2);
      _tile_stored(6, c_tile[2], 64);
    }
  }

  POCKET_AMX_TARGET inline __attribute__((always_inline)) void Post(int slot, size_t b) {
    const __m512i sv = _mm512_loadu_si512(off + b * kTokens);
    const __m512 d = _mm512_loadu_ps(dx + b * kTokens);
    const float* w = dw + b * 16;
    for (int m = 0; m < 16; ++m) {
      const __m512i p = _mm512_add_epi32(_mm512_load_si512(c_tile[slot] + 16 * m), sv);
      acc[m] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(p), _mm512_set1_ps(w[m])), d,
                               acc[m]);
    }
  }

  POCKET_AMX_TARGET void Run(size_t nb) {
    Issue<0>(0);
    if (nb > 1) Issue<1>(1);
    for (size_t b = 0; b < nb; b += 3) {
      if (b + 2 < nb) Issue<2>(b + 2);
      Post(0, b);
      if (b + 3 < nb) Issue<0>(b + 3);
      if (b + 1 < nb) Post(1, b + 1);
      if (b + 4 < nb) Issue<1>(b + 4);
      if (b + 2 < nb) Post(2, b + 2);
    }
  }
};

// acc[m] lane n -> out + n * stride + m for n, m < 16 (a 16 x 16 transpose in registers,
// then one contiguous store per token).
POCKET_AMX_TARGET inline void StoreTransposed(const __m512* acc, float* out, size_t stride) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(acc[i], acc[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(acc[i], acc[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    for (int j = 0; j < 2; ++j) {
      u[i + j] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + j]), _mm512_castps_pd(t[i + j + 2])));
      u[i + j + 2] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + j]), _mm512_castps_pd(t[i + j + 2])));
    }
  }
  for (int i = 0; i < 16; i += 8) {
    for (int j = 0; j < 4; ++j) {
      t[i + j] = _mm512_shuffle_f32x4(u[i + j], u[i + j + 4], 0x88);
      t[i + j + 4] = _mm512_shuffle_f32x4(u[i + j], u[i + j + 4], 0xDD);
    }
  }
  for (int j = 0; j < 8; ++j) {
    u[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
    u[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xDD);
  }
  // u[v]: the 16 rows of token kToken[v] (the unpacks interleave tokens 1 and 2 of each
  // group of 4).
  static constexpr int kToken[16] = {0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15};
  for (int v = 0; v < 16; ++v) _mm512_storeu_ps(out + kToken[v] * stride, u[v]);
}

// Loop order: 16-row tiles outside (their weights re-laid out once as A tiles, which then
// stay in L1/L2 for every token tile), token tiles inside (all tokens' activations re-laid
// out once per call as B tiles).
template <bool kQ4>
POCKET_AMX_TARGET void MatMulPairsAmxT(const uint8_t* packed, const Activations& act,
                                       size_t rows, size_t r0, size_t r1, size_t num_tokens,
                                       float* y) {
  constexpr size_t kPb = kQ4 ? kPackedQ4Bytes : kPackedQ8Bytes;
  const size_t cols = act.cols, nb = cols / 32, a_stride = act.stride_bytes;
  const size_t sum_off = cols + nb * sizeof(float);
  const size_t group_bytes = nb * kPb;
  const size_t num_tiles = num_tokens / kTokens;
  static thread_local Scratch scratch;
  if (scratch.b.size() < num_tiles * nb * kBTileBytes) {
    scratch.b.resize(num_tiles * nb * kBTileBytes);
    scratch.dx.resize(num_tiles * nb * kTokens);
    scratch.offset.resize(num_tiles * nb * kTokens);
  }
  if (scratch.a.size() < nb * 16 * 32 + 64) {
    scratch.a.resize(nb * 16 * 32 + 64);
    scratch.dw.resize(nb * 16);
  }
  // 64-byte aligned A tiles (GroupRows stores whole aligned vectors).
  const uintptr_t a_raw = reinterpret_cast<uintptr_t>(scratch.a.data());
  uint8_t* const a_all = scratch.a.data() + ((64 - a_raw % 64) % 64);
  float* const dw_all = scratch.dw.data();
  alignas(64) int32_t c_tile[3][16 * 16];

  TileConfig cfg;
  cfg.colsb[0] = 64;  // C: 16 rows x 16 int32
  cfg.rows[0] = 16;
  cfg.colsb[1] = 32;  // A: 16 rows x 32 u8
  cfg.rows[1] = 16;
  cfg.colsb[2] = 64;  // B: 8 rows (K / 4) x 16 tokens x 4 s8
  cfg.rows[2] = 8;
  for (int t = 3; t < 6; ++t) {  // C, A, B again for the second block in flight
    cfg.colsb[t] = cfg.colsb[t - 3];
    cfg.rows[t] = cfg.rows[t - 3];
  }
  cfg.colsb[6] = 64;  // the third block's C
  cfg.rows[6] = 16;
  _tile_loadconfig(&cfg);

  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i token_offsets =
      _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(a_stride)));
  const __m512i y_index = _mm512_mullo_epi32(lanes, _mm512_set1_epi32(static_cast<int32_t>(rows)));
  // Every token tile's activations as B tiles, block by block: row r = their dwords r.
  for (size_t tt = 0; tt < num_tiles; ++tt) {
    const uint8_t* a0 = act.q8 + tt * kTokens * a_stride;
    uint8_t* bt = scratch.b.data() + tt * nb * kBTileBytes;
    float* dx = scratch.dx.data() + tt * nb * kTokens;
    int32_t* off = scratch.offset.data() + tt * nb * kTokens;
    for (size_t b = 0; b < nb; ++b) {
      for (int r = 0; r < 8; ++r) {
        const __m512i v = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), 0xFFFF, token_offsets,
                                                         a0 + b * 32 + 4 * r, 1);
        _mm512_storeu_si512(bt + b * kBTileBytes + 64 * r, v);
      }
      const __m512 d = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), 0xFFFF, token_offsets,
                                                a0 + cols + 4 * b, 1);
      _mm512_storeu_ps(dx + b * kTokens, d);
      __m512i s = _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), 0xFFFF, token_offsets,
                                                a0 + sum_off + 4 * b, 1);
      if (!kQ4) s = _mm512_slli_epi32(s, 4);  // -8 * sum -> -128 * sum (w + 128)
      _mm512_storeu_si512(off + b * kTokens, s);
    }
  }
  for (size_t r = r0; r < r1; r += 16) {
    const uint8_t* g0 = packed + r / 8 * group_bytes;
    const uint8_t* g1 = r + 8 < r1 ? g0 + group_bytes : nullptr;
    for (size_t b = 0; b < nb; ++b) {
      uint8_t* at = a_all + b * 16 * 32;
      float* dw = dw_all + b * 16;
      GroupRows<kQ4>(g0 + b * kPb, at);
      _mm256_storeu_ps(dw, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(g0 + b * kPb))));
      if (g1 != nullptr) {
        GroupRows<kQ4>(g1 + b * kPb, at + 8 * 32);
        _mm256_storeu_ps(dw + 8, _mm256_cvtph_ps(
                                     _mm_loadu_si128(reinterpret_cast<const __m128i*>(g1 + b * kPb))));
      } else {
        std::memset(at + 8 * 32, 0, 8 * 32);
        _mm256_storeu_ps(dw + 8, _mm256_setzero_ps());
      }
    }
    const size_t valid = r1 - r < 16 ? r1 - r : 16;
    for (size_t tt = 0; tt < num_tiles; ++tt) {
      __m512 acc[16];
      for (int m = 0; m < 16; ++m) acc[m] = _mm512_setzero_ps();
      RowTile tile{a_all, dw_all, scratch.b.data() + tt * nb * kBTileBytes,
                   scratch.dx.data() + tt * nb * kTokens, scratch.offset.data() + tt * nb * kTokens,
                   c_tile, acc};
      tile.Run(nb);
      float* yt = y + tt * kTokens * rows + r;
      if (valid == 16) {
        StoreTransposed(acc, yt, rows);
      } else {
        for (size_t m = 0; m < valid; ++m) _mm512_i32scatter_ps(yt + m, y_index, acc[m], 4);
      }
    }
  }
  _tile_release();
}

}  // namespace

bool AmxUsable() {
  static const bool usable = DetectAmx();
  return usable && !g_amx_disabled.load(std::memory_order_relaxed);
}

void SetAmxDisabledForTest(bool disabled) { g_amx_disabled = disabled; }

void MatMulPairsAmx(bool q4, const uint8_t* packed, const Activations& act, size_t rows,
                    size_t r0, size_t r1, size_t num_tokens, float* y) {
  if (q4) {
    MatMulPairsAmxT<true>(packed, act, rows, r0, r1, num_tokens, y);
  } else {
    MatMulPairsAmxT<false>(packed, act, rows, r0, r1, num_tokens, y);
  }
}

#else  // no AMX in this build

bool AmxUsable() { return false; }
void SetAmxDisabledForTest(bool) {}
void MatMulPairsAmx(bool, const uint8_t*, const Activations&, size_t, size_t, size_t, size_t,
                    float*) {}

#endif

}  // namespace pocket::kernels::cpu
