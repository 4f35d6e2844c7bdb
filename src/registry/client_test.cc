// The registry client's parsers (remote references, WWW-Authenticate challenges, token
// replies) and pull against an in-process fake registry (net::HttpServer) for what the real
// docker-registry of tests/cli/registry_remote_test.cc does not do: Bearer token auth with
// a token service, blob redirects to another host (the Authorization must not follow), and
// a manifest whose Docker-Content-Digest is a lie.
#include "registry/client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <mutex>

#include "base/file.h"
#include "formats/random_model.h"
#include "net/http_server.h"
#include "registry/auth.h"
#include "registry/oci.h"
#include "registry/pull.h"
#include "registry/store.h"

namespace pocket::registry {
namespace {

namespace fs = std::filesystem;

TEST(RemoteRefTest, FirstPartWithADotOrColonOrLocalhostIsTheHost) {
  auto r = ParseRemoteRef("127.0.0.1:5000/library/smollm2:q8_0");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->host, "127.0.0.1:5000");
  EXPECT_EQ(r->repository, "library/smollm2");
  EXPECT_EQ(r->tag, "q8_0");
  EXPECT_EQ(r->local.ToString(), "127.0.0.1:5000/library/smollm2:q8_0");
  r = ParseRemoteRef("localhost/x");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->host, "localhost");
  EXPECT_EQ(r->tag, "latest");
  r = ParseRemoteRef("team/tiny:v1", "registry.example.com");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->host, "registry.example.com");
  EXPECT_EQ(r->repository, "team/tiny");
  EXPECT_FALSE(ParseRemoteRef("team/tiny:v1").ok()) << "no host, no default";
}

TEST(RemoteRefTest, PullByDigestIsStoredUnderADigestTag) {
  const std::string d = "sha256:" + std::string(64, 'a');
  auto r = ParseRemoteRef("r.io/x@" + d);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->digest, d);
  EXPECT_EQ(r->tag, "");
  EXPECT_EQ(r->local.tag, "sha256-" + std::string(64, 'a'));
  r = ParseRemoteRef("r.io/x:v2@" + d);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->tag, "v2");
  EXPECT_FALSE(ParseRemoteRef("r.io/x@sha256:12").ok());
}

TEST(RemoteRefTest, RefusesPathLikeNamesAndBadHostsInOneLine) {
  for (const char* text :
       {"r.io/../../x", "../../x", "r.io/a/../b", "R.IO/x", "r.io:abc/x", "r.io/", "r.io//x"}) {
    auto r = ParseRemoteRef(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  }
}

TEST(RemoteRefTest, OnlyLoopbackHostsGetPlainHttpByDefault) {
  EXPECT_TRUE(IsLoopbackHost("127.0.0.1:5000"));
  EXPECT_TRUE(IsLoopbackHost("localhost"));
  EXPECT_TRUE(IsLoopbackHost("[::1]:5000"));
  EXPECT_FALSE(IsLoopbackHost("registry.example.com"));
  EXPECT_FALSE(IsLoopbackHost("127example.com"));  // "127." needs the dot
  EXPECT_EQ(RegistryClient("r.io", {}).base_url(), "https://r.io");
  EXPECT_EQ(RegistryClient("127.0.0.1:5000", {}).base_url(), "http://127.0.0.1:5000");
  ClientOptions insecure;
  insecure.insecure = true;
  EXPECT_EQ(RegistryClient("r.io:80", insecure).base_url(), "http://r.io:80");
}

TEST(ChallengeTest, ParsesBearerParamsQuotedAndBare) {
  auto c = ParseChallenge(
      R"(Bearer realm="https://auth.io/token",service="registry.io",scope="repository:a/b:pull,push")",
      "r");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->scheme, "bearer");
  EXPECT_EQ(c->params["realm"], "https://auth.io/token");
  EXPECT_EQ(c->params["service"], "registry.io");
  EXPECT_EQ(c->params["scope"], "repository:a/b:pull,push");
  c = ParseChallenge("Basic realm=Registry, charset=\"UTF-8\"", "r");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->scheme, "basic");
  EXPECT_EQ(c->params["realm"], "Registry");
  EXPECT_EQ(c->params["charset"], "UTF-8");
  c = ParseChallenge(R"(Bearer realm="a\"b")", "r");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->params["realm"], "a\"b");
}

