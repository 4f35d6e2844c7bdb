// GGUF v2/v3 model files: a validating reader over a memory map, and a byte-deterministic
// writer. Layout, little-endian (ggml docs/gguf.md):
//   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
//   | n_kv × (string key, u32 type, value)
//   | n_tensors × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml_type, u64 offset)
//   | zero padding to `general.alignment` (default 32) | tensor data
// string = u64 byte length + bytes (no terminator). Value types are GgufType; an array is
// u32 element type, u64 count, elements (arrays of arrays allowed). ne[0] is the row length;
// offsets are relative to the data section and multiples of the alignment. Version 1
// (u32 counts) is obsolete and refused; version 3 only added big-endian files, which are
// refused too (they read as a huge version number).
// Users: model (weights binding), tokenizer (vocab keys), train/registry (writing),
// `pocket inspect`, `pocket convert`, `pocket make-model`.
// Thread safety: GgufFile is immutable after Open()/FromBytes() and safe to read from any
// thread; copies share the mapping. GgufWriter is a plain single-threaded builder.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "tensor/dtype.h"
#include "tensor/tensor.h"

namespace pocket {
class MappedFile;
}  // namespace pocket

namespace pocket::formats {

enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};

// "u8", "string", "array", ... ; "?" for values outside the enum.
std::string_view GgufTypeName(GgufType t);

inline constexpr size_t kGgufDefaultAlignment = 32;

// One metadata value, decoded at Open() time. Scalars and strings are views into the
// file's bytes; arrays keep their element type and count, string arrays their views, and
// arrays of arrays their children. Valid while the GgufFile (or a copy) lives.
struct GgufValue {
  GgufType type = GgufType::kU8;
  // Scalars: the value's little-endian bytes. String: the string's bytes. Array: the
  // elements' bytes (for fixed-size element types).
  std::span<const std::byte> raw;
  // The whole encoded value as it follows the type field (length/count prefixes
  // included): lets a writer copy a value verbatim.
  std::span<const std::byte> encoded;
  // Arrays only.
  GgufType elem_type = GgufType::kU8;
  uint64_t count = 0;
  std::vector<std::string_view> strings;  // array of strings
  std::vector<GgufValue> items;           // array of arrays

  bool is_integer() const;
  bool is_float() const { return type == GgufType::kF32 || type == GgufType::kF64; }
  // Scalar accessors; REQUIRES: a scalar of a matching kind (checked by the getters).
  std::string_view str() const { return {reinterpret_cast<const char*>(raw.data()), raw.size()}; }
  // Integer scalars as the widest type; for kU64 above INT64_MAX, AsInt() is wrong (the
  // getters check).
  uint64_t AsUint() const;
  int64_t AsInt() const;
  double AsDouble() const;  // float or integer scalars
  bool AsBool() const { return raw[0] != std::byte{0}; }
  // Element i of a fixed-size numeric array as double / int64 (REQUIRES i < count).
  double ArrayDouble(uint64_t i) const;
  int64_t ArrayInt(uint64_t i) const;
  uint64_t ArrayUint(uint64_t i) const;
};

struct GgufKeyValue {
  std::string_view key;
  GgufValue value;
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> ne;  // ne[0] = row length; 0 to 4 dims as stored
  tensor::DType dtype;
  uint64_t offset;      // from the start of the data section
  uint64_t size_bytes;  // RowBytes(dtype, ne[0]) × ne[1] × ...
  uint32_t ggml_type = 0;  // the type id as stored (== dtype when supported)
  // False only with GgufOpenOptions::allow_unsupported_types for a ggml type Pocket does
  // not implement (Q5_K, IQ4_NL, ...); dtype is then meaningless (kF32).
  bool supported = true;
  uint64_t num_elements() const;
};

// ggml's name of a type id ("Q5_K", "IQ4_XS", ...), "?" when unknown.
std::string_view GgmlTypeName(uint32_t ggml_type);

struct GgufOpenOptions {
  // Accept tensors of known ggml types Pocket cannot compute with (for listing them in
  // `pocket inspect`); their TensorInfo::supported is false. Sizes and bounds are still
  // checked with ggml's block geometry.
  bool allow_unsupported_types = false;
};

class GgufFile {
 public:
  // Maps `path` and validates everything that can be checked without interpreting tensor
  // contents: header, every metadata value, tensor infos, alignment, bounds, overlaps.
  // IOError if the file cannot be read; NotSupported for version 1, versions > 3 and
  // tensor types Pocket does not implement; Corruption for anything malformed. Every
  // message starts with "gguf <path>:" and names the key or tensor. Never aborts, never
  // allocates from an unchecked length.
  static Result<GgufFile> Open(const std::string& path, GgufOpenOptions options = {});
  // Same validation over bytes held in memory (tests, fuzzing); `name` is used in messages.
  static Result<GgufFile> FromBytes(std::string bytes, std::string name,
                                    GgufOpenOptions options = {});

  uint32_t version() const { return version_; }
  size_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section
  uint64_t file_size() const { return bytes_.size(); }
  const std::string& path() const { return path_; }

  // Metadata in file order.
  const std::vector<GgufKeyValue>& metadata() const { return kvs_; }
  const GgufValue* Find(std::string_view key) const;
  bool Has(std::string_view key) const { return Find(key) != nullptr; }
  std::optional<GgufType> TypeOf(std::string_view key) const;

