// libFuzzer target over the parsers of signature.h that take untrusted bytes: the trust
// file, the signed payload, the secret key file, and a signature artifact's manifest checked
// against a subject (CheckSignature). The input is tried as each. Whatever parses must
// round-trip (a trust file rewritten from its entries parses to the same keys; a payload's
// digest gives back the same payload), and nothing may abort. Seeds:
// testdata/fuzz/signature_fuzz/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "registry/signature.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pocket::registry;
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto trust = ParseTrustFile(bytes, "fuzz"); trust.ok()) {
    std::string again;
    for (const TrustedKey& k : trust->keys) {
      if (!IsValidKeyName(k.name)) std::abort();
      again += k.name + " " + k.key.ToString() + "\n";
    }
    auto reparsed = ParseTrustFile(again, "again");
    if (!reparsed.ok() || reparsed->keys.size() != trust->keys.size()) std::abort();
    for (size_t i = 0; i < trust->keys.size(); ++i) {
      if (!(reparsed->keys[i].key == trust->keys[i].key)) std::abort();
      if (trust->Find(trust->keys[i].key) != &trust->keys[i]) std::abort();
    }
  }
  if (auto digest = ParseSignaturePayload(bytes, "fuzz"); digest.ok()) {
    if (!IsValidDigest(*digest)) std::abort();
    auto again = ParseSignaturePayload(MakeSignaturePayload(*digest), "again");
    if (!again.ok() || *again != *digest) std::abort();
  }
  (void)ParseSecretKey(bytes, "fuzz");
  (void)ParsePublicKey(bytes, "fuzz");
  if (auto m = ParseManifest(bytes, "fuzz"); m.ok()) {
    // The payload a well-formed artifact would carry, and the subject it names (if any).
    const std::string subject = m->subject ? m->subject->digest : DigestOf("no subject");
    const std::string payload = MakeSignaturePayload(subject);
    const SignatureCheck c = CheckSignature(*m, DigestOf(bytes), payload, subject, nullptr);
    // Only a real signature by the named key verifies; the fuzzer cannot forge one, but the
    // seeds hold a genuine artifact, which must stay valid and be reported without a problem.
    if (c.valid != c.problem.empty()) std::abort();
  }
  return 0;
}
