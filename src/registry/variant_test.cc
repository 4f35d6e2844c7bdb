// Variants: the chooser with injected machine facts (fits or not, quality vs
// speed, ISA,
// --variant, none fits with the numbers), $POCKET_MACHINE, the shape codec, and
// a stored index over real files (made, resolved to the chosen variant, kept
// whole by gc, checked by verify).
#include "registry/variant.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "base/file.h"
#include "formats/random_model.h"
#include "registry/resolve.h"
#include "registry/store.h"

namespace pocket::registry {
namespace {

namespace fs = std::filesystem;
constexpr uint64_t kMiB = 1 << 20;

Variant V(const std::string& quant, uint64_t weight_mib, uint64_t need_mib, char digest_char) {
  Variant v;
  v.descriptor.digest = "sha256:" + std::string(64, digest_char);
  v.quantization = quant;
  v.weight_bytes = weight_mib * kMiB;
  v.min_memory_bytes = need_mib * kMiB;
  return v;
}

VariantRequest Machine(uint64_t memory_mib, const std::string& isa = "avx2") {
  VariantRequest r;
  r.facts.memory_bytes = memory_mib * kMiB;
  r.facts.isa = isa;
  r.facts.source = "test";
  return r;
}

const std::vector<Variant> kThree = {V("Q4_0", 400, 600, 'a'), V("Q8_0", 800, 1000, 'b'),
                                     V("F16", 1600, 1800, 'c')};

TEST(ChooseVariantTest, QualityTakesTheLargestThatFits) {
  auto c = ChooseVariant(kThree, Machine(1200), "m:v1");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->index, 1u);  // Q8_0: F16 needs 1800 MiB
  EXPECT_EQ(c->need_bytes, 1000 * kMiB);
  EXPECT_NE(c->line.find("variant Q8_0"), std::string::npos) << c->line;
  EXPECT_NE(c->line.find("needs 1000.0 MiB of 1.2 GiB available (test)"), std::string::npos)
      << c->line;
  EXPECT_NE(c->line.find("chosen for quality"), std::string::npos) << c->line;
  EXPECT_NE(c->line.find("F16 needs 1.8 GiB (does not fit)"), std::string::npos) << c->line;
  EXPECT_NE(c->line.find("Q4_0 needs 600.0 MiB"), std::string::npos) << c->line;
}

TEST(ChooseVariantTest, SpeedTakesTheSmallestThatFits) {
  VariantRequest r = Machine(4096);
  r.prefer = Prefer::kSpeed;
  auto c = ChooseVariant(kThree, r, "m:v1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->index, 0u);
  EXPECT_NE(c->line.find("chosen for speed"), std::string::npos) << c->line;
  r.prefer = Prefer::kQuality;
  EXPECT_EQ(ChooseVariant(kThree, r, "m:v1")->index, 2u);
}

TEST(ChooseVariantTest, AVariantThatDoesNotFitIsNeverChosen) {
  for (uint64_t mem : {600, 999, 1000, 1799, 1800, 100000}) {
    for (Prefer p : {Prefer::kQuality, Prefer::kSpeed}) {
      VariantRequest r = Machine(mem);
      r.prefer = p;
      auto c = ChooseVariant(kThree, r, "m:v1");
      ASSERT_TRUE(c.ok());
      EXPECT_LE(c->need_bytes, mem * kMiB);
    }
  }
}

TEST(ChooseVariantTest, NoneFitsFailsWithEachNeedAndWhatIsAvailable) {
  auto c = ChooseVariant(kThree, Machine(500), "m:v1");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kResourceExhausted);
  const std::string& m = c.status().message();
  EXPECT_NE(m.find("no variant of m:v1 fits this machine: 500.0 MiB available (test)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("Q4_0 needs 600.0 MiB (does not fit)"), std::string::npos) << m;
  EXPECT_NE(m.find("Q8_0 needs 1000.0 MiB (does not fit)"), std::string::npos) << m;
  EXPECT_NE(m.find("F16 needs 1.8 GiB (does not fit)"), std::string::npos) << m;
}

TEST(ChooseVariantTest, TheCallersMemoryNeedWinsOverTheAnnotation) {
  VariantRequest r = Machine(1200);
  // E.g. runtime::EstimateMemory at a long context: every need doubles.
  r.memory_need = [](const Variant& v) -> std::optional<uint64_t> {
    return v.min_memory_bytes * 2;
  };
  auto c = ChooseVariant(kThree, r, "m:v1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->index, 0u);
  EXPECT_EQ(c->need_bytes, 1200 * kMiB);
  // Unknown need: not chosen.
  r.memory_need = [](const Variant&) -> std::optional<uint64_t> { return std::nullopt; };
  auto none = ChooseVariant(kThree, r, "m:v1");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("memory need unknown"), std::string::npos);
}

TEST(ChooseVariantTest, AVariantNeedingAnotherIsaIsNotChosen) {
  std::vector<Variant> vs = kThree;
  vs[2].requires_isa = "avx512";
  auto c = ChooseVariant(vs, Machine(100000, "avx2"), "m:v1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->index, 1u);
  EXPECT_NE(c->line.find("F16 needs 1.8 GiB (needs avx512, this CPU has avx2)"), std::string::npos)
      << c->line;
  EXPECT_EQ(ChooseVariant(vs, Machine(100000, "avx512"), "m:v1")->index, 2u);
}

TEST(ChooseVariantTest, VariantOverridesByQuantizationOrDigest) {
  VariantRequest r = Machine(700);
  r.pick = "q8_0";
  auto c = ChooseVariant(kThree, r, "m:v1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->index, 1u);
  EXPECT_NE(c->line.find("chosen by --variant (does not fit here)"), std::string::npos) << c->line;
  r.pick = "sha256:" + std::string(64, 'c');
  EXPECT_EQ(ChooseVariant(kThree, r, "m:v1")->index, 2u);
  r.pick = "Q5_K_M";
  auto missing = ChooseVariant(kThree, r, "m:v1");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "m:v1 has no variant 'Q5_K_M' (variants: Q4_0, Q8_0, F16)");
}

TEST(ChooseVariantTest, OnlyAvailableVariantsAreChosen) {
  VariantRequest r = Machine(100000);
  r.available = [](const Variant& v) { return v.quantization != "F16"; };
  auto c = ChooseVariant(kThree, r, "m:v1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->index, 1u);
  EXPECT_NE(c->line.find("F16 needs 1.8 GiB (not in the store)"), std::string::npos);
}

TEST(MachineFactsTest, PocketMachineOverridesThePlatform) {
  PlatformProfile p;
  p.cpu.avx2 = true;
  p.available_memory_bytes = 8ull << 30;
  Platform platform(p);
  auto host = MachineFactsFrom(platform, nullptr);
  ASSERT_TRUE(host.ok());
  EXPECT_EQ(host->memory_bytes, 8ull << 30);
  EXPECT_EQ(host->isa, "avx2");
  auto injected = MachineFactsFrom(platform, "memory=512M,isa=generic,gpu_memory=0");
  ASSERT_TRUE(injected.ok()) << injected.status().message();
  EXPECT_EQ(injected->memory_bytes, 512u << 20);
  EXPECT_EQ(injected->isa, "generic");
  EXPECT_EQ(injected->source, "POCKET_MACHINE");
  for (const char* bad : {"memory=lots", "isa=sparc", "cores=4", "memory=99999999999999999999G"}) {
    auto r = MachineFactsFrom(platform, bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.status().message().find("$POCKET_MACHINE"), std::string::npos);
  }
}

TEST(MachineFactsTest, CgroupHeadroomIsTheLimitLessWhatIsUsed) {
  const fs::path dir = fs::temp_directory_path() / ("pocket_cgroup." + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir / "sys" / "app.slice");
  const std::string self = (dir / "self").string(), root = (dir / "sys").string();
  const std::string max = root + "/app.slice/memory.max", cur = root + "/app.slice/memory.current";
  ASSERT_TRUE(WriteFileAtomic(self, "0::/app.slice\n").ok());
  EXPECT_FALSE(CgroupHeadroom(self, root).has_value()) << "no memory files";
  ASSERT_TRUE(WriteFileAtomic(max, "1073741824\n").ok());
  ASSERT_TRUE(WriteFileAtomic(cur, "73741824\n").ok());
  EXPECT_EQ(CgroupHeadroom(self, root), std::optional<uint64_t>(1000000000));
  ASSERT_TRUE(WriteFileAtomic(cur, "2000000000").ok());
  EXPECT_EQ(CgroupHeadroom(self, root), std::optional<uint64_t>(0));
  ASSERT_TRUE(WriteFileAtomic(max, "max\n").ok());
  EXPECT_FALSE(CgroupHeadroom(self, root).has_value()) << "no limit";
  ASSERT_TRUE(WriteFileAtomic(self, "10:memory:/app.slice\n").ok());
  EXPECT_FALSE(CgroupHeadroom(self, root).has_value()) << "cgroup v1";
  fs::remove_all(dir);
}

TEST(ShapeTest, RoundTripsAndRejectsMalformedText) {
  ModelShape s{2048, 1536, 512, 64, 8, 2, 6, 4096};
  auto back = ParseShape(SerializeShape(s));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, s);
  for (const char* bad :
       {"", "ctx=1", "ctx=0,d_ff=1,d_model=1,head_dim=1,heads=1,kv_heads=1,layers=1,vocab=1",
        "ctx=1,ctx=1,d_ff=1,d_model=1,head_dim=1,heads=1,kv_heads=1,layers=1",
        "ctx=1,d_ff=1,d_model=1,head_dim=1,heads=1,kv_heads=1,layers=1,vocab="
        "99999999",
        "ctx=1,d_ff=1,d_model=1,head_dim=1,heads=1,kv_heads=1,layers=1,bogus="
        "1"}) {
    EXPECT_FALSE(ParseShape(bad).ok()) << bad;
  }
}

class StoredIndexTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pocket_variant_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    root_ = (dir_ / "store").string();
  }
  void TearDown() override {
    fs::remove_all(dir_);
    SetVariantPolicy({});
  }

  std::string MakeModel(const std::string& file, uint64_t seed, tensor::DType type) {
    auto spec = formats::NamedShape("tiny");
    EXPECT_TRUE(spec.ok());
    spec->seed = seed;
    spec->vocab_size = 512;
    spec->weight_type = type;
    auto writer = formats::BuildRandomModel(*spec);
    EXPECT_TRUE(writer.ok()) << writer.status().message();
    const std::string path = (dir_ / file).string();
    EXPECT_TRUE(writer->Write(path).ok());
    return path;
  }
  static ModelRef Ref(const std::string& text) { return *ParseModelRef(text); }

  // tiny:big (F32) and tiny:small (F16) imported, tiny:v1 an index over both.
  void MakeIndex(Store& store) {
    ASSERT_TRUE(store.Import(MakeModel("big.gguf", 1, tensor::DType::kF32), Ref("tiny:big")).ok());
    ASSERT_TRUE(
        store.Import(MakeModel("small.gguf", 2, tensor::DType::kF16), Ref("tiny:small")).ok());
    auto bytes = MakeVariantIndex(store, {Ref("tiny:big"), Ref("tiny:small")});
    ASSERT_TRUE(bytes.ok()) << bytes.status().message();
    auto entry = store.AddIndexTag(Ref("tiny:v1"), *bytes);
    ASSERT_TRUE(entry.ok()) << entry.status().message();
    EXPECT_TRUE(entry->is_index);
  }

  fs::path dir_;
  std::string root_;
};

TEST_F(StoredIndexTest, AnIndexCarriesWhatTheChooserNeeds) {
  Store store(root_);
  MakeIndex(store);
  auto entry = store.Find(Ref("tiny:v1"));
  ASSERT_TRUE(entry.ok());
  auto index = store.ReadVariantIndex(*entry);
  ASSERT_TRUE(index.ok()) << index.status().message();
  const std::vector<Variant> vs = VariantsOf(*index);
  ASSERT_EQ(vs.size(), 2u);
  EXPECT_EQ(vs[0].descriptor.digest, store.Find(Ref("tiny:big"))->manifest_digest);
  EXPECT_GT(vs[0].parameter_count, 0u);
  EXPECT_EQ(vs[0].parameter_count, vs[1].parameter_count);
  EXPECT_GT(vs[0].weight_bytes, vs[1].weight_bytes);
  EXPECT_GT(vs[0].min_memory_bytes, vs[0].weight_bytes);
  ASSERT_TRUE(vs[0].shape.has_value());
  EXPECT_GT(vs[0].shape->layers, 0);
  EXPECT_EQ(vs[0].shape->vocab, 512);
  EXPECT_FALSE(vs[0].quantization.empty());
  // The index is not a model to Show; making an index of an index is refused.
  EXPECT_EQ(store.Show(Ref("tiny:v1")).status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(MakeVariantIndex(store, {Ref("tiny:v1")}).ok());
  EXPECT_FALSE(MakeVariantIndex(store, {Ref("tiny:big"), Ref("tiny:big")}).ok());
}

TEST_F(StoredIndexTest, ResolveChoosesTheVariantThatFits) {
  Store store(root_);
  MakeIndex(store);
  ::setenv("POCKET_HOME", root_.c_str(), 1);
  const std::string big = *store.ModelPath(Ref("tiny:big"));
  const std::string small = *store.ModelPath(Ref("tiny:small"));
  const uint64_t big_need =
      VariantsOf(*store.ReadVariantIndex(*store.Find(Ref("tiny:v1"))))[0].min_memory_bytes;
  std::string printed;
  uint64_t memory = big_need;
  SetVariantPolicy({[&]() -> Result<VariantRequest> {
                      VariantRequest r;
                      r.facts.memory_bytes = memory;
                      r.facts.isa = "avx2";
                      r.facts.source = "test";
                      return r;
                    },
                    [&](const std::string& line) { printed = line; }});
  auto r = ResolveModel("tiny:v1");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->path, big);
  EXPECT_EQ(printed, r->variant_line);
  EXPECT_EQ(printed.rfind("tiny:v1: variant ", 0), 0u) << printed;
  memory = big_need - 1;
  EXPECT_EQ(*ResolveModelPath("tiny:v1"), small);
  memory = 1;
  auto none = ResolveModelPath("tiny:v1");
  ASSERT_FALSE(none.ok());
  EXPECT_EQ(none.status().code(), StatusCode::kResourceExhausted);
  ::unsetenv("POCKET_HOME");
}

TEST_F(StoredIndexTest, GcKeepsTheIndexAndItsVariantsVerifyChecksThem) {
  Store store(root_);
  MakeIndex(store);
  ASSERT_TRUE(store.Remove(Ref("tiny:big")).ok());
  ASSERT_TRUE(store.Remove(Ref("tiny:small")).ok());
  auto gc = store.Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_EQ(gc->blobs_removed, 0);
  EXPECT_EQ(gc->blobs_kept,
            7);  // the index, two manifests, two configs, two layers
  auto clean = store.Verify(false);
  ASSERT_TRUE(clean.ok());
  EXPECT_TRUE(clean->clean());

  // Damage one variant's layer: the tag is broken; --repair drops it, gc
  // collects all.
  auto index = *store.ReadVariantIndex(*store.Find(Ref("tiny:v1")));
  auto info = store.ShowManifest(index.manifests[1].digest, "x");
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(WriteFileAtomic(info->model_path, "garbage").ok());
  auto bad = store.Verify(true);
  ASSERT_TRUE(bad.ok());
  ASSERT_EQ(bad->broken_tags.size(), 1u);
  EXPECT_EQ(bad->broken_tags[0].what, "tiny:v1");
  EXPECT_FALSE(store.Find(Ref("tiny:v1")).ok());
  gc = store.Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->blobs_kept, 0);
  EXPECT_TRUE(store.Verify(false)->clean());
}

TEST_F(StoredIndexTest, GcRemovesNothingWhileAHeldVariantIsUnreadable) {
  Store store(root_);
  MakeIndex(store);
  ASSERT_TRUE(store.Remove(Ref("tiny:big")).ok());
  ASSERT_TRUE(store.Remove(Ref("tiny:small")).ok());
  auto index = *store.ReadVariantIndex(*store.Find(Ref("tiny:v1")));
  ASSERT_TRUE(WriteFileAtomic(store.BlobPath(index.manifests[0].digest), "{\"sch").ok());
  auto gc = store.Gc();
  ASSERT_FALSE(gc.ok());
  EXPECT_EQ(gc.status().code(), StatusCode::kCorruption);
  EXPECT_NE(gc.status().message().find("nothing removed"), std::string::npos);
  auto repaired = store.Verify(true);
  ASSERT_TRUE(repaired.ok());
  EXPECT_FALSE(store.Find(Ref("tiny:v1")).ok());
  EXPECT_TRUE(store.Gc().ok());
  EXPECT_TRUE(store.Verify(false)->clean());
}

TEST_F(StoredIndexTest, AnIndexHoldingOnlySomeVariantsIsValid) {
  Store store(root_);
  MakeIndex(store);
  auto entry = *store.Find(Ref("tiny:v1"));
  const std::string bytes = *ReadFile(store.BlobPath(entry.manifest_digest));
  // A second store that holds only the small variant (as a pull of it leaves
  // it).
  Store other((dir_ / "other").string());
  ASSERT_TRUE(other.Import(MakeModel("small.gguf", 2, tensor::DType::kF16), Ref("x:small")).ok());
  ASSERT_TRUE(other.Remove(Ref("x:small")).ok());
  auto tagged = other.AddIndexTag(Ref("tiny:v1"), bytes);
  ASSERT_TRUE(tagged.ok()) << tagged.status().message();
  EXPECT_EQ(tagged->manifest_digest, entry.manifest_digest);
  auto gc = other.Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->blobs_removed, 0);
  EXPECT_TRUE(other.Verify(false)->clean());
  // A store with none of them cannot tag it.
  Store empty((dir_ / "empty").string());
  EXPECT_EQ(empty.AddIndexTag(Ref("tiny:v1"), bytes).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace pocket::registry