TEST(ChallengeTest, RefusesMalformedChallengesNamingTheRegistry) {
  for (const char* text : {"", "   ", "Bearer realm=\"open", "Bearer realm=\"a\" x", "=x"}) {
    auto c = ParseChallenge(text, "registry r.io");
    ASSERT_FALSE(c.ok()) << text;
    EXPECT_NE(c.status().message().find("registry r.io"), std::string::npos);
  }
  EXPECT_FALSE(ParseChallenge(std::string(9000, 'a'), "r").ok());
}

TEST(AuthTest, BasicHeaderAndTokenReplies) {
  EXPECT_EQ(BasicAuthorization("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  EXPECT_EQ(BasicAuthorization("a", "b"), "Basic YTpi");
  EXPECT_EQ(*ParseTokenResponse(R"({"token":"t1"})", "x"), "t1");
  EXPECT_EQ(*ParseTokenResponse(R"({"access_token":"t2","expires_in":60})", "x"), "t2");
  EXPECT_FALSE(ParseTokenResponse(R"({"token":""})", "x").ok());
  EXPECT_FALSE(ParseTokenResponse("[1]", "x").ok());
  EXPECT_FALSE(ParseTokenResponse("{", "x").ok());
}

TEST(AuthTest, UserFlagNeedsAColonAndIsNeverEchoed) {
  auto c = CredentialsFrom("me:se:cret");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->user, "me");
  EXPECT_EQ(c->password, "se:cret");
  auto bad = CredentialsFrom("mesecret");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message().find("mesecret"), std::string::npos);
}

TEST(ClientTest, TransientFailuresAreRetriedOthersAreNot) {
  ClientOptions o;
  o.retry.max_attempts = 4;
  o.retry.backoff_ms = 1;
  RegistryClient client("127.0.0.1:1", o);
  int calls = 0;
  Status s = client.WithRetries([&] {
    ++calls;
    return calls < 3 ? Status::IOError("registry x: GET /v2/: HTTP 503") : Status::Ok();
  });
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(calls, 3);
  calls = 0;
  s = client.WithRetries([&] {
    ++calls;
    return Status::IOError("registry x: reset: GET ...");
  });
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(calls, 4) << "bounded";
  calls = 0;
  s = client.WithRetries([&] {
    ++calls;
    return Status::Corruption("blob hashes to ...");
  });
  EXPECT_EQ(calls, 1);
}

// A registry in-process: one model, Bearer auth from a token service on the same server,
// blobs redirected to "localhost" (another authority than 127.0.0.1 for the client).
class FakeRegistry {
 public:
  FakeRegistry() {
    config_ = R"({"architecture":"llama"})";
    layer_ = std::string(100000, 'g');
    for (size_t i = 0; i < layer_.size(); ++i) layer_[i] = static_cast<char>('a' + i % 26);
    Manifest m;
    m.artifact_type = kModelArtifactType;
    m.config = {
        kModelConfigType, DigestOf(config_), static_cast<int64_t>(config_.size()), "", {}, ""};
    m.layers.push_back(
        {kGgufLayerType, DigestOf(layer_), static_cast<int64_t>(layer_.size()), "", {}, ""});
    manifest_ = SerializeManifest(m);
    net::HttpOptions o;
    o.port = 0;
    server_ = std::make_unique<net::HttpServer>(
        o, [this](net::HttpRequest r, std::shared_ptr<net::Exchange> ex) { Handle(r, ex); },
        nullptr);
    EXPECT_TRUE(server_->Start().ok());
  }
  ~FakeRegistry() { server_->Stop(); }

  std::string host() const { return "127.0.0.1:" + std::to_string(server_->port()); }

