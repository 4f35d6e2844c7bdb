// Ed25519 keys, trust files, the signed payload and the signature artifact (see
// signature.h). Everything read from a file or a registry is checked field by field; the
// cryptography is libsodium's (crypto_sign_detached / crypto_sign_verify_detached), base64
// its constant-time codec.
#include "registry/signature.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>

#include "base/check.h"
#include "base/file.h"
#include "base/json_limits.h"
#include "base/sha256.h"

namespace pocket::registry {
namespace {

using nlohmann::json;

constexpr char kPublicPrefix[] = "ed25519:";
constexpr char kSecretPrefix[] = "ed25519-secret:";
// Payload JSON nests 3 levels; a little room for an "optional" object.
constexpr int kMaxPayloadDepth = 8;

void InitSodium() {
  static std::once_flag once;
  // sodium_init fails only when the system has no usable randomness source; then nothing
  // here can work, which is a broken machine, not bad input.
  std::call_once(once, [] { PK_CHECK(sodium_init() >= 0); });
}

std::string Base64(const uint8_t* data, size_t size) {
  std::string out(sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, size, sodium_base64_VARIANT_ORIGINAL);
  out.resize(std::strlen(out.c_str()));
  return out;
}

// Decodes standard padded base64 of exactly `size` bytes; false for anything else.
bool Unbase64(std::string_view text, uint8_t* out, size_t size) {
  if (text.size() != sodium_base64_ENCODED_LEN(size, sodium_base64_VARIANT_ORIGINAL) - 1) {
    return false;
  }
  size_t got = 0;
  const char* end = nullptr;
  if (sodium_base642bin(out, size, text.data(), text.size(), nullptr, &got, &end,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    return false;
  }
  return got == size && end == text.data() + text.size();
}

// A short, printable excerpt of untrusted text for a message.
std::string Excerpt(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 60)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return s.size() > 60 ? out + "..." : out;
}

std::string Errno(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

// Writes `bytes` to a new file `path` with `mode` (O_EXCL: never replaces one), fsynced.
Status WriteNewFile(const std::string& path, std::string_view bytes, mode_t mode) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0 && errno == EEXIST) {
    return Status::InvalidArgument(path + " already exists; not overwritten");
  }
  if (fd < 0) return Status::IOError(Errno("cannot create", path));
  // The mode given to open() is filtered by the umask; a secret key must be 0600 whatever
  // the umask says.
  Status s = ::fchmod(fd, mode) == 0 ? Status::Ok() : Status::IOError(Errno("cannot chmod", path));
  while (s.ok() && !bytes.empty()) {
    const ssize_t w = ::write(fd, bytes.data(), bytes.size());
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) s = Status::IOError(Errno("cannot write", path));
    if (w > 0) bytes.remove_prefix(static_cast<size_t>(w));
  }
  if (s.ok() && ::fsync(fd) != 0) s = Status::IOError(Errno("cannot fsync", path));
  ::close(fd);
  if (!s.ok()) ::unlink(path.c_str());
  return s;
}

}  // namespace

std::string PublicKey::ToString() const {
  return kPublicPrefix + Base64(bytes.data(), bytes.size());
}

std::string PublicKey::KeyId() const {
  return Sha256Hex(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()))
      .substr(0, 16);
}

PublicKey SecretKey::Public() const {
  PublicKey pk;
  std::memcpy(pk.bytes.data(), bytes.data() + 32, 32);
  return pk;
}

SecretKey GenerateSecretKey() {
  InitSodium();
  SecretKey sk;
  PublicKey pk;
  crypto_sign_keypair(pk.bytes.data(), sk.bytes.data());
  return sk;
}

Result<PublicKey> ParsePublicKey(std::string_view text, std::string_view what) {
  PublicKey pk;
  if (text.rfind(kPublicPrefix, 0) != 0 ||
      !Unbase64(text.substr(std::strlen(kPublicPrefix)), pk.bytes.data(), pk.bytes.size())) {
    return Status::InvalidArgument(std::string(what) + ": '" + Excerpt(text) +
                                   "' is not an ed25519 public key (ed25519: and the base64 of "
                                   "32 bytes)");
  }
  return pk;
}

std::string SerializeSecretKey(const SecretKey& key) {
  return kSecretPrefix + Base64(key.bytes.data(), key.bytes.size()) + "\n";
}

