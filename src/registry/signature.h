// Detached ed25519 signatures of stored models (libsodium's crypto_sign_detached), the key
// and trust files that go with them, and the OCI referrer artifact a signature travels in
// (docs/registry.md, "Signatures and promotion").
//
// What is signed is a small canonical payload naming the model's manifest digest, in the
// manner of cosign's "simple signing":
//   {"critical":{"image":{"manifest-digest":"sha256:<hex>"},"type":"pocket model signature v1"}}
// so a signature says which artifact it vouches for and cannot be moved onto another one
// (a replayed signature names the wrong digest). The artifact is an OCI 1.1 referrer:
//   {"schemaVersion":2, "mediaType":"application/vnd.oci.image.manifest.v1+json",
//    "artifactType":"application/vnd.pocket.signature.v1",
//    "config": the OCI empty descriptor ({} , application/vnd.oci.empty.v1+json),
//    "layers":[{"mediaType":"application/vnd.pocket.signature.payload.v1+json", payload,
//               "annotations":{"io.pocket.signature":"<base64 64 bytes>",
//                              "io.pocket.signature.public-key":"ed25519:<base64 32 bytes>"}}],
//    "subject": the signed model's manifest descriptor,
//    "annotations":{"org.opencontainers.image.created":"<RFC 3339>"}}
//
// Files (all text, one line per entry):
//   secret key  "ed25519-secret:<base64 of libsodium's 64-byte secret key>\n", mode 0600
//   public key  "NAME ed25519:<base64 of 32 bytes>\n" (a line of a trust file)
//   trust file  lines "NAME ed25519:<base64>"; blank lines and lines starting with '#'
//               ignored; NAME is [A-Za-z0-9][A-Za-z0-9._@-]{0,63}; names and keys unique.
// Parsers take untrusted bytes (a trust file anyone could have edited, a registry's
// payload) and fail with one line naming the file and line or the document.
// Called by `pocket sign`, `pocket promote`, `pocket verify --signatures` and the referrer
// transfer (referrers.h). Thread safety: values and pure functions (libsodium is
// initialised once, thread-safely).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "registry/oci.h"

