// Reference-path MatMul bodies (see matmul_dequant.h), compiled once per Highway target.
// A weight row is decoded to f32 once into a thread-local buffer and dotted with each
// token's f32 activation: eight vector FMA chains over the row, combined in a fixed order,
// then the lanes summed. The decoder here is a vector version of tensor::DequantizeRow for
// these types with the same float operations per element (one multiply of the scale by the
// codebook value, an exact negation for a sign bit; IQ1: value + delta, then one multiply),
// so it gives the same bits (matmul_dequant_test.cc); it is ~10x faster than the scalar
// loops, which branch per element. Decoding still dominates at decode time (one token per
// decoded row): docs/formats.md quotes the measured cost against Q4_0.
#include <cstring>
#include <vector>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/matmul_dequant.cc"
#include "kernels/cpu/hwy_targets.h"  // IWYU pragma: keep
#include "hwy/foreach_target.h"       // IWYU pragma: keep
#include "base/check.h"
#include "hwy/highway.h"
#include "kernels/cpu/matmul_dequant.h"
#include "tensor/dtype.h"
#include "tensor/fp16.h"
#include "tensor/iq_grids.h"
#include "tensor/quant.h"

HWY_BEFORE_NAMESPACE();
namespace pocket::kernels::cpu {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// sum_i w[i] * x[i]: eight independent FMA chains (an FMA's latency is 4 cycles and two
// issue per cycle: fewer chains left the dot at a third of the decode time) over whole
// groups of 8 vectors, then the remaining vectors on chain 0, then a scalar tail; chains
// added pairwise in a fixed tree and the lanes summed.
float DotF32(const float* w, const float* x, size_t n) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  using V = hn::Vec<decltype(d)>;
  V a[8];
  for (auto& v : a) v = hn::Zero(d);
  size_t i = 0;
  for (; i + 8 * N <= n; i += 8 * N) {
    for (size_t k = 0; k < 8; ++k) {
      a[k] = hn::MulAdd(hn::LoadU(d, w + i + k * N), hn::LoadU(d, x + i + k * N), a[k]);
    }
  }
  for (; i + N <= n; i += N) a[0] = hn::MulAdd(hn::LoadU(d, w + i), hn::LoadU(d, x + i), a[0]);
  for (size_t k = 0; k < 4; ++k) a[k] = hn::Add(a[k], a[k + 4]);
  const V s = hn::Add(hn::Add(a[0], a[1]), hn::Add(a[2], a[3]));
  float sum = hn::GetLane(hn::SumOfLanes(d, s));
  for (; i < n; ++i) sum += w[i] * x[i];
  return sum;
}

using tensor::DType;

// Lane j's bit of a sign byte.
alignas(64) constexpr int32_t kLaneBit[8] = {1, 2, 4, 8, 16, 32, 64, 128};

// y[0..7] = db * g[j], negated where bit j of `signs` is set (quant_iq.cc SignedGroup8).
template <class D>
HWY_INLINE void SignedGroup8(D d, float db, const uint8_t* g, uint32_t signs, float* y) {
  const hn::Rebind<uint8_t, D> du8;
  const hn::Rebind<int32_t, D> di;
  const size_t N = hn::Lanes(d);
  const auto vdb = hn::Set(d, db);
  for (size_t k = 0; k < 8; k += N) {
    const auto v = hn::Mul(vdb, hn::ConvertTo(d, hn::PromoteTo(di, hn::LoadU(du8, g + k))));
    const auto bits = hn::And(hn::Set(di, static_cast<int32_t>(signs >> k)),
                              hn::Load(di, kLaneBit));
    const auto neg = hn::RebindMask(d, hn::Ne(bits, hn::Zero(di)));
    hn::StoreU(hn::IfThenElse(neg, hn::Neg(v), v), d, y + k);
  }
}

// y[0..7] = dl * (g[j] + delta), g int8 in {-1, 0, 1} (quant_iq.cc Iq1Group8).
template <class D>
HWY_INLINE void Iq1Group8(D d, float dl, const uint8_t* g, float delta, float* y) {
  const hn::Rebind<int8_t, D> di8;
  const hn::Rebind<int32_t, D> di;
  const size_t N = hn::Lanes(d);
  const auto vdl = hn::Set(d, dl), vdelta = hn::Set(d, delta);
  for (size_t k = 0; k < 8; k += N) {
    const auto gi = hn::PromoteTo(di, hn::LoadU(di8, reinterpret_cast<const int8_t*>(g) + k));
    hn::StoreU(hn::Mul(vdl, hn::Add(hn::ConvertTo(d, gi), vdelta)), d, y + k);
  }
}