Result<SecretKey> ParseSecretKey(std::string_view bytes, std::string_view what) {
  if (!bytes.empty() && bytes.back() == '\n') bytes.remove_suffix(1);
  SecretKey sk;
  if (bytes.rfind(kSecretPrefix, 0) != 0 ||
      !Unbase64(bytes.substr(std::strlen(kSecretPrefix)), sk.bytes.data(), sk.bytes.size())) {
    return Status::Corruption(std::string(what) +
                              " is not a pocket secret key (one line: ed25519-secret: and the "
                              "base64 of 64 bytes; `pocket sign --generate-key` writes one)");
  }
  // The second half is the public key; it must be the one the seed gives, or signatures
  // would name a key they were not made with.
  InitSodium();
  std::array<uint8_t, 32> pk;
  std::array<uint8_t, 64> again;
  crypto_sign_seed_keypair(pk.data(), again.data(), sk.bytes.data());
  const bool consistent = sodium_memcmp(again.data(), sk.bytes.data(), 64) == 0;
  sodium_memzero(again.data(), again.size());
  if (!consistent) {
    return Status::Corruption(std::string(what) +
                              ": the public half does not match the secret seed");
  }
  return sk;
}

Status WriteKeyPair(const std::string& path, const std::string& name, const SecretKey& key) {
  if (!IsValidKeyName(name)) {
    return Status::InvalidArgument("'" + Excerpt(name) +
                                   "' is not a valid key name ([A-Za-z0-9][A-Za-z0-9._@-]{0,63})");
  }
  const std::string pub = path + ".pub";
  struct stat st;
  if (::stat(pub.c_str(), &st) == 0) {
    return Status::InvalidArgument(pub + " already exists; not overwritten");
  }
  PK_RETURN_IF_ERROR(WriteNewFile(path, SerializeSecretKey(key), 0600));
  Status s = WriteNewFile(pub, name + " " + key.Public().ToString() + "\n", 0644);
  if (!s.ok()) ::unlink(path.c_str());
  return s;
}

Result<SecretKey> ReadSecretKey(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::IOError(Errno("cannot read", path));
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Status::InvalidArgument("secret key " + path + " is accessible by others (mode " + mode +
                                   "); run chmod 600 " + path);
  }
  if (st.st_size > 4096) return Status::Corruption(path + " is not a pocket secret key");
  PK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  auto sk = ParseSecretKey(bytes, path);
  sodium_memzero(bytes.data(), bytes.size());
  return sk;
}

bool IsValidKeyName(std::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '@' && c != '-'))) return false;
  }
  return true;
}

const TrustedKey* TrustFile::Find(const PublicKey& key) const {
  for (const TrustedKey& k : keys) {
    if (k.key == key) return &k;
  }
  return nullptr;
}

Result<TrustFile> ParseTrustFile(std::string_view text, const std::string& path) {
  TrustFile trust;
  trust.path = path;
  if (text.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(path + ": holds NUL bytes; not a trust file");
  }
  std::map<std::string, int> names;
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    const size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    std::vector<std::string_view> fields;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
      const size_t start = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
      if (i > start) fields.push_back(line.substr(start, i - start));
    }
    if (fields.empty() || fields[0][0] == '#') continue;
    if (fields.size() != 2) {
      return Status::InvalidArgument(where + "expected 'NAME ed25519:BASE64', got " +
                                     std::to_string(fields.size()) + " field(s)");
    }
    const std::string name(fields[0]);
    if (!IsValidKeyName(name)) {
      return Status::InvalidArgument(where + "'" + Excerpt(name) +
                                     "' is not a valid key name ([A-Za-z0-9][A-Za-z0-9._@-]"
                                     "{0,63})");
    }
    auto key = ParsePublicKey(fields[1], where.substr(0, where.size() - 2));
    if (!key.ok()) return key.status();
    if (auto it = names.find(name); it != names.end()) {
      return Status::InvalidArgument(where + "the name '" + name + "' is already used on line " +
                                     std::to_string(it->second));
    }
    if (const TrustedKey* k = trust.Find(*key)) {
      return Status::InvalidArgument(where + "the key of '" + name + "' is already trusted as '" +
                                     k->name + "' (line " + std::to_string(k->line) + ")");
    }
    names[name] = line_no;
    trust.keys.push_back({name, *key, line_no});
  }
  if (trust.keys.empty()) {
    return Status::InvalidArgument(path +
                                   ": lists no key (lines 'NAME ed25519:BASE64', as in "
                                   "the .pub file `pocket sign --generate-key` writes)");
  }
  return trust;
}

