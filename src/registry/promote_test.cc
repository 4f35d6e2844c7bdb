// Signatures in the local store and promotion: referrers are untagged entries of index.json
// that ls does not show, gc keeps the referrers of live manifests and drops those of dead
// ones (with their blobs), and a local promotion moves a tag only with a trusted signature.
#include "registry/promote.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "formats/random_model.h"
#include "registry/staging.h"
#include "registry/variant.h"

namespace pocket::registry {
namespace {

namespace fs = std::filesystem;

class PromoteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pocket_promote_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    root_ = (dir_ / "store").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Imports a tiny random model (`seed` changes its bytes) as `ref`; returns its digest.
  std::string ImportModel(Store& store, const std::string& ref, uint64_t seed) {
    auto spec = formats::NamedShape("tiny");
    EXPECT_TRUE(spec.ok());
    spec->seed = seed;
    spec->vocab_size = 512;
    spec->weight_type = tensor::DType::kF32;
    auto writer = formats::BuildRandomModel(*spec);
    EXPECT_TRUE(writer.ok());
    const std::string path = (dir_ / ("m" + std::to_string(seed) + ".gguf")).string();
    EXPECT_TRUE(writer->Write(path).ok());
    auto imported = store.Import(path, *ParseModelRef(ref));
    EXPECT_TRUE(imported.ok()) << imported.status().message();
    return imported->entry.manifest_digest;
  }

  // Signs the manifest `digest` of the store with `key`; returns the signature's digest.
  std::string Sign(Store& store, const std::string& digest, const SecretKey& key) {
    auto bytes = store.ReadBlob(digest, 1 << 20);
    EXPECT_TRUE(bytes.ok());
    const Descriptor subject{
        kOciManifestType, digest, static_cast<int64_t>(bytes->size()), "", {}, ""};
    const SignatureArtifact a = MakeSignature(key, subject, "2026-12-07T00:00:00Z");
    auto stored = store.AddReferrer(a.manifest_json, {a.config, a.payload});
    EXPECT_TRUE(stored.ok()) << stored.status().message();
    return stored->digest;
  }

  TrustFile Trust(const SecretKey& key) {
    return *ParseTrustFile("alice " + key.Public().ToString() + "\n", "trusted-keys");
  }

  fs::path dir_;
  std::string root_;
};

TEST_F(PromoteTest, ReferrersAreStoredUntaggedAndHiddenFromList) {
  Store store(root_);
  const std::string digest = ImportModel(store, "tiny:v1", 1);
  const SecretKey key = GenerateSecretKey();
  const std::string sig = Sign(store, digest, key);
  EXPECT_EQ(Sign(store, digest, key), sig);  // same second, same bytes: stored once

  auto tags = store.List();
  ASSERT_TRUE(tags.ok());
  ASSERT_EQ(tags->size(), 1u);
  EXPECT_EQ((*tags)[0].ref.ToString(), "tiny:v1");
  auto referrers = store.Referrers(digest, kSignatureArtifactType);
  ASSERT_TRUE(referrers.ok()) << referrers.status().message();
  ASSERT_EQ(referrers->size(), 1u);
  EXPECT_EQ((*referrers)[0].descriptor.digest, sig);
  EXPECT_EQ((*referrers)[0].descriptor.artifact_type, kSignatureArtifactType);
  EXPECT_EQ((*referrers)[0].descriptor.annotations.count(kRefNameAnnotation), 0u);
  EXPECT_TRUE(store.Referrers(digest, kModelArtifactType)->empty());
  EXPECT_TRUE(store.Referrers(DigestOf("other"), "")->empty());
  auto verify = store.Verify(false);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->clean());

  // A referrer must refer to something, and its blobs must be there.
  Manifest plain;
  plain.config = {kEmptyConfigType, DigestOf("{}"), 2, "", {}, ""};
  EXPECT_EQ(store.AddReferrer(SerializeManifest(plain), {"{}"}).status().code(),
            StatusCode::kInvalidArgument);
  // (A payload names only its subject: one for another digest is not in the store yet.)
  const SignatureArtifact a =
      MakeSignature(key, {kOciManifestType, DigestOf("elsewhere"), 1, "", {}, ""}, "x");
  EXPECT_EQ(store.AddReferrer(a.manifest_json, {a.config}).status().code(), StatusCode::kNotFound);
}

