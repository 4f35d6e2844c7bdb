// Random blocks of the quantized types without a quantizer here (see the header).
#include "kernels/quant_blocks_testutil.h"

#include <cstring>
#include <random>
#include <vector>

#include "kernels/iq_testutil.h"
#include "kernels/kquant_testutil.h"
#include "tensor/fp16.h"

namespace pocket::kernels {

using tensor::DType;

bool FillRandomBlocks(DType dtype, void* dst, size_t blocks, uint32_t seed) {
  if (testing::NeedsRandomBlocks(dtype)) {  // Q2_K, Q3_K, Q5_K, IQ4_XS
    std::mt19937 rng(seed);
    testing::RandomBlocks(dtype, rng, static_cast<uint8_t*>(dst), blocks);
    return true;
  }
  if (IsIqDType(dtype)) {
    const std::vector<uint8_t> rows = RandomIqRows(dtype, 1, blocks * tensor::kQKK, seed);
    std::memcpy(dst, rows.data(), rows.size());
    return true;
  }
  bool has_min = false;
  switch (dtype) {
    case DType::kQ4_1:
    case DType::kQ5_1:
      has_min = true;
      break;
    case DType::kQ5_0:
    case DType::kIQ4_NL:
      break;
    default:
      return false;
  }
  const size_t block_bytes = tensor::BlockBytes(dtype);
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> mag(0.004f, 0.02f), min(-0.15f, 0.15f);
  auto* out = static_cast<uint8_t*>(dst);
  for (size_t b = 0; b < blocks; ++b) {
    uint8_t* blk = out + b * block_bytes;
    for (size_t i = 0; i < block_bytes; ++i) blk[i] = static_cast<uint8_t>(byte(rng));
    // Every type here starts with f16 d; Q4_1/Q5_1 follow it with f16 m.
    const float d = has_min || (rng() & 1) ? mag(rng) : -mag(rng);
    const tensor::f16_t dh = tensor::F32ToF16(d);
    std::memcpy(blk, &dh, 2);
    if (has_min) {
      const tensor::f16_t mh = tensor::F32ToF16(min(rng));
      std::memcpy(blk + 2, &mh, 2);
    }
  }
  return true;
}

}  // namespace pocket::kernels
