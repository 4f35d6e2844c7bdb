// Reader of the PKQG quantization goldens and the bit-for-bit check (see the header).
#include "tensor/quant_golden_testutil.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "tensor/quant.h"

namespace pocket::tensor {
namespace {
std::string GoldenDir() { return std::string(POCKET_SOURCE_DIR) + "/tests/golden/quant/"; }
}  // namespace

bool LoadQuantGolden(const std::string& file, QuantGolden* g) {
  const std::string path = GoldenDir() + file;
  std::ifstream f(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                                   std::istreambuf_iterator<char>());
  if (bytes.size() < 24 || std::memcmp(bytes.data(), "PKQG", 4) != 0) {
    ADD_FAILURE() << path << ": missing or not a PKQG golden";
    return false;
  }
  uint32_t header[5];
  std::memcpy(header, bytes.data() + 4, sizeof(header));
  if (header[0] != 1) {
    ADD_FAILURE() << path << ": format version " << header[0] << ", want 1";
    return false;
  }
  g->ggml_type = header[1];
  g->blocks = header[2];
  g->block_elements = header[3];
  g->block_bytes = header[4];
  const size_t raw_bytes = size_t{g->blocks} * g->block_bytes;
  const size_t num_values = size_t{g->blocks} * g->block_elements;
  if (bytes.size() != 24 + raw_bytes + 4 * num_values) {
    ADD_FAILURE() << path << ": size " << bytes.size() << " does not match its header";
    return false;
  }
  g->raw.assign(bytes.begin() + 24, bytes.begin() + 24 + static_cast<ptrdiff_t>(raw_bytes));
  g->values.resize(num_values);
  std::memcpy(g->values.data(), bytes.data() + 24 + raw_bytes, 4 * num_values);
  return true;
}

std::vector<std::string> QuantGoldenFiles() {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(GoldenDir(), ec)) {
    if (e.path().extension() == ".bin") out.push_back(e.path().filename().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void ExpectDequantizesGoldenExactly(const std::string& file) {
  SCOPED_TRACE(file);
  QuantGolden g;
  if (!LoadQuantGolden(file, &g)) return;
  const std::optional<DType> t = DTypeFromGgml(g.ggml_type);
  ASSERT_TRUE(t.has_value()) << "ggml type " << g.ggml_type;
  ASSERT_EQ(g.block_elements, BlockElements(*t));
  ASSERT_EQ(g.block_bytes, BlockBytes(*t));
  std::vector<float> got(g.values.size(), -1.0f);
  DequantizeRow(*t, g.raw.data(), got.data(), got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &g.values[i], 4);
    ASSERT_EQ(a, b) << "element " << i << " (block " << i / g.block_elements << "): got "
                    << got[i] << ", gguf-py " << g.values[i];
  }
}

}  // namespace pocket::tensor
