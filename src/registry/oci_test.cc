// The OCI manifest and index codecs: round trips, determinism, and one hand-made corruption
// per field, each a one-line Corruption naming the document and the field.
#include "registry/oci.h"

#include <gtest/gtest.h>

namespace pocket::registry {
namespace {

Manifest SampleManifest() {
  Manifest m;
  m.artifact_type = kModelArtifactType;
  m.config = {kModelConfigType, DigestOf("{}"), 2, "", {}, ""};
  Descriptor layer{kGgufLayerType, DigestOf("GGUF"), 4, "", {}, ""};
  layer.annotations[kTitleAnnotation] = "m.gguf";
  m.layers.push_back(layer);
  return m;
}

TEST(OciTest, ManifestRoundTripsAndIsDeterministic) {
  const Manifest m = SampleManifest();
  const std::string bytes = SerializeManifest(m);
  EXPECT_EQ(bytes, SerializeManifest(m));
  auto parsed = ParseManifest(bytes, "m");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, m);
  ASSERT_NE(parsed->ModelLayer(), nullptr);
  EXPECT_EQ(parsed->ModelLayer()->digest, DigestOf("GGUF"));
}

TEST(OciTest, ManifestSubjectRoundTripsAndIsCheckedLikeADescriptor) {
  Manifest m = SampleManifest();
  m.subject = Descriptor{kOciManifestType, DigestOf("subject"), 7, "", {}, ""};
  auto parsed = ParseManifest(SerializeManifest(m), "m");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, m);
  ASSERT_TRUE(parsed->subject.has_value());
  EXPECT_EQ(parsed->subject->digest, DigestOf("subject"));
  // Without a subject, none is read back (the model manifests the store writes).
  auto plain = ParseManifest(SerializeManifest(SampleManifest()), "m");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->subject.has_value());
  std::string bad = SerializeManifest(m);
  bad.replace(bad.find(DigestOf("subject")), 7, "md5:xx:");
  auto refused = ParseManifest(bad, "m");
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("subject.digest"), std::string::npos)
      << refused.status().message();
}

TEST(OciTest, IndexRoundTrips) {
  Index index;
  Descriptor d{kOciManifestType, DigestOf("x"), 1, kModelArtifactType, {}, ""};
  d.annotations[kRefNameAnnotation] = "tiny:latest";
  index.manifests = {d, d};
  auto parsed = ParseIndex(SerializeIndex(index), "index.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, index);
}

TEST(OciTest, IndexKeepsFieldsItDoesNotReadWhenRewritten) {
  const std::string written_by_another_tool =
      R"({"schemaVersion":2,"annotations":{"x":"y"},"manifests":[{"mediaType":)"
      R"("application/vnd.oci.image.manifest.v1+json","digest":")" +
      DigestOf("m") +
      R"(","size":3,"platform":{"architecture":"amd64","os":"linux"},"urls":["u"]}]})";
  auto index = ParseIndex(written_by_another_tool, "index.json");
  ASSERT_TRUE(index.ok()) << index.status().message();
  const std::string rewritten = SerializeIndex(*index);
  EXPECT_NE(rewritten.find(R"("platform":{"architecture":"amd64","os":"linux"})"),
            std::string::npos)
      << rewritten;
  EXPECT_NE(rewritten.find(R"("urls":["u"])"), std::string::npos);
  EXPECT_NE(rewritten.find(R"("annotations":{"x":"y"})"), std::string::npos);
  auto again = ParseIndex(rewritten, "again");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *index);
}

TEST(OciTest, RecognisesOllamaAndModelPackGgufLayers) {
  for (const char* type : {kOllamaModelLayerType, kModelPackRawWeightType}) {
    Manifest m = SampleManifest();
    m.layers[0].media_type = type;
    ASSERT_NE(m.ModelLayer(), nullptr) << type;
  }
  Manifest m = SampleManifest();
  m.layers[0].media_type = "application/octet-stream";
  EXPECT_EQ(m.ModelLayer(), nullptr);
}