TEST_F(PromoteTest, GcKeepsSignaturesOfLiveTagsAndDropsThoseOfRemovedOnes) {
  Store store(root_);
  const SecretKey key = GenerateSecretKey();
  const std::string live = ImportModel(store, "tiny:v1", 1);
  const std::string dead = ImportModel(store, "old:v1", 2);
  const std::string live_sig = Sign(store, live, key);
  const std::string dead_sig = Sign(store, dead, key);
  // A signature of a signature lives as long as the one it signs.
  const std::string sig_of_sig = Sign(store, live_sig, key);
  ASSERT_TRUE(store.Remove(*ParseModelRef("old:v1")).ok());

  auto gc = store.Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_EQ(gc->referrers_removed, 1);
  // The dead model's manifest, config and layer, and its signature's manifest; the empty
  // config and the payload layer differ per subject only in the payload.
  EXPECT_EQ(gc->blobs_removed, 5);
  EXPECT_TRUE(fs::exists(store.BlobPath(live_sig)));
  EXPECT_TRUE(fs::exists(store.BlobPath(sig_of_sig)));
  EXPECT_FALSE(fs::exists(store.BlobPath(dead_sig)));
  auto checks = CheckStoredSignatures(store, live, nullptr);
  ASSERT_TRUE(checks.ok()) << checks.status().message();
  ASSERT_EQ(checks->size(), 1u);
  EXPECT_TRUE((*checks)[0].valid) << (*checks)[0].problem;
  EXPECT_TRUE(store.Referrers(dead, "")->empty());
  auto verify = store.Verify(false);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->clean());

  // Once the last tag goes, everything goes.
  ASSERT_TRUE(store.Remove(*ParseModelRef("tiny:v1")).ok());
  gc = store.Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->referrers_removed, 2);
  EXPECT_EQ(gc->blobs_kept, 0);
}

TEST_F(PromoteTest, PromotionNeedsATrustedValidSignature) {
  Store store(root_);
  const SecretKey alice = GenerateSecretKey(), mallory = GenerateSecretKey();
  const TrustFile trust = Trust(alice);
  const std::string digest = ImportModel(store, "tiny:rc1", 1);
  const ModelRef rc1 = *ParseModelRef("tiny:rc1"), release = *ParseModelRef("tiny:release");

  auto refused = PromoteLocal(store, rc1, release, trust);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("has no signature"), std::string::npos)
      << refused.status().message();
  Sign(store, digest, mallory);
  refused = PromoteLocal(store, rc1, release, trust);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("signed only by keys not in trusted-keys"),
            std::string::npos)
      << refused.status().message();
  EXPECT_EQ(store.Find(release).status().code(), StatusCode::kNotFound);

  Sign(store, digest, alice);
  auto promoted = PromoteLocal(store, rc1, release, trust);
  ASSERT_TRUE(promoted.ok()) << promoted.status().message();
  EXPECT_EQ(promoted->manifest_digest, digest);
  EXPECT_EQ(promoted->signed_by.signer, "alice");
  auto entry = store.Find(release);
  ASSERT_TRUE(entry.ok());
  EXPECT_EQ(entry->manifest_digest, digest);
  EXPECT_EQ(PromoteLocal(store, *ParseModelRef("absent:v1"), release, trust).status().code(),
            StatusCode::kNotFound);
}

TEST_F(PromoteTest, DamagedSignaturePayloadRefusesPromotion) {
  Store store(root_);
  const SecretKey alice = GenerateSecretKey();
  const std::string digest = ImportModel(store, "tiny:rc1", 1);
  const std::string sig = Sign(store, digest, alice);
  auto referrers = store.Referrers(digest, kSignatureArtifactType);
  ASSERT_TRUE(referrers.ok());
  const std::string payload = store.BlobPath((*referrers)[0].manifest.layers[0].digest);
  fs::permissions(payload, fs::perms::owner_write, fs::perm_options::add);
  {
    FILE* f = std::fopen(payload.c_str(), "r+");
    ASSERT_NE(f, nullptr);
    std::fputc('X', f);
    std::fclose(f);
  }
  auto refused =
      PromoteLocal(store, *ParseModelRef("tiny:rc1"), *ParseModelRef("tiny:release"), Trust(alice));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), StatusCode::kCorruption);
  EXPECT_NE(refused.status().message().find("has no valid signature"), std::string::npos)
      << refused.status().message();
}