// +-0.125 (IQ1's delta), negative when `negative` is 1: built from the bits, because a
// data-dependent select compiles to a branch that random codes mispredict (IQ1_M has one
// per 8 elements: 2.6x the decode time).
HWY_INLINE float Iq1Delta(uint32_t negative) {
  const uint32_t bits = 0x3e000000u | (negative << 31);  // 0x3e000000 = 0.125f
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

template <typename T>
const uint8_t* Bytes(const T* entry) {
  return reinterpret_cast<const uint8_t*>(entry);  // entry's byte j = element j (little-endian)
}

// Same layouts and scale arithmetic as quant_iq.cc; comments there.
void DecodeRowImpl(DType dtype, const void* src, float* y, size_t n) {
  const hn::CappedTag<float, 8> d;
  const size_t nb = n / tensor::kQKK;
  switch (dtype) {
    case DType::kIQ2_XXS: {
      const auto* x = static_cast<const tensor::BlockIQ2_XXS*>(src);
      for (size_t i = 0; i < nb; ++i) {
        const float dd = tensor::F16ToF32(x[i].d);
        for (int ib = 0; ib < 8; ++ib) {
          uint32_t aux[2];
          std::memcpy(aux, x[i].qs + 4 * ib, sizeof(aux));
          const float db = dd * (0.5f + static_cast<float>(aux[1] >> 28)) * 0.25f;
          for (int l = 0; l < 4; ++l, y += 8) {
            const uint8_t index = static_cast<uint8_t>(aux[0] >> (8 * l));
            SignedGroup8(d, db, Bytes(tensor::kIQ2XXSGrid + index),
                         tensor::kIQ2Signs[(aux[1] >> (7 * l)) & 127], y);
          }
        }
      }
      return;
    }
    case DType::kIQ2_XS: {
      const auto* x = static_cast<const tensor::BlockIQ2_XS*>(src);
      for (size_t i = 0; i < nb; ++i) {
        const float dd = tensor::F16ToF32(x[i].d);
        for (int ib = 0; ib < 8; ++ib) {
          const float db[2] = {dd * (0.5f + static_cast<float>(x[i].scales[ib] & 0xf)) * 0.25f,
                               dd * (0.5f + static_cast<float>(x[i].scales[ib] >> 4)) * 0.25f};
          for (int l = 0; l < 4; ++l, y += 8) {
            const uint16_t q = x[i].qs[4 * ib + l];
            SignedGroup8(d, db[l / 2], Bytes(tensor::kIQ2XSGrid + (q & 511)),
                         tensor::kIQ2Signs[q >> 9], y);
          }
        }
      }
      return;
    }
    case DType::kIQ2_S: {
      const auto* x = static_cast<const tensor::BlockIQ2_S*>(src);
      for (size_t i = 0; i < nb; ++i) {
        const float dd = tensor::F16ToF32(x[i].d);
        const uint8_t* qs = x[i].qs;
        const uint8_t* signs = x[i].qs + tensor::kQKK / 8;
        for (int ib = 0; ib < 8; ++ib, qs += 4, signs += 4) {
          const float db[2] = {dd * (0.5f + static_cast<float>(x[i].scales[ib] & 0xf)) * 0.25f,
                               dd * (0.5f + static_cast<float>(x[i].scales[ib] >> 4)) * 0.25f};
          for (int l = 0; l < 4; ++l, y += 8) {
            const int index = qs[l] | ((x[i].qh[ib] << (8 - 2 * l)) & 0x300);
            SignedGroup8(d, db[l / 2], Bytes(tensor::kIQ2SGrid + index), signs[l], y);
          }
        }
      }
      return;
    }
    case DType::kIQ3_XXS: {
      const auto* x = static_cast<const tensor::BlockIQ3_XXS*>(src);
      for (size_t i = 0; i < nb; ++i) {
        const float dd = tensor::F16ToF32(x[i].d);
        const uint8_t* qs = x[i].qs;
        for (int ib = 0; ib < 8; ++ib, qs += 8) {
          uint32_t aux;
          std::memcpy(&aux, x[i].qs + tensor::kQKK / 4 + 4 * ib, sizeof(aux));
          const float db = dd * (0.5f + static_cast<float>(aux >> 28)) * 0.5f;
          for (int l = 0; l < 4; ++l, y += 8) {
            const uint32_t g[2] = {tensor::kIQ3XXSGrid[qs[2 * l]],
                                   tensor::kIQ3XXSGrid[qs[2 * l + 1]]};
            SignedGroup8(d, db, Bytes(g), tensor::kIQ2Signs[(aux >> (7 * l)) & 127], y);
          }
        }
      }
      return;
    }
    case DType::kIQ3_S: {
      const auto* x = static_cast<const tensor::BlockIQ3_S*>(src);
      for (size_t i = 0; i < nb; ++i) {
        const float dd = tensor::F16ToF32(x[i].d);
        const uint8_t* qs = x[i].qs;
        const uint8_t* signs = x[i].signs;
        for (int ib = 0; ib < 8; ++ib, qs += 8, signs += 4) {
          const uint8_t sc = x[i].scales[ib / 2];
          const float db = dd * static_cast<float>(1 + 2 * (ib % 2 == 0 ? sc & 0xf : sc >> 4));
          const int qh = x[i].qh[ib];
          for (int l = 0; l < 4; ++l, y += 8) {
            const uint32_t g[2] = {tensor::kIQ3SGrid[qs[2 * l] | ((qh << (8 - 2 * l)) & 256)],
                                   tensor::kIQ3SGrid[qs[2 * l + 1] | ((qh << (7 - 2 * l)) & 256)]};
            SignedGroup8(d, db, Bytes(g), signs[l], y);
          }
        }
      }
      return;
    }
    case DType::kIQ1_S: {
      const auto* x = static_cast<const tensor::BlockIQ1_S*>(src);
      for (size_t i = 0; i < nb; ++i) {
        const float dd = tensor::F16ToF32(x[i].d);
        const uint8_t* qs = x[i].qs;
        for (int ib = 0; ib < 8; ++ib, qs += 4) {
          const uint16_t qh = x[i].qh[ib];
          const float dl = dd * static_cast<float>(2 * ((qh >> 12) & 7) + 1);
          const float delta = Iq1Delta(qh >> 15);
          for (int l = 0; l < 4; ++l, y += 8) {
            Iq1Group8(d, dl, Bytes(tensor::kIQ1SGrid + (qs[l] | (((qh >> (3 * l)) & 7) << 8))),
                      delta, y);
          }
        }
      }
      return;
    }
    case DType::kIQ1_M: {
      const auto* x = static_cast<const tensor::BlockIQ1_M*>(src);
      for (size_t i = 0; i < nb; ++i) {
        uint16_t sc[4];
        std::memcpy(sc, x[i].scales, sizeof(sc));
        const uint16_t d_bits = static_cast<uint16_t>((sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) |
                                                      ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000));
        const float dd = tensor::F16ToF32(d_bits);
        const uint8_t* qs = x[i].qs;
        const uint8_t* qh = x[i].qh;
        for (int ib = 0; ib < 8; ++ib, qs += 4, qh += 2) {
          const int shift = 6 * (ib % 2);
          const float dl[2] = {dd * static_cast<float>(2 * ((sc[ib / 2] >> shift) & 7) + 1),
                               dd * static_cast<float>(2 * ((sc[ib / 2] >> (shift + 3)) & 7) + 1)};
          for (int l = 0; l < 4; ++l, y += 8) {
            const int h = qh[l / 2] >> (4 * (l % 2));
            const float delta = Iq1Delta((h >> 3) & 1);
            Iq1Group8(d, dl[l / 2], Bytes(tensor::kIQ1SGrid + (qs[l] | ((h & 7) << 8))), delta,
                      y);
          }
        }
      }
      return;
    }
    default:
      break;
  }
  PK_CHECK(false && "DecodeRow: not an IQ type");
}