  void Handle(const net::HttpRequest& r, const std::shared_ptr<net::Exchange>& ex) {
    std::lock_guard<std::mutex> lock(mu_);
    log_.push_back(r.method + " " + r.target + " auth=" + r.Header("authorization"));
    if (r.path == "/token") {
      if (r.Header("authorization") != BasicAuthorization("me", "pw")) {
        return ex->Respond(401, {}, "{}");
      }
      token_scope_ = r.target;
      ++tokens_issued_;
      return ex->Respond(200, {{"Content-Type", "application/json"}},
                         R"({"token":")" + Token() + R"("})");
    }
    if (r.path.rfind("/storage/", 0) == 0) {  // the "storage service" behind the redirect
      const std::string& body = r.path == "/storage/config" ? config_ : layer_;
      return ex->Respond(200, {{"Content-Type", "application/octet-stream"}}, body);
    }
    if (r.Header("authorization") != "Bearer " + Token()) {
      const std::string challenge = "Bearer realm=\"http://" + host() +
                                    "/token\",service=\"fake\",scope=\"repository:team/"
                                    "tiny:pull\"";
      return ex->Respond(401, {{"WWW-Authenticate", challenge}}, "{}");
    }
    if (r.path == "/v2/team/tiny/manifests/v1") {
      if (expire_after_manifest_) ++epoch_;  // the token ran out right after this request
      return ex->Respond(
          200,
          {{"Content-Type", kOciManifestType},
           {"Docker-Content-Digest", lie_digest_ ? DigestOf("x") : DigestOf(manifest_)}},
          manifest_);
    }
    const std::string port = std::to_string(server_->port());
    if (r.path == "/v2/team/tiny/blobs/" + DigestOf(config_)) {
      return ex->Respond(307, {{"Location", "http://localhost:" + port + "/storage/config"}}, "");
    }
    if (r.path == "/v2/team/tiny/blobs/" + DigestOf(layer_)) {
      return ex->Respond(307, {{"Location", "http://localhost:" + port + "/storage/layer"}}, "");
    }
    ex->Respond(404, {}, "{}");
  }

  std::vector<std::string> log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }

  std::string Token() const { return "tok" + std::to_string(epoch_); }

  std::string config_, layer_, manifest_, token_scope_;
  bool lie_digest_ = false;
  bool expire_after_manifest_ = false;
  int epoch_ = 0, tokens_issued_ = 0;
  std::mutex mu_;
  std::vector<std::string> log_;
  std::unique_ptr<net::HttpServer> server_;
};

class PullFakeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pocket_client_test." + std::to_string(getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(PullFakeTest, BearerTokenFromTheRealmAndRedirectedBlobsWithoutAuthorization) {
  FakeRegistry reg;
  Store store(dir_.string());
  auto ref = ParseRemoteRef(reg.host() + "/team/tiny:v1");
  ASSERT_TRUE(ref.ok()) << ref.status().message();
  PullOptions o;
  o.client.credentials = {"me", "pw"};
  auto pulled = Pull(store, *ref, o);
  ASSERT_TRUE(pulled.ok()) << pulled.status().message();
  EXPECT_EQ(pulled->blobs_downloaded, 2);
  EXPECT_EQ(reg.token_scope_, "/token?service=fake&scope=repository%3Ateam%2Ftiny%3Apull");
  bool saw_storage = false;
  for (const std::string& line : reg.log()) {
    if (line.find("/storage/") != std::string::npos) {
      saw_storage = true;
      EXPECT_EQ(line.substr(line.find("auth=")), "auth=") << "no credentials to another host";
    }
  }
  EXPECT_TRUE(saw_storage);
  auto path = store.ModelPath(ref->local);
  ASSERT_TRUE(path.ok()) << path.status().message();
  EXPECT_EQ(fs::file_size(*path), reg.layer_.size());
}

TEST_F(PullFakeTest, ExpiredTokenIsRenewedButNotWithinTheRefusalWindow) {
  FakeRegistry reg;
  reg.expire_after_manifest_ = true;
  auto ref = ParseRemoteRef(reg.host() + "/team/tiny:v1");
  ASSERT_TRUE(ref.ok());
  PullOptions o;
  o.client.credentials = {"me", "pw"};
  // Within the window, the same challenge again reads as a refusal.
  Store strict((dir_ / "strict").string());
  auto pulled = Pull(strict, *ref, o);
  ASSERT_FALSE(pulled.ok());
  EXPECT_NE(pulled.status().message().find("refused"), std::string::npos)
      << pulled.status().message();
  // Past it (a long pull), a new token is fetched and the pull goes on.
  o.client.reauth_after_ms = 0;
  Store store((dir_ / "store").string());
  const int before = reg.tokens_issued_;
  pulled = Pull(store, *ref, o);
  ASSERT_TRUE(pulled.ok()) << pulled.status().message();
  EXPECT_EQ(reg.tokens_issued_ - before, 2);
}

