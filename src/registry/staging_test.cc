// Staging and lineage: the TTL grammar and RFC 3339 times (bad input included), staging names,
// expiry with an injected clock, Store::Gc removing expired staging tags (and only those), the
// lineage annotations Import writes from a GGUF's provenance keys, and the REGISTRY[/NAMESPACE]
// argument of prune.
#include "registry/staging.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "formats/random_model.h"
#include "registry/model_config.h"
#include "registry/oci.h"
#include "registry/prune.h"
#include "registry/store.h"

namespace pocket::registry {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kNow = 1796677200;  // 2026-12-07T21:00:00Z

TEST(ParseTtlTest, ReadsGoStyleWholeUnits) {
  EXPECT_EQ(*ParseTtl("45s"), 45);
  EXPECT_EQ(*ParseTtl("30m"), 1800);
  EXPECT_EQ(*ParseTtl("24h"), 86400);
  EXPECT_EQ(*ParseTtl("7d"), 7 * 86400);
  EXPECT_EQ(*ParseTtl("1h30m"), 5400);
  EXPECT_EQ(*ParseTtl("1d2h3m4s"), 86400 + 7200 + 180 + 4);
  EXPECT_EQ(*ParseTtl("3650d"), kMaxTtlSeconds);
}

TEST(ParseTtlTest, RefusesAnythingElseInOneLineNamingTheInput) {
  for (const char* bad : {"", "24", "h", "1.5h", "-1h", "+1h", "0s", "0d0h", "100ms", "1w", "1 h",
                          "1h ", " 1h", "1H", "3651d", "99999999999999h", "1h-", "1hm"}) {
    auto r = ParseTtl(bad);
    ASSERT_FALSE(r.ok()) << "'" << bad << "' parsed as " << *r;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("'" + std::string(bad) + "'"), std::string::npos)
        << r.status().message();
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  }
}

TEST(ParseTtlTest, FormatTtlReadsBack) {
  for (int64_t s : {int64_t{1}, int64_t{59}, int64_t{60}, int64_t{3599}, int64_t{3600},
                    int64_t{5400}, int64_t{86400}, int64_t{90061}, kMaxTtlSeconds}) {
    EXPECT_EQ(*ParseTtl(FormatTtl(s)), s) << FormatTtl(s);
  }
  EXPECT_EQ(FormatTtl(5400), "1h30m");
  EXPECT_EQ(FormatTtl(0), "0s");
}

TEST(Rfc3339Test, FormatsUtcAndParsesOffsetsFractionsAndLeapDays) {
  EXPECT_EQ(FormatRfc3339(kNow), "2026-12-07T21:00:00Z");
  EXPECT_EQ(FormatRfc3339(0), "1970-01-01T00:00:00Z");
  EXPECT_EQ(*ParseRfc3339("2026-12-07T21:00:00Z", "t"), kNow);
  EXPECT_EQ(*ParseRfc3339("2026-12-07t21:00:00z", "t"), kNow);
  EXPECT_EQ(*ParseRfc3339("2026-12-07T21:00:00.123456Z", "t"), kNow);
  EXPECT_EQ(*ParseRfc3339("2026-12-07T22:30:00+01:30", "t"), kNow);
  EXPECT_EQ(*ParseRfc3339("2026-12-07T16:00:00-05:00", "t"), kNow);
  EXPECT_EQ(*ParseRfc3339("2028-02-29T00:00:00Z", "t"), 1835395200);
  EXPECT_EQ(*ParseRfc3339("1969-12-31T23:59:59Z", "t"), -1);
  for (int64_t t : {int64_t{0}, kNow, kNow + kMaxTtlSeconds, int64_t{951782400}}) {
    EXPECT_EQ(*ParseRfc3339(FormatRfc3339(t), "t"), t);
  }
}

TEST(Rfc3339Test, RefusesMalformedTimesNamingTheSource) {
  for (const char* bad :
       {"", "2026-12-07", "2026-12-07T21:00:00", "2026-12-07 21:00:00Z", "2026-13-07T21:00:00Z",
        "2026-02-29T00:00:00Z", "2026-12-32T00:00:00Z", "2026-12-07T24:00:00Z",
        "2026-12-07T21:60:00Z", "2026-12-07T21:00:00.Z", "2026-12-07T21:00:00+0100",
        "2026-12-07T21:00:00Zjunk", "26-12-07T21:00:00Z", "tomorrow"}) {
    auto r = ParseRfc3339(bad, "POCKET_NOW");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message().rfind("POCKET_NOW '", 0), 0u) << r.status().message();
  }
}