void MatMulRowsDequantImpl(const tensor::TensorView& w, const Activations& act, size_t r0,
                           size_t r1, float* y) {
  const size_t rows = static_cast<size_t>(w.ne[1]);
  const size_t cols = act.cols;
  thread_local std::vector<float> row;
  if (row.size() < cols) row.resize(cols);
  for (size_t r = r0; r < r1; ++r) {
    DecodeRowImpl(w.dtype, w.row(static_cast<int64_t>(r)), row.data(), cols);
    for (size_t t = 0; t < act.num_tokens; ++t) {
      y[t * rows + r] = DotF32(row.data(), act.f32 + t * cols, cols);
    }
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace pocket::kernels::cpu
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace pocket::kernels::cpu {

HWY_EXPORT(MatMulRowsDequantImpl);
HWY_EXPORT(DecodeRowImpl);

bool IsDequantMatMulType(tensor::DType dtype) {
  using tensor::DType;
  switch (dtype) {
    case DType::kIQ2_XXS: case DType::kIQ2_XS: case DType::kIQ2_S: case DType::kIQ3_XXS:
    case DType::kIQ3_S: case DType::kIQ1_S: case DType::kIQ1_M:
      return true;
    default:
      return false;
  }
}

void DequantizeRowIq(tensor::DType dtype, const void* src, float* dst, size_t n) {
  PK_CHECK(IsDequantMatMulType(dtype) && n % tensor::kQKK == 0);
  HWY_DYNAMIC_DISPATCH(DecodeRowImpl)(dtype, src, dst, n);
}

void MatMulRowsDequant(const tensor::TensorView& w, const Activations& act, size_t r0, size_t r1,
                       float* y) {
  PK_CHECK(IsDequantMatMulType(w.dtype) && act.kind == 0);
  HWY_DYNAMIC_DISPATCH(MatMulRowsDequantImpl)(w, act, r0, r1, y);
}

}  // namespace pocket::kernels::cpu
#endif  // HWY_ONCE
