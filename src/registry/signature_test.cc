// Signatures, keys and trust files: a sign/verify round trip, a tampered signature, a
// signature replayed onto another artifact, a key swapped in the annotation, the promotion
// rule's three refusals, the strict trust-file and payload parsers (each error one line
// naming file:line or the document), and the key files' modes.
#include "registry/signature.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "base/file.h"

namespace pocket::registry {
namespace {

namespace fs = std::filesystem;

Descriptor Subject(const std::string& bytes) {
  return {kOciManifestType, DigestOf(bytes), static_cast<int64_t>(bytes.size()), "", {}, ""};
}

// Checks an artifact as the store would: its manifest parsed, its payload blob as is.
SignatureCheck Check(const SignatureArtifact& a, const std::string& subject_digest,
                     const TrustFile* trust) {
  auto m = ParseManifest(a.manifest_json, "signature");
  EXPECT_TRUE(m.ok()) << m.status().message();
  return CheckSignature(*m, DigestOf(a.manifest_json), a.payload, subject_digest, trust);
}

TrustFile TrustOf(const std::string& name, const PublicKey& key) {
  auto t = ParseTrustFile(name + " " + key.ToString() + "\n", "trust");
  EXPECT_TRUE(t.ok()) << t.status().message();
  return *t;
}

TEST(SignatureTest, SignedManifestVerifiesAndNamesItsTrustedSigner) {
  const SecretKey key = GenerateSecretKey();
  const Descriptor subject = Subject("model manifest");
  const SignatureArtifact a = MakeSignature(key, subject, "2026-12-07T00:00:00Z");
  auto m = ParseManifest(a.manifest_json, "signature");
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_EQ(m->artifact_type, kSignatureArtifactType);
  ASSERT_TRUE(m->subject.has_value());
  EXPECT_EQ(*m->subject, subject);
  EXPECT_EQ(m->config.digest, DigestOf("{}"));
  ASSERT_EQ(m->layers.size(), 1u);
  EXPECT_EQ(m->layers[0].digest, DigestOf(a.payload));
  EXPECT_EQ(a.payload, MakeSignaturePayload(subject.digest));

  const TrustFile trust = TrustOf("alice", key.Public());
  const SignatureCheck c = Check(a, subject.digest, &trust);
  EXPECT_TRUE(c.valid) << c.problem;
  EXPECT_TRUE(c.trusted());
  EXPECT_EQ(c.signer, "alice");
  EXPECT_EQ(c.key_id, key.Public().KeyId());
  EXPECT_EQ(c.created, "2026-12-07T00:00:00Z");
  EXPECT_TRUE(RequireTrustedSignature({c}, "m", trust).ok());
  // Without a trust file the signature is valid but nobody's.
  const SignatureCheck anonymous = Check(a, subject.digest, nullptr);
  EXPECT_TRUE(anonymous.valid);
  EXPECT_FALSE(anonymous.trusted());
}

TEST(SignatureTest, TamperedSignatureIsBad) {
  const SecretKey key = GenerateSecretKey();
  const Descriptor subject = Subject("m");
  SignatureArtifact a = MakeSignature(key, subject, "");
  auto m = ParseManifest(a.manifest_json, "s");
  ASSERT_TRUE(m.ok());
  std::string& sig = m->layers[0].annotations[kSignatureAnnotation];
  sig[0] = sig[0] == 'A' ? 'B' : 'A';
  const SignatureCheck c = CheckSignature(*m, "sha256:x", a.payload, subject.digest, nullptr);
  EXPECT_FALSE(c.valid);
  EXPECT_NE(c.problem.find("bad signature"), std::string::npos) << c.problem;
  const TrustFile trust = TrustOf("alice", key.Public());
  const Status refused = RequireTrustedSignature({c}, "tiny:v1", trust);
  EXPECT_EQ(refused.code(), StatusCode::kCorruption);
  EXPECT_NE(refused.message().find("tiny:v1 has no valid signature: bad signature"),
            std::string::npos)
      << refused.message();
}

TEST(SignatureTest, SignatureOfAnotherDigestCannotBeReplayed) {
  const SecretKey key = GenerateSecretKey();
  const SignatureArtifact a = MakeSignature(key, Subject("model A"), "");
  // The artifact copied onto model B: its subject rewritten, the signed payload unchanged.
  auto m = ParseManifest(a.manifest_json, "s");
  ASSERT_TRUE(m.ok());
  const std::string b = DigestOf("model B");
  m->subject->digest = b;
  const SignatureCheck c = CheckSignature(*m, "sha256:x", a.payload, b, nullptr);
  EXPECT_FALSE(c.valid);
  EXPECT_NE(c.problem.find("it signs " + DigestOf("model A")), std::string::npos) << c.problem;
  // And as it is, it does not refer to B at all.
  const SignatureCheck as_is = Check(a, b, nullptr);
  EXPECT_FALSE(as_is.valid);
  EXPECT_NE(as_is.problem.find("refers to"), std::string::npos) << as_is.problem;
  // A payload edited to name B no longer matches the signature.
  const std::string forged = MakeSignaturePayload(b);
  m->layers[0].digest = DigestOf(forged);
  const SignatureCheck edited = CheckSignature(*m, "sha256:x", forged, b, nullptr);
  EXPECT_FALSE(edited.valid);
  EXPECT_NE(edited.problem.find("bad signature"), std::string::npos) << edited.problem;
}

TEST(SignatureTest, WrongKeyIsRefusedAsUntrustedOrBad) {
  const SecretKey alice = GenerateSecretKey(), mallory = GenerateSecretKey();
  const Descriptor subject = Subject("m");
  const TrustFile trust = TrustOf("alice", alice.Public());
  // Signed by a key the trust file does not list: valid, not trusted.
  const SignatureCheck by_mallory =
      Check(MakeSignature(mallory, subject, ""), subject.digest, &trust);
  EXPECT_TRUE(by_mallory.valid);
  EXPECT_FALSE(by_mallory.trusted());
  const Status refused = RequireTrustedSignature({by_mallory}, "tiny:v1", trust);
  EXPECT_EQ(refused.code(), StatusCode::kNotFound);
  EXPECT_EQ(refused.message(),
            "tiny:v1 is signed only by keys not in trust: key " + mallory.Public().KeyId());
  // Mallory's signature claiming to be alice's: the annotation names alice's key.
  auto m = ParseManifest(MakeSignature(mallory, subject, "").manifest_json, "s");
  ASSERT_TRUE(m.ok());
  m->layers[0].annotations[kSignatureKeyAnnotation] = alice.Public().ToString();
  const SignatureCheck claimed =
      CheckSignature(*m, "sha256:x", MakeSignaturePayload(subject.digest), subject.digest, &trust);
  EXPECT_FALSE(claimed.valid);
  EXPECT_EQ(claimed.signer, "alice");
  EXPECT_NE(claimed.problem.find("bad signature"), std::string::npos) << claimed.problem;
  EXPECT_FALSE(RequireTrustedSignature({claimed}, "tiny:v1", trust).ok());
  // No signature at all.
  const Status none = RequireTrustedSignature({}, "tiny:v1", trust);
  EXPECT_EQ(none.message(), "tiny:v1 has no signature");
  // One trusted among bad and untrusted ones is enough.
  const SignatureCheck good = Check(MakeSignature(alice, subject, ""), subject.digest, &trust);
  EXPECT_TRUE(RequireTrustedSignature({claimed, by_mallory, good}, "tiny:v1", trust).ok());
}

TEST(SignatureTest, MalformedSignatureArtifactsAreNotValid) {
  const SecretKey key = GenerateSecretKey();
  const Descriptor subject = Subject("m");
  const SignatureArtifact a = MakeSignature(key, subject, "");
  auto base = ParseManifest(a.manifest_json, "s");
  ASSERT_TRUE(base.ok());
  auto check = [&](Manifest m, const std::string& payload, const std::string& expect) {
    const SignatureCheck c = CheckSignature(m, "sha256:x", payload, subject.digest, nullptr);
    EXPECT_FALSE(c.valid);
    EXPECT_NE(c.problem.find(expect), std::string::npos) << c.problem;
  };
  Manifest m = *base;
  m.artifact_type = kModelArtifactType;
  check(m, a.payload, "not a signature");
  m = *base;
  m.layers.clear();
  check(m, a.payload, "exactly one");
  m = *base;
  m.layers[0].annotations.erase(kSignatureAnnotation);
  check(m, a.payload, "lacks");
  m = *base;
  m.layers[0].annotations[kSignatureKeyAnnotation] = "ed25519:short";
  check(m, a.payload, "not an ed25519 public key");
  m = *base;
  m.layers[0].annotations[kSignatureAnnotation] = "!!";
  check(m, a.payload, "base64 of 64 bytes");
  check(*base, a.payload + " ", "does not match its digest");
}

TEST(SignatureTest, TrustFileParsesCommentsAndFindsKeys) {
  const PublicKey a = GenerateSecretKey().Public(), b = GenerateSecretKey().Public();
  const std::string text = "# release keys\n\nalice " + a.ToString() + "\n  ci-bot@team.x\t" +
                           b.ToString() + "  \r\n   # indented comment\n";
  auto trust = ParseTrustFile(text, "keys.txt");
  ASSERT_TRUE(trust.ok()) << trust.status().message();
  ASSERT_EQ(trust->keys.size(), 2u);
  EXPECT_EQ(trust->keys[1].name, "ci-bot@team.x");
  EXPECT_EQ(trust->keys[1].line, 4);
  ASSERT_NE(trust->Find(b), nullptr);
  EXPECT_EQ(trust->Find(b)->name, "ci-bot@team.x");
  EXPECT_EQ(trust->Find(GenerateSecretKey().Public()), nullptr);
}

TEST(SignatureTest, TrustFileErrorsNameFileAndLine) {
  const std::string k1 = GenerateSecretKey().Public().ToString();
  const std::string k2 = GenerateSecretKey().Public().ToString();
  const struct {
    std::string text, expect;
  } cases[] = {
      {"alice\n", "keys:1: expected 'NAME ed25519:BASE64', got 1 field(s)"},
      {"# c\nalice " + k1 + " extra\n", "keys:2: expected 'NAME ed25519:BASE64', got 3"},
      {"-alice " + k1 + "\n", "keys:1: '-alice' is not a valid key name"},
      {"alice ed25519:AAAA\n", "keys:1: 'ed25519:AAAA' is not an ed25519 public key"},
      {"alice rsa:" + k1.substr(8) + "\n", "keys:1: 'rsa:"},
      {"alice " + k1 + "\nalice " + k2 + "\n",
       "keys:2: the name 'alice' is already used on line 1"},
      {"alice " + k1 + "\nbob " + k1 + "\n",
       "keys:2: the key of 'bob' is already trusted as 'alice'"},
      {"# nothing\n\n", "keys: lists no key"},
      {"", "keys: lists no key"},
      {std::string("alice ") + k1 + "\n" + std::string(1, '\0'), "keys: holds NUL bytes"},
  };
  for (const auto& c : cases) {
    auto t = ParseTrustFile(c.text, "keys");
    ASSERT_FALSE(t.ok()) << c.text;
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(t.status().message().find(c.expect), 0u) << t.status().message();
    EXPECT_EQ(t.status().message().find('\n'), std::string::npos);
  }
}

TEST(SignatureTest, PayloadParserAcceptsOnlyTheCanonicalShape) {
  const std::string d = DigestOf("m");
  auto ok = ParseSignaturePayload(MakeSignaturePayload(d), "p");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(*ok, d);
  EXPECT_TRUE(ParseSignaturePayload(R"({"critical":{"image":{"manifest-digest":")" + d +
                                        R"("},"type":"pocket model signature v1"},)"
                                        R"("optional":{"note":"x"}})",
                                    "p")
                  .ok());
  const std::string bad[] = {
      "",
      "[]",
      R"({"critical":{"image":{"manifest-digest":")" + d + R"("},"type":"other"}})",
      R"({"critical":{"image":{"manifest-digest":"sha256:12"},"type":"pocket model signature v1"}})",
      R"({"critical":{"image":{"manifest-digest":")" + d +
          R"("},"type":"pocket model signature v1","identity":{}}})",
      R"({"critical":{"image":{"manifest-digest":")" + d +
          R"(","x":1},"type":"pocket model signature v1"}})",
      R"({"critical":{"image":{"manifest-digest":")" + d +
          R"("},"type":"pocket model signature v1"},"extra":1})",
      R"({"critical":{"image":{"manifest-digest":")" + d +
          R"("},"type":"pocket model signature v1"},"optional":3})",
      std::string(kMaxPayloadBytes + 1, ' '),
  };
  for (const std::string& b : bad) {
    auto p = ParseSignaturePayload(b, "payload");
    ASSERT_FALSE(p.ok()) << b;
    EXPECT_EQ(p.status().code(), StatusCode::kCorruption);
    EXPECT_EQ(p.status().message().find("payload"), 0u) << p.status().message();
  }
}