TEST(OciTest, ReadsOllamaStyleDockerV2Manifests) {
  Manifest m = SampleManifest();
  m.media_type = kDockerManifestType;
  m.layers[0].media_type = kOllamaModelLayerType;
  auto parsed = ParseManifest(SerializeManifest(m), "ollama");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(parsed->media_type, kDockerManifestType);
  ASSERT_NE(parsed->ModelLayer(), nullptr);
}

TEST(OciTest, MalformedManifestsAreOneLineCorruptionNamingTheField) {
  const std::string good_digest = DigestOf("a");
  const std::string cfg =
      R"("config":{"mediaType":"t","digest":")" + good_digest + R"(","size":1})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"not json", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"schemaVersion":1,)" + cfg + R"(,"layers":[]})", "schemaVersion"},
      {R"({)" + cfg + R"(,"layers":[]})", "schemaVersion"},
      {R"({"schemaVersion":2,"layers":[]})", "config is missing"},
      {R"({"schemaVersion":2,)" + cfg + "}", "layers is missing"},
      {R"({"schemaVersion":2,)" + cfg + R"(,"layers":{}})", "layers is not an array"},
      {R"({"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",)" + cfg +
           R"(,"layers":[]})",
       "mediaType"},
      {R"({"schemaVersion":2,"config":{"mediaType":"t","digest":"sha256:xyz","size":1},"layers":[]})",
       "config.digest"},
      {R"({"schemaVersion":2,"config":{"mediaType":"t","digest":")" + good_digest +
           R"(","size":-1},"layers":[]})",
       "config.size is negative"},
      {R"({"schemaVersion":2,"config":{"mediaType":"t","digest":")" + good_digest +
           R"(","size":"1"},"layers":[]})",
       "config.size is not an integer"},
      {R"({"schemaVersion":2,"config":{"digest":")" + good_digest + R"(","size":1},"layers":[]})",
       "config.mediaType is missing"},
      {R"({"schemaVersion":2,)" + cfg + R"(,"layers":[{"mediaType":"t","digest":")" + good_digest +
           R"(","size":1,"annotations":{"k":1}}]})",
       "layers[0].annotations.k"},
      {R"({"schemaVersion":2,)" + cfg + R"(,"layers":[{"mediaType":"t","digest":")" + good_digest +
           R"(","size":18446744073709551615}]})",
       "layers[0].size is out of range"},
      {std::string(100, '[') + std::string(100, ']'), "deeper"},
  };
  for (const auto& [text, expected] : cases) {
    auto m = ParseManifest(text, "manifest X");
    ASSERT_FALSE(m.ok()) << text;
    EXPECT_EQ(m.status().code(), StatusCode::kCorruption) << text;
    EXPECT_EQ(m.status().message().rfind("manifest X", 0), 0u) << m.status().message();
    EXPECT_NE(m.status().message().find(expected), std::string::npos)
        << text << " -> " << m.status().message();
    EXPECT_EQ(m.status().message().find('\n'), std::string::npos);
  }
}

TEST(OciTest, MalformedIndexIsCorruptionNamingTheFile) {
  for (const char* text :
       {"", "{", R"({"schemaVersion":2})", R"({"schemaVersion":2,"manifests":[1]})",
        R"({"schemaVersion":2,"manifests":[{"mediaType":"t","size":1}]})"}) {
    auto index = ParseIndex(text, "/s/index.json");
    ASSERT_FALSE(index.ok()) << text;
    EXPECT_EQ(index.status().code(), StatusCode::kCorruption);
    EXPECT_EQ(index.status().message().rfind("/s/index.json", 0), 0u) << index.status().message();
  }
}

TEST(OciTest, DigestGrammar) {
  EXPECT_TRUE(IsValidDigest(DigestOf("")));
  EXPECT_EQ(DigestOf(""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_FALSE(
      IsValidDigest("sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"));
  EXPECT_FALSE(IsValidDigest("sha512:" + std::string(64, 'a')));
  EXPECT_FALSE(IsValidDigest("sha256:" + std::string(63, 'a')));
}

}  // namespace
}  // namespace pocket::registry
