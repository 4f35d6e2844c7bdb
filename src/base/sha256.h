// SHA-256 (OpenSSL) for content addressing and reproducibility checks.
// Thread safety: Sha256 objects are not shared; the free function is reentrant.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace pocket {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view bytes);
  std::array<uint8_t, 32> Finish();

 private:
  void* ctx_;  // EVP_MD_CTX
};

// Lower-case hex digest of `bytes`.
std::string Sha256Hex(std::string_view bytes);
std::string ToHex(const uint8_t* data, size_t size);

}  // namespace pocket
