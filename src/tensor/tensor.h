// TensorView: a non-owning view of a tensor's bytes (a GGUF mapping, a weight buffer,
// an activation scratch). ggml's axis convention: ne[0] is the row length (innermost,
// contiguous), ne[1] the number of rows, ne[2], ne[3] outer batch axes; unused axes are 1.
// Quantized rows are whole blocks, rows are packed back to back (no padding).
// Who uses it: model weight binding, kernels, formats. Thread safety: a plain value; the
// viewed bytes must outlive the view and are not synchronised.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "tensor/dtype.h"

namespace pocket::tensor {

struct TensorView {
  DType dtype = DType::kF32;
  std::array<int64_t, 4> ne = {1, 1, 1, 1};
  const void* data = nullptr;

  // Bytes of one row. REQUIRES: ne[0] % BlockElements(dtype) == 0.
  size_t row_bytes() const { return RowBytes(dtype, static_cast<size_t>(ne[0])); }
  int64_t num_rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t num_elements() const { return ne[0] * num_rows(); }
  size_t size_bytes() const { return row_bytes() * static_cast<size_t>(num_rows()); }
  // Start of row `i` (flattened over ne[1..3]). REQUIRES: 0 <= i < num_rows().
  const std::byte* row(int64_t i) const {
    return static_cast<const std::byte*>(data) + static_cast<size_t>(i) * row_bytes();
  }
};

// Writable counterpart for outputs and scratch buffers.
struct MutableTensorView {
  DType dtype = DType::kF32;
  std::array<int64_t, 4> ne = {1, 1, 1, 1};
  void* data = nullptr;

  size_t row_bytes() const { return RowBytes(dtype, static_cast<size_t>(ne[0])); }
  int64_t num_rows() const { return ne[1] * ne[2] * ne[3]; }
  int64_t num_elements() const { return ne[0] * num_rows(); }
  size_t size_bytes() const { return row_bytes() * static_cast<size_t>(num_rows()); }
  std::byte* row(int64_t i) const {
    return static_cast<std::byte*>(data) + static_cast<size_t>(i) * row_bytes();
  }
  operator TensorView() const { return {dtype, ne, data}; }  // NOLINT: views convert freely
};

}  // namespace pocket::tensor
