// GGUF reader and writer. The reader checks every length against the bytes that remain
// before using it, so a corrupt or hostile file yields a Status, never a read past the
// end or an allocation sized by the file (see gguf_fuzz.cc).
#include "formats/gguf.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "base/file.h"
#include "tensor/dtype.h"

namespace pocket::formats {

std::string_view GgufTypeName(GgufType t) {
  switch (t) {
    case GgufType::kU8: return "u8";
    case GgufType::kI8: return "i8";
    case GgufType::kU16: return "u16";
    case GgufType::kI16: return "i16";
    case GgufType::kU32: return "u32";
    case GgufType::kI32: return "i32";
    case GgufType::kF32: return "f32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kU64: return "u64";
    case GgufType::kI64: return "i64";
    case GgufType::kF64: return "f64";
  }
  return "?";
}

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are refused
constexpr size_t kMaxDims = 4;

// Bytes of one scalar of `t`, 0 for string/array (variable) and unknown types.
size_t ScalarSize(GgufType t) {
  switch (t) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kBool: return 1;
    case GgufType::kU16: case GgufType::kI16: return 2;
    case GgufType::kU32: case GgufType::kI32: case GgufType::kF32: return 4;
    case GgufType::kU64: case GgufType::kI64: case GgufType::kF64: return 8;
    case GgufType::kString: case GgufType::kArray: return 0;
  }
  return 0;
}

bool KnownType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kF64); }

