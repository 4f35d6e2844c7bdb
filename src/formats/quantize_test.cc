#include "formats/quantize.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include "base/file.h"
#include "base/sha256.h"
#include "formats/gguf.h"
#include "formats/hf_convert.h"
#include "formats/random_model.h"
#include "tensor/quant.h"

namespace pocket::formats {
namespace {

namespace fs = std::filesystem;
using tensor::DType;

// A fresh, empty folder per test.
class QuantizeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pocket_quantize_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  // A small Llama model: d_model 256 (rows fit K-quant blocks) and d_ff 320, so ffn_down's rows
  // (320 = 10 * 32) take the K-quants' fallbacks Q4_0 / Q8_0.
  std::string WriteModel(const std::string& name, DType weight_type, int64_t num_layers = 2) {
    RandomModelSpec spec = NamedShape("tiny-k").value();
    spec.num_layers = num_layers;
    spec.d_ff = 320;
    spec.vocab_size = 512;
    spec.weight_type = weight_type;
    spec.init_std = 0.05f;
    spec.seed = 7;
    const std::string path = Path(name);
    auto w = BuildRandomModel(spec);
    EXPECT_TRUE(w.ok()) << w.status().ToString();
    EXPECT_TRUE(w->Write(path).ok());
    return path;
  }

  std::vector<std::string> Entries() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  fs::path dir_;
};

QuantizeOptions Opts(DType type, size_t threads, bool pure = false) {
  QuantizeOptions o;
  o.type = type;
  o.num_threads = threads;
  o.pure = pure;
  return o;
}

std::vector<float> Decode(const GgufFile& f, const TensorInfo& t) {
  std::vector<float> out(t.num_elements());
  tensor::DequantizeRow(t.dtype, f.TensorBytes(t).data(), out.data(), out.size());
  return out;
}

std::string Bytes(const GgufFile& f, const TensorInfo& t) {
  const auto b = f.TensorBytes(t);
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

DType Target(std::string_view name, const std::vector<uint64_t>& ne, DType type,
             bool has_output = true, bool pure = false) {
  QuantizeOptions options;
  options.type = type;
  options.pure = pure;
  return QuantizeTargetType(name, ne, options, has_output);
}

TEST(QuantizeTargetTypeTest, FollowsLlamaQuantizeAndConvertFallbacks) {
  const std::vector<uint64_t> k_rows = {256, 64}, ragged = {320, 64}, odd = {40, 8};
  EXPECT_EQ(Target("blk.0.attn_q.weight", k_rows, DType::kQ4_K), DType::kQ4_K);
  EXPECT_EQ(Target("token_embd.weight", k_rows, DType::kQ4_0), DType::kQ4_0);
  EXPECT_EQ(Target("blk.0.ffn_down.weight", ragged, DType::kQ4_K), DType::kQ4_0);
  EXPECT_EQ(Target("blk.0.ffn_down.weight", ragged, DType::kQ6_K), DType::kQ8_0);
  EXPECT_EQ(Target("blk.0.ffn_down.weight", odd, DType::kQ8_0), DType::kF16);
  EXPECT_EQ(Target("blk.0.attn_norm.weight", {256}, DType::kQ8_0), DType::kF32);
  EXPECT_EQ(Target("blk.0.attn_q.bias", {256}, DType::kQ8_0), DType::kF32);
  EXPECT_EQ(Target("rope_freqs.weight", {32}, DType::kQ8_0), DType::kF32);
  // A 2-D norm (some architectures) is still a norm.
  EXPECT_EQ(Target("blk.0.attn_norm.weight", k_rows, DType::kQ8_0), DType::kF32);
}

TEST(QuantizeTargetTypeTest, OutputMatrixGetsQ6KUnlessQ8_0OrPure) {
  const std::vector<uint64_t> k_rows = {256, 64}, ragged = {576, 64};
  EXPECT_EQ(Target("output.weight", k_rows, DType::kQ4_0), DType::kQ6_K);
  EXPECT_EQ(Target("output.weight", k_rows, DType::kQ4_K), DType::kQ6_K);
  EXPECT_EQ(Target("output.weight", k_rows, DType::kQ8_0), DType::kQ8_0);
  EXPECT_EQ(Target("output.weight", k_rows, DType::kQ4_0, true, /*pure=*/true), DType::kQ4_0);
  // SmolLM2's 576-wide rows: Q6_K falls back to Q8_0, as llama-quantize's Q4_0 file has it.
  EXPECT_EQ(Target("output.weight", ragged, DType::kQ4_0), DType::kQ8_0);
  // Tied embeddings: token_embd is the output matrix; with output.weight present it is not.
  EXPECT_EQ(Target("token_embd.weight", k_rows, DType::kQ4_0, /*has_output=*/false), DType::kQ6_K);
  EXPECT_EQ(Target("token_embd.weight", k_rows, DType::kQ4_0, /*has_output=*/true), DType::kQ4_0);
}

TEST(QuantizeTypesTest, NamesRoundTrip) {
  EXPECT_EQ(QuantizeTypeNames(), "q8_0, q4_0, q4_k, q6_k");
  EXPECT_EQ(QuantizeTypeFromName("q4_k"), DType::kQ4_K);
  EXPECT_FALSE(QuantizeTypeFromName("q5_k").has_value());
  EXPECT_FALSE(QuantizeTypeFromName("Q8_0").has_value());
}

// Rows are split across threads differently for 1, 2 and 3 threads (and the output
// matrix's Q6_K rows too, unless pure); every split must give the first run's bytes.
TEST_F(QuantizeTest, SameBytesForAnyThreadCountAndEveryRun) {
  const std::string src = WriteModel("src.gguf", DType::kF16, /*num_layers=*/1);
  for (const auto& [name, type] : QuantizeTypes()) {
    for (bool pure : {false, true}) {
      if (pure && type == DType::kQ8_0) continue;  // the same file as without --pure
      std::string first;
      for (size_t threads : {1u, 3u, 2u}) {
        const std::string out = Path(name + ".gguf");
        auto rep = QuantizeGguf(src, out, Opts(type, threads, pure));
        ASSERT_TRUE(rep.ok()) << rep.status().ToString();
        const std::string bytes = ReadFile(out).value();
        if (first.empty()) {
          first = bytes;
        } else {
          EXPECT_TRUE(bytes == first)
              << name << (pure ? " pure" : "") << " with " << threads << " threads";
        }
      }
    }
  }
}

TEST_F(QuantizeTest, KeepsMetadataInOrderAndRecordsProvenance) {
  const std::string src_path = WriteModel("src.gguf", DType::kF16);
  const std::string out_path = Path("out.gguf");
  auto rep = QuantizeGguf(src_path, out_path, Opts(DType::kQ4_K, 2));
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  const GgufFile src = GgufFile::Open(src_path).value();
  const GgufFile out = GgufFile::Open(out_path).value();

  const std::string sha = Sha256Hex(ReadFile(src_path).value());
  EXPECT_EQ(rep->source_sha256, sha);
  EXPECT_EQ(out.GetString(kParentSha256Key).value(), sha);
  EXPECT_EQ(out.GetString(kQuantizeTypeKey).value(), "q4_k");
  QuantizeOptions pure;
  pure.type = DType::kQ4_K;
  pure.pure = true;
  ASSERT_TRUE(QuantizeGguf(src_path, Path("pure.gguf"), pure).ok());
  EXPECT_EQ(GgufFile::Open(Path("pure.gguf")).value().GetString(kQuantizeTypeKey).value(),
            "q4_k pure");
  EXPECT_EQ(out.GetUint("general.file_type").value(), LlamaFileType(DType::kQ4_K));
  EXPECT_EQ(out.GetUint("general.quantization_version").value(), 2u);
  // Every source key, same position, same bytes (file_type's value changes in place).
  ASSERT_GE(out.metadata().size(), src.metadata().size());
  for (size_t i = 0; i < src.metadata().size(); ++i) {
    const auto& a = src.metadata()[i];
    const auto& b = out.metadata()[i];
    ASSERT_EQ(a.key, b.key);
    if (a.key == "general.file_type" || a.key == "general.quantization_version") continue;
    EXPECT_TRUE(std::equal(a.value.encoded.begin(), a.value.encoded.end(), b.value.encoded.begin(),
                           b.value.encoded.end()))
        << a.key;
  }
  EXPECT_EQ(rep->num_tensors, src.tensors().size());
  EXPECT_EQ(rep->input_bytes, src.file_size());
  EXPECT_EQ(rep->output_bytes, out.file_size());
}

TEST_F(QuantizeTest, MatricesAreQuantizeRowOfTheSourceAndNormsStayF32) {
  const std::string src_path = WriteModel("src.gguf", DType::kF16);
  const std::string out_path = Path("out.gguf");
  auto rep = QuantizeGguf(src_path, out_path, Opts(DType::kQ4_K, 2));
  ASSERT_TRUE(rep.ok()) << rep.status().ToString();
  const GgufFile src = GgufFile::Open(src_path).value();
  const GgufFile out = GgufFile::Open(out_path).value();
  ASSERT_EQ(out.tensors().size(), src.tensors().size());
  size_t fallback = 0;
  for (size_t i = 0; i < src.tensors().size(); ++i) {
    const TensorInfo& s = src.tensors()[i];
    const TensorInfo& o = out.tensors()[i];
    ASSERT_EQ(s.name, o.name);
    ASSERT_EQ(s.ne, o.ne);
    const DType want = Target(s.name, s.ne, DType::kQ4_K, /*has_output=*/false);
    if (s.name == "token_embd.weight") {
      EXPECT_EQ(want, DType::kQ6_K) << "tied: the output matrix";
    }
    EXPECT_EQ(o.dtype, want) << s.name;
    if (s.ne.size() == 1) {
      EXPECT_EQ(o.dtype, DType::kF32) << s.name;
    }
    if (s.name.find("ffn_down") != std::string::npos) {
      EXPECT_EQ(o.dtype, DType::kQ4_0) << "row length 320 falls back";
      ++fallback;
    }
    const std::vector<float> x = Decode(src, s);
    std::string expect(tensor::RowBytes(want, s.ne[0]) * (x.size() / s.ne[0]), '\0');
    const size_t rb = tensor::RowBytes(want, s.ne[0]);
    for (size_t r = 0; r < x.size() / s.ne[0]; ++r) {
      tensor::QuantizeRow(want, x.data() + r * s.ne[0], expect.data() + r * rb, s.ne[0]);
    }
    EXPECT_TRUE(Bytes(out, o) == expect) << s.name;
  }
  EXPECT_EQ(rep->num_fallback, fallback);
  EXPECT_EQ(rep->tensors_by_type.at("Q4_0"), fallback);
}

TEST_F(QuantizeTest, QuantizedSourceIsDecodedThenRequantizedAndSameTypeIsCopied) {
  const std::string src_path = WriteModel("src.gguf", DType::kF32);
  ASSERT_TRUE(QuantizeGguf(src_path, Path("q8.gguf"), Opts(DType::kQ8_0, 1)).ok());
  ASSERT_TRUE(QuantizeGguf(Path("q8.gguf"), Path("q8_q4.gguf"), Opts(DType::kQ4_0, 1)).ok());
  ASSERT_TRUE(QuantizeGguf(Path("q8.gguf"), Path("q8_q8.gguf"), Opts(DType::kQ8_0, 1)).ok());
  const GgufFile q8 = GgufFile::Open(Path("q8.gguf")).value();
  const GgufFile q8_q4 = GgufFile::Open(Path("q8_q4.gguf")).value();
  const GgufFile q8_q8 = GgufFile::Open(Path("q8_q8.gguf")).value();
  const TensorInfo& s = *q8.FindTensor("blk.1.attn_v.weight");
  ASSERT_EQ(s.dtype, DType::kQ8_0);
  const std::vector<float> x = Decode(q8, s);
  std::string expect(tensor::RowBytes(DType::kQ4_0, x.size()), '\0');
  tensor::QuantizeRow(DType::kQ4_0, x.data(), expect.data(), x.size());
  EXPECT_TRUE(Bytes(q8_q4, *q8_q4.FindTensor(s.name)) == expect);
  for (const TensorInfo& t : q8.tensors()) {
    EXPECT_TRUE(Bytes(q8_q8, *q8_q8.FindTensor(t.name)) == Bytes(q8, t)) << t.name;
  }
}

TEST_F(QuantizeTest, MissingInputNamesTheFileAndWritesNothing) {
  const std::string missing = Path("missing.gguf");
  auto rep = QuantizeGguf(missing, Path("out.gguf"), Opts(DType::kQ8_0, 1));
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.status().message().find(missing), std::string::npos) << rep.status().ToString();
  EXPECT_TRUE(Entries().empty());
}

TEST_F(QuantizeTest, RejectsATypeWithoutQuantizer) {
  const std::string src = WriteModel("src.gguf", DType::kF16);
  auto rep = QuantizeGguf(src, Path("out.gguf"), Opts(DType::kQ5_K, 1));
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Entries(), std::vector<std::string>{"src.gguf"});
}