TEST(SignatureTest, KeyFilesRoundTripWithModesAndAreNeverOverwritten) {
  const fs::path dir =
      fs::temp_directory_path() / ("pocket_signature_test." + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string path = (dir / "ci.key").string();
  const SecretKey key = GenerateSecretKey();
  const mode_t old_umask = ::umask(0);  // the key must be 0600 whatever the umask
  ASSERT_TRUE(WriteKeyPair(path, "ci", key).ok());
  ::umask(old_umask);
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto read = ReadSecretKey(path);
  ASSERT_TRUE(read.ok()) << read.status().message();
  EXPECT_EQ(read->bytes, key.bytes);
  // The .pub file is a trust-file line.
  auto pub = ReadFile(path + ".pub");
  ASSERT_TRUE(pub.ok());
  auto trust = ParseTrustFile(*pub, path + ".pub");
  ASSERT_TRUE(trust.ok()) << trust.status().message();
  EXPECT_EQ(trust->keys[0].name, "ci");
  EXPECT_EQ(trust->keys[0].key, key.Public());

  const Status again = WriteKeyPair(path, "ci", GenerateSecretKey());
  EXPECT_EQ(again.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(again.message().find("already exists"), std::string::npos);
  EXPECT_EQ(ReadSecretKey(path)->bytes, key.bytes);
  EXPECT_FALSE(WriteKeyPair((dir / "k2").string(), "bad name", key).ok());
  EXPECT_FALSE(fs::exists(dir / "k2"));

  ASSERT_EQ(::chmod(path.c_str(), 0644), 0);
  auto exposed = ReadSecretKey(path);
  ASSERT_FALSE(exposed.ok());
  EXPECT_NE(exposed.status().message().find("accessible by others (mode 0644)"), std::string::npos)
      << exposed.status().message();

  // A secret key whose public half is not its seed's.
  std::string text = SerializeSecretKey(key);
  SecretKey mixed = key;
  mixed.bytes[40] ^= 1;
  EXPECT_FALSE(ParseSecretKey(SerializeSecretKey(mixed), "k").ok());
  EXPECT_TRUE(ParseSecretKey(text, "k").ok());
  EXPECT_FALSE(ParseSecretKey("ed25519-secret:AAAA\n", "k").ok());
  EXPECT_FALSE(ParseSecretKey(key.Public().ToString(), "k").ok());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace pocket::registry
