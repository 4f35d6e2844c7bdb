#include "tensor/dtype.h"

namespace pocket::tensor {

std::optional<DType> DTypeFromGgml(uint32_t ggml_type) {
  for (DType t : kAllDTypes) {
    // Q8_K is an activation format, never stored in files.
    if (static_cast<uint32_t>(t) == ggml_type && t != DType::kQ8_K) return t;
  }
  return std::nullopt;
}

std::string_view DTypeName(DType t) {
  switch (t) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kQ4_0: return "Q4_0";
    case DType::kQ8_0: return "Q8_0";
    case DType::kQ4_K: return "Q4_K";
    case DType::kQ6_K: return "Q6_K";
    case DType::kQ8_K: return "Q8_K";
    case DType::kBF16: return "BF16";
    case DType::kQ4_1: return "Q4_1";
    case DType::kQ5_0: return "Q5_0";
    case DType::kQ5_1: return "Q5_1";
    case DType::kIQ4_NL: return "IQ4_NL";
    case DType::kQ2_K: return "Q2_K";
    case DType::kQ3_K: return "Q3_K";
    case DType::kQ5_K: return "Q5_K";
    case DType::kIQ4_XS: return "IQ4_XS";
    case DType::kIQ2_XXS: return "IQ2_XXS";
    case DType::kIQ2_XS: return "IQ2_XS";
    case DType::kIQ2_S: return "IQ2_S";
    case DType::kIQ3_XXS: return "IQ3_XXS";
    case DType::kIQ3_S: return "IQ3_S";
    case DType::kIQ1_S: return "IQ1_S";
    case DType::kIQ1_M: return "IQ1_M";
  }
  return "?";
}

}  // namespace pocket::tensor
