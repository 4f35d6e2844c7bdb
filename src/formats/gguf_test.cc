#include "formats/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "base/file.h"
#include "tensor/quant.h"

namespace pocket::formats {
namespace {

using tensor::DType;

// Hand-assembles GGUF bytes field by field, so each test can break exactly one field.
class Bytes {
 public:
  Bytes& U8(uint8_t v) { return Raw(&v, 1); }
  Bytes& U32(uint32_t v) { return Raw(&v, 4); }
  Bytes& U64(uint64_t v) { return Raw(&v, 8); }
  Bytes& F32(float v) { return Raw(&v, 4); }
  Bytes& Str(std::string_view s) {
    U64(s.size());
    s_.append(s);
    return *this;
  }
  Bytes& Pad(size_t align) {
    s_.resize((s_.size() + align - 1) / align * align, '\0');
    return *this;
  }
  Bytes& Zeros(size_t n) {
    s_.append(n, '\0');
    return *this;
  }
  // Header: magic, version, n_tensors, n_kv.
  Bytes& Header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    s_.append("GGUF");
    return U32(version).U64(n_tensors).U64(n_kv);
  }
  Bytes& KvU32(std::string_view key, uint32_t v) { return Str(key).U32(4).U32(v); }
  Bytes& TensorInfo(std::string_view name, std::vector<uint64_t> ne, uint32_t type,
                    uint64_t offset) {
    Str(name).U32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) U64(d);
    return U32(type).U64(offset);
  }
  const std::string& str() const { return s_; }

 private:
  Bytes& Raw(const void* p, size_t n) {
    s_.append(static_cast<const char*>(p), n);
    return *this;
  }
  std::string s_;
};

Status Parse(const std::string& bytes) {
  auto r = GgufFile::FromBytes(bytes, "test.gguf");
  return r.ok() ? Status::Ok() : r.status();
}