TEST_F(PullFakeTest, MissingCredentialsAreAOneLine401NamingTheRegistry) {
  FakeRegistry reg;
  Store store(dir_.string());
  auto ref = ParseRemoteRef(reg.host() + "/team/tiny:v1");
  ASSERT_TRUE(ref.ok());
  auto pulled = Pull(store, *ref, PullOptions{});
  ASSERT_FALSE(pulled.ok());
  const std::string& m = pulled.status().message();
  EXPECT_NE(m.find("registry " + reg.host()), std::string::npos) << m;
  EXPECT_NE(m.find("401"), std::string::npos) << m;
  EXPECT_NE(m.find("POCKET_REGISTRY_USER"), std::string::npos) << m;
  EXPECT_EQ(m.find('\n'), std::string::npos);
}

TEST_F(PullFakeTest, ManifestWhoseDigestDisagreesIsRefusedAndNothingIsTagged) {
  FakeRegistry reg;
  reg.lie_digest_ = true;
  Store store(dir_.string());
  auto ref = ParseRemoteRef(reg.host() + "/team/tiny:v1");
  ASSERT_TRUE(ref.ok());
  PullOptions o;
  o.client.credentials = {"me", "pw"};
  auto pulled = Pull(store, *ref, o);
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.status().code(), StatusCode::kCorruption);
  EXPECT_NE(pulled.status().message().find("the registry says"), std::string::npos)
      << pulled.status().message();
  EXPECT_EQ(store.Find(ref->local).status().code(), StatusCode::kNotFound);
  // Asked by digest, a manifest that hashes otherwise is refused too.
  reg.lie_digest_ = false;
  auto by_digest = ParseRemoteRef(reg.host() + "/team/tiny:v1@sha256:" + std::string(64, '0'));
  ASSERT_TRUE(by_digest.ok());
  pulled = Pull(store, *by_digest, o);
  ASSERT_FALSE(pulled.ok());
}

// A Hugging Face-layout server: resolve/main answers with a redirect naming the LFS object's
// sha256 and size (as huggingface.co does); the object itself is served from /cdn/.
class FakeHf {
 public:
  explicit FakeHf(std::string file_bytes) : bytes_(std::move(file_bytes)) {
    etag_ = "\"" + std::string(DigestHex(DigestOf(bytes_))) + "\"";
    net::HttpOptions o;
    o.port = 0;
    o.max_body_bytes = 1 << 20;
    server_ = std::make_unique<net::HttpServer>(
        o,
        [this](net::HttpRequest r, std::shared_ptr<net::Exchange> ex) {
          if (r.path == "/Org/Tiny-GGUF/resolve/main/tiny-Q8_0.gguf") {
            return ex->Respond(302,
                               {{"Location", "/cdn/object"},
                                {"X-Linked-Etag", etag_},
                                {"X-Linked-Size", std::to_string(bytes_.size())}},
                               "");
          }
          if (r.path == "/cdn/object")
            return ex->Respond(200, {}, served_.empty() ? bytes_ : served_);
          ex->Respond(404, {}, "");
        },
        nullptr);
    EXPECT_TRUE(server_->Start().ok());
  }
  ~FakeHf() { server_->Stop(); }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  std::string bytes_, etag_, served_;
  std::unique_ptr<net::HttpServer> server_;
};

std::string TinyGguf(const fs::path& dir) {
  auto spec = formats::NamedShape("tiny");
  EXPECT_TRUE(spec.ok());
  spec->vocab_size = 512;
  spec->weight_type = tensor::DType::kF32;
  auto writer = formats::BuildRandomModel(*spec);
  EXPECT_TRUE(writer.ok());
  fs::create_directories(dir);
  const std::string path = (dir / "tiny.gguf").string();
  EXPECT_TRUE(writer->Write(path).ok());
  auto bytes = ReadFile(path);
  EXPECT_TRUE(bytes.ok());
  return *bytes;
}

TEST(HfRefTest, ParsesOrgRepoFileAndRefusesPathLikeParts) {
  auto r = ParseHfRef("hf://HuggingFaceTB/SmolLM2-GGUF/q8/smollm2-Q8_0.gguf");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->repo, "HuggingFaceTB/SmolLM2-GGUF");
  EXPECT_EQ(r->file, "q8/smollm2-Q8_0.gguf");
  EXPECT_EQ(r->local.ToString(), "hf.co/huggingfacetb/smollm2-gguf:smollm2-Q8_0");
  for (const char* text : {"hf://a/b", "hf://a/../x.gguf", "hf://../b/x.gguf", "hf://a/b/x.bin",
                           "hf://a/b//x.gguf", "hf://a/b/x y.gguf", "a/b/x.gguf"}) {
    EXPECT_FALSE(ParseHfRef(text).ok()) << text;
  }
}

