// Referrers on a registry, against an in-process one (net::HttpServer): found with the OCI
// 1.1 referrers API when the registry has it (no tag written on push), else with the
// referrers tag sha256-<hex>; a referrer whose blob does not match its digest is skipped and
// reported, never returned. The real docker-registry (tag schema only) is exercised by
// tests/cli/registry_remote_test.cc.
#include "registry/referrers.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>

#include "net/http_server.h"
#include "registry/signature.h"

namespace pocket::registry {
namespace {

// A registry holding manifests and blobs of repository team/tiny in maps; with `api_`, it
// answers GET /v2/team/tiny/referrers/<digest> from the subjects of the manifests it holds.
class FakeReferrersRegistry {
 public:
  explicit FakeReferrersRegistry(bool api) : api_(api) {
    net::HttpOptions o;
    o.port = 0;
    server_ = std::make_unique<net::HttpServer>(
        o, [this](net::HttpRequest r, std::shared_ptr<net::Exchange> ex) { Handle(r, ex); },
        nullptr);
    EXPECT_TRUE(server_->Start().ok());
  }
  ~FakeReferrersRegistry() { server_->Stop(); }
  std::string host() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  void Handle(const net::HttpRequest& r, const std::shared_ptr<net::Exchange>& ex) {
    std::lock_guard<std::mutex> lock(mu_);
    const std::string repo = "/v2/team/tiny/";
    if (r.path.rfind(repo, 0) != 0) return ex->Respond(404, {}, "{}");
    const std::string rest = r.path.substr(repo.size());
    if (rest.rfind("referrers/", 0) == 0) {
      if (!api_) return ex->Respond(404, {}, "404 page not found");
      Index index;
      for (const auto& [digest, bytes] : manifests_) {
        auto m = ParseManifest(bytes, "m");
        if (m.ok() && m->subject && m->subject->digest == rest.substr(10)) {
          index.manifests.push_back({kOciManifestType,
                                     digest,
                                     static_cast<int64_t>(bytes.size()),
                                     m->artifact_type,
                                     {},
                                     ""});
        }
      }
      return ex->Respond(200, {{"Content-Type", kOciIndexType}}, SerializeIndex(index));
    }
    if (rest.rfind("manifests/", 0) == 0) {
      const std::string ref = rest.substr(10);
      if (r.method == "PUT") {
        manifests_[DigestOf(r.body)] = r.body;
        if (!IsValidDigest(ref)) tags_[ref] = DigestOf(r.body);
        return ex->Respond(201, {{"Docker-Content-Digest", DigestOf(r.body)}}, "");
      }
      const std::string digest = tags_.count(ref) ? tags_[ref] : ref;
      if (!manifests_.count(digest)) return ex->Respond(404, {}, "{}");
      return ex->Respond(200, {{"Docker-Content-Digest", digest}}, manifests_[digest]);
    }
    if (rest.rfind("blobs/uploads/", 0) == 0) {
      if (r.method == "POST") {
        return ex->Respond(202, {{"Location", "http://" + host() + repo + "blobs/uploads/1"}}, "");
      }
      blobs_[DigestOf(r.body)] = r.body;
      return ex->Respond(201, {}, "");
    }
    if (rest.rfind("blobs/", 0) == 0) {
      const std::string digest = rest.substr(6);
      if (!blobs_.count(digest)) return ex->Respond(404, {}, "{}");
      return ex->Respond(200, {}, r.method == "HEAD" ? "" : blobs_[digest]);
    }
    ex->Respond(404, {}, "{}");
  }

  bool api_;
  std::map<std::string, std::string> manifests_, blobs_, tags_;
  std::mutex mu_;
  std::unique_ptr<net::HttpServer> server_;
};

ReferrerArtifact Signed(const SecretKey& key, const std::string& subject_digest) {
  const SignatureArtifact s =
      MakeSignature(key, {kOciManifestType, subject_digest, 100, "", {}, ""}, "t");
  ReferrerArtifact a;
  a.digest = DigestOf(s.manifest_json);
  a.manifest_json = s.manifest_json;
  a.manifest = *ParseManifest(s.manifest_json, "s");
  a.blobs = {s.config, s.payload};
  return a;
}

TEST(ReferrersTest, PushedSignaturesAreFoundWithTheApiOrTheTagSchema) {
  for (const bool api : {true, false}) {
    FakeReferrersRegistry reg(api);
    RegistryClient client(reg.host(), {});
    const std::string subject = DigestOf("model manifest");
    const ReferrerArtifact a = Signed(GenerateSecretKey(), subject);
    auto pushed = PushReferrers(client, "team/tiny", subject, {a}, 5000);
    ASSERT_TRUE(pushed.ok()) << pushed.status().message();
    EXPECT_EQ(*pushed, 1);
    // The tag is written only where the registry keeps no list itself.
    {
      std::lock_guard<std::mutex> lock(reg.mu_);
      EXPECT_EQ(reg.tags_.count("sha256-" + std::string(DigestHex(subject))), api ? 0u : 1u);
    }
    // Pushing again lists nothing new.
    EXPECT_EQ(*PushReferrers(client, "team/tiny", subject, {a}, 5000), api ? 1 : 0);

    auto fetched = FetchReferrers(client, "team/tiny", subject, kSignatureArtifactType, 5000);
    ASSERT_TRUE(fetched.ok()) << fetched.status().message();
    ASSERT_EQ(fetched->artifacts.size(), 1u) << "api=" << api;
    EXPECT_TRUE(fetched->skipped.empty());
    EXPECT_EQ(fetched->artifacts[0].digest, a.digest);
    EXPECT_EQ(fetched->artifacts[0].blobs, a.blobs);
    // Another subject has none.
    auto none = FetchReferrers(client, "team/tiny", DigestOf("x"), kSignatureArtifactType, 5000);
    ASSERT_TRUE(none.ok());
    EXPECT_TRUE(none->artifacts.empty());
  }
}

TEST(ReferrersTest, ReferrerWithACorruptBlobIsSkippedAndReported) {
  FakeReferrersRegistry reg(/*api=*/true);
  RegistryClient client(reg.host(), {});
  const std::string subject = DigestOf("model manifest");
  const ReferrerArtifact a = Signed(GenerateSecretKey(), subject);
  ASSERT_TRUE(PushReferrers(client, "team/tiny", subject, {a}, 5000).ok());
  {
    std::lock_guard<std::mutex> lock(reg.mu_);
    reg.blobs_[a.manifest.layers[0].digest][0] ^= 1;  // the payload, damaged in the registry
  }
  auto fetched = FetchReferrers(client, "team/tiny", subject, kSignatureArtifactType, 5000);
  ASSERT_TRUE(fetched.ok()) << fetched.status().message();
  EXPECT_TRUE(fetched->artifacts.empty());
  ASSERT_EQ(fetched->skipped.size(), 1u);
  EXPECT_NE(fetched->skipped[0].find("does not match its digest"), std::string::npos)
      << fetched->skipped[0];
}

}  // namespace
}  // namespace pocket::registry