void ExpectError(const Bytes& b, StatusCode code, std::string_view needle) {
  const Status s = Parse(b.str());
  ASSERT_FALSE(s.ok()) << "expected an error mentioning: " << needle;
  EXPECT_EQ(s.code(), code) << s.ToString();
  EXPECT_NE(s.message().find("test.gguf"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find(needle), std::string::npos) << s.message();
}

// A valid file: one key, two F32 tensors of 8 elements (32 bytes each).
Bytes ValidFile() {
  Bytes b;
  b.Header(2, 1).KvU32("general.alignment", 32);
  b.TensorInfo("a", {8}, 0, 0).TensorInfo("b", {4, 2}, 0, 32).Pad(32).Zeros(64);
  return b;
}

TEST(GgufFileTest, AcceptsHandMadeValidFile) {
  auto f = GgufFile::FromBytes(ValidFile().str(), "test.gguf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  ASSERT_EQ(f->tensors().size(), 2u);
  EXPECT_EQ(f->FindTensor("b")->ne, (std::vector<uint64_t>{4, 2}));
  EXPECT_EQ(f->FindTensor("b")->size_bytes, 32u);
  EXPECT_EQ(f->FindTensor("c"), nullptr);
  EXPECT_EQ(f->TensorBytes(*f->FindTensor("b")).size(), 32u);
  const tensor::TensorView v = f->View(*f->FindTensor("b"));
  EXPECT_EQ(v.ne, (std::array<int64_t, 4>{4, 2, 1, 1}));
  EXPECT_EQ(v.size_bytes(), 32u);
  EXPECT_EQ(v.data, f->TensorBytes(*f->FindTensor("b")).data());
}

TEST(GgufFileTest, AcceptsVersion2) {
  Bytes b;
  b.Header(0, 1, 2).KvU32("x", 1);
  EXPECT_TRUE(Parse(b.str()).ok());
}

TEST(GgufFileTest, RejectsBadMagic) {
  std::string s = ValidFile().str();
  s[0] = 'X';
  const Status st = Parse(s);
  EXPECT_EQ(st.code(), StatusCode::kCorruption);
  EXPECT_NE(st.message().find("bad magic"), std::string::npos);
  EXPECT_EQ(Parse("GG").code(), StatusCode::kCorruption);
  EXPECT_EQ(Parse("").code(), StatusCode::kCorruption);
}

TEST(GgufFileTest, RejectsUnsupportedVersions) {
  ExpectError(Bytes().Header(0, 0, 1), StatusCode::kNotSupported, "version 1");
  ExpectError(Bytes().Header(0, 0, 4), StatusCode::kNotSupported, "version 4");
  ExpectError(Bytes().Header(0, 0, 0), StatusCode::kNotSupported, "version 0");
  ExpectError(Bytes().Header(0, 0, 0x03000000), StatusCode::kNotSupported, "big-endian");
}

TEST(GgufFileTest, RejectsTruncationAnywhere) {
  const std::string full = ValidFile().str();
  for (size_t n = 0; n < full.size(); ++n) {
    const Status s = Parse(full.substr(0, n));
    ASSERT_FALSE(s.ok()) << "prefix of " << n << " bytes was accepted";
    ASSERT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  }
}

TEST(GgufFileTest, RejectsCountsLargerThanTheFile) {
  ExpectError(Bytes().Header(0, uint64_t{1} << 60), StatusCode::kCorruption, "metadata count");
  ExpectError(Bytes().Header(uint64_t{1} << 60, 0), StatusCode::kCorruption, "tensor count");
}

TEST(GgufFileTest, RejectsKeyLengthPastEnd) {
  ExpectError(Bytes().Header(0, 1).U64(uint64_t{1} << 62).Zeros(16), StatusCode::kCorruption,
              "string length");
}

TEST(GgufFileTest, RejectsUnknownValueType) {
  ExpectError(Bytes().Header(0, 1).Str("k").U32(13).U32(0), StatusCode::kCorruption,
              "unknown value type 13");
}

TEST(GgufFileTest, RejectsStringValuePastEnd) {
  ExpectError(Bytes().Header(0, 1).Str("k").U32(8).U64(100).Zeros(10), StatusCode::kCorruption,
              "value of key 'k'");
}

TEST(GgufFileTest, RejectsArrayCountPastEnd) {
  // 2^61 u32 elements would be 8 EiB: refused before any allocation.
  ExpectError(Bytes().Header(0, 1).Str("k").U32(9).U32(4).U64(uint64_t{1} << 61),
              StatusCode::kCorruption, "array of");
  ExpectError(Bytes().Header(0, 1).Str("k").U32(9).U32(8).U64(1000).Str("a"),
              StatusCode::kCorruption, "array of");
  ExpectError(Bytes().Header(0, 1).Str("k").U32(9).U32(8).U64(2).Str("a").U64(99).Zeros(16),
              StatusCode::kCorruption, "element 1 of key 'k'");
}

TEST(GgufFileTest, RejectsUnknownArrayElementType) {
  ExpectError(Bytes().Header(0, 1).Str("k").U32(9).U32(77).U64(0), StatusCode::kCorruption,
              "unknown type 77");
}

TEST(GgufFileTest, RejectsDeeplyNestedArrays) {
  Bytes b;
  b.Header(0, 1).Str("k").U32(9);
  for (int i = 0; i < 20; ++i) b.U32(9).U64(1);
  b.U32(4).U64(0);
  ExpectError(b, StatusCode::kCorruption, "nested deeper");
}

TEST(GgufFileTest, RejectsBadBool) {
  ExpectError(Bytes().Header(0, 1).Str("k").U32(7).U8(2), StatusCode::kCorruption, "not 0 or 1");
}

TEST(GgufFileTest, RejectsDuplicateKey) {
  ExpectError(Bytes().Header(0, 2).KvU32("k", 1).KvU32("k", 2), StatusCode::kCorruption,
              "duplicate key 'k'");
}

TEST(GgufFileTest, RejectsBadAlignment) {
  ExpectError(Bytes().Header(0, 1).KvU32("general.alignment", 0), StatusCode::kCorruption,
              "general.alignment");
  ExpectError(Bytes().Header(0, 1).KvU32("general.alignment", 48), StatusCode::kCorruption,
              "not a power of two");
  ExpectError(Bytes().Header(0, 1).Str("general.alignment").U32(8).Str("32"),
              StatusCode::kCorruption, "general.alignment has type string");
}

TEST(GgufFileTest, RejectsTooManyDims) {
  ExpectError(Bytes().Header(1, 0).TensorInfo("t", {1, 1, 1, 1, 1}, 0, 0).Pad(32).Zeros(32),
              StatusCode::kCorruption, "5 dimensions");
}

TEST(GgufFileTest, RejectsUnknownAndUnsupportedTensorTypes) {
  ExpectError(Bytes().Header(1, 0).TensorInfo("t", {32}, 999, 0).Pad(32).Zeros(64),
              StatusCode::kCorruption, "unknown ggml type 999");
  ExpectError(Bytes().Header(1, 0).TensorInfo("t", {256}, 35, 0).Pad(32).Zeros(256),
              StatusCode::kNotSupported, "TQ2_0");
}

TEST(GgufFileTest, ListsUnsupportedTypesWhenAsked) {
  Bytes b;
  b.Header(2, 0).TensorInfo("tq2", {256, 2}, 35, 0).TensorInfo("f", {8}, 0, 160).Pad(32).Zeros(192);
  EXPECT_EQ(Parse(b.str()).code(), StatusCode::kNotSupported);
  GgufOpenOptions lenient;
  lenient.allow_unsupported_types = true;
  auto f = GgufFile::FromBytes(b.str(), "test.gguf", lenient);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  const TensorInfo* t = f->FindTensor("tq2");
  EXPECT_FALSE(t->supported);
  EXPECT_EQ(t->ggml_type, 35u);
  EXPECT_EQ(t->size_bytes, 132u);  // 2 rows × one 66-byte TQ2_0 block
  EXPECT_EQ(GgmlTypeName(t->ggml_type), "TQ2_0");
  EXPECT_TRUE(f->FindTensor("f")->supported);
  // Bounds are still checked with the real block size.
  Bytes short_data;
  short_data.Header(1, 0).TensorInfo("tq2", {256, 2}, 35, 0).Pad(32).Zeros(100);
  EXPECT_EQ(GgufFile::FromBytes(short_data.str(), "t", lenient).status().code(),
            StatusCode::kCorruption);
}

// The reader's table of ggml types (written from ggml's type_traits) and tensor/dtype.h's
// block structs agree on every type Pocket computes with.
TEST(GgufFileTest, TypeTableMatchesTheBlockLayouts) {
  for (tensor::DType t : tensor::kAllDTypes) {
    if (t == tensor::DType::kQ8_K) continue;
    const uint32_t id = static_cast<uint32_t>(t);
    SCOPED_TRACE(std::string(tensor::DTypeName(t)));
    EXPECT_EQ(GgmlTypeName(id), tensor::DTypeName(t));
    Bytes b;
    const uint64_t n = tensor::BlockElements(t);
    b.Header(1, 0).TensorInfo("t", {n, 3}, id, 0).Pad(32).Zeros(3 * tensor::BlockBytes(t));
    auto f = GgufFile::FromBytes(b.str(), "t");
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    EXPECT_EQ(f->FindTensor("t")->size_bytes, 3 * tensor::BlockBytes(t));
  }
}

TEST(GgufFileTest, RejectsPartialBlocks) {
  ExpectError(Bytes().Header(1, 0).TensorInfo("t", {33}, 8, 0).Pad(32).Zeros(64),
              StatusCode::kCorruption, "not a multiple of the block size 32");
}

TEST(GgufFileTest, RejectsSizeOverflow) {
  ExpectError(Bytes().Header(1, 0).TensorInfo("t", {uint64_t{1} << 40, uint64_t{1} << 40}, 0, 0)
                  .Pad(32),
              StatusCode::kCorruption, "overflows");
  ExpectError(Bytes().Header(1, 0).TensorInfo("t", {~uint64_t{0}}, 0, 0).Pad(32),
              StatusCode::kCorruption, "dimension 0");
}

TEST(GgufFileTest, RejectsMisalignedOffset) {
  ExpectError(Bytes().Header(1, 0).TensorInfo("t", {4}, 0, 16).Pad(32).Zeros(64),
              StatusCode::kCorruption, "not a multiple of the alignment");
}

TEST(GgufFileTest, RejectsDataPastEnd) {
  ExpectError(Bytes().Header(1, 0).TensorInfo("t", {8}, 0, 32).Pad(32).Zeros(32),
              StatusCode::kCorruption, "ends past the end");
  ExpectError(Bytes().Header(1, 0).TensorInfo("t", {8}, 0, uint64_t{1} << 63).Pad(32),
              StatusCode::kCorruption, "ends past the end");
}

TEST(GgufFileTest, RejectsOverlappingTensors) {
  ExpectError(Bytes().Header(2, 0).TensorInfo("a", {16}, 0, 0).TensorInfo("b", {8}, 0, 32)
                  .Pad(32).Zeros(64),
              StatusCode::kCorruption, "overlaps");
}

TEST(GgufFileTest, RejectsDuplicateTensorName) {
  ExpectError(Bytes().Header(2, 0).TensorInfo("a", {8}, 0, 0).TensorInfo("a", {8}, 0, 32)
                  .Pad(32).Zeros(64),
              StatusCode::kCorruption, "duplicate tensor name 'a'");
}

TEST(GgufFileTest, TypedGettersCheckTypes) {
  GgufWriter w;
  w.SetInt32("neg", -5);
  w.SetUint8("small", 7);
  w.SetUint64("big", ~uint64_t{0});
  w.SetString("s", "hello");
  w.SetFloat32("f", 0.5f);
  auto bytes = w.Serialize();
  ASSERT_TRUE(bytes.ok());
  auto f = GgufFile::FromBytes(*bytes, "g.gguf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->GetUint("small").value(), 7u);
  EXPECT_EQ(f->GetInt("neg").value(), -5);
  EXPECT_EQ(f->GetUint("neg").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f->GetInt("big").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(f->GetUint("big").value(), ~uint64_t{0});
  EXPECT_EQ(f->GetFloat("small").value(), 7.0);
  EXPECT_EQ(f->GetFloat("f").value(), 0.5);
  EXPECT_EQ(f->GetString("f").status().code(), StatusCode::kInvalidArgument);
  const Status missing = f->GetString("nope").status();
  EXPECT_EQ(missing.code(), StatusCode::kNotFound);
  EXPECT_NE(missing.message().find("g.gguf"), std::string::npos);
  EXPECT_NE(missing.message().find("'nope'"), std::string::npos);
  EXPECT_EQ(f->TypeOf("s"), GgufType::kString);
  EXPECT_FALSE(f->TypeOf("nope").has_value());
}

GgufWriter FullWriter() {
  GgufWriter w;
  w.SetString("general.architecture", "llama");
  w.SetUint8("u8", 200);
  w.SetInt8("i8", -100);
  w.SetUint16("u16", 60000);
  w.SetInt16("i16", -30000);
  w.SetUint32("u32", 4000000000u);
  w.SetInt32("i32", -2000000000);
  w.SetUint64("u64", 1ull << 40);
  w.SetInt64("i64", -(1ll << 40));
  w.SetFloat32("f32", 1.25f);
  w.SetFloat64("f64", -2.5);
  w.SetBool("bool", true);
  w.SetStringArray("strs", {"a", "", "ccc"});
  w.SetFloat32Array("floats", {1.0f, -2.0f});
  w.SetInt32Array("ints", {3, -4, 5});
  // An array of two arrays of u32: [[1, 2], []].
  Bytes nested;
  nested.U32(9).U64(2).U32(4).U64(2).U32(1).U32(2).U32(4).U64(0);
  w.SetEncoded("nested", GgufType::kArray, nested.str());
  std::vector<float> x(512);
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i % 37) - 0.2f;
  std::string f32(reinterpret_cast<const char*>(x.data()), 7 * sizeof(float));
  EXPECT_TRUE(w.AddTensor("odd.weight", {7}, DType::kF32, f32).ok());
  std::string q4k(tensor::RowBytes(DType::kQ4_K, 512), '\0');
  tensor::QuantizeRow(DType::kQ4_K, x.data(), q4k.data(), 512);
  EXPECT_TRUE(w.AddTensor("blk.0.attn_q.weight", {256, 2}, DType::kQ4_K, q4k).ok());
  std::string q8(tensor::RowBytes(DType::kQ8_0, 64), '\0');
  tensor::QuantizeRow(DType::kQ8_0, x.data(), q8.data(), 64);
  EXPECT_TRUE(w.AddTensor("q8", {64}, DType::kQ8_0, q8).ok());
  return w;
}

TEST(GgufFileTest, WriterRoundTripsEveryType) {
  GgufWriter w = FullWriter();
  auto bytes = w.Serialize();
  ASSERT_TRUE(bytes.ok());
  auto f = GgufFile::FromBytes(*bytes, "rt.gguf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->GetString("general.architecture").value(), "llama");
  EXPECT_EQ(f->GetUint("u8").value(), 200u);
  EXPECT_EQ(f->GetInt("i8").value(), -100);
  EXPECT_EQ(f->GetUint("u16").value(), 60000u);
  EXPECT_EQ(f->GetInt("i16").value(), -30000);
  EXPECT_EQ(f->GetUint("u32").value(), 4000000000u);
  EXPECT_EQ(f->GetInt("i32").value(), -2000000000);
  EXPECT_EQ(f->GetUint("u64").value(), 1ull << 40);
  EXPECT_EQ(f->GetInt("i64").value(), -(1ll << 40));
  EXPECT_EQ(f->GetFloat("f32").value(), 1.25);
  EXPECT_EQ(f->GetFloat("f64").value(), -2.5);
  EXPECT_TRUE(f->GetBool("bool").value());
  EXPECT_EQ(f->GetStringArray("strs").value(), (std::vector<std::string_view>{"a", "", "ccc"}));
  EXPECT_EQ(f->GetFloatArray("floats").value(), (std::vector<float>{1.0f, -2.0f}));
  EXPECT_EQ(f->GetIntArray("ints").value(), (std::vector<int64_t>{3, -4, 5}));
  const GgufValue* nested = f->Find("nested");
  ASSERT_NE(nested, nullptr);
  ASSERT_EQ(nested->items.size(), 2u);
  EXPECT_EQ(nested->items[0].count, 2u);
  EXPECT_EQ(nested->items[0].ArrayUint(1), 2u);
  EXPECT_EQ(nested->items[1].count, 0u);
  EXPECT_EQ(f->metadata().size(), 16u);
  EXPECT_EQ(f->metadata()[0].key, "general.architecture");
  ASSERT_EQ(f->tensors().size(), 3u);
  const TensorInfo* q = f->FindTensor("blk.0.attn_q.weight");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, DType::kQ4_K);
  EXPECT_EQ(q->offset % 32, 0u);
  EXPECT_EQ(q->size_bytes, 288u);
  for (const TensorInfo& t : f->tensors()) EXPECT_EQ(t.offset % f->alignment(), 0u);

  // Copying values out of one file into a new writer reproduces the metadata bytes.
  GgufWriter copy;
  for (const auto& kv : f->metadata()) copy.SetValue(std::string(kv.key), kv.value);
  auto copy_file = GgufFile::FromBytes(*copy.Serialize(), "copy.gguf");
  ASSERT_TRUE(copy_file.ok());
  EXPECT_EQ(copy_file->Find("nested")->items[0].ArrayUint(0), 1u);
}

TEST(GgufFileTest, WriterIsDeterministicAndAtomic) {
  const auto dir = std::filesystem::temp_directory_path() / ("pocket_gguf_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string a = (dir / "a.gguf").string(), b = (dir / "b.gguf").string();
  ASSERT_TRUE(FullWriter().Write(a).ok());
  ASSERT_TRUE(FullWriter().Write(b).ok());
  auto ba = ReadFile(a), bb = ReadFile(b);
  ASSERT_TRUE(ba.ok() && bb.ok());
  EXPECT_EQ(*ba, *bb);
  EXPECT_EQ(*ba, *FullWriter().Serialize());
  EXPECT_EQ(ba->size() % 32, 0u);
  auto f = GgufFile::Open(a);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->path(), a);
  const TensorInfo* odd = f->FindTensor("odd.weight");
  auto span = f->TensorBytes(*odd);
  float first;
  std::memcpy(&first, span.data(), 4);
  EXPECT_EQ(first, -0.2f);
  // Copies share the mapping and outlive the original.
  GgufFile copy = *f;
  f = Status::Internal("drop");
  EXPECT_EQ(copy.TensorBytes(*copy.FindTensor("odd.weight")).size(), 28u);
  // No temp files left behind.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 2u);
  std::filesystem::remove_all(dir);
}

TEST(GgufFileTest, OpenMissingFileIsIOError) {
  auto f = GgufFile::Open("/nonexistent/x.gguf");
  EXPECT_EQ(f.status().code(), StatusCode::kIOError);
}

TEST(GgufWriterTest, RejectsBadTensors) {
  GgufWriter w;
  EXPECT_EQ(w.AddTensor("t", {33}, DType::kQ8_0, std::string(36, '\0')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor("t", {4}, DType::kF32, std::string(15, '\0')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(w.AddTensor(std::string(64, 'x'), {4}, DType::kF32, std::string(16, '\0')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(w.AddTensor("t", {4}, DType::kF32, std::string(16, '\0')).ok());
  EXPECT_EQ(w.AddTensor("t", {4}, DType::kF32, std::string(16, '\0')).code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(w.AddTensorLazy("lazy", {4}, DType::kF32, [] {
    return Result<std::string>(std::string(8, '\0'));
  }).ok());
  EXPECT_EQ(w.Serialize().status().code(), StatusCode::kInvalidArgument);
}

TEST(GgufWriterTest, CustomAlignmentAndReplacement) {
  GgufWriter w;
  w.SetAlignment(64);
  w.SetUint32("k", 1);
  w.SetUint32("k", 2);  // replaces in place
  ASSERT_TRUE(w.AddTensor("a", {3}, DType::kF32, std::string(12, '\1')).ok());
  ASSERT_TRUE(w.AddTensor("b", {3}, DType::kF32, std::string(12, '\2')).ok());
  auto f = GgufFile::FromBytes(*w.Serialize(), "al.gguf");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ(f->alignment(), 64u);
  EXPECT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->GetUint("k").value(), 2u);
  EXPECT_EQ(f->data_offset() % 64, 0u);
  EXPECT_EQ(f->FindTensor("b")->offset, 64u);
  EXPECT_EQ(static_cast<char>(f->TensorBytes(*f->FindTensor("b"))[0]), '\2');
}

}  // namespace
}  // namespace pocket::formats

namespace pocket::formats {
namespace {
TEST(GgufFileTest, FuzzSeedsAreValidFiles) {
  const std::string dir = std::string(POCKET_SOURCE_DIR) + "/testdata/fuzz/gguf_fuzz/";
  for (const char* name : {"header_only.gguf", "all_types.gguf", "tensors.gguf", "align64_v2.gguf"}) {
    auto f = GgufFile::Open(dir + name);
    EXPECT_TRUE(f.ok()) << name << ": " << f.status().ToString();
  }
  auto f = GgufFile::Open(dir + "align64_v2.gguf");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->version(), 2u);
  float v[3];
  std::memcpy(v, f->TensorBytes(*f->FindTensor("b")).data(), 12);
  EXPECT_EQ(v[2], 6.0f);
}
}  // namespace
}  // namespace pocket::formats