  // Typed getters. NotFound when the key is missing; InvalidArgument when it holds an
  // incompatible type or a value out of range. Messages name the file and the key.
  Result<std::string> GetString(std::string_view key) const;
  Result<uint64_t> GetUint(std::string_view key) const;  // any integer type, value >= 0
  Result<int64_t> GetInt(std::string_view key) const;    // any integer type that fits
  Result<double> GetFloat(std::string_view key) const;   // f32, f64, or any integer
  Result<bool> GetBool(std::string_view key) const;
  // Views into the file's bytes; valid while *this (or a copy) lives.
  Result<std::vector<std::string_view>> GetStringArray(std::string_view key) const;
  Result<std::vector<float>> GetFloatArray(std::string_view key) const;   // f32/f64/ints
  Result<std::vector<int64_t>> GetIntArray(std::string_view key) const;   // integer types

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* FindTensor(std::string_view name) const;
  // The tensor's bytes inside the mapping; valid while *this (or a copy) lives.
  // REQUIRES: `t` is one of tensors().
  std::span<const std::byte> TensorBytes(const TensorInfo& t) const;
  // The tensor as a TensorView over the mapping (missing dims are 1); same lifetime.
  // REQUIRES: t.supported.
  tensor::TensorView View(const TensorInfo& t) const;
  // Lets the OS drop the resident pages of [p, p + n) when the file is memory-mapped (they
  // are read back from the file if touched); no-op for FromBytes files. For tensors whose
  // bytes were copied into another layout.
  void ReleasePages(const void* p, size_t n) const;

 private:
  friend class GgufParser;
  std::shared_ptr<const void> holder_;  // owns the mapping or the in-memory bytes
  const MappedFile* mapping_ = nullptr;  // holder_'s mapping when the file is mapped
  std::span<const std::byte> bytes_;
  std::string path_;
  uint32_t version_ = 0;
  size_t alignment_ = kGgufDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<GgufKeyValue> kvs_;
  std::map<std::string_view, size_t, std::less<>> kv_index_;  // views into the bytes
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
};

// Builds a GGUF v3 file. Deterministic: keys and tensors are written in insertion order
// (setting an existing key replaces its value in place), padding is zeros, nothing depends
// on time or addresses. Tensor data is aligned to `general.alignment` if set (default 32).
class GgufWriter {
 public:
  void SetUint8(std::string key, uint8_t v);
  void SetInt8(std::string key, int8_t v);
  void SetUint16(std::string key, uint16_t v);
  void SetInt16(std::string key, int16_t v);
  void SetUint32(std::string key, uint32_t v);
  void SetInt32(std::string key, int32_t v);
  void SetUint64(std::string key, uint64_t v);
  void SetInt64(std::string key, int64_t v);
  void SetFloat32(std::string key, float v);
  void SetFloat64(std::string key, double v);
  void SetBool(std::string key, bool v);
  void SetString(std::string key, std::string v);
  void SetStringArray(std::string key, const std::vector<std::string>& v);
  void SetFloat32Array(std::string key, const std::vector<float>& v);
  void SetInt32Array(std::string key, const std::vector<int32_t>& v);
  void SetUint32Array(std::string key, const std::vector<uint32_t>& v);
  void SetInt64Array(std::string key, const std::vector<int64_t>& v);
  // Any value, given its type and its encoding as it follows the type field (e.g. a
  // GgufValue::encoded from another file, or a hand-built nested array).
  void SetEncoded(std::string key, GgufType type, std::string encoded);
  void SetValue(std::string key, const GgufValue& v);
  // Sets general.alignment (u32). REQUIRES: a nonzero power of two.
  void SetAlignment(uint32_t alignment);
  bool Has(std::string_view key) const;
  void Remove(std::string_view key);

  // InvalidArgument for a duplicate or empty/too long (>= 64 bytes, ggml's limit) name,
  // 0 or > 4 dims, ne[0] not a multiple of the block size, or bytes.size() not matching.
  Status AddTensor(std::string name, std::vector<uint64_t> ne, tensor::DType dtype,
                   std::string bytes);
  // Same, but the bytes are produced by `produce` while writing (one tensor in memory at a
  // time); the result must have exactly the tensor's size.
  Status AddTensorLazy(std::string name, std::vector<uint64_t> ne, tensor::DType dtype,
                       std::function<Result<std::string>()> produce);
  size_t num_tensors() const { return tensors_.size(); }

  // Writes the file through AtomicFileWriter (temp file, fsync, rename).
  Status Write(const std::string& path) const;
  // The whole file in memory (tests, small files).
  Result<std::string> Serialize() const;

 private:
  struct Entry {
    std::string key;
    GgufType type;
    std::string encoded;
  };
  struct PendingTensor {
    std::string name;
    std::vector<uint64_t> ne;
    tensor::DType dtype;
    uint64_t size_bytes;
    std::string bytes;
    std::function<Result<std::string>()> produce;
  };
  void Set(std::string key, GgufType type, std::string encoded);
  Status CheckTensor(const std::string& name, const std::vector<uint64_t>& ne,
                     tensor::DType dtype, uint64_t* size_bytes) const;
  size_t Alignment() const;
  std::string Header() const;  // everything before the data section, padding included
  Status WriteTo(const std::function<Status(std::string_view)>& sink) const;

  std::vector<Entry> entries_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace pocket::formats