template <typename T>
T Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Every ggml type id with its name and block geometry (ggml's type_traits: elements per
// block, bytes per block), so that files with types Pocket cannot compute with can still be
// bounds-checked and listed by `pocket inspect`. Ids 4, 5 (removed Q4_2/Q4_3) and 31..33,
// 36..38 (removed/experimental) are absent.
struct GgmlTypeInfo {
  uint32_t id;
  const char* name;
  uint32_t block_elements;
  uint32_t block_bytes;
};
constexpr GgmlTypeInfo kGgmlTypes[] = {
    {0, "F32", 1, 4},          {1, "F16", 1, 2},          {2, "Q4_0", 32, 18},
    {3, "Q4_1", 32, 20},       {6, "Q5_0", 32, 22},       {7, "Q5_1", 32, 24},
    {8, "Q8_0", 32, 34},       {9, "Q8_1", 32, 36},       {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110},    {12, "Q4_K", 256, 144},    {13, "Q5_K", 256, 176},
    {14, "Q6_K", 256, 210},    {15, "Q8_K", 256, 292},    {16, "IQ2_XXS", 256, 66},
    {17, "IQ2_XS", 256, 74},   {18, "IQ3_XXS", 256, 98},  {19, "IQ1_S", 256, 50},
    {20, "IQ4_NL", 32, 18},    {21, "IQ3_S", 256, 110},   {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136},  {24, "I8", 1, 1},          {25, "I16", 1, 2},
    {26, "I32", 1, 4},         {27, "I64", 1, 8},         {28, "F64", 1, 8},
    {29, "IQ1_M", 256, 56},    {30, "BF16", 1, 2},        {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66},    {39, "MXFP4", 32, 17},
};

const GgmlTypeInfo* FindGgmlType(uint32_t id) {
  for (const auto& t : kGgmlTypes) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

}  // namespace

bool GgufValue::is_integer() const {
  switch (type) {
    case GgufType::kU8: case GgufType::kI8: case GgufType::kU16: case GgufType::kI16:
    case GgufType::kU32: case GgufType::kI32: case GgufType::kU64: case GgufType::kI64:
      return true;
    default:
      return false;
  }
}

namespace {
uint64_t ElemUint(GgufType t, const std::byte* p) {
  switch (t) {
    case GgufType::kU8: case GgufType::kBool: return Load<uint8_t>(p);
    case GgufType::kI8: return static_cast<uint64_t>(static_cast<int64_t>(Load<int8_t>(p)));
    case GgufType::kU16: return Load<uint16_t>(p);
    case GgufType::kI16: return static_cast<uint64_t>(static_cast<int64_t>(Load<int16_t>(p)));
    case GgufType::kU32: return Load<uint32_t>(p);
    case GgufType::kI32: return static_cast<uint64_t>(static_cast<int64_t>(Load<int32_t>(p)));
    case GgufType::kU64: return Load<uint64_t>(p);
    case GgufType::kI64: return static_cast<uint64_t>(Load<int64_t>(p));
    case GgufType::kF32: return static_cast<uint64_t>(Load<float>(p));
    case GgufType::kF64: return static_cast<uint64_t>(Load<double>(p));
    default: return 0;
  }
}
bool IsSigned(GgufType t) {
  return t == GgufType::kI8 || t == GgufType::kI16 || t == GgufType::kI32 ||
         t == GgufType::kI64;
}
double ElemDouble(GgufType t, const std::byte* p) {
  if (t == GgufType::kF32) return Load<float>(p);
  if (t == GgufType::kF64) return Load<double>(p);
  if (IsSigned(t)) return static_cast<double>(static_cast<int64_t>(ElemUint(t, p)));
  return static_cast<double>(ElemUint(t, p));
}
}  // namespace

uint64_t GgufValue::AsUint() const { return ElemUint(type, raw.data()); }
int64_t GgufValue::AsInt() const { return static_cast<int64_t>(ElemUint(type, raw.data())); }
double GgufValue::AsDouble() const { return ElemDouble(type, raw.data()); }
double GgufValue::ArrayDouble(uint64_t i) const {
  return ElemDouble(elem_type, raw.data() + i * ScalarSize(elem_type));
}
int64_t GgufValue::ArrayInt(uint64_t i) const {
  return static_cast<int64_t>(ElemUint(elem_type, raw.data() + i * ScalarSize(elem_type)));
}
uint64_t GgufValue::ArrayUint(uint64_t i) const {
  return ElemUint(elem_type, raw.data() + i * ScalarSize(elem_type));
}

uint64_t TensorInfo::num_elements() const {
  uint64_t n = 1;
  for (uint64_t d : ne) n *= d;
  return n;
}

// ---------------------------------------------------------------------------- reader

class GgufParser {
 public:
  GgufParser(GgufFile& f, GgufOpenOptions options)
      : f_(f), data_(f.bytes_), size_(f.bytes_.size()), options_(options) {}

  Status Parse() {
    if (size_ < 4) return Err("file is " + std::to_string(size_) + " bytes, too short for a GGUF header");
    if (Load<uint32_t>(data_.data()) != kMagic) return Err("bad magic (not a GGUF file)");
    pos_ = 4;
    uint32_t version;
    PK_RETURN_IF_ERROR(ReadU32(&version, "version"));
    if (version == 1) return NotSupported("GGUF version 1 is obsolete and not supported");
    if (version == 0 || version > 3) {
      return NotSupported("unsupported GGUF version " + std::to_string(version) +
                          (version > 0xffff ? " (a big-endian file?)" : ""));
    }
    f_.version_ = version;
    uint64_t n_tensors, n_kv;
    PK_RETURN_IF_ERROR(ReadU64(&n_tensors, "tensor count"));
    PK_RETURN_IF_ERROR(ReadU64(&n_kv, "metadata count"));
    // Each key/value takes at least 8 (key length) + 4 (type) + 1 bytes, each tensor info
    // at least 8 + 4 + 4 + 8: bound the counts by what the file can hold before reserving.
    if (n_kv > Remaining() / 13) {
      return Err("metadata count " + std::to_string(n_kv) + " does not fit in the file");
    }
    if (n_tensors > Remaining() / 24) {
      return Err("tensor count " + std::to_string(n_tensors) + " does not fit in the file");
    }
    f_.kvs_.reserve(n_kv);
    for (uint64_t i = 0; i < n_kv; ++i) {
      std::string_view key;
      PK_RETURN_IF_ERROR(ReadString(&key, "key of metadata entry " + std::to_string(i)));
      uint32_t type;
      PK_RETURN_IF_ERROR(ReadU32(&type, "type of key '" + std::string(key) + "'"));
      GgufValue value;
      PK_RETURN_IF_ERROR(ReadValue(type, &value, key, 0));
      if (!f_.kv_index_.emplace(key, f_.kvs_.size()).second) {
        return Err("duplicate key '" + std::string(key) + "'");
      }
      f_.kvs_.push_back({key, std::move(value)});
    }
    PK_RETURN_IF_ERROR(ReadAlignment());
    f_.tensors_.reserve(n_tensors);
    for (uint64_t i = 0; i < n_tensors; ++i) PK_RETURN_IF_ERROR(ReadTensorInfo(i));
    const uint64_t align = f_.alignment_;
    const uint64_t data_offset = (pos_ + align - 1) / align * align;  // pos_ < 2^63: no overflow
    f_.data_offset_ = data_offset;
    return CheckTensorData();
  }

 private:
  Status Err(const std::string& what) const {
    return Status::Corruption("gguf " + f_.path_ + ": " + what);
  }
  Status NotSupported(const std::string& what) const {
    return Status::NotSupported("gguf " + f_.path_ + ": " + what);
  }
  uint64_t Remaining() const { return size_ - pos_; }
  Status Truncated(const std::string& what) const {
    return Err("truncated: " + what + " at offset " + std::to_string(pos_) +
               " runs past the end of the file (" + std::to_string(size_) + " bytes)");
  }
  Status Need(uint64_t n, const std::string& what) const {
    if (n > Remaining()) return Truncated(what);
    return Status::Ok();
  }
  Status ReadU32(uint32_t* v, const std::string& what) {
    PK_RETURN_IF_ERROR(Need(4, what));
    *v = Load<uint32_t>(data_.data() + pos_);
    pos_ += 4;
    return Status::Ok();
  }
  Status ReadU64(uint64_t* v, const std::string& what) {
    PK_RETURN_IF_ERROR(Need(8, what));
    *v = Load<uint64_t>(data_.data() + pos_);
    pos_ += 8;
    return Status::Ok();
  }
  Status ReadString(std::string_view* s, const std::string& what) {
    return ReadStringLazy(s, [&] { return what; });
  }
  // `what()` describes the string for an error message; it is only called on failure, so
  // the hot loop over a vocabulary's strings builds no message strings.
  template <typename What>
  Status ReadStringLazy(std::string_view* s, const What& what) {
    if (Remaining() < 8) return Truncated(what() + " (length)");
    const uint64_t len = Load<uint64_t>(data_.data() + pos_);
    pos_ += 8;
    if (len > Remaining()) {
      return Err(what() + ": string length " + std::to_string(len) + " at offset " +
                 std::to_string(pos_ - 8) + " runs past the end of the file (" +
                 std::to_string(size_) + " bytes)");
    }
    *s = std::string_view(reinterpret_cast<const char*>(data_.data() + pos_), len);
    pos_ += len;
    return Status::Ok();
  }

  Status ReadValue(uint32_t type, GgufValue* out, std::string_view key, int depth) {
    const std::string k(key);
    if (!KnownType(type)) {
      return Err("key '" + k + "' has unknown value type " + std::to_string(type));
    }
    out->type = static_cast<GgufType>(type);
    const uint64_t start = pos_;
    if (out->type == GgufType::kString) {
      std::string_view s;
      PK_RETURN_IF_ERROR(ReadString(&s, "value of key '" + k + "'"));
      out->raw = {reinterpret_cast<const std::byte*>(s.data()), s.size()};
    } else if (out->type == GgufType::kArray) {
      if (depth >= kMaxArrayDepth) {
        return Err("key '" + k + "': arrays nested deeper than " + std::to_string(kMaxArrayDepth));
      }
      uint32_t elem;
      PK_RETURN_IF_ERROR(ReadU32(&elem, "array element type of key '" + k + "'"));
      if (!KnownType(elem)) {
        return Err("key '" + k + "' is an array of unknown type " + std::to_string(elem));
      }
      out->elem_type = static_cast<GgufType>(elem);
      PK_RETURN_IF_ERROR(ReadU64(&out->count, "array length of key '" + k + "'"));
      const uint64_t count = out->count;
      const size_t elem_size = ScalarSize(out->elem_type);
      const uint64_t min_elem = elem_size ? elem_size : (elem == 8 ? 8 : 12);
      if (count > Remaining() / min_elem) {
        return Err("key '" + k + "': array of " + std::to_string(count) + " " +
                   std::string(GgufTypeName(out->elem_type)) + " at offset " +
                   std::to_string(pos_) + " runs past the end of the file (" +
                   std::to_string(size_) + " bytes)");
      }
      const uint64_t elems_start = pos_;
      if (elem_size) {
        if (out->elem_type == GgufType::kBool) {
          for (uint64_t i = 0; i < count; ++i) {
            if (static_cast<uint8_t>(data_[pos_ + i]) > 1) {
              return Err("key '" + k + "': bool array element " + std::to_string(i) + " is not 0 or 1");
            }
          }
        }
        pos_ += count * elem_size;
      } else if (out->elem_type == GgufType::kString) {
        out->strings.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          std::string_view s;
          PK_RETURN_IF_ERROR(ReadStringLazy(
              &s, [&] { return "element " + std::to_string(i) + " of key '" + k + "'"; }));
          out->strings.push_back(s);
        }
      } else {  // array of arrays
        out->items.reserve(count);
        for (uint64_t i = 0; i < count; ++i) {
          GgufValue item;
          PK_RETURN_IF_ERROR(ReadValue(static_cast<uint32_t>(GgufType::kArray), &item,
                                       k + "[" + std::to_string(i) + "]", depth + 1));
          out->items.push_back(std::move(item));
        }
      }
      out->raw = data_.subspan(elems_start, pos_ - elems_start);
    } else {
      const size_t n = ScalarSize(out->type);
      PK_RETURN_IF_ERROR(Need(n, "value of key '" + k + "'"));
      out->raw = data_.subspan(pos_, n);
      if (out->type == GgufType::kBool && static_cast<uint8_t>(data_[pos_]) > 1) {
        return Err("key '" + k + "': bool value " + std::to_string(static_cast<int>(data_[pos_])) + " is not 0 or 1");
      }
      pos_ += n;
    }
    out->encoded = data_.subspan(start, pos_ - start);
    return Status::Ok();
  }

  Status ReadAlignment() {
    auto it = f_.kv_index_.find(std::string_view("general.alignment"));
    if (it == f_.kv_index_.end()) return Status::Ok();
    const GgufValue& v = f_.kvs_[it->second].value;
    if (!v.is_integer()) {
      return Err("general.alignment has type " + std::string(GgufTypeName(v.type)) +
                 ", expected an unsigned integer");
    }
    const uint64_t a = v.AsUint();
    if (IsSigned(v.type) && v.AsInt() < 0) return Err("general.alignment is negative");
    if (a == 0 || !std::has_single_bit(a) || a > (uint64_t{1} << 30)) {
      return Err("general.alignment " + std::to_string(a) + " is not a power of two in [1, 2^30]");
    }
    f_.alignment_ = static_cast<size_t>(a);
    return Status::Ok();
  }

  Status ReadTensorInfo(uint64_t index) {
    std::string_view name;
    PK_RETURN_IF_ERROR(ReadString(&name, "name of tensor " + std::to_string(index)));
    const std::string n(name);
    uint32_t n_dims;
    PK_RETURN_IF_ERROR(ReadU32(&n_dims, "dimension count of tensor '" + n + "'"));
    if (n_dims > kMaxDims) {
      return Err("tensor '" + n + "' has " + std::to_string(n_dims) + " dimensions (at most 4)");
    }
    TensorInfo t;
    t.name = n;
    t.ne.resize(n_dims);
    for (uint32_t d = 0; d < n_dims; ++d) {
      PK_RETURN_IF_ERROR(ReadU64(&t.ne[d], "dimension " + std::to_string(d) + " of tensor '" + n + "'"));
      if (t.ne[d] > static_cast<uint64_t>(INT64_MAX)) {
        return Err("tensor '" + n + "' dimension " + std::to_string(d) + " is " + std::to_string(t.ne[d]));
      }
    }
    uint32_t type;
    PK_RETURN_IF_ERROR(ReadU32(&type, "type of tensor '" + n + "'"));
    PK_RETURN_IF_ERROR(ReadU64(&t.offset, "data offset of tensor '" + n + "'"));
    t.ggml_type = type;
    const GgmlTypeInfo* info = FindGgmlType(type);
    if (!info) return Err("tensor '" + n + "' has unknown ggml type " + std::to_string(type));
    const auto dtype = tensor::DTypeFromGgml(type);
    if (!dtype && !options_.allow_unsupported_types) {
      return NotSupported("tensor '" + n + "' has ggml type " + info->name + " (" +
                          std::to_string(type) + "), which Pocket does not support");
    }
    t.supported = dtype.has_value();
    t.dtype = dtype.value_or(tensor::DType::kF32);
    const uint64_t row_len = n_dims ? t.ne[0] : 1;
    const uint64_t block = info->block_elements;
    if (row_len % block != 0) {
      return Err("tensor '" + n + "' (" + info->name + ") has row length " +
                 std::to_string(row_len) + ", not a multiple of the block size " +
                 std::to_string(block));
    }
    // size = row_len / block * block_bytes * ne[1] * ne[2] * ne[3], each step checked.
    uint64_t size = row_len / block;
    auto mul = [&](uint64_t m) {
      if (m != 0 && size > UINT64_MAX / m) return false;
      size *= m;
      return true;
    };
    bool ok = mul(info->block_bytes);
    for (uint32_t d = 1; d < n_dims && ok; ++d) ok = mul(t.ne[d]);
    if (!ok || size > (uint64_t{1} << 62)) {
      return Err("tensor '" + n + "' size overflows (dimensions too large)");
    }
    t.size_bytes = size;
    if (t.offset % f_.alignment_ != 0) {
      return Err("tensor '" + n + "' data offset " + std::to_string(t.offset) +
                 " is not a multiple of the alignment " + std::to_string(f_.alignment_));
    }
    if (!f_.tensor_index_.emplace(t.name, f_.tensors_.size()).second) {
      return Err("duplicate tensor name '" + n + "'");
    }
    f_.tensors_.push_back(std::move(t));
    return Status::Ok();
  }

  Status CheckTensorData() {
    const uint64_t base = f_.data_offset_;
    const uint64_t avail = base <= size_ ? size_ - base : 0;
    std::vector<size_t> order(f_.tensors_.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    for (const TensorInfo& t : f_.tensors_) {
      if (t.offset > avail || t.size_bytes > avail - t.offset) {
        return Err("tensor '" + t.name + "' data [" + std::to_string(base + t.offset) + ", " +
                   std::to_string(base + t.offset + t.size_bytes) + ") ends past the end of the file (" +
                   std::to_string(size_) + " bytes)");
      }
    }
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return f_.tensors_[a].offset < f_.tensors_[b].offset;
    });
    for (size_t i = 1; i < order.size(); ++i) {
      const TensorInfo& prev = f_.tensors_[order[i - 1]];
      const TensorInfo& cur = f_.tensors_[order[i]];
      if (prev.size_bytes > 0 && cur.size_bytes > 0 && prev.offset + prev.size_bytes > cur.offset) {
        return Err("tensor '" + cur.name + "' data overlaps tensor '" + prev.name + "'");
      }
    }
    return Status::Ok();
  }

  GgufFile& f_;
  std::span<const std::byte> data_;
  uint64_t size_;
  GgufOpenOptions options_;
  uint64_t pos_ = 0;
};