TEST(StagingNameTest, AComponentBeforeTheLastMakesAStagingName) {
  EXPECT_TRUE(IsStagingName("staging/tiny"));
  EXPECT_TRUE(IsStagingName("127.0.0.1:5000/team/staging/tiny"));
  EXPECT_TRUE(IsStagingName("staging/team/tiny"));
  EXPECT_FALSE(IsStagingName("staging"));
  EXPECT_FALSE(IsStagingName("team/staging"));
  EXPECT_FALSE(IsStagingName("tiny-staging/x"));
  EXPECT_FALSE(IsStagingName("staging-area/x"));
  EXPECT_FALSE(IsStagingName("tiny"));
  EXPECT_EQ(StagingRef({"tiny", "v1"})->ToString(), "staging/tiny:v1");
  EXPECT_EQ(StagingRef({"staging/tiny", "v1"})->ToString(), "staging/tiny:v1");
  EXPECT_FALSE(StagingRef({std::string(250, 'a'), "v1"}).ok());
}

TEST(ExpiryTest, ExpiresAtTheAnnotatedTimeOnlyUnderStaging) {
  const auto a = StagingAnnotations(kNow, 3600);
  EXPECT_EQ(a.at(kStagingExpiresAnnotation), "2026-12-07T22:00:00Z");
  EXPECT_EQ(a.at(kCreatedAnnotation), "2026-12-07T21:00:00Z");
  EXPECT_EQ(**ExpiryOf(a), kNow + 3600);
  EXPECT_FALSE(IsExpiredStaging("staging/tiny", a, kNow + 3599));
  EXPECT_TRUE(IsExpiredStaging("staging/tiny", a, kNow + 3600));
  // The same manifest promoted out of staging never expires.
  EXPECT_FALSE(IsExpiredStaging("tiny", a, kNow + 10 * 3600));
  // No annotation, or a malformed one: kept.
  EXPECT_FALSE(ExpiryOf({})->has_value());
  EXPECT_FALSE(IsExpiredStaging("staging/tiny", {}, kNow));
  const std::map<std::string, std::string> bad = {{kStagingExpiresAnnotation, "soon"}};
  EXPECT_FALSE(ExpiryOf(bad).ok());
  EXPECT_FALSE(IsExpiredStaging("staging/tiny", bad, kNow + kMaxTtlSeconds));
}

TEST(RegistryNamespaceTest, ParsesHostAndNamespace) {
  auto ns = ParseRegistryNamespace("127.0.0.1:5000/team");
  ASSERT_TRUE(ns.ok()) << ns.status().message();
  EXPECT_EQ(ns->host, "127.0.0.1:5000");
  EXPECT_EQ(ns->name_space, "team");
  EXPECT_EQ(ns->StagingPrefix(), "team/staging/");
  ns = ParseRegistryNamespace("registry.example.com");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns->name_space, "");
  EXPECT_EQ(ns->StagingPrefix(), "staging/");
  ns = ParseRegistryNamespace("team/ml", "reg.example.com");
  ASSERT_TRUE(ns.ok());
  EXPECT_EQ(ns->ToString(), "reg.example.com/team/ml");
  EXPECT_FALSE(ParseRegistryNamespace("team").ok());  // no host, no $POCKET_REGISTRY
  EXPECT_FALSE(ParseRegistryNamespace("127.0.0.1:5000/../x").ok());
  EXPECT_FALSE(ParseRegistryNamespace("127.0.0.1:5000/Team").ok());
}

TEST(PruneParsersTest, ReadCatalogTagsAndAnnotationsAndRefuseMalformedLists) {
  auto names =
      ParseNameList(R"({"repositories":["team/staging/a","team/b",7]})", "repositories", "catalog");
  ASSERT_TRUE(names.ok()) << names.status().message();
  EXPECT_EQ(*names, (std::vector<std::string>{"team/staging/a", "team/b"}));
  names = ParseNameList(R"({"name":"team/staging/a","tags":null})", "tags", "tags");
  ASSERT_TRUE(names.ok());
  EXPECT_TRUE(names->empty());
  for (const char* bad : {"", "[]", "{\"tags\":\"v1\"}", "{\"tags\":{}}", "{\"tags\":[", "null"}) {
    auto r = ParseNameList(bad, "tags", "GET /v2/x/tags/list");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption);
    EXPECT_EQ(r.status().message().rfind("GET /v2/x/tags/list", 0), 0u) << r.status().message();
  }
  const auto a = ManifestAnnotations(
      R"({"schemaVersion":2,"annotations":{"io.pocket.staging.expires":"2026-12-07T22:00:00Z","n":1}})");
  EXPECT_EQ(
      a, (std::map<std::string, std::string>{{kStagingExpiresAnnotation, "2026-12-07T22:00:00Z"}}));
  EXPECT_TRUE(ManifestAnnotations("not json").empty());
  EXPECT_TRUE(ManifestAnnotations(R"({"annotations":[1]})").empty());
}

class StagingStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pocket_staging_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    root_ = (dir_ / "store").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A tiny random GGUF model, with `keys` as string metadata (provenance).
  std::string MakeModel(const std::string& file, uint64_t seed,
                        const std::map<std::string, std::string>& keys = {}) {
    auto spec = formats::NamedShape("tiny");
    EXPECT_TRUE(spec.ok());
    spec->seed = seed;
    spec->vocab_size = 512;
    spec->weight_type = tensor::DType::kF32;
    auto writer = formats::BuildRandomModel(*spec);
    EXPECT_TRUE(writer.ok()) << writer.status().message();
    for (const auto& [k, v] : keys) writer->SetString(k, v);
    const std::string path = (dir_ / file).string();
    EXPECT_TRUE(writer->Write(path).ok());
    return path;
  }
  static ModelRef Ref(const std::string& text) { return *ParseModelRef(text); }

  fs::path dir_;
  std::string root_;
};

