// Random K-quant/IQ4_XS blocks for the kernels' tests (see kquant_testutil.h).
#include "kernels/kquant_testutil.h"

#include <cstring>

#include "base/check.h"
#include "tensor/fp16.h"

namespace pocket::kernels::testing {

using tensor::DType;

bool NeedsRandomBlocks(DType dtype) {
  return dtype == DType::kQ2_K || dtype == DType::kQ3_K || dtype == DType::kQ5_K ||
         dtype == DType::kIQ4_XS;
}

void RandomBlocks(DType dtype, std::mt19937& rng, uint8_t* dst, size_t blocks) {
  PK_CHECK(NeedsRandomBlocks(dtype));
  const size_t block_bytes = tensor::BlockBytes(dtype);
  std::uniform_real_distribution<float> mag(1e-4f, 1e-3f);
  const auto scale = [&] {
    const float v = (rng() & 1) ? mag(rng) : -mag(rng);
    return tensor::F32ToF16(v);
  };
  for (size_t b = 0; b < blocks; ++b) {
    uint8_t* p = dst + b * block_bytes;
    for (size_t i = 0; i < block_bytes; ++i) p[i] = static_cast<uint8_t>(rng());
    tensor::f16_t d = scale(), dmin = scale();
    switch (dtype) {
      case DType::kQ2_K:
        std::memcpy(p + offsetof(tensor::BlockQ2_K, d), &d, 2);
        std::memcpy(p + offsetof(tensor::BlockQ2_K, dmin), &dmin, 2);
        break;
      case DType::kQ3_K:
        std::memcpy(p + offsetof(tensor::BlockQ3_K, d), &d, 2);
        break;
      case DType::kQ5_K:
        std::memcpy(p + offsetof(tensor::BlockQ5_K, d), &d, 2);
        std::memcpy(p + offsetof(tensor::BlockQ5_K, dmin), &dmin, 2);
        break;
      case DType::kIQ4_XS:
        std::memcpy(p + offsetof(tensor::BlockIQ4_XS, d), &d, 2);
        break;
      default:
        PK_CHECK(false);
    }
  }
}

}  // namespace pocket::kernels::testing
