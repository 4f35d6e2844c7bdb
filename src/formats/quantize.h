// Re-quantizing a GGUF model file (`pocket quantize`): every weight matrix of a
// file Pocket can read (F32/F16/BF16 or already quantized) is decoded to F32
// and encoded again in one of the types Pocket has quantizers for (Q8_0, Q4_0,
// Q4_K, Q6_K), with tensor::QuantizeRow — the same bits as ggml's
// quantize_row_*_ref, so the result equals `llama-quantize --pure` without an
// importance matrix wherever the two pick the same type. Which tensor gets
// which type follows llama-quantize:
//   - quantized: tensors of 2 or more dims whose name ends in "weight" and not
//   in
//     "_norm.weight" (token_embd and output included, as --pure does: no Q6_K
//     bump for output.weight, no mixed K-quant recipes);
//   - everything else (norms, biases, rope_freqs) is stored F32;
//   - a row length that is not a multiple of the type's block falls back as
//   `pocket convert`
//     does (formats::StorageType): Q6_K -> Q8_0 (as llama.cpp), Q4_K -> Q4_0
//     (llama.cpp uses Q5_0, for which Pocket has no quantizer), then F16 when
//     not a multiple of 32;
//   - a tensor already in its target type is copied byte for byte (as
//   llama-quantize does).
// Metadata is copied in file order; general.file_type and
// general.quantization_version are set, and two provenance keys are added (or
// replaced): kParentSha256Key (the SHA-256 of the whole input file, lower-case
// hex) and kQuantizeTypeKey ("q4_k", ...). The output bytes depend only on the
// input bytes and the type: rows are independent, so any thread count writes
// the same file. Written atomically (base/file.h's AtomicFileWriter): on any
// failure nothing is left at the output path's temp name and an existing output
// file is untouched. Users: src/cli/quantize.cc; train (quantized checkpoints).
// Thread safety: free functions; QuantizeGguf uses its own thread pool.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace pocket::formats {

inline constexpr char kParentSha256Key[] = "pocket.parent_sha256";
inline constexpr char kQuantizeTypeKey[] = "pocket.quantize.type";

// The types `pocket quantize --type` accepts, by their command-line names, in
// that order: "q8_0", "q4_0", "q4_k", "q6_k".
const std::vector<std::pair<std::string, tensor::DType>> &QuantizeTypes();
// The DType for a --type name; nullopt for any other name.
std::optional<tensor::DType> QuantizeTypeFromName(std::string_view name);
// "q8_0, q4_0, q4_k, q6_k" (for messages).
std::string QuantizeTypeNames();

// The type tensor `name` of dims `ne` (ne[0] = row length) is stored in when
// `wanted` is requested (the rules at the top of this file).
tensor::DType QuantizeTargetType(std::string_view name, const std::vector<uint64_t> &ne,
                                 tensor::DType wanted);

struct QuantizeOptions {
  tensor::DType type = tensor::DType::kQ8_0;  // one of QuantizeTypes()
  size_t num_threads = 1;                     // 0: all cores; never changes the bytes
};

struct QuantizeReport {
  std::string source_sha256;  // lower-case hex of the input file
  size_t num_tensors = 0;
  size_t num_quantized = 0;                       // matrices stored in a quantized type
  size_t num_fallback = 0;                        // matrices stored in another type than requested
  std::map<std::string, size_t> tensors_by_type;  // DTypeName -> count, in the output
  uint64_t input_bytes = 0, output_bytes = 0;
};

// Reads the GGUF file `in_path`, writes the quantized model to `out_path`
// (which may be `in_path`). InvalidArgument for a type outside QuantizeTypes()
// or a non-finite weight (naming the tensor and row); the reader's errors
// (IOError/Corruption/NotSupported, naming `in_path`) for an input Pocket
// cannot read; IOError naming the path for a write failure.
Result<QuantizeReport> QuantizeGguf(const std::string &in_path, const std::string &out_path,
                                    const QuantizeOptions &options);

}  // namespace pocket::formats