std::string_view GgmlTypeName(uint32_t ggml_type) {
  const GgmlTypeInfo* info = FindGgmlType(ggml_type);
  return info ? info->name : "?";
}

Result<GgufFile> GgufFile::Open(const std::string& path, GgufOpenOptions options) {
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return mapped.status();
  auto holder = std::make_shared<MappedFile>(std::move(mapped).value());
  GgufFile f;
  f.bytes_ = holder->bytes();
  f.mapping_ = holder.get();
  f.holder_ = std::move(holder);
  f.path_ = path;
  PK_RETURN_IF_ERROR(GgufParser(f, options).Parse());
  return f;
}

void GgufFile::ReleasePages(const void* p, size_t n) const {
  if (mapping_ != nullptr) mapping_->Release(p, n);
}

Result<GgufFile> GgufFile::FromBytes(std::string bytes, std::string name,
                                     GgufOpenOptions options) {
  auto holder = std::make_shared<const std::string>(std::move(bytes));
  GgufFile f;
  f.bytes_ = {reinterpret_cast<const std::byte*>(holder->data()), holder->size()};
  f.holder_ = std::move(holder);
  f.path_ = std::move(name);
  PK_RETURN_IF_ERROR(GgufParser(f, options).Parse());
  return f;
}

const GgufValue* GgufFile::Find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kvs_[it->second].value;
}