namespace pocket::registry {

inline constexpr char kSignatureArtifactType[] = "application/vnd.pocket.signature.v1";
inline constexpr char kSignaturePayloadType[] = "application/vnd.pocket.signature.payload.v1+json";
// OCI 1.1's empty descriptor: the config of an artifact that has none.
inline constexpr char kEmptyConfigType[] = "application/vnd.oci.empty.v1+json";
inline constexpr char kEmptyConfigBytes[] = "{}";
inline constexpr char kSignatureAnnotation[] = "io.pocket.signature";
inline constexpr char kSignatureKeyAnnotation[] = "io.pocket.signature.public-key";
inline constexpr char kSignaturePayloadKind[] = "pocket model signature v1";
// Payloads and trust files are small; anything larger is refused unread.
inline constexpr int64_t kMaxPayloadBytes = 4096;
inline constexpr int64_t kMaxTrustFileBytes = 1 << 20;

struct PublicKey {
  std::array<uint8_t, 32> bytes{};
  // "ed25519:<base64>" (the form in .pub and trust files and in the annotation).
  std::string ToString() const;
  // The first 16 hex digits of the SHA-256 of the 32 key bytes: how output names a key.
  std::string KeyId() const;
  bool operator==(const PublicKey&) const = default;
};

struct SecretKey {
  std::array<uint8_t, 64> bytes{};  // libsodium's: seed (32) then public key (32)
  PublicKey Public() const;
};

// A fresh keypair from the system's CSPRNG (libsodium's randombytes).
SecretKey GenerateSecretKey();

// "ed25519:<base64 of 32 bytes>". InvalidArgument naming `what` otherwise.
Result<PublicKey> ParsePublicKey(std::string_view text, std::string_view what);

// The secret key file's bytes, and its parser: Corruption naming `what` for anything but
// one "ed25519-secret:<base64>" line whose public half matches its seed.
std::string SerializeSecretKey(const SecretKey& key);
Result<SecretKey> ParseSecretKey(std::string_view bytes, std::string_view what);

// Writes the secret key to `path` (created with mode 0600; never overwritten: InvalidArgument
// when it exists) and "NAME ed25519:..." to `path`.pub. `name` follows the trust file's
// grammar (InvalidArgument otherwise). IOError naming the path on a write failure; a
// failure leaves neither file.
Status WriteKeyPair(const std::string& path, const std::string& name, const SecretKey& key);

// Reads a secret key file, refusing (InvalidArgument) one that others may read or write
// (mode & 077), as ssh does.
Result<SecretKey> ReadSecretKey(const std::string& path);

struct TrustedKey {
  std::string name;
  PublicKey key;
  int line = 0;  // where the trust file lists it
};

struct TrustFile {
  std::string path;
  std::vector<TrustedKey> keys;
  // The entry for `key`, nullptr when the file does not list it.
  const TrustedKey* Find(const PublicKey& key) const;
};

// Parses a trust file's text (format above); `path` names it in messages: "PATH:LINE: what is
// wrong". InvalidArgument for a malformed line, a bad name or key, a duplicate name or key,
// NUL bytes, or a file that lists no key.
Result<TrustFile> ParseTrustFile(std::string_view text, const std::string& path);
// Reads and parses `path` (IOError naming it when unreadable; larger than
// kMaxTrustFileBytes: InvalidArgument).
Result<TrustFile> ReadTrustFile(const std::string& path);
// True when `name` follows the trust file's name grammar.
bool IsValidKeyName(std::string_view name);

// The canonical payload for `manifest_digest` (REQUIRES: IsValidDigest), and its parser,
// which returns the digest it names. Corruption naming `what` for anything else: not JSON,
// another type, unknown critical fields, a bad digest, more than kMaxPayloadBytes.
std::string MakeSignaturePayload(std::string_view manifest_digest);
Result<std::string> ParseSignaturePayload(std::string_view bytes, std::string_view what);

// A signature artifact ready to store or push: the manifest and the two blobs it names.
struct SignatureArtifact {
  std::string manifest_json;
  std::string config = kEmptyConfigBytes;
  std::string payload;
};

// Signs `subject` (the model's manifest descriptor: media type, digest, size) with `key`;
// `created` (RFC 3339) goes into the annotations.
SignatureArtifact MakeSignature(const SecretKey& key, const Descriptor& subject,
                                const std::string& created);

// What one signature referrer says about a subject.
struct SignatureCheck {
  std::string digest;   // the signature artifact's manifest digest
  std::string key_id;   // "" when the artifact names no readable key
  PublicKey key;        // valid when !key_id.empty()
  std::string signer;   // the trust file's name for the key, "" when not trusted
  std::string created;  // the artifact's creation annotation, "" when absent
  bool valid = false;   // the signature verifies over a payload that names the subject
  std::string problem;  // one line when !valid
  bool trusted() const { return valid && !signer.empty(); }
};

// Checks the signature artifact `referrer` (manifest digest `referrer_digest`) whose payload
// blob holds `payload` (already checked against the layer's digest by the store or the
// transfer) against `subject_digest`; `trust` may be null (no key is trusted). Never fails:
// what is wrong is in the result's `problem`.
SignatureCheck CheckSignature(const Manifest& referrer, std::string_view referrer_digest,
                              std::string_view payload, std::string_view subject_digest,
                              const TrustFile* trust);

// The promotion rule: Ok when some check is valid and by a trusted key. Otherwise one line
// for `what` ("tiny:v1 (sha256:...)") saying why: NotFound "has no signature", NotFound
// "is signed only by keys not in TRUST: key ID", or Corruption "has no valid signature: WHY"
// (bad signatures only: tampered, replayed, malformed).
Status RequireTrustedSignature(const std::vector<SignatureCheck>& checks, const std::string& what,
                               const TrustFile& trust);

}  // namespace pocket::registry
