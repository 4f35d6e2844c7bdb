// Random IQ1/IQ2/IQ3 weights for tests and benches (iq_testutil.h).
#include "kernels/iq_testutil.h"

#include <cstring>
#include <random>

#include "base/check.h"
#include "tensor/fp16.h"

namespace pocket::kernels {

bool IsIqDType(tensor::DType dtype) {
  for (tensor::DType t : kIqDTypes) {
    if (t == dtype) return true;
  }
  return false;
}

std::vector<uint8_t> RandomIqRows(tensor::DType dtype, size_t rows, size_t cols, uint32_t seed) {
  PK_CHECK(IsIqDType(dtype) && cols % tensor::kQKK == 0);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> magnitude(1e-3f, 1e-2f);
  const size_t block_bytes = tensor::BlockBytes(dtype);
  std::vector<uint8_t> out(rows * tensor::RowBytes(dtype, cols));
  for (auto& b : out) b = static_cast<uint8_t>(byte(rng));
  for (size_t off = 0; off < out.size(); off += block_bytes) {
    const float d = (byte(rng) & 1 ? -1.0f : 1.0f) * magnitude(rng);
    const uint16_t bits = tensor::F32ToF16(d);
    if (dtype == tensor::DType::kIQ1_M) {
      // The f16 is spread over the top nibbles of the four u16 scale words (bytes 48..55).
      uint16_t words[4];
      std::memcpy(words, out.data() + off + 48, sizeof(words));
      for (int w = 0; w < 4; ++w) {
        words[w] = static_cast<uint16_t>((words[w] & 0x0FFF) | (((bits >> (4 * w)) & 0xF) << 12));
      }
      std::memcpy(out.data() + off + 48, words, sizeof(words));
    } else {
      std::memcpy(out.data() + off, &bits, sizeof(bits));  // d is every other type's first field
    }
  }
  return out;
}

}  // namespace pocket::kernels
