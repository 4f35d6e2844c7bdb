// Reader for Hugging Face .safetensors files (used by `pocket convert`). Layout:
//   u64 little-endian header length N | N bytes of JSON | tensor data
// JSON: {"<name>": {"dtype": "F32"|"F16"|"BF16"|..., "shape": [d0, d1, ...],
//        "data_offsets": [begin, end]}, ..., "__metadata__": {"k": "v", ...}}
// Offsets are relative to the first byte after the header; shapes are PyTorch order
// (outermost first, so a Linear weight is [out_features, in_features]).
// Validation: header length within the file, JSON well-formed, every tensor's dtype known,
// shape × element size == end − begin, end within the file, no two tensors overlapping.
// Only F32, F16 and BF16 tensors are supported (NotSupported otherwise).
// Thread safety: immutable after Open(); copies share the mapping.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"

namespace pocket::formats {

struct SafetensorsTensor {
  std::string name;
  tensor::DType dtype;          // kF32, kF16 or kBF16
  std::vector<uint64_t> shape;  // PyTorch order
  uint64_t offset;              // from the start of the data section
  uint64_t size_bytes;
  uint64_t num_elements() const;
};

class SafetensorsFile {
 public:
  // IOError if unreadable; Corruption for a malformed file; NotSupported for tensors of
  // other dtypes. Messages start with "safetensors <path>:".
  static Result<SafetensorsFile> Open(const std::string& path);
  static Result<SafetensorsFile> FromBytes(std::string bytes, std::string name);

  const std::vector<SafetensorsTensor>& tensors() const { return tensors_; }  // sorted by name
  const SafetensorsTensor* Find(std::string_view name) const;
  std::span<const std::byte> TensorBytes(const SafetensorsTensor& t) const;
  // The tensor converted to float32 (exact for all three dtypes).
  std::vector<float> ReadF32(const SafetensorsTensor& t) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::string& path() const { return path_; }

 private:
  Status Parse();
  std::shared_ptr<const void> holder_;
  std::span<const std::byte> bytes_;
  uint64_t data_offset_ = 0;
  std::string path_;
  std::vector<SafetensorsTensor> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace pocket::formats