std::optional<GgufType> GgufFile::TypeOf(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return std::nullopt;
  return v->type;
}

namespace {
Status Missing(const std::string& path, std::string_view key) {
  return Status::NotFound("gguf " + path + ": key '" + std::string(key) + "' not found");
}
Status WrongType(const std::string& path, std::string_view key, const GgufValue& v,
                 std::string_view wanted) {
  std::string got(GgufTypeName(v.type));
  if (v.type == GgufType::kArray) got = "array of " + std::string(GgufTypeName(v.elem_type));
  return Status::InvalidArgument("gguf " + path + ": key '" + std::string(key) + "' is " + got +
                                 ", expected " + std::string(wanted));
}
}  // namespace

Result<std::string> GgufFile::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufType::kString) return WrongType(path_, key, *v, "string");
  return std::string(v->str());
}

Result<uint64_t> GgufFile::GetUint(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (!v->is_integer()) return WrongType(path_, key, *v, "an unsigned integer");
  if (IsSigned(v->type) && v->AsInt() < 0) {
    return Status::InvalidArgument("gguf " + path_ + ": key '" + std::string(key) +
                                   "' is negative (" + std::to_string(v->AsInt()) + ")");
  }
  return v->AsUint();
}

Result<int64_t> GgufFile::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (!v->is_integer()) return WrongType(path_, key, *v, "an integer");
  if (v->type == GgufType::kU64 && v->AsUint() > static_cast<uint64_t>(INT64_MAX)) {
    return Status::InvalidArgument("gguf " + path_ + ": key '" + std::string(key) +
                                   "' does not fit in int64");
  }
  return v->AsInt();
}

