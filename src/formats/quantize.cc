// QuantizeGguf: a GGUF file's matrices decoded and re-encoded in one quantized type, the rest
// copied; see quantize.h for the rules. The per-row quantizers are tensor/quant.h's; the fallback
// for ragged rows is formats::StorageType (shared with `pocket convert`); the atomic write is
// GgufWriter::Write's.
#include "formats/quantize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

#include "base/file.h"
#include "base/sha256.h"
#include "base/thread_pool.h"
#include "formats/gguf.h"
#include "formats/gguf_names.h"
#include "formats/hf_convert.h"
#include "tensor/quant.h"

namespace pocket::formats {

using tensor::DType;

const std::vector<std::pair<std::string, DType>>& QuantizeTypes() {
  static const std::vector<std::pair<std::string, DType>> kTypes = {{"q8_0", DType::kQ8_0},
                                                                    {"q4_0", DType::kQ4_0},
                                                                    {"q4_k", DType::kQ4_K},
                                                                    {"q6_k", DType::kQ6_K}};
  return kTypes;
}

std::optional<DType> QuantizeTypeFromName(std::string_view name) {
  for (const auto& [n, t] : QuantizeTypes()) {
    if (n == name) return t;
  }
  return std::nullopt;
}

std::string QuantizeTypeNames() {
  std::string out;
  for (const auto& [n, t] : QuantizeTypes()) out += (out.empty() ? "" : ", ") + n;
  return out;
}

namespace {

std::string_view TypeName(DType t) {
  for (const auto& [n, type] : QuantizeTypes()) {
    if (type == t) return n;
  }
  return "?";
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// SHA-256 of a whole file, read through its mapping in 1 MiB pieces.
Result<std::string> FileSha256(const std::string& path) {
  PK_ASSIGN_OR_RETURN(MappedFile f, MappedFile::Open(path));
  Sha256 h;
  constexpr size_t kChunk = size_t{1} << 20;
  const char* p = reinterpret_cast<const char*>(f.data());
  for (size_t off = 0; off < f.size(); off += kChunk) {
    h.Update(std::string_view(p + off, std::min(kChunk, f.size() - off)));
  }
  const auto digest = h.Finish();
  return ToHex(digest.data(), digest.size());
}

// The tensor `t` of `src` as `dtype`: each row decoded to F32, checked finite (the quantizers'
// precondition; a NaN would also poison every block it lands in) and encoded. Rows are independent,
// so the thread split cannot change a byte.
Result<std::string> Recode(const GgufFile& src, const TensorInfo& t, DType dtype,
                           ThreadPool* pool) {
  const uint64_t row_len = t.ne.empty() ? 1 : t.ne[0];
  const uint64_t rows = row_len ? t.num_elements() / row_len : 0;
  const size_t in_row_bytes = tensor::RowBytes(t.dtype, row_len);
  const size_t out_row_bytes = tensor::RowBytes(dtype, row_len);
  const std::byte* in = src.TensorBytes(t).data();
  std::string out(rows * out_row_bytes, '\0');
  std::vector<std::vector<float>> scratch(pool->num_threads(), std::vector<float>(row_len));
  std::atomic<uint64_t> first_bad{std::numeric_limits<uint64_t>::max()};
  pool->ParallelFor(rows, [&](size_t r, size_t thread) {
    float* row = scratch[thread].data();
    tensor::DequantizeRow(t.dtype, in + r * in_row_bytes, row, row_len);
    for (uint64_t i = 0; i < row_len; ++i) {
      if (!std::isfinite(row[i])) {
        // Keep the lowest bad row so the message does not depend on the thread split.
        uint64_t seen = first_bad.load();
        while (r < seen && !first_bad.compare_exchange_weak(seen, r)) {
        }
        return;
      }
    }
    tensor::QuantizeRow(dtype, row, out.data() + r * out_row_bytes, row_len);
  });
  if (const uint64_t bad = first_bad.load(); bad != std::numeric_limits<uint64_t>::max()) {
    return Status::InvalidArgument("gguf " + src.path() + ": tensor '" + t.name + "' row " +
                                   std::to_string(bad) + " holds a non-finite value");
  }
  return out;
}

}  // namespace

namespace {

// The type the rules want before any fallback for ragged rows; kF32 for tensors that are
// not quantized.
DType PreferredType(std::string_view name, const std::vector<uint64_t>& ne,
                    const QuantizeOptions& options, bool has_output) {
  // tensor_allows_quantization: "...weight" tensors of >= 2 dims, never a norm.
  if (ne.size() < 2 || !EndsWith(name, "weight") ||
      name.find("_norm.weight") != std::string_view::npos) {
    return DType::kF32;
  }
  // llama_tensor_get_type_impl: the output matrix (tied: the token embedding) is the most
  // sensitive one and gets Q6_K unless Q8_0 was asked for.
  const bool output =
      name == gguf_names::kOutput || (!has_output && name == gguf_names::kTokenEmbd);
  if (output && !options.pure && options.type != DType::kQ8_0) return DType::kQ6_K;
  return options.type;
}

}  // namespace

DType QuantizeTargetType(std::string_view name, const std::vector<uint64_t>& ne,
                         const QuantizeOptions& options, bool has_output) {
  const DType preferred = PreferredType(name, ne, options, has_output);
  return StorageType(preferred, ne.empty() ? 1 : ne[0], preferred != DType::kF32);
}

Result<QuantizeReport> QuantizeGguf(const std::string& in_path, const std::string& out_path,
                                    const QuantizeOptions& options) {
  if (TypeName(options.type) == "?") {
    return Status::InvalidArgument("quantize: type " + std::string(DTypeName(options.type)) +
                                   " is not one of " + QuantizeTypeNames());
  }
  PK_ASSIGN_OR_RETURN(GgufFile src, GgufFile::Open(in_path));
  QuantizeReport rep;
  PK_ASSIGN_OR_RETURN(rep.source_sha256, FileSha256(in_path));
  rep.input_bytes = src.file_size();

  GgufWriter w;
  for (const GgufKeyValue& kv : src.metadata()) w.SetValue(std::string(kv.key), kv.value);
  w.SetUint32(gguf_names::kGeneralFileType, LlamaFileType(options.type));
  w.SetUint32(gguf_names::kGeneralQuantizationVersion, 2);
  w.SetString(kParentSha256Key, rep.source_sha256);
  w.SetString(kQuantizeTypeKey,
              std::string(TypeName(options.type)) + (options.pure ? " pure" : ""));

  ThreadPool pool(options.num_threads);
  const bool has_output = src.FindTensor(gguf_names::kOutput) != nullptr;
  for (const TensorInfo& t : src.tensors()) {
    const DType preferred = PreferredType(t.name, t.ne, options, has_output);
    const DType dtype = QuantizeTargetType(t.name, t.ne, options, has_output);
    ++rep.num_tensors;
    if (tensor::BlockElements(dtype) > 1) ++rep.num_quantized;
    if (dtype != preferred) ++rep.num_fallback;
    ++rep.tensors_by_type[std::string(DTypeName(dtype))];
    if (dtype == t.dtype) {
      PK_RETURN_IF_ERROR(w.AddTensorLazy(t.name, t.ne, dtype, [&src, &t]() {
        const auto bytes = src.TensorBytes(t);
        return Result<std::string>(
            std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
      }));
    } else {
      PK_RETURN_IF_ERROR(w.AddTensorLazy(t.name, t.ne, dtype, [&src, &t, dtype, &pool]() {
        return Recode(src, t, dtype, &pool);
      }));
    }
  }
  PK_RETURN_IF_ERROR(w.Write(out_path));
  std::error_code ec;
  rep.output_bytes = std::filesystem::file_size(out_path, ec);
  return rep;
}

}  // namespace pocket::formats