Result<TrustFile> ReadTrustFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return Status::IOError(Errno("cannot read trust file", path));
  if (st.st_size > kMaxTrustFileBytes) {
    return Status::InvalidArgument(path + ": " + std::to_string(st.st_size) +
                                   " bytes; a trust file is at most " +
                                   std::to_string(kMaxTrustFileBytes));
  }
  PK_ASSIGN_OR_RETURN(std::string text, ReadFile(path));
  return ParseTrustFile(text, path);
}

std::string MakeSignaturePayload(std::string_view manifest_digest) {
  const json payload = {{"critical",
                         {{"image", {{"manifest-digest", std::string(manifest_digest)}}},
                          {"type", kSignaturePayloadKind}}}};
  return payload.dump();
}

Result<std::string> ParseSignaturePayload(std::string_view bytes, std::string_view what) {
  const std::string w(what);
  if (static_cast<int64_t>(bytes.size()) > kMaxPayloadBytes) {
    return Status::Corruption(w + ": " + std::to_string(bytes.size()) +
                              " bytes; a signature payload is at most " +
                              std::to_string(kMaxPayloadBytes));
  }
  auto doc = ParseUntrustedJson(bytes, what, kMaxPayloadDepth);
  if (!doc.ok()) return Status::Corruption(doc.status().message());
  const json& j = *doc;
  auto bad = [&](const std::string& why) { return Status::Corruption(w + ": " + why); };
  if (!j.is_object()) return bad("is not a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() != "critical" && it.key() != "optional") {
      return bad("unknown field '" + Excerpt(it.key()) + "'");
    }
  }
  if (auto opt = j.find("optional"); opt != j.end() && !opt->is_object() && !opt->is_null()) {
    return bad("optional is not an object");
  }
  auto critical = j.find("critical");
  if (critical == j.end() || !critical->is_object()) return bad("critical is missing");
  // Every critical field must be understood (cosign's rule): an unknown one may restrict
  // what the signature vouches for in a way this reader would ignore.
  for (auto it = critical->begin(); it != critical->end(); ++it) {
    if (it.key() != "image" && it.key() != "type") {
      return bad("unknown critical field '" + Excerpt(it.key()) + "'");
    }
  }
  auto type = critical->find("type");
  if (type == critical->end() || !type->is_string() ||
      type->get<std::string>() != kSignaturePayloadKind) {
    return bad(std::string("critical.type is not '") + kSignaturePayloadKind + "'");
  }
  auto image = critical->find("image");
  if (image == critical->end() || !image->is_object() || image->size() != 1) {
    return bad("critical.image must hold exactly manifest-digest");
  }
  auto digest = image->find("manifest-digest");
  if (digest == image->end() || !digest->is_string() ||
      !IsValidDigest(digest->get<std::string>())) {
    return bad("critical.image.manifest-digest is not sha256:<64 lower-case hex>");
  }
  return digest->get<std::string>();
}

SignatureArtifact MakeSignature(const SecretKey& key, const Descriptor& subject,
                                const std::string& created) {
  InitSodium();
  SignatureArtifact a;
  a.payload = MakeSignaturePayload(subject.digest);
  std::array<uint8_t, crypto_sign_BYTES> sig;
  crypto_sign_detached(sig.data(), nullptr, reinterpret_cast<const uint8_t*>(a.payload.data()),
                       a.payload.size(), key.bytes.data());
  Manifest m;
  m.artifact_type = kSignatureArtifactType;
  m.config = {
      kEmptyConfigType, DigestOf(a.config), static_cast<int64_t>(a.config.size()), "", {}, ""};
  Descriptor layer{kSignaturePayloadType,
                   DigestOf(a.payload),
                   static_cast<int64_t>(a.payload.size()),
                   "",
                   {},
                   ""};
  layer.annotations[kSignatureAnnotation] = Base64(sig.data(), sig.size());
  layer.annotations[kSignatureKeyAnnotation] = key.Public().ToString();
  m.layers.push_back(std::move(layer));
  m.subject =
      Descriptor{subject.media_type.empty() ? std::string(kOciManifestType) : subject.media_type,
                 subject.digest,
                 subject.size,
                 "",
                 {},
                 ""};
  if (!created.empty()) m.annotations[kCreatedAnnotation] = created;
  a.manifest_json = SerializeManifest(m);
  return a;
}