Result<double> GgufFile::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (!v->is_integer() && !v->is_float()) return WrongType(path_, key, *v, "a number");
  return v->AsDouble();
}

Result<bool> GgufFile::GetBool(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufType::kBool) return WrongType(path_, key, *v, "bool");
  return v->AsBool();
}

Result<std::vector<std::string_view>> GgufFile::GetStringArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufType::kArray || v->elem_type != GgufType::kString) {
    return WrongType(path_, key, *v, "array of string");
  }
  return v->strings;
}

Result<std::vector<float>> GgufFile::GetFloatArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  if (v->type != GgufType::kArray || ScalarSize(v->elem_type) == 0 ||
      v->elem_type == GgufType::kBool) {
    return WrongType(path_, key, *v, "array of numbers");
  }
  std::vector<float> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) out[i] = static_cast<float>(v->ArrayDouble(i));
  return out;
}

Result<std::vector<int64_t>> GgufFile::GetIntArray(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (!v) return Missing(path_, key);
  GgufValue probe;
  probe.type = v->elem_type;
  if (v->type != GgufType::kArray || !probe.is_integer()) {
    return WrongType(path_, key, *v, "array of integers");
  }
  std::vector<int64_t> out(v->count);
  for (uint64_t i = 0; i < v->count; ++i) {
    if (v->elem_type == GgufType::kU64 && v->ArrayUint(i) > static_cast<uint64_t>(INT64_MAX)) {
      return Status::InvalidArgument("gguf " + path_ + ": key '" + std::string(key) +
                                     "' element " + std::to_string(i) + " does not fit in int64");
    }
    out[i] = v->ArrayInt(i);
  }
  return out;
}