TEST_F(QuantizeTest, CorruptInputLeavesAnExistingOutputUntouched) {
  const std::string src = WriteModel("src.gguf", DType::kF16);
  const std::string out = Path("out.gguf");
  ASSERT_TRUE(QuantizeGguf(src, out, Opts(DType::kQ8_0, 1)).ok());
  const std::string good = ReadFile(out).value();
  std::string bytes = ReadFile(src).value();
  bytes.resize(bytes.size() - 100);  // the last tensor now ends past the file
  ASSERT_TRUE(WriteFileAtomic(Path("bad.gguf"), bytes).ok());
  auto rep = QuantizeGguf(Path("bad.gguf"), out, Opts(DType::kQ4_0, 1));
  ASSERT_FALSE(rep.ok());
  EXPECT_NE(rep.status().message().find("bad.gguf"), std::string::npos);
  EXPECT_TRUE(ReadFile(out).value() == good);
  EXPECT_EQ(Entries(), (std::vector<std::string>{"bad.gguf", "out.gguf", "src.gguf"}));
}

// The failure comes while the output is being written (the last matrix is bad), after the temp file
// was created and earlier tensors written into it: the temp file must go, and the good output stay.
TEST_F(QuantizeTest, FailureMidWriteRemovesTheTempFileAndKeepsTheOldOutput) {
  const std::string src_path = WriteModel("src.gguf", DType::kF32);
  const std::string out = Path("out.gguf");
  ASSERT_TRUE(QuantizeGguf(src_path, out, Opts(DType::kQ8_0, 1)).ok());
  const std::string good = ReadFile(out).value();

  std::string bytes = ReadFile(src_path).value();
  const GgufFile src = GgufFile::Open(src_path).value();
  const TensorInfo* last = nullptr;
  for (const TensorInfo& t : src.tensors()) {
    if (t.ne.size() == 2) last = &t;
  }
  ASSERT_NE(last, nullptr);
  ASSERT_EQ(last->dtype, DType::kF32);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const size_t row = 3;
  std::memcpy(bytes.data() + src.data_offset() + last->offset + row * last->ne[0] * 4 + 8, &nan, 4);
  ASSERT_TRUE(WriteFileAtomic(Path("nan.gguf"), bytes).ok());
  for (size_t threads : {1u, 2u}) {
    auto rep = QuantizeGguf(Path("nan.gguf"), out, Opts(DType::kQ4_K, threads));
    ASSERT_FALSE(rep.ok());
    EXPECT_EQ(rep.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(rep.status().message().find("'" + last->name + "' row 3 "), std::string::npos)
        << rep.status().ToString();
    EXPECT_TRUE(ReadFile(out).value() == good);
    EXPECT_EQ(Entries(), (std::vector<std::string>{"nan.gguf", "out.gguf", "src.gguf"}));
  }
}

TEST_F(QuantizeTest, UnwritableOutputFolderFailsNamingItAndLeavesNothing) {
  const std::string src = WriteModel("src.gguf", DType::kF16);
  // A regular file where the folder should be: fails even for root, unlike a chmod.
  ASSERT_TRUE(WriteFileAtomic(Path("file"), "x").ok());
  const std::string out = Path("file") + "/out.gguf";
  auto rep = QuantizeGguf(src, out, Opts(DType::kQ8_0, 1));
  ASSERT_FALSE(rep.ok());
  EXPECT_EQ(rep.status().code(), StatusCode::kIOError);
  EXPECT_NE(rep.status().message().find(Path("file")), std::string::npos);
  EXPECT_EQ(Entries(), (std::vector<std::string>{"file", "src.gguf"}));
}

}  // namespace
}  // namespace pocket::formats