SignatureCheck CheckSignature(const Manifest& referrer, std::string_view referrer_digest,
                              std::string_view payload, std::string_view subject_digest,
                              const TrustFile* trust) {
  InitSodium();
  SignatureCheck c;
  c.digest = std::string(referrer_digest);
  if (auto it = referrer.annotations.find(kCreatedAnnotation); it != referrer.annotations.end()) {
    c.created = Excerpt(it->second);
  }
  if (referrer.artifact_type != kSignatureArtifactType) {
    c.problem = "artifact type is '" + Excerpt(referrer.artifact_type) + "', not a signature";
    return c;
  }
  if (!referrer.subject || referrer.subject->digest != subject_digest) {
    c.problem = "refers to " + (referrer.subject ? referrer.subject->digest : "nothing") +
                ", not " + std::string(subject_digest);
    return c;
  }
  if (referrer.layers.size() != 1 || referrer.layers[0].media_type != kSignaturePayloadType) {
    c.problem = std::string("does not hold exactly one ") + kSignaturePayloadType + " layer";
    return c;
  }
  const Descriptor& layer = referrer.layers[0];
  auto key_it = layer.annotations.find(kSignatureKeyAnnotation);
  auto sig_it = layer.annotations.find(kSignatureAnnotation);
  if (key_it == layer.annotations.end() || sig_it == layer.annotations.end()) {
    c.problem = std::string("lacks the ") + kSignatureAnnotation + " or " +
                kSignatureKeyAnnotation + " annotation";
    return c;
  }
  auto key = ParsePublicKey(key_it->second, kSignatureKeyAnnotation);
  if (!key.ok()) {
    c.problem = key.status().message();
    return c;
  }
  c.key = *key;
  c.key_id = key->KeyId();
  if (trust) {
    if (const TrustedKey* k = trust->Find(*key)) c.signer = k->name;
  }
  std::array<uint8_t, crypto_sign_BYTES> sig;
  if (!Unbase64(sig_it->second, sig.data(), sig.size())) {
    c.problem = std::string(kSignatureAnnotation) + " is not the base64 of 64 bytes";
    return c;
  }
  if (DigestOf(payload) != layer.digest) {
    c.problem = "payload does not match its digest " + layer.digest;
    return c;
  }
  if (crypto_sign_verify_detached(sig.data(), reinterpret_cast<const uint8_t*>(payload.data()),
                                  payload.size(), key->bytes.data()) != 0) {
    c.problem = "bad signature: it does not verify with key " + c.key_id;
    return c;
  }
  auto named = ParseSignaturePayload(payload, "payload");
  if (!named.ok()) {
    c.problem = named.status().message();
    return c;
  }
  if (*named != subject_digest) {
    // A valid signature of another artifact, copied here: the replay the payload prevents.
    c.problem = "bad signature: it signs " + *named + ", not " + std::string(subject_digest);
    return c;
  }
  c.valid = true;
  return c;
}

Status RequireTrustedSignature(const std::vector<SignatureCheck>& checks, const std::string& what,
                               const TrustFile& trust) {
  if (checks.empty()) return Status::NotFound(what + " has no signature");
  std::string untrusted, bad;
  for (const SignatureCheck& c : checks) {
    if (c.trusted()) return Status::Ok();
    if (c.valid) {
      if (untrusted.find(c.key_id) == std::string::npos) {
        untrusted += (untrusted.empty() ? "key " : ", key ") + c.key_id;
      }
    } else if (bad.empty()) {
      bad = c.problem;
    }
  }
  if (!untrusted.empty()) {
    return Status::NotFound(what + " is signed only by keys not in " + trust.path + ": " +
                            untrusted);
  }
  return Status::Corruption(what + " has no valid signature: " + bad);
}

}  // namespace pocket::registry
