#include "model/config.h"

#include <cmath>
#include <numbers>
#include <string>

namespace pocket::model {

Status LlamaConfig::Validate() const {
  auto positive = [](const char* name, int v) -> Status {
    if (v > 0) return Status::Ok();
    return Status::InvalidArgument(std::string("llama config: ") + name + " is " +
                                   std::to_string(v) + ", must be positive");
  };
  PK_RETURN_IF_ERROR(positive("d_model", d_model));
  PK_RETURN_IF_ERROR(positive("num_layers", num_layers));
  PK_RETURN_IF_ERROR(positive("num_heads", num_heads));
  PK_RETURN_IF_ERROR(positive("num_kv_heads", num_kv_heads));
  PK_RETURN_IF_ERROR(positive("head_dim", head_dim));
  PK_RETURN_IF_ERROR(positive("d_ff", d_ff));
  PK_RETURN_IF_ERROR(positive("vocab_size", vocab_size));
  PK_RETURN_IF_ERROR(positive("context_length", context_length));
  if (num_heads % num_kv_heads != 0) {
    return Status::InvalidArgument("llama config: num_heads " + std::to_string(num_heads) +
                                   " is not a multiple of num_kv_heads " +
                                   std::to_string(num_kv_heads));
  }
  if (head_dim % 2 != 0) {
    return Status::InvalidArgument("llama config: RoPE needs an even head_dim, got " +
                                   std::to_string(head_dim));
  }
  if (!(rms_eps > 0.0f) || !std::isfinite(rms_eps)) {
    return Status::InvalidArgument("llama config: rms_eps must be positive");
  }
  if (!(rope_freq_base > 0.0f) || !std::isfinite(rope_freq_base)) {
    return Status::InvalidArgument("llama config: rope_freq_base must be positive");
  }
  if (rope_scaling != RopeScaling::kNone && !(rope_scaling_factor > 0.0f)) {
    return Status::InvalidArgument("llama config: rope scaling factor must be positive");
  }
  if (rope_scaling == RopeScaling::kLlama3 &&
      (rope_original_context <= 0 || !(rope_high_freq_factor > rope_low_freq_factor))) {
    return Status::InvalidArgument(
        "llama config: llama3 rope scaling needs original_context > 0 and "
        "high_freq_factor > low_freq_factor");
  }
  return Status::Ok();
}

std::vector<float> LlamaConfig::RopeInvFreq(const std::vector<float>& freq_factors) const {
  const int half = head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    // HF: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all in float32.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    inv[static_cast<size_t>(i)] = 1.0f / std::pow(rope_freq_base, exponent);
  }
  if (!freq_factors.empty()) {
    for (int i = 0; i < half && i < static_cast<int>(freq_factors.size()); ++i) {
      inv[static_cast<size_t>(i)] /= freq_factors[static_cast<size_t>(i)];
    }
    return inv;
  }
  if (rope_scaling == RopeScaling::kLinear) {
    for (float& f : inv) f /= rope_scaling_factor;
  } else if (rope_scaling == RopeScaling::kLlama3) {
    // transformers' _compute_llama3_parameters, in float32 like the original.
    const float old_ctx = static_cast<float>(rope_original_context);
    const float low_wavelen = old_ctx / rope_low_freq_factor;
    const float high_wavelen = old_ctx / rope_high_freq_factor;
    for (float& f : inv) {
      const float wavelen = 2.0f * std::numbers::pi_v<float> / f;
      float scaled = wavelen > low_wavelen ? f / rope_scaling_factor : f;
      const bool medium = !(wavelen < high_wavelen) && !(wavelen > low_wavelen);
      if (medium) {
        const float smooth = (old_ctx / wavelen - rope_low_freq_factor) /
                             (rope_high_freq_factor - rope_low_freq_factor);
        scaled = (1.0f - smooth) * scaled / rope_scaling_factor + smooth * scaled;
      }
      f = scaled;
    }
  }
  return inv;
}

}  // namespace pocket::model
