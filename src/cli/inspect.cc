// `pocket inspect FILE`: a GGUF file's metadata and tensor table, laid out like llama.cpp's
// gguf-dump (long strings and arrays summarised unless --full), then totals; with --types,
// the tensor types present and how MatMul runs each on this CPU (kernels::MatMulPathOf).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "cli/command.h"
#include "registry/resolve.h"
#include "cli/model_flags.h"
#include "formats/gguf.h"
#include "kernels/kernels.h"

namespace pocket::cli {
namespace {

using formats::GgufType;
using formats::GgufValue;

struct InspectFlags {
  std::string path;
  bool full = false;
  size_t max_items = 8;
  bool types = false;
};

// gguf-dump's names for the value types.
std::string Upper(std::string_view gguf_type_name) {
  static constexpr std::pair<std::string_view, std::string_view> kNames[] = {
      {"u8", "UINT8"},   {"i8", "INT8"},     {"u16", "UINT16"}, {"i16", "INT16"},
      {"u32", "UINT32"}, {"i32", "INT32"},   {"f32", "FLOAT32"}, {"bool", "BOOL"},
      {"string", "STRING"}, {"array", "ARRAY"}, {"u64", "UINT64"}, {"i64", "INT64"},
      {"f64", "FLOAT64"}};
  for (const auto& [from, to] : kNames) {
    if (from == gguf_type_name) return std::string(to);
  }
  return std::string(gguf_type_name);
}

// Quoted, with control characters escaped; cut to `limit` bytes unless limit == 0.
std::string Quote(std::string_view s, size_t limit) {
  std::string out = "'";
  const bool cut = limit != 0 && s.size() > limit;
  if (cut) s = s.substr(0, limit);
  for (char c : s) {
    switch (c) {
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\'': out += "\\'"; break;
      case '\\': out += "\\\\"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\x%02x", static_cast<unsigned char>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += "'";
  if (cut) out += "...";
  return out;
}

std::string Number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

std::string Scalar(const GgufValue& v, size_t str_limit) {
  switch (v.type) {
    case GgufType::kString: return Quote(v.str(), str_limit);
    case GgufType::kBool: return v.AsBool() ? "True" : "False";
    case GgufType::kF32: case GgufType::kF64: return Number(v.AsDouble());
    case GgufType::kI8: case GgufType::kI16: case GgufType::kI32: case GgufType::kI64:
      return std::to_string(v.AsInt());
    default: return std::to_string(v.AsUint());
  }
}

std::string ArrayText(const GgufValue& v, const InspectFlags& f) {
  const uint64_t shown = f.full ? v.count : std::min<uint64_t>(v.count, f.max_items);
  std::string out = "[";
  for (uint64_t i = 0; i < shown; ++i) {
    if (i) out += ", ";
    if (v.elem_type == GgufType::kString) {
      out += Quote(v.strings[i], f.full ? 0 : 40);
    } else if (v.elem_type == GgufType::kArray) {
      out += ArrayText(v.items[i], f);
    } else if (v.elem_type == GgufType::kF32 || v.elem_type == GgufType::kF64) {
      out += Number(v.ArrayDouble(i));
    } else if (v.elem_type == GgufType::kI8 || v.elem_type == GgufType::kI16 ||
               v.elem_type == GgufType::kI32 || v.elem_type == GgufType::kI64) {
      out += std::to_string(v.ArrayInt(i));
    } else if (v.elem_type == GgufType::kBool) {
      out += v.ArrayUint(i) ? "True" : "False";
    } else {
      out += std::to_string(v.ArrayUint(i));
    }
  }
  if (shown < v.count) out += ", ... (" + std::to_string(v.count - shown) + " more)";
  return out + "]";
}

std::string WithCommas(uint64_t v) {
  std::string s = std::to_string(v);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

// --types: one row per tensor type present, with how MatMul runs it on this CPU. A type the
// GGUF reader does not map to a DType (TensorInfo::supported false) is "unsupported" too.
int TypesMain(const formats::GgufFile& g) {
  struct Row {
    std::string name;
    size_t tensors = 0;
    uint64_t elements = 0, bytes = 0;
    kernels::MatMulPath path = kernels::MatMulPath::kUnsupported;
  };
  std::vector<Row> rows;  // in order of first appearance
  for (const auto& t : g.tensors()) {
    const std::string name(t.supported ? tensor::DTypeName(t.dtype)
                                       : formats::GgmlTypeName(t.ggml_type));
    auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.name == name; });
    if (it == rows.end()) {
      Row r;
      r.name = name;
      if (t.supported) r.path = kernels::MatMulPathOf(t.dtype);
      rows.push_back(r);
      it = rows.end() - 1;
    }
    ++it->tensors;
    it->elements += t.num_elements();
    it->bytes += t.size_bytes;
  }
  std::printf("* File: %s\n", g.path().c_str());
  std::printf(
      "* %zu tensor type(s); matmul path on this CPU (%s kernels): fast = a SIMD kernel, "
      "reference = a portable loop (same results, slow), unsupported = the model will "
      "not load\n",
      rows.size(), kernels::ActiveTarget().c_str());
  std::printf("%-9s | %7s | %15s | %15s | %s\n", "type", "tensors", "elements", "bytes", "matmul");
  size_t unsupported = 0;
  for (const Row& r : rows) {
    if (r.path == kernels::MatMulPath::kUnsupported) ++unsupported;
    std::printf("%-9s | %7zu | %15s | %15s | %s\n", r.name.c_str(), r.tensors,
                WithCommas(r.elements).c_str(), WithCommas(r.bytes).c_str(),
                std::string(kernels::MatMulPathName(r.path)).c_str());
  }
  if (unsupported) {
    std::printf(
        "* Note: %zu type(s) have no matmul kernel in Pocket; a model with such a "
        "weight will not load\n",
        unsupported);
  }
  return 0;
}

int InspectMain(const InspectFlags& f) {
  formats::GgufOpenOptions options;
  options.allow_unsupported_types = true;  // list them; the model loader refuses them
  auto resolved = registry::ResolveModelPath(f.path);  // a path, else NAME[:TAG] in the store
  auto opened = resolved.ok() ? formats::GgufFile::Open(*resolved, options)
                              : Result<formats::GgufFile>(resolved.status());
  if (!opened.ok()) return Fail("inspect", opened.status());
  const formats::GgufFile& g = *opened;
  if (f.types) return TypesMain(g);
  std::printf("* File: %s\n", g.path().c_str());
  std::printf("* GGUF v%u, little-endian, %s bytes, alignment %zu, tensor data at offset %" PRIu64 "\n",
              g.version(), WithCommas(g.file_size()).c_str(), g.alignment(), g.data_offset());
  std::printf("* Dumping %zu key/value pair(s)\n", g.metadata().size() + 3);
  std::printf("%7d: %-10s | %8d | GGUF.version = %u\n", 1, "UINT32", 1, g.version());
  std::printf("%7d: %-10s | %8d | GGUF.tensor_count = %zu\n", 2, "UINT64", 1, g.tensors().size());
  std::printf("%7d: %-10s | %8d | GGUF.kv_count = %zu\n", 3, "UINT64", 1, g.metadata().size());
  int index = 4;
  for (const auto& kv : g.metadata()) {
    const GgufValue& v = kv.value;
    const std::string key(kv.key);
    if (v.type == GgufType::kArray) {
      const std::string type = "[" + Upper(formats::GgufTypeName(v.elem_type)) + "]";
      std::printf("%7d: %-10s | %8" PRIu64 " | %s = %s\n", index++, type.c_str(), v.count,
                  key.c_str(), ArrayText(v, f).c_str());
    } else {
      std::printf("%7d: %-10s | %8d | %s = %s\n", index++,
                  Upper(formats::GgufTypeName(v.type)).c_str(), 1, key.c_str(),
                  Scalar(v, f.full ? 0 : 60).c_str());
    }
  }
  std::printf("* Dumping %zu tensor(s)\n", g.tensors().size());
  std::printf("%7s  %12s | %-27s | %-7s | %12s | %12s | %s\n", "#", "elements", "shape", "type",
              "offset", "bytes", "name");
  uint64_t total_elements = 0, total_bytes = 0;
  size_t unsupported = 0;
  int t_index = 1;
  for (const auto& t : g.tensors()) {
    std::string shape;
    for (size_t d = 0; d < 4; ++d) {
      if (d) shape += ", ";
      const uint64_t n = d < t.ne.size() ? t.ne[d] : 1;
      char buf[32];
      std::snprintf(buf, sizeof(buf), "%5" PRIu64, n);
      shape += buf;
    }
    const uint64_t elements = t.num_elements();
    total_elements += elements;
    total_bytes += t.size_bytes;
    if (!t.supported) ++unsupported;
    std::printf("%7d: %12" PRIu64 " | %-27s | %-7s | %12" PRIu64 " | %12" PRIu64 " | %s%s\n",
                t_index++, elements, shape.c_str(),
                std::string(t.supported ? tensor::DTypeName(t.dtype)
                                        : formats::GgmlTypeName(t.ggml_type)).c_str(),
                g.data_offset() + t.offset,
                t.size_bytes, t.name.c_str(), t.supported ? "" : " *");
  }
  if (unsupported) {
    std::printf("* Note: %zu tensor(s) (marked *) use ggml types Pocket cannot run; the model "
                "will not load\n", unsupported);
  }
  std::printf("* Totals: %zu tensors, %s parameters, %s bytes of tensor data (%.2f MiB), %.3f bits per weight\n",
              g.tensors().size(), WithCommas(total_elements).c_str(),
              WithCommas(total_bytes).c_str(), static_cast<double>(total_bytes) / (1 << 20),
              total_elements ? 8.0 * static_cast<double>(total_bytes) / static_cast<double>(total_elements) : 0.0);
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<InspectFlags>();
  app.description(
      "Print a GGUF file's metadata (like llama.cpp's gguf-dump: long strings and arrays are "
      "summarised) and its tensor table (elements, shape ne[0..3], type, absolute offset, "
      "bytes, name), then totals. The file is fully validated first; a malformed file gives "
      "a one-line error and exit code 1. --types prints instead one line per tensor type "
      "(tensors, elements, bytes) and whether this CPU multiplies by it with a SIMD kernel "
      "(fast), a portable loop (reference) or not at all (unsupported).");
  SetExamples(app, {"pocket inspect models/default.gguf",
                    "pocket inspect --types Qwen2.5-0.5B-Instruct-Q4_K_M.gguf"});
  app.add_option("file", f->path, "the .gguf file")->required();
  app.add_flag("--full", f->full, "print strings and arrays in full");
  app.add_flag("--types", f->types,
               "list the tensor types present and how each runs here: fast, reference or "
               "unsupported");
  app.add_option("--max-items", f->max_items, "array items shown when summarising")
      ->capture_default_str();
  return [f] { return InspectMain(*f); };
}

POCKET_COMMAND(inspect, "inspect", "show a GGUF file's metadata and tensor table", Configure);

}  // namespace
}  // namespace pocket::cli
