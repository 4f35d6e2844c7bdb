// libFuzzer target over the IQ1/IQ2/IQ3 decoders (quant_iq.cc): every byte pattern is a
// valid block (indices are masked to their table's size), so any input must decode without
// reading outside the blocks or the codebooks (ASan) or undefined arithmetic (UBSan).
// Input: byte 0 picks the type, the rest is whole blocks of it. No seeds needed.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/quant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pocket::tensor::DType;
  constexpr DType kTypes[] = {DType::kIQ2_XXS, DType::kIQ2_XS, DType::kIQ2_S, DType::kIQ3_XXS,
                              DType::kIQ3_S,   DType::kIQ1_S,  DType::kIQ1_M};
  if (size < 1) return 0;
  const DType t = kTypes[data[0] % std::size(kTypes)];
  const size_t blocks = (size - 1) / pocket::tensor::BlockBytes(t);
  if (blocks == 0) return 0;
  // A copy: blocks are read through typed pointers, which need their alignment.
  std::vector<uint8_t> raw(data + 1, data + 1 + blocks * pocket::tensor::BlockBytes(t));
  std::vector<float> out(blocks * pocket::tensor::kQKK);
  pocket::tensor::DequantizeRow(t, raw.data(), out.data(), out.size());
  volatile float sink = out.back();
  (void)sink;
  return 0;
}
