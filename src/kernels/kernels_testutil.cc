// RandomNormal and MakeTestMatrix of kernels_testutil.h.
#include "kernels/kernels_testutil.h"

#include <random>

#include "kernels/quant_blocks_testutil.h"
#include "tensor/quant.h"

namespace pocket::kernels {

std::vector<float> RandomNormal(size_t n, uint32_t seed, float stddev) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

TestMatrix MakeTestMatrix(tensor::DType dtype, size_t rows, size_t cols, uint32_t seed, float sd) {
  TestMatrix w;
  const size_t row_bytes = tensor::RowBytes(dtype, cols);
  w.bytes.resize(rows * row_bytes);
  if (!FillRandomBlocks(dtype, w.bytes.data(), rows * cols / tensor::BlockElements(dtype), seed)) {
    const auto f = RandomNormal(rows * cols, seed, sd);
    for (size_t r = 0; r < rows; ++r) {
      tensor::QuantizeRow(dtype, f.data() + r * cols, w.bytes.data() + r * row_bytes, cols);
    }
  }
  w.view.dtype = dtype;
  w.view.ne = {static_cast<int64_t>(cols), static_cast<int64_t>(rows), 1, 1};
  w.view.data = w.bytes.data();
  return w;
}

}  // namespace pocket::kernels