const TensorInfo* GgufFile::FindTensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

std::span<const std::byte> GgufFile::TensorBytes(const TensorInfo& t) const {
  return bytes_.subspan(data_offset_ + t.offset, t.size_bytes);
}

tensor::TensorView GgufFile::View(const TensorInfo& t) const {
  tensor::TensorView v;
  v.dtype = t.dtype;
  for (size_t d = 0; d < t.ne.size() && d < 4; ++d) v.ne[d] = static_cast<int64_t>(t.ne[d]);
  v.data = TensorBytes(t).data();
  return v;
}

// ---------------------------------------------------------------------------- writer

namespace {
template <typename T>
std::string Encode(T v) {
  std::string s(sizeof(T), '\0');
  std::memcpy(s.data(), &v, sizeof(T));
  return s;
}
void AppendString(std::string* out, std::string_view s) {
  out->append(Encode<uint64_t>(s.size()));
  out->append(s);
}
template <typename T>
std::string EncodeArray(GgufType elem, const std::vector<T>& v) {
  std::string s = Encode<uint32_t>(static_cast<uint32_t>(elem)) + Encode<uint64_t>(v.size());
  for (const T& x : v) s.append(Encode<T>(x));
  return s;
}
}  // namespace

void GgufWriter::Set(std::string key, GgufType type, std::string encoded) {
  for (Entry& e : entries_) {
    if (e.key == key) {
      e.type = type;
      e.encoded = std::move(encoded);
      return;
    }
  }
  entries_.push_back({std::move(key), type, std::move(encoded)});
}

