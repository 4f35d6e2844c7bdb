// Test helper: the quantization goldens in tests/golden/quant/ (format in the README.md
// there): random blocks and llama.cpp gguf-py's float32 dequantization of them.
// Who calls: the tensor tests. Thread safety: reads files only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/dtype.h"

namespace pocket::tensor {

struct QuantGolden {
  uint32_t ggml_type = 0, blocks = 0, block_elements = 0, block_bytes = 0;
  std::vector<uint8_t> raw;   // blocks * block_bytes
  std::vector<float> values;  // blocks * block_elements
};

// Reads tests/golden/quant/<file>; false with `why` set when the file is missing or
// malformed. (No gtest here: *_testutil.cc is linked into the benches too.)
bool LoadQuantGolden(const std::string& file, QuantGolden* g, std::string* why);

// Every tests/golden/quant/*.bin file name, sorted.
std::vector<std::string> QuantGoldenFiles();

// DequantizeRow of the golden's blocks equals its floats bit for bit (as bits: -0.0 vs 0.0
// shows). False with `why` naming the file and the first differing element and block.
bool DequantizesGoldenExactly(const std::string& file, std::string* why);

}  // namespace pocket::tensor
