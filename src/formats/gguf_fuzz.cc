// libFuzzer target over the GGUF reader: any input must give a Status or a file whose every
// accessor stays inside the input. Seeds: testdata/fuzz/gguf_fuzz/.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pocket::formats::GgufFile;
  // Odd last byte: the lenient mode of `pocket inspect` (unsupported ggml types listed).
  pocket::formats::GgufOpenOptions options;
  options.allow_unsupported_types = size > 0 && (data[size - 1] & 1);
  auto f = GgufFile::FromBytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz",
                               options);
  if (!f.ok()) return 0;
  volatile size_t sink = 0;
  for (const auto& kv : f->metadata()) {
    const std::string key(kv.key);
    (void)f->GetString(key);
    (void)f->GetUint(key);
    (void)f->GetInt(key);
    (void)f->GetFloat(key);
    (void)f->GetBool(key);
    if (auto a = f->GetStringArray(key); a.ok()) {
      for (auto s : *a) sink = sink + s.size();
    }
    if (auto a = f->GetFloatArray(key); a.ok()) sink = sink + a->size();
    if (auto a = f->GetIntArray(key); a.ok()) sink = sink + a->size();
  }
  for (const auto& t : f->tensors()) {
    auto bytes = f->TensorBytes(t);
    if (!bytes.empty()) sink = sink + static_cast<size_t>(bytes.front()) + static_cast<size_t>(bytes.back());
  }
  return 0;
}
