// Reader of the PKQG quantization goldens and the bit-for-bit check (see the header).
#include "tensor/quant_golden_testutil.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>

#include "tensor/quant.h"

namespace pocket::tensor {
namespace {
std::string GoldenDir() { return std::string(POCKET_SOURCE_DIR) + "/tests/golden/quant/"; }
}  // namespace

bool LoadQuantGolden(const std::string& file, QuantGolden* g, std::string* why) {
  const std::string path = GoldenDir() + file;
  std::ifstream f(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                                   std::istreambuf_iterator<char>());
  if (bytes.size() < 24 || std::memcmp(bytes.data(), "PKQG", 4) != 0) {
    *why = path + ": missing or not a PKQG golden";
    return false;
  }
  uint32_t header[5];
  std::memcpy(header, bytes.data() + 4, sizeof(header));
  if (header[0] != 1) {
    *why = path + ": format version " + std::to_string(header[0]) + ", want 1";
    return false;
  }
  g->ggml_type = header[1];
  g->blocks = header[2];
  g->block_elements = header[3];
  g->block_bytes = header[4];
  const size_t raw_bytes = size_t{g->blocks} * g->block_bytes;
  const size_t num_values = size_t{g->blocks} * g->block_elements;
  if (bytes.size() != 24 + raw_bytes + 4 * num_values) {
    *why = path + ": size " + std::to_string(bytes.size()) + " does not match its header";
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

bool DequantizesGoldenExactly(const std::string& file, std::string* why) {
  QuantGolden g;
  if (!LoadQuantGolden(file, &g, why)) return false;
  const std::optional<DType> t = DTypeFromGgml(g.ggml_type);
  if (!t || g.block_elements != BlockElements(*t) || g.block_bytes != BlockBytes(*t)) {
    *why = file + ": ggml type " + std::to_string(g.ggml_type) + " with blocks of " +
           std::to_string(g.block_elements) + " / " + std::to_string(g.block_bytes) +
           " bytes is not a Pocket block type";
    return false;
  }
  std::vector<float> got(g.values.size(), -1.0f);
  DequantizeRow(*t, g.raw.data(), got.data(), got.size());
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &g.values[i], 4);
    if (a != b) {
      *why = file + ": element " + std::to_string(i) + " (block " +
             std::to_string(i / g.block_elements) + "): got " + std::to_string(got[i]) +
             ", gguf-py " + std::to_string(g.values[i]);
      return false;
    }
  }
  return true;
}

}  // namespace pocket::tensor
