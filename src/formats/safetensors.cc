#include "formats/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "tensor/fp16.h"

namespace pocket::formats {

uint64_t SafetensorsTensor::num_elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

Result<SafetensorsFile> SafetensorsFile::Open(const std::string& path) {
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return mapped.status();
  auto holder = std::make_shared<MappedFile>(std::move(mapped).value());
  SafetensorsFile f;
  f.bytes_ = holder->bytes();
  f.holder_ = std::move(holder);
  f.path_ = path;
  PK_RETURN_IF_ERROR(f.Parse());
  return f;
}

Result<SafetensorsFile> SafetensorsFile::FromBytes(std::string bytes, std::string name) {
  auto holder = std::make_shared<const std::string>(std::move(bytes));
  SafetensorsFile f;
  f.bytes_ = {reinterpret_cast<const std::byte*>(holder->data()), holder->size()};
  f.holder_ = std::move(holder);
  f.path_ = std::move(name);
  PK_RETURN_IF_ERROR(f.Parse());
  return f;
}

Status SafetensorsFile::Parse() {
  auto err = [&](const std::string& what) {
    return Status::Corruption("safetensors " + path_ + ": " + what);
  };
  const uint64_t size = bytes_.size();
  if (size < 8) return err("file is too short for a header");
  uint64_t header_len;
  std::memcpy(&header_len, bytes_.data(), 8);
  if (header_len > size - 8) {
    return err("header length " + std::to_string(header_len) + " runs past the end of the file (" +
               std::to_string(size) + " bytes)");
  }
  data_offset_ = 8 + header_len;
  const uint64_t data_size = size - data_offset_;
  const std::string_view header(reinterpret_cast<const char*>(bytes_.data()) + 8, header_len);
  nlohmann::json j = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return err("header is not a JSON object");
  try {
    for (auto it = j.begin(); it != j.end(); ++it) {
      const std::string& name = it.key();
      const nlohmann::json& v = it.value();
      if (name == "__metadata__") {
        if (!v.is_object()) return err("__metadata__ is not an object");
        for (auto m = v.begin(); m != v.end(); ++m) {
          if (m.value().is_string()) metadata_[m.key()] = m.value().get<std::string>();
        }
        continue;
      }
      auto bad = [&](const std::string& what) { return err("tensor '" + name + "': " + what); };
      if (!v.is_object()) return bad("entry is not an object");
      if (!v.contains("dtype") || !v["dtype"].is_string()) return bad("missing dtype");
      if (!v.contains("shape") || !v["shape"].is_array()) return bad("missing shape");
      if (!v.contains("data_offsets") || !v["data_offsets"].is_array() ||
          v["data_offsets"].size() != 2) {
        return bad("data_offsets must be [begin, end]");
      }
      SafetensorsTensor t;
      t.name = name;
      const std::string dtype = v["dtype"].get<std::string>();
      if (dtype == "F32") {
        t.dtype = tensor::DType::kF32;
      } else if (dtype == "F16") {
        t.dtype = tensor::DType::kF16;
      } else if (dtype == "BF16") {
        t.dtype = tensor::DType::kBF16;
      } else {
        return Status::NotSupported("safetensors " + path_ + ": tensor '" + name + "' has dtype " +
                                    dtype + " (supported: F32, F16, BF16)");
      }
      if (v["shape"].size() > 8) return bad("more than 8 dimensions");
      uint64_t elements = 1;
      for (const auto& d : v["shape"]) {
        if (!d.is_number_unsigned()) return bad("shape entries must be non-negative integers");
        const uint64_t n = d.get<uint64_t>();
        if (n != 0 && elements > (uint64_t{1} << 60) / n) return bad("shape overflows");
        elements *= n;
        t.shape.push_back(n);
      }
      const auto& offs = v["data_offsets"];
      if (!offs[0].is_number_unsigned() || !offs[1].is_number_unsigned()) {
        return bad("data_offsets must be non-negative integers");
      }
      const uint64_t begin = offs[0].get<uint64_t>(), end = offs[1].get<uint64_t>();
      if (begin > end) return bad("data_offsets begin > end");
      if (end > data_size) {
        return bad("data ends at " + std::to_string(data_offset_ + end) +
                   ", past the end of the file (" + std::to_string(size) + " bytes)");
      }
      t.offset = begin;
      t.size_bytes = end - begin;
      if (elements * tensor::BlockBytes(t.dtype) != t.size_bytes) {
        return bad("shape needs " + std::to_string(elements * tensor::BlockBytes(t.dtype)) +
                   " bytes but data_offsets span " + std::to_string(t.size_bytes));
      }
      tensors_.push_back(std::move(t));
    }
  } catch (const std::exception& e) {
    return err(std::string("malformed header: ") + e.what());
  }
  std::sort(tensors_.begin(), tensors_.end(),
            [](const auto& a, const auto& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < tensors_.size(); ++i) {
    const auto& prev = tensors_[i - 1];
    const auto& cur = tensors_[i];
    if (prev.size_bytes && cur.size_bytes && prev.offset + prev.size_bytes > cur.offset) {
      return err("tensor '" + cur.name + "' overlaps tensor '" + prev.name + "'");
    }
  }
  std::sort(tensors_.begin(), tensors_.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  return Status::Ok();
}

const SafetensorsTensor* SafetensorsFile::Find(std::string_view name) const {
  auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                             [](const SafetensorsTensor& t, std::string_view n) { return t.name < n; });
  return it != tensors_.end() && it->name == name ? &*it : nullptr;
}

std::span<const std::byte> SafetensorsFile::TensorBytes(const SafetensorsTensor& t) const {
  return bytes_.subspan(data_offset_ + t.offset, t.size_bytes);
}

std::vector<float> SafetensorsFile::ReadF32(const SafetensorsTensor& t) const {
  const auto bytes = TensorBytes(t);
  const size_t n = t.num_elements();
  std::vector<float> out(n);
  switch (t.dtype) {
    case tensor::DType::kF32:
      std::memcpy(out.data(), bytes.data(), n * 4);
      break;
    case tensor::DType::kF16:
    case tensor::DType::kBF16: {
      std::vector<uint16_t> h(n);
      std::memcpy(h.data(), bytes.data(), n * 2);
      if (t.dtype == tensor::DType::kF16) {
        tensor::F16ToF32Row(h.data(), out.data(), n);
      } else {
        tensor::BF16ToF32Row(h.data(), out.data(), n);
      }
      break;
    }
    default:
      break;  // Parse() admits only the three types above
  }
  return out;
}

}  // namespace pocket::formats