TEST_F(PullFakeTest, HfFileIsVerifiedAgainstItsLinkedEtagAndImported) {
  FakeHf hf(TinyGguf(dir_ / "src"));
  Store store((dir_ / "store").string());
  auto ref = ParseHfRef("hf://Org/Tiny-GGUF/tiny-Q8_0.gguf");
  ASSERT_TRUE(ref.ok());
  auto pulled = PullHf(store, *ref, hf.endpoint(), PullOptions{});
  ASSERT_TRUE(pulled.ok()) << pulled.status().message();
  EXPECT_EQ(pulled->blobs_downloaded, 1);
  auto info = store.Show(ref->local);
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->manifest.layers[0].digest, DigestOf(hf.bytes_));
  EXPECT_EQ(info->manifest.layers[0].annotations.at(kTitleAnnotation), "tiny-Q8_0.gguf");
  EXPECT_EQ(info->config["architecture"], "llama");

  // Bytes that do not hash to the ETag: refused (after one more try), nothing tagged.
  Store other((dir_ / "other").string());
  hf.served_ = hf.bytes_;
  hf.served_[100] ^= 1;
  PullOptions quick;
  quick.client.retry.backoff_ms = 1;
  pulled = PullHf(other, *ref, hf.endpoint(), quick);
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.status().code(), StatusCode::kCorruption) << pulled.status().message();
  EXPECT_EQ(other.Find(ref->local).status().code(), StatusCode::kNotFound);
  EXPECT_FALSE(fs::exists(other.BlobPath(DigestOf(hf.bytes_))));
}

TEST_F(PullFakeTest, HfFileWithoutASha256EtagIsRefused) {
  FakeHf hf("not lfs");
  hf.etag_ = "\"0123abcd\"";  // a git blob id, not a sha256
  Store store((dir_ / "store").string());
  auto pulled =
      PullHf(store, *ParseHfRef("hf://Org/Tiny-GGUF/tiny-Q8_0.gguf"), hf.endpoint(), PullOptions{});
  ASSERT_FALSE(pulled.ok());
  EXPECT_EQ(pulled.status().code(), StatusCode::kNotSupported);
  EXPECT_NE(pulled.status().message().find("sha256"), std::string::npos);
}

TEST(BlobDownloadTest, ResumesFromAPartialFileAndNeverCommitsAWrongDigest) {
  const fs::path dir = fs::temp_directory_path() / ("pocket_blobdl." + std::to_string(getpid()));
  fs::remove_all(dir);
  Store store(dir.string());
  const std::string bytes = "hello, resumable world";
  const std::string digest = DigestOf(bytes);
  {
    auto dl = store.OpenBlobDownload(digest, bytes.size());
    ASSERT_TRUE(dl.ok() && dl->has_value());
    ASSERT_TRUE((*dl)->Append(bytes.substr(0, 10)).ok());
  }  // a kill: the partial file stays
  {
    auto dl = store.OpenBlobDownload(digest, bytes.size());
    ASSERT_TRUE(dl.ok() && dl->has_value());
    EXPECT_EQ((*dl)->have(), 10);
    EXPECT_EQ((*dl)->Append(bytes.substr(10) + "!").code(), StatusCode::kCorruption)
        << "past the size";
    ASSERT_TRUE((*dl)->Append(bytes.substr(10)).ok());
    ASSERT_TRUE((*dl)->Commit().ok());
  }
  EXPECT_TRUE(store.HasBlob(digest, bytes.size()));
  auto again = store.OpenBlobDownload(digest, bytes.size());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value()) << "already in the store";
  // Wrong bytes of the right size: discarded, never under the final name.
  const std::string other = DigestOf("other bytes, same length!!");
  {
    auto dl = store.OpenBlobDownload(other, 26);
    ASSERT_TRUE(dl.ok() && dl->has_value());
    ASSERT_TRUE((*dl)->Append(std::string(26, 'x')).ok());
    EXPECT_EQ((*dl)->Commit().code(), StatusCode::kCorruption);
    EXPECT_EQ((*dl)->have(), 0);
  }
  EXPECT_FALSE(fs::exists(store.BlobPath(other)));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pocket::registry