TEST_F(StagingStoreTest, GcRemovesExpiredStagingTagsAndKeepsTheRest) {
  const std::string a = MakeModel("a.gguf", 1), b = MakeModel("b.gguf", 2);
  Store store(root_);
  ImportOptions hour, day;
  hour.manifest_annotations = StagingAnnotations(kNow, 3600);
  day.manifest_annotations = StagingAnnotations(kNow, 86400);
  ASSERT_TRUE(store.Import(a, Ref("staging/a:v1"), hour).ok());
  ASSERT_TRUE(store.Import(b, Ref("staging/b:v1"), day).ok());
  // b's bytes also under a plain tag: the blob is shared, the manifest is not.
  auto plain = store.Import(b, Ref("b:release"));
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->layer_written);
  // The same manifest as staging/a:v1 outside staging: never expires (a promotion).
  auto staged_a = store.Show(Ref("staging/a:v1"));
  ASSERT_TRUE(staged_a.ok());
  ASSERT_TRUE(store.AddTag(Ref("a:release"), staged_a->manifest_json).ok());

  GcOptions before;
  before.now_s = kNow + 3599;
  auto r = store.Gc(before);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE(r->expired_tags.empty());
  EXPECT_EQ(r->blobs_removed, 0);

  GcOptions after = before;
  after.now_s = kNow + 3600;
  r = store.Gc(after);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->expired_tags, std::vector<std::string>{"staging/a:v1"});
  EXPECT_EQ(r->blobs_removed,
            0);  // a:release holds the same manifest, config and layer
  EXPECT_FALSE(store.Find(Ref("staging/a:v1")).ok());
  EXPECT_TRUE(store.Find(Ref("a:release")).ok());
  EXPECT_TRUE(store.Find(Ref("staging/b:v1")).ok());

  after.now_s = kNow + 86400;
  r = store.Gc(after);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->expired_tags, std::vector<std::string>{"staging/b:v1"});
  EXPECT_EQ(r->blobs_removed,
            1);  // its manifest; config and layer are b:release's too
  auto left = store.List();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), 2u);
  EXPECT_TRUE(store.Verify(false)->clean());

  // expire_staging off: nothing is judged by time.
  ASSERT_TRUE(store.Import(a, Ref("staging/a:v2"), hour).ok());
  after.expire_staging = false;
  r = store.Gc(after);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->expired_tags.empty());
}

TEST_F(StagingStoreTest, ImportRecordsLineageFromProvenanceKeysAndStaysDeterministic) {
  const std::string parent_hex(64, 'a'), recipe_hex(64, 'B'), data_hex(64, 'c');
  const std::string child = MakeModel("child.gguf", 3,
                                      {{"pocket.parent_sha256", parent_hex},
                                       {"pocket.recipe_sha256", recipe_hex},
                                       {"pocket.data_sha256", data_hex},
                                       {"pocket.seed", "7"}});
  Store store(root_);
  auto one = store.Import(child, Ref("child:v1"));
  ImportOptions later;
  later.created = "2020-01-01T00:00:00Z";
  auto two = store.Import(child, Ref("child:v2"), later);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(one->entry.manifest_digest,
            two->entry.manifest_digest);  // no time inside
  auto info = store.Show(Ref("child:v1"));
  ASSERT_TRUE(info.ok());
  const auto& a = info->manifest.annotations;
  EXPECT_EQ(a.at(kLineageParentAnnotation), "sha256:" + parent_hex);
  EXPECT_EQ(a.at(kLineageRecipeAnnotation), "sha256:" + std::string(64, 'b'));
  EXPECT_EQ(a.at(kLineageDataAnnotation), "sha256:" + data_hex);
  EXPECT_EQ(a.size(), 3u);

  // No provenance: no annotations at all, the manifest as before lineage existed.
  const std::string plain = MakeModel("plain.gguf", 4);
  ASSERT_TRUE(store.Import(plain, Ref("plain")).ok());
  info = store.Show(Ref("plain"));
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(info->manifest.annotations.empty());
  EXPECT_EQ(info->manifest_json.find("annotations\":{\"io"), std::string::npos);

  // A hash that is not 64 hex digits is not lineage (the config keeps it as written).
  const std::string odd = MakeModel("odd.gguf", 5, {{"pocket.parent_sha256", "not-a-hash"}});
  ASSERT_TRUE(store.Import(odd, Ref("odd")).ok());
  info = store.Show(Ref("odd"));
  EXPECT_TRUE(info->manifest.annotations.empty());
  EXPECT_EQ(info->config["provenance"]["pocket.parent_sha256"], "not-a-hash");
}

}  // namespace
}  // namespace pocket::registry