void GgufWriter::SetUint8(std::string key, uint8_t v) { Set(std::move(key), GgufType::kU8, Encode(v)); }
void GgufWriter::SetInt8(std::string key, int8_t v) { Set(std::move(key), GgufType::kI8, Encode(v)); }
void GgufWriter::SetUint16(std::string key, uint16_t v) { Set(std::move(key), GgufType::kU16, Encode(v)); }
void GgufWriter::SetInt16(std::string key, int16_t v) { Set(std::move(key), GgufType::kI16, Encode(v)); }
void GgufWriter::SetUint32(std::string key, uint32_t v) { Set(std::move(key), GgufType::kU32, Encode(v)); }
void GgufWriter::SetInt32(std::string key, int32_t v) { Set(std::move(key), GgufType::kI32, Encode(v)); }
void GgufWriter::SetUint64(std::string key, uint64_t v) { Set(std::move(key), GgufType::kU64, Encode(v)); }
void GgufWriter::SetInt64(std::string key, int64_t v) { Set(std::move(key), GgufType::kI64, Encode(v)); }
void GgufWriter::SetFloat32(std::string key, float v) { Set(std::move(key), GgufType::kF32, Encode(v)); }
void GgufWriter::SetFloat64(std::string key, double v) { Set(std::move(key), GgufType::kF64, Encode(v)); }
void GgufWriter::SetBool(std::string key, bool v) {
  Set(std::move(key), GgufType::kBool, Encode<uint8_t>(v ? 1 : 0));
}
void GgufWriter::SetString(std::string key, std::string v) {
  std::string s;
  AppendString(&s, v);
  Set(std::move(key), GgufType::kString, std::move(s));
}
void GgufWriter::SetStringArray(std::string key, const std::vector<std::string>& v) {
  std::string s = Encode<uint32_t>(static_cast<uint32_t>(GgufType::kString)) + Encode<uint64_t>(v.size());
  for (const std::string& x : v) AppendString(&s, x);
  Set(std::move(key), GgufType::kArray, std::move(s));
}
void GgufWriter::SetFloat32Array(std::string key, const std::vector<float>& v) {
  Set(std::move(key), GgufType::kArray, EncodeArray(GgufType::kF32, v));
}
void GgufWriter::SetInt32Array(std::string key, const std::vector<int32_t>& v) {
  Set(std::move(key), GgufType::kArray, EncodeArray(GgufType::kI32, v));
}
void GgufWriter::SetUint32Array(std::string key, const std::vector<uint32_t>& v) {
  Set(std::move(key), GgufType::kArray, EncodeArray(GgufType::kU32, v));
}
void GgufWriter::SetInt64Array(std::string key, const std::vector<int64_t>& v) {
  Set(std::move(key), GgufType::kArray, EncodeArray(GgufType::kI64, v));
}
void GgufWriter::SetEncoded(std::string key, GgufType type, std::string encoded) {
  Set(std::move(key), type, std::move(encoded));
}
void GgufWriter::SetValue(std::string key, const GgufValue& v) {
  Set(std::move(key), v.type,
      std::string(reinterpret_cast<const char*>(v.encoded.data()), v.encoded.size()));
}
void GgufWriter::SetAlignment(uint32_t alignment) {
  PK_CHECK(alignment != 0 && std::has_single_bit(alignment));
  SetUint32("general.alignment", alignment);
}
bool GgufWriter::Has(std::string_view key) const {
  return std::any_of(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.key == key; });
}
void GgufWriter::Remove(std::string_view key) {
  std::erase_if(entries_, [&](const Entry& e) { return e.key == key; });
}

size_t GgufWriter::Alignment() const {
  for (const Entry& e : entries_) {
    if (e.key == "general.alignment" && e.type == GgufType::kU32) {
      uint32_t a;
      std::memcpy(&a, e.encoded.data(), 4);
      if (a != 0 && std::has_single_bit(a)) return a;
    }
  }
  return kGgufDefaultAlignment;
}

