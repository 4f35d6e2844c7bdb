// The public kernel API: argument checks, scratch management and thread partitioning;
// the per-target SIMD bodies live in kernels/cpu/ (see cpu/cpu.h).
#include "kernels/kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <numbers>
#include <string>
#include <utility>

#include "base/check.h"
#include "base/memory.h"
#include "kernels/cpu/cpu.h"
#include "kernels/ref/ref.h"
#include "tensor/quant.h"

namespace pocket::kernels {

using tensor::DType;

Workspace::Workspace() = default;
Workspace::~Workspace() {
  for (auto& b : buffers_) std::free(b.data);
}
Workspace::Workspace(Workspace&& o) noexcept : buffers_(std::move(o.buffers_)) {
  o.buffers_.clear();
}
Workspace& Workspace::operator=(Workspace&& o) noexcept {
  if (this != &o) {
    for (auto& b : buffers_) std::free(b.data);
    buffers_ = std::move(o.buffers_);
    o.buffers_.clear();
  }
  return *this;
}

void* Workspace::Get(size_t slot, size_t bytes) {
  if (slot >= buffers_.size()) buffers_.resize(slot + 1);
  Buffer& b = buffers_[slot];
  if (b.size < bytes) {
    std::free(b.data);
    const size_t size = (std::max<size_t>(bytes, 64) + 63) / 64 * 64;
    b.data = std::aligned_alloc(64, size);
    PK_CHECK(b.data != nullptr);
    b.size = size;
  }
  return b.data;
}

MatMulPath MatMulPathOf(DType dtype) { return cpu::MatMulPathOf(dtype); }

std::string_view MatMulPathName(MatMulPath path) {
  switch (path) {
    case MatMulPath::kUnsupported: return "unsupported";
    case MatMulPath::kReference: return "reference";
    case MatMulPath::kFast: return "fast";
  }
  return "?";
}

bool MatMulSupports(DType dtype) { return MatMulPathOf(dtype) != MatMulPath::kUnsupported; }

int MatMulActivationKind(DType dtype) {
  switch (dtype) {
    case DType::kQ8_0:
    case DType::kQ4_0:
    case DType::kQ4_1: case DType::kQ5_0: case DType::kQ5_1: case DType::kIQ4_NL:
      return 1;
    case DType::kQ2_K: case DType::kQ3_K: case DType::kQ4_K: case DType::kQ5_K:
    case DType::kQ6_K: case DType::kIQ4_XS:
      return 2;
    default:
      return 0;
  }
}

std::vector<float> Llama3RopeFreqFactors(size_t rot_dims, float freq_base, float factor,
                                         float low_freq_factor, float high_freq_factor,
                                         size_t original_max_positions) {
  // As convert_hf_to_gguf.py (LlamaModel.generate_extra_tensors) computes rope_freqs.
  std::vector<float> out;
  const double old_len = static_cast<double>(original_max_positions);
  const double low_wavelen = old_len / low_freq_factor;
  const double high_wavelen = old_len / high_freq_factor;
  for (size_t i = 0; i < rot_dims; i += 2) {
    const double freq = 1.0 / std::pow(static_cast<double>(freq_base),
                                       static_cast<double>(i) / static_cast<double>(rot_dims));
    const double wavelen = 2.0 * std::numbers::pi / freq;
    if (wavelen < high_wavelen) {
      out.push_back(1.0f);
    } else if (wavelen > low_wavelen) {
      out.push_back(factor);
    } else {
      const double smooth =
          (old_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      out.push_back(static_cast<float>(1.0 / ((1.0 - smooth) / factor + smooth)));
    }
  }
  return out;
}

RopeTable RopeTable::Create(const RopeConfig& config, size_t max_positions) {
  RopeTable t;
  t.config_ = config;
  if (t.config_.rot_dims == 0) t.config_.rot_dims = config.head_dim;
  const size_t rot = t.config_.rot_dims, half = rot / 2;
  PK_CHECK(rot % 2 == 0 && rot <= config.head_dim);
  PK_CHECK(t.config_.freq_factors.empty() || t.config_.freq_factors.size() == half);
  t.max_positions_ = max_positions;
  t.cos_sin_.resize(max_positions * rot);
  std::vector<double> inv_freq(half);
  for (size_t i = 0; i < half; ++i) {
    inv_freq[i] = static_cast<double>(t.config_.freq_scale) *
                  std::pow(static_cast<double>(t.config_.freq_base),
                           -2.0 * static_cast<double>(i) / static_cast<double>(rot));
    if (!t.config_.freq_factors.empty()) inv_freq[i] /= t.config_.freq_factors[i];
  }
  for (size_t p = 0; p < max_positions; ++p) {
    float* row = t.cos_sin_.data() + p * rot;
    for (size_t i = 0; i < half; ++i) {
      const double theta = static_cast<double>(p) * inv_freq[i];
      row[i] = static_cast<float>(std::cos(theta));
      row[half + i] = static_cast<float>(std::sin(theta));
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------
// MatMul

namespace {

enum class ActKind { kFloat, kQ8, kQ8K };

// MatMulActivationKind's 0, 1, 2.
ActKind ActKindOf(DType d) { return static_cast<ActKind>(MatMulActivationKind(d)); }

// Workspace slots used here.
constexpr size_t kSlotAct = 0;
constexpr size_t kSlotScores = 1;

// Rows per task unit: threads get whole units, so the int8 kernels' 8-row tiles are full
// (results do not depend on it: every row's value is computed independently of the others
// in its tile).
constexpr size_t kRowUnit = 8;

}  // namespace

void MatMulShared(std::span<const MatMulJob> jobs, const float* x, size_t num_tokens,
                  ThreadPool& pool, Workspace& ws) {
  PK_CHECK(!jobs.empty() && jobs.size() <= 8);
  if (num_tokens == 0) return;
  const size_t cols = static_cast<size_t>(jobs[0].w.ne[0]);
  const ActKind kind = ActKindOf(jobs[0].w.dtype);
  for (const MatMulJob& j : jobs) {
    PK_CHECK(MatMulSupports(j.w.dtype));
    PK_CHECK(static_cast<size_t>(j.w.ne[0]) == cols);
    PK_CHECK(j.w.ne[2] == 1 && j.w.ne[3] == 1);
    PK_CHECK(cols % tensor::BlockElements(j.w.dtype) == 0);
    PK_CHECK(ActKindOf(j.w.dtype) == kind);
  }

  // 1. Activations, once for all jobs.
  cpu::Activations act;
  act.kind = static_cast<int>(kind);
  act.cols = cols;
  act.num_tokens = num_tokens;
  if (kind == ActKind::kFloat) {
    act.f32 = x;
    act.stride_bytes = cols * sizeof(float);
  } else if (kind == ActKind::kQ8) {
    // Per token: cols int8, cols/32 float scales, cols/32 int32 (-8 * block sum);
    // 64-byte aligned stride.
    act.stride_bytes = (cols + cols / 32 * (sizeof(float) + sizeof(int32_t)) + 63) / 64 * 64;
    auto* base = static_cast<uint8_t*>(ws.Get(kSlotAct, act.stride_bytes * num_tokens));
    act.q8 = base;
    const size_t tasks = num_tokens >= 8 ? pool.num_threads() : 1;
    pool.ParallelFor(tasks, [&](size_t task, size_t) {
      for (size_t t = task * num_tokens / tasks; t < (task + 1) * num_tokens / tasks; ++t) {
        uint8_t* row = base + t * act.stride_bytes;
        cpu::QuantizeActQ8(x + t * cols, cols, reinterpret_cast<int8_t*>(row),
                           reinterpret_cast<float*>(row + cols),
                           reinterpret_cast<int32_t*>(row + cols + cols / 32 * sizeof(float)));
      }
    });
  } else {
    act.stride_bytes = cols / tensor::kQKK * sizeof(tensor::BlockQ8_K);
    auto* base = static_cast<uint8_t*>(ws.Get(kSlotAct, act.stride_bytes * num_tokens));
    act.q8 = base;
    const size_t tasks = num_tokens >= 8 ? pool.num_threads() : 1;
    pool.ParallelFor(tasks, [&](size_t task, size_t) {
      for (size_t t = task * num_tokens / tasks; t < (task + 1) * num_tokens / tasks; ++t) {
        tensor::QuantizeRowQ8_K(x + t * cols,
                                reinterpret_cast<tensor::BlockQ8_K*>(base + t * act.stride_bytes),
                                cols);
      }
    });
  }

  // 2. Rows of all jobs, concatenated, split into units of kRowUnit rows, units split
  // evenly over the threads.
  size_t units_before[9] = {0};
  for (size_t j = 0; j < jobs.size(); ++j) {
    const size_t rows = static_cast<size_t>(jobs[j].w.ne[1]);
    units_before[j + 1] = units_before[j] + (rows + kRowUnit - 1) / kRowUnit;
  }
  const size_t total_units = units_before[jobs.size()];
  const size_t num_tasks = std::min(pool.num_threads(), total_units);
  pool.ParallelFor(num_tasks, [&](size_t task, size_t) {
    const size_t u0 = task * total_units / num_tasks, u1 = (task + 1) * total_units / num_tasks;
    for (size_t j = 0; j < jobs.size(); ++j) {
      const size_t a = std::max(u0, units_before[j]), b = std::min(u1, units_before[j + 1]);
      if (a >= b) continue;
      const size_t rows = static_cast<size_t>(jobs[j].w.ne[1]);
      const size_t r0 = (a - units_before[j]) * kRowUnit;
      const size_t r1 = std::min(rows, (b - units_before[j]) * kRowUnit);
      const PackedWeight* pw = jobs[j].packed;
      const bool use = pw != nullptr && pw->packed();
      cpu::MatMulRows(jobs[j].w, use ? pw->data() : nullptr, use ? pw->layout() : 0,
                      use && pw->source() == WeightSource::kMemory, act, r0, r1, jobs[j].y);
    }
  });
}

void MatMul(const tensor::TensorView& w, const float* x, size_t num_tokens, float* y,
            ThreadPool& pool, Workspace& ws) {
  const MatMulJob job{w, y};
  MatMulShared(std::span<const MatMulJob>(&job, 1), x, num_tokens, pool, ws);
}

void MatMul(const PackedWeight& w, const float* x, size_t num_tokens, float* y,
            ThreadPool& pool, Workspace& ws) {
  const MatMulJob job{w.view(), y, &w};
  MatMulShared(std::span<const MatMulJob>(&job, 1), x, num_tokens, pool, ws);
}

void PackedWeight::Free::operator()(uint8_t* p) const { FreeLarge(p); }

PackedWeight PackedWeight::Pack(const tensor::TensorView& w,
                                const std::function<void(const void*, size_t)>& consumed,
                                WeightSource source) {
  Result<PackedWeight> p = TryPack(w, consumed, source);
  PK_CHECK(p.ok());
  return std::move(*p);
}

Result<PackedWeight> PackedWeight::TryPack(const tensor::TensorView& w,
                                           const std::function<void(const void*, size_t)>& consumed,
                                           WeightSource source) {
  PackedWeight p;
  p.view_ = w;
  p.source_ = source;
  const bool q4 = w.dtype == DType::kQ4_0;
  // Q4_1, Q5_0, Q5_1, IQ4_NL: their own block layout (cpu/matmul_legacy.cc packs it); Q4_K
  // likewise (cpu/matmul_kquant.cc), per 256-element block.
  const size_t legacy_bytes = cpu::LegacyPackedBlockBytes(w.dtype);
  const size_t kquant_bytes = cpu::KQuantPackedBlockBytes(w.dtype);
  const int layout = (q4 || w.dtype == DType::kQ8_0 || legacy_bytes != 0 || kquant_bytes != 0)
                         ? cpu::PackedLayout(w.dtype)
                         : 0;
  if (layout == cpu::kPackedNone) return p;
  p.layout_ = layout;
  const size_t block_elems = tensor::BlockElements(w.dtype);
  PK_CHECK(w.ne[2] == 1 && w.ne[3] == 1 && w.ne[0] % static_cast<int64_t>(block_elems) == 0);
  const size_t rows = static_cast<size_t>(w.ne[1]);
  const size_t nb = static_cast<size_t>(w.ne[0]) / block_elems;
  const size_t pb = kquant_bytes != 0   ? kquant_bytes
                    : legacy_bytes != 0 ? legacy_bytes
                    : q4                ? cpu::kPackedQ4Bytes
                                        : cpu::kPackedQ8Bytes;
  const size_t block_bytes = tensor::BlockBytes(w.dtype);
  const size_t groups = (rows + 7) / 8;
  p.size_bytes_ = groups * nb * pb;
  auto* out = static_cast<uint8_t*>(AllocateLarge(p.size_bytes_));
  if (out == nullptr) {
    return Status::ResourceExhausted("packed weight: cannot allocate " +
                                     std::to_string(p.size_bytes_) + " bytes");
  }
  p.data_.reset(out);
  const size_t row_bytes = nb * block_bytes;
  const size_t release_groups = std::max<size_t>(1, (size_t{4} << 20) / (8 * row_bytes));
  size_t released_rows = 0;
  for (size_t g = 0; g < groups; ++g) {
    if (consumed && g > 0 && (g % release_groups == 0)) {
      consumed(w.row(static_cast<int64_t>(released_rows)), (8 * g - released_rows) * row_bytes);
      released_rows = 8 * g;
    }
    if (legacy_bytes != 0) {
      cpu::PackLegacyGroup(w, g, out + g * nb * pb);
      continue;
    }
    if (kquant_bytes != 0) {
      cpu::PackKQuantGroup(w, g, out + g * nb * pb);
      continue;
    }
    for (size_t j = 0; j < 8; ++j) {
      const auto* row = reinterpret_cast<const uint8_t*>(
          w.row(static_cast<int64_t>(std::min(8 * g + j, rows - 1))));
      for (size_t b = 0; b < nb; ++b) {
        const uint8_t* blk = row + b * block_bytes;
        uint8_t* dst = out + (g * nb + b) * pb;
        std::memcpy(dst + 2 * j, blk, 2);
        // Lane width: 4 bytes per row per vector (32-byte vectors) or 8 (64-byte vectors).
        const size_t lane = layout == cpu::kPackedLanes ? 4 : 8, vec = 8 * lane;
        const size_t quant_bytes = q4 ? 16 : 32;
        for (size_t k = 0; k < quant_bytes / lane; ++k) {
          for (size_t i = 0; i < lane; ++i) {
            const uint8_t v = blk[2 + lane * k + i];
            dst[16 + vec * k + lane * j + i] = q4 ? v : static_cast<uint8_t>(v ^ 0x80);
          }
        }
      }
    }
  }
  if (consumed && released_rows < rows) {
    consumed(w.row(static_cast<int64_t>(released_rows)), (rows - released_rows) * row_bytes);
  }
  return p;
}

// ---------------------------------------------------------------------------------------
// Element-wise and small kernels

void RmsNorm(const float* x, const float* weight, float eps, size_t n, size_t num_rows,
             float* out) {
  for (size_t r = 0; r < num_rows; ++r) cpu::RmsNorm(x + r * n, weight, eps, n, out + r * n);
}

void Rope(float* x, size_t num_tokens, size_t num_heads, const int32_t* positions,
          const RopeTable& table) {
  const RopeConfig& c = table.config();
  for (size_t t = 0; t < num_tokens; ++t) {
    PK_CHECK(positions[t] >= 0 && static_cast<size_t>(positions[t]) < table.max_positions());
    const size_t p = static_cast<size_t>(positions[t]);
    for (size_t h = 0; h < num_heads; ++h) {
      cpu::RopeHead(x + (t * num_heads + h) * c.head_dim, table.cos(p), table.sin(p),
                    c.rot_dims, c.style == RopeStyle::kNeox);
    }
  }
}

void Softmax(float* x, size_t n) { cpu::Softmax(x, n); }

size_t ArgMax(const float* x, size_t n) {
  PK_CHECK(n > 0);
  return cpu::ArgMax(x, n);
}

void ScaledExp(const float* x, size_t n, float scale, float offset, float* out) {
  cpu::ScaledExp(x, n, scale, offset, out);
}

void SwiGLU(const float* gate, const float* up, size_t n, float* out) {
  cpu::SwiGLU(gate, up, n, out);
}

void Add(const float* a, const float* b, size_t n, float* out) { cpu::Add(a, b, n, out); }

void GetRows(const tensor::TensorView& table, const int32_t* ids, size_t num_ids, float* out) {
  const size_t cols = static_cast<size_t>(table.ne[0]);
  for (size_t i = 0; i < num_ids; ++i) {
    PK_CHECK(ids[i] >= 0 && ids[i] < table.num_rows());
    tensor::DequantizeRow(table.dtype, table.row(ids[i]), out + i * cols, cols);
  }
}

void Attention(const float* q, size_t num_tokens, size_t num_heads, size_t first_position,
               const KvView& kv, float scale, float* out, ThreadPool& pool, Workspace& ws) {
  PK_CHECK(kv.num_kv_heads > 0 && num_heads % kv.num_kv_heads == 0);
  PK_CHECK(kv.dtype == DType::kF32 || kv.dtype == DType::kF16);
  if (num_tokens == 0) return;
  const size_t hd = kv.head_dim, group = num_heads / kv.num_kv_heads;
  const size_t max_len = first_position + num_tokens;
  const size_t stride = (max_len + 15) / 16 * 16;
  auto* scores = static_cast<float*>(ws.Get(kSlotScores, pool.num_threads() * stride * 4));
  const size_t num_tasks = num_tokens * num_heads;
  pool.ParallelFor(num_tasks, [&](size_t task, size_t thread) {
    const size_t t = task / num_heads, h = task % num_heads;
    const size_t len = first_position + t + 1;
    cpu::AttentionHead(q + task * hd, kv, h / group, len, scale, scores + thread * stride,
                       out + task * hd);
  });
}

std::string ActiveTarget() { return cpu::TargetName(); }

Status LimitInstructionSet(std::string_view isa) {
  if (isa == "native") {
    cpu::LimitToAvx2(false);
    return Status::Ok();
  }
  if (isa != "avx2") {
    return Status::InvalidArgument("instruction set '" + std::string(isa) +
                                   "': expected native or avx2");
  }
  if (!cpu::LimitToAvx2(true)) {
    return Status::InvalidArgument("instruction set avx2: this CPU has no AVX2");
  }
  return Status::Ok();
}

}  // namespace pocket::kernels