// Where the three parts of the store's gc meet: a signed staging tag that expires takes its
// signature with it (unless another tag names the same manifest), and a signed variant index
// keeps its signature and every child it holds after the children's own tags are gone.
TEST_F(PromoteTest, GcDropsSignaturesOfExpiredStagingAndKeepsThoseOfAVariantIndex) {
  Store store(root_);
  const SecretKey key = GenerateSecretKey();
  const std::string small = ImportModel(store, "tiny:small", 1);
  const std::string big = ImportModel(store, "tiny:big", 2);
  auto index_bytes =
      MakeVariantIndex(store, {*ParseModelRef("tiny:big"), *ParseModelRef("tiny:small")});
  ASSERT_TRUE(index_bytes.ok()) << index_bytes.status().message();
  auto index = store.AddIndexTag(*ParseModelRef("tiny:latest"), *index_bytes);
  ASSERT_TRUE(index.ok()) << index.status().message();
  auto index_blob = store.ReadBlob(index->manifest_digest, 1 << 20);
  ASSERT_TRUE(index_blob.ok());
  const SignatureArtifact index_sig = MakeSignature(
      key,
      {kOciIndexType, index->manifest_digest, static_cast<int64_t>(index_blob->size()), "", {}, ""},
      "2026-12-07T00:00:00Z");
  auto index_sig_stored =
      store.AddReferrer(index_sig.manifest_json, {index_sig.config, index_sig.payload});
  ASSERT_TRUE(index_sig_stored.ok()) << index_sig_stored.status().message();

  // A staged model expiring at 2026-12-08T00:00:00Z, signed.
  auto spec = formats::NamedShape("tiny");
  ASSERT_TRUE(spec.ok());
  spec->seed = 3;
  spec->vocab_size = 512;
  spec->weight_type = tensor::DType::kF32;
  auto writer = formats::BuildRandomModel(*spec);
  ASSERT_TRUE(writer.ok());
  const std::string path = (dir_ / "staged.gguf").string();
  ASSERT_TRUE(writer->Write(path).ok());
  ImportOptions staged;
  staged.manifest_annotations[kStagingExpiresAnnotation] = "2026-12-08T00:00:00Z";
  auto imported = store.Import(path, *ParseModelRef("staging/run:7"), staged);
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  const std::string staged_sig = Sign(store, imported->entry.manifest_digest, key);

  ASSERT_TRUE(store.Remove(*ParseModelRef("tiny:small")).ok());
  ASSERT_TRUE(store.Remove(*ParseModelRef("tiny:big")).ok());
  GcOptions before;
  before.now_s = *ParseRfc3339("2026-12-07T12:00:00Z", "now");
  auto gc = store.Gc(before);
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_TRUE(gc->expired_tags.empty());
  EXPECT_EQ(gc->referrers_removed, 0);
  EXPECT_EQ(gc->blobs_removed, 0);

  GcOptions after;
  after.now_s = *ParseRfc3339("2026-12-08T00:00:00Z", "now");
  gc = store.Gc(after);
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_EQ(gc->expired_tags, std::vector<std::string>{"staging/run:7"});
  EXPECT_EQ(gc->referrers_removed, 1);  // the staged model's signature
  EXPECT_FALSE(fs::exists(store.BlobPath(staged_sig)));
  EXPECT_FALSE(fs::exists(store.BlobPath(imported->entry.manifest_digest)));
  EXPECT_TRUE(fs::exists(store.BlobPath(index_sig_stored->digest)));
  EXPECT_TRUE(fs::exists(store.BlobPath(small)));
  EXPECT_TRUE(fs::exists(store.BlobPath(big)));
  auto referrers = store.Referrers(index->manifest_digest, kSignatureArtifactType);
  ASSERT_TRUE(referrers.ok());
  EXPECT_EQ(referrers->size(), 1u);
  auto verify = store.Verify(false);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->clean());
}

}  // namespace
}  // namespace pocket::registry