Status GgufWriter::CheckTensor(const std::string& name, const std::vector<uint64_t>& ne,
                               tensor::DType dtype, uint64_t* size_bytes) const {
  auto bad = [&](const std::string& what) {
    return Status::InvalidArgument("gguf writer: tensor '" + name + "': " + what);
  };
  if (name.empty() || name.size() >= 64) return bad("name must have 1 to 63 bytes");
  for (const PendingTensor& t : tensors_) {
    if (t.name == name) return bad("duplicate name");
  }
  if (ne.empty() || ne.size() > kMaxDims) return bad("needs 1 to 4 dimensions");
  if (dtype == tensor::DType::kQ8_K) return bad("Q8_K is not a storage type");
  if (ne[0] % tensor::BlockElements(dtype) != 0) {
    return bad("row length " + std::to_string(ne[0]) + " is not a multiple of the block size");
  }
  uint64_t size = ne[0] / tensor::BlockElements(dtype) * tensor::BlockBytes(dtype);
  for (size_t d = 1; d < ne.size(); ++d) size *= ne[d];
  *size_bytes = size;
  return Status::Ok();
}

Status GgufWriter::AddTensor(std::string name, std::vector<uint64_t> ne, tensor::DType dtype,
                             std::string bytes) {
  uint64_t size;
  PK_RETURN_IF_ERROR(CheckTensor(name, ne, dtype, &size));
  if (bytes.size() != size) {
    return Status::InvalidArgument("gguf writer: tensor '" + name + "' has " +
                                   std::to_string(bytes.size()) + " bytes, expected " +
                                   std::to_string(size));
  }
  tensors_.push_back({std::move(name), std::move(ne), dtype, size, std::move(bytes), nullptr});
  return Status::Ok();
}

Status GgufWriter::AddTensorLazy(std::string name, std::vector<uint64_t> ne, tensor::DType dtype,
                                 std::function<Result<std::string>()> produce) {
  uint64_t size;
  PK_RETURN_IF_ERROR(CheckTensor(name, ne, dtype, &size));
  tensors_.push_back({std::move(name), std::move(ne), dtype, size, {}, std::move(produce)});
  return Status::Ok();
}

std::string GgufWriter::Header() const {
  const size_t align = Alignment();
  std::string h = Encode<uint32_t>(kMagic) + Encode<uint32_t>(3) +
                  Encode<uint64_t>(tensors_.size()) + Encode<uint64_t>(entries_.size());
  for (const Entry& e : entries_) {
    AppendString(&h, e.key);
    h.append(Encode<uint32_t>(static_cast<uint32_t>(e.type)));
    h.append(e.encoded);
  }
  uint64_t offset = 0;
  for (const PendingTensor& t : tensors_) {
    AppendString(&h, t.name);
    h.append(Encode<uint32_t>(static_cast<uint32_t>(t.ne.size())));
    for (uint64_t d : t.ne) h.append(Encode<uint64_t>(d));
    h.append(Encode<uint32_t>(static_cast<uint32_t>(t.dtype)));
    h.append(Encode<uint64_t>(offset));
    offset += (t.size_bytes + align - 1) / align * align;
  }
  h.resize((h.size() + align - 1) / align * align, '\0');
  return h;
}

Status GgufWriter::WriteTo(const std::function<Status(std::string_view)>& sink) const {
  const size_t align = Alignment();
  PK_RETURN_IF_ERROR(sink(Header()));
  const std::string zeros(align, '\0');
  for (const PendingTensor& t : tensors_) {
    std::string produced;
    std::string_view bytes = t.bytes;
    if (t.produce) {
      auto r = t.produce();
      if (!r.ok()) return r.status().WithContext("gguf writer: tensor '" + t.name + "'");
      produced = std::move(r).value();
      if (produced.size() != t.size_bytes) {
        return Status::InvalidArgument("gguf writer: tensor '" + t.name + "' produced " +
                                       std::to_string(produced.size()) + " bytes, expected " +
                                       std::to_string(t.size_bytes));
      }
      bytes = produced;
    }
    PK_RETURN_IF_ERROR(sink(bytes));
    const size_t pad = (align - bytes.size() % align) % align;
    if (pad) PK_RETURN_IF_ERROR(sink(std::string_view(zeros).substr(0, pad)));
  }
  return Status::Ok();
}

Status GgufWriter::Write(const std::string& path) const {
  PK_ASSIGN_OR_RETURN(AtomicFileWriter out, AtomicFileWriter::Create(path));
  PK_RETURN_IF_ERROR(WriteTo([&](std::string_view b) { return out.Append(b); }));
  return out.Commit();
}

Result<std::string> GgufWriter::Serialize() const {
  std::string out;
  PK_RETURN_IF_ERROR(WriteTo([&](std::string_view b) {
    out.append(b);
    return Status::Ok();
  }));
  return out;
}

}  // namespace pocket::formats
