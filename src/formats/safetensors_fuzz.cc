// libFuzzer target over the safetensors reader (the converter's input). Seeds:
// testdata/fuzz/safetensors_fuzz/.
#include <cstddef>
#include <cstdint>
#include <string>

#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = pocket::formats::SafetensorsFile::FromBytes(
      std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!f.ok()) return 0;
  volatile float sink = 0;
  for (const auto& t : f->tensors()) {
    if (t.num_elements() > (1u << 20)) continue;  // keep each run small
    const auto v = f->ReadF32(t);
    if (!v.empty()) sink = sink + v.front() + v.back();
  }
  return 0;
}
