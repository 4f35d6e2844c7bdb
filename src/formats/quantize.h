// Re-quantizing a GGUF model file (`pocket quantize`): every weight matrix of a file Pocket
// can read (F32/F16/BF16 or already quantized) is decoded to F32 and encoded again in one
// of the types Pocket has quantizers for (Q8_0, Q4_0, Q4_K, Q6_K) with tensor::QuantizeRow,
// which gives the same bits as ggml's quantize_row_*_ref: wherever Pocket and llama-quantize
// (without an importance matrix) pick the same type for a tensor, its bytes are the same.
// Which tensor gets which type follows llama-quantize (src/llama-quant.cpp):
//   - quantized: tensors of 2 or more dims whose name ends in "weight" and does not contain
//     "_norm.weight" (tensor_allows_quantization); everything else (norms, biases,
//     rope_freqs) is stored F32;
//   - the output matrix (output.weight, or token_embd.weight when the file has no
//     output.weight: tied embeddings) gets Q6_K unless the type is Q8_0, as llama-quantize
//     does for every type it is asked for; `pure` turns that off (llama-quantize --pure):
//     every matrix then gets the type asked for;
//   - a row length that is not a multiple of the type's block falls back as `pocket
//     convert` does (formats::StorageType): Q6_K -> Q8_0 (as llama.cpp), Q4_K -> Q4_0
//     (llama.cpp uses Q5_0, for which Pocket has no quantizer), then F16 when not a
//     multiple of 32 (as llama.cpp). llama-quantize --pure has no fallback (it fails);
//   - not reproduced: llama-quantize's per-layer mixes of its _S/_M types (its `Q4_K` is
//     Q4_K_M, which puts Q6_K and Q5_K in some attn_v/ffn_down layers; Pocket has no Q5_K
//     quantizer): `q4_k` here is Q4_K throughout, written as file type 14 (MOSTLY_Q4_K_S);
//     with --pure the two agree;
//   - a tensor already in its target type is copied byte for byte (as llama-quantize does).
// Metadata is copied in file order; general.file_type and general.quantization_version are
// set, and two provenance keys are added (or replaced): kParentSha256Key (the SHA-256 of the
// whole input file, lower-case hex) and kQuantizeTypeKey ("q4_k", "q4_k pure", ...).
// The output bytes depend only on the input bytes and the options: rows are independent, so
// any thread count writes the same file. Written atomically (GgufWriter::Write: temp file in
// the same folder, fsync, rename): on any failure no temp file is left and an existing
// output file is untouched.
// Users: src/cli/quantize.cc; train (quantized checkpoints). Thread safety: free functions;
// QuantizeGguf runs its own thread pool.
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

// The types `pocket quantize --type` accepts, by their command-line names, in that order:
// "q8_0", "q4_0", "q4_k", "q6_k".
const std::vector<std::pair<std::string, tensor::DType>>& QuantizeTypes();
// The DType for a --type name; nullopt for any other name.
std::optional<tensor::DType> QuantizeTypeFromName(std::string_view name);
// "q8_0, q4_0, q4_k, q6_k" (for messages).
std::string QuantizeTypeNames();

struct QuantizeOptions {
  tensor::DType type = tensor::DType::kQ8_0;  // one of QuantizeTypes()
  bool pure = false;       // no Q6_K for the output matrix (llama-quantize --pure)
  size_t num_threads = 1;  // 0: all cores; never changes the bytes
};

// The type tensor `name` of dims `ne` (ne[0] = row length) is stored in (the rules at the
// top of this file). `has_output` says whether the file holds output.weight (when it does
// not, token_embd.weight is the output matrix).
tensor::DType QuantizeTargetType(std::string_view name, const std::vector<uint64_t>& ne,
                                 const QuantizeOptions& options, bool has_output);

struct QuantizeReport {
  std::string source_sha256;  // lower-case hex of the input file
  size_t num_tensors = 0;
  size_t num_quantized = 0;  // matrices stored in a quantized type
  size_t num_fallback = 0;   // matrices whose row length forced a fallback type
  std::map<std::string, size_t> tensors_by_type;  // DTypeName -> count, in the output
  uint64_t input_bytes = 0, output_bytes = 0;
};

// Reads the GGUF file `in_path`, writes the quantized model to `out_path` (which may be
// `in_path`). InvalidArgument for a type outside QuantizeTypes() or a non-finite weight
// (naming the tensor and row); the reader's errors (IOError/Corruption/NotSupported, naming
// `in_path`) for an input Pocket cannot read; IOError naming the path for a write failure.
Result<QuantizeReport> QuantizeGguf(const std::string& in_path, const std::string& out_path,
                                    const QuantizeOptions& options);

}  // namespace pocket::formats
