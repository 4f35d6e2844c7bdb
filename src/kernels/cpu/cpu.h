// Internal interface between the public kernel API (kernels.cc) and the per-target SIMD
// bodies in kernels/cpu/*.cc (Highway foreach_target + HWY_DYNAMIC_DISPATCH). No Highway
// types here, so kernels.cc and the tests stay free of Highway headers.
// Thread safety: all functions are reentrant; SetTargetForTest is not (tests only).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/kernels.h"
#include "tensor/tensor.h"

namespace pocket::kernels::cpu {

// Activations prepared once per MatMul input.
//  kind 0 (float weights): f32 rows of `cols` floats, stride_bytes apart.
//  kind 1 (Q8_0/Q4_0 weights): per token at q8 + t * stride_bytes: cols int8 quants, then
//    cols / 32 float scales (ref::QuantizeActQ8 format), then cols / 32 int32 holding
//    -8 * (sum of the block's quants) (folds Q4_0's offset of 8 into the integer dot; Q5_0's
//    offset of 16 is twice it, and Q4_1/Q5_1's min term needs the sum itself: -neg8sum / 8,
//    exact). Also used by Q4_1, Q5_0, Q5_1 and IQ4_NL weights.
//  kind 2 (Q2_K/Q3_K/Q4_K/Q5_K/Q6_K/IQ4_XS weights): per token cols / 256
//    tensor::BlockQ8_K.
struct Activations {
  int kind = 0;
  size_t cols = 0;
  size_t num_tokens = 0;
  size_t stride_bytes = 0;
  const float* f32 = nullptr;
  const uint8_t* q8 = nullptr;
};

// Same q and d bits as ref::QuantizeActQ8 on every target; neg8sum[b] = -8 * sum of
// q[32b .. 32b+31].
void QuantizeActQ8(const float* x, size_t n, int8_t* q, float* d, int32_t* neg8sum);

// y[t][r] for rows [r0, r1) of w and every token of act; y is [num_tokens][w rows].
// Each (r, t) is computed by the same sequence of operations whatever r0, r1 and
// num_tokens (batch invariance). `packed`: PackedWeight's bytes in layout
// `packed_layout`, or nullptr; ignored when this target reads another layout; with it, r0
// must be a multiple of 8. Packed and unpacked give the same bits. `from_memory`:
// PackedWeight::source() is kMemory (picks the prefetch distance; same bits).
void MatMulRows(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
                bool from_memory, const Activations& act, size_t r0, size_t r1, float* y);

// MatMulRows for Q4_1, Q5_0, Q5_1 and IQ4_NL weights (kernels/cpu/matmul_legacy.cc; same
// contract, kind-1 activations).
void MatMulRowsLegacy(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
                      bool from_memory, const Activations& act, size_t r0, size_t r1,
                      float* y);
// Their packed layout (kPackedLanePairs on AVX-512, else kPackedNone; the block layout is
// described in matmul_legacy.cc): bytes per 8-row group per 32-block (0 for other dtypes),
// and the packing of group g (rows 8g..8g+7, missing rows repeat the last) into `dst`
// (cols / 32 * LegacyPackedBlockBytes bytes).
int LegacyPackedLayout();
size_t LegacyPackedBlockBytes(tensor::DType dtype);
void PackLegacyGroup(const tensor::TensorView& w, size_t g, uint8_t* dst);
// MatMulRows for the 256-element super-block types Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and
// IQ4_XS (act.kind 2, Q8_K); same contract (matmul_kquant.cc). KQuantPath: MatMulPathOf for
// those types on the dispatched target (kUnsupported for any other dtype).
void MatMulKQuantRows(const tensor::TensorView& w, const uint8_t* packed, int packed_layout,
                      bool from_memory, const Activations& act, size_t r0, size_t r1, float* y);
MatMulPath KQuantPath(tensor::DType dtype);
// Their packed layout (Q4_K and Q6_K: kPackedKQuant8 on x86, else kPackedNone; the block
// layouts are described in matmul_kquant.cc): bytes per 8-row group per 256-block (0 for other
// dtypes), and the packing of group g (rows 8g..8g+7, missing rows repeat the last) into
// `dst` (cols / 256 * KQuantPackedBlockBytes bytes).
int KQuantPackedLayout(tensor::DType dtype);
size_t KQuantPackedBlockBytes(tensor::DType dtype);
void PackKQuantGroup(const tensor::TensorView& w, size_t g, uint8_t* dst);

// PackedWeight layouts, per group of 8 rows (the last group repeats its last row), per
// 32-block: the 8 rows' f16 scales (16 bytes), then the quants (Q8_0's bytes XOR 0x80,
// i.e. w + 128 as unsigned):
//  kPackedLanes (256-bit tiles): vectors k = 0..3 (Q4_0) or 0..7 (Q8_0) of 32 bytes whose
//    4-byte lane j holds row j's quant bytes 4k..4k+3.
//  kPackedLanePairs (512-bit VNNI tiles): vectors k = 0..1 (Q4_0) or 0..3 (Q8_0) of 64
//    bytes whose 8-byte lane pair j holds row j's quant bytes 8k..8k+7.
// Same block size either way.
//  kPackedKQuant8: Q4_K's and Q6_K's 8-row tiles (matmul_kquant.cc), the same on every x86
//    target.
constexpr int kPackedNone = 0, kPackedLanes = 1, kPackedLanePairs = 2, kPackedKQuant8 = 3;
constexpr size_t kPackedQ4Bytes = 16 + 4 * 32;
constexpr size_t kPackedQ8Bytes = 16 + 8 * 32;
// The layout the dispatched MatMul reads for `dtype` on this CPU (kPackedNone: it reads
// the GGUF rows as they are).
int PackedLayout(tensor::DType dtype);

void RmsNorm(const float* x, const float* weight, float eps, size_t n, float* out);
// Rotates one head in place with the table row for its position.
void RopeHead(float* x, const float* cos, const float* sin, size_t rot_dims, bool neox);
void Softmax(float* x, size_t n);
size_t ArgMax(const float* x, size_t n);
void ScaledExp(const float* x, size_t n, float scale, float offset, float* out);
void SwiGLU(const float* gate, const float* up, size_t n, float* out);
void Add(const float* a, const float* b, size_t n, float* out);
// One query head over cache positions [0, len) of kv head `kv_head`. scores: scratch of
// at least len floats. out: [head_dim].
void AttentionHead(const float* q, const KvView& kv, size_t kv_head, size_t len, float scale,
                   float* scores, float* out);

// kernels::MatMulPathOf for the target HWY_DYNAMIC_DISPATCH picks now.
MatMulPath MatMulPathOf(tensor::DType dtype);

// Name of the target HWY_DYNAMIC_DISPATCH picks now.
const char* TargetName();
// Highway targets compiled into these kernels that this CPU supports (HWY_* bits).
std::vector<int64_t> CompiledTargets();
const char* TargetNameOf(int64_t target);
// Makes dispatch use only `target` (0 restores normal dispatch). Tests only.
void SetTargetForTest(int64_t target);
// Keeps dispatch at AVX2 or below (limit) or lets it pick the best target again; false when
// AVX2 is neither supported here nor compiled in.
bool LimitToAvx2(bool limit);

}  // namespace pocket::kernels::cpu
