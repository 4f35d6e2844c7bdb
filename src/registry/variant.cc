// Variants of a model in one image index: the shape annotation's codec, the
// machine's facts (platform, cgroup, $POCKET_MACHINE), the chooser, and the
// index maker (see variant.h).
#include "registry/variant.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <map>
#include <set>

#include "base/file.h"
#include "formats/gguf_names.h"
#include "registry/store.h"

namespace pocket::registry {
namespace {

namespace names = formats::gguf_names;
constexpr int64_t kMaxShapeValue = int64_t{1} << 24;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Decimal digits only, at most 19; nullopt otherwise.
std::optional<uint64_t> ParseUint(std::string_view s) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  uint64_t v = 0;
  for (char c : s) v = v * 10 + static_cast<uint64_t>(c - '0');
  return v;
}

// "123", "2G", "512M", "1.5G" is not accepted (whole numbers only): bytes.
std::optional<uint64_t> ParseSize(std::string_view s) {
  uint64_t mult = 1;
  if (!s.empty()) {
    switch (std::toupper(static_cast<unsigned char>(s.back()))) {
      case 'K':
        mult = uint64_t{1} << 10;
        break;
      case 'M':
        mult = uint64_t{1} << 20;
        break;
      case 'G':
        mult = uint64_t{1} << 30;
        break;
      case 'T':
        mult = uint64_t{1} << 40;
        break;
      default:
        break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  auto v = ParseUint(s);
  if (!v || *v > (~uint64_t{0}) / mult) return std::nullopt;
  return *v * mult;
}

}  // namespace

std::optional<uint64_t> CgroupHeadroom(const std::string& proc_self_cgroup,
                                       const std::string& cgroup_root) {
  auto self = ReadFile(proc_self_cgroup);
  if (!self.ok()) return std::nullopt;
  // cgroup v2: the line "0::/path".
  const std::string text = "\n" + *self;
  const size_t found = text.find("\n0::");
  if (found == std::string::npos) return std::nullopt;
  const size_t at = found;  // text has one more byte in front than *self
  std::string path = self->substr(at + 3);
  path = path.substr(0, path.find('\n'));
  if (path.find("..") != std::string::npos) return std::nullopt;
  const std::string dir = cgroup_root + (path == "/" ? std::string() : path);
  auto max = ReadFile(dir + "/memory.max");
  auto current = ReadFile(dir + "/memory.current");
  if (!max.ok() || !current.ok()) return std::nullopt;
  auto trim = [](std::string s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
    return s;
  };
  auto limit = ParseUint(trim(*max));  // "max" when unlimited
  auto used = ParseUint(trim(*current));
  if (!limit || !used) return std::nullopt;
  return *limit > *used ? *limit - *used : 0;
}

namespace {

// Higher is more: "generic" < "avx2" < "avx512"; "neon" its own family.
bool IsaSatisfies(const std::string& have, const std::string& need) {
  if (need.empty() || need == "generic") return true;
  if (need == "avx2") return have == "avx2" || have == "avx512";
  if (need == "avx512") return have == "avx512";
  if (need == "neon") return have == "neon";
  return false;
}

std::string ShortDigest(const std::string& digest) {
  return IsValidDigest(digest) ? "sha256:" + std::string(DigestHex(digest).substr(0, 12))
                               : digest.substr(0, 80);
}

uint64_t AnnotationUint(const Descriptor& d, const char* key) {
  auto it = d.annotations.find(key);
  if (it == d.annotations.end()) return 0;
  return ParseUint(it->second).value_or(0);
}

}  // namespace

std::string SerializeShape(const ModelShape& s) {
  return "ctx=" + std::to_string(s.context_length) + ",d_ff=" + std::to_string(s.d_ff) +
         ",d_model=" + std::to_string(s.d_model) + ",head_dim=" + std::to_string(s.head_dim) +
         ",heads=" + std::to_string(s.heads) + ",kv_heads=" + std::to_string(s.kv_heads) +
         ",layers=" + std::to_string(s.layers) + ",vocab=" + std::to_string(s.vocab);
}

Result<ModelShape> ParseShape(std::string_view text) {
  ModelShape s;
  const std::map<std::string_view, int*> fields = {
      {"ctx", &s.context_length}, {"d_ff", &s.d_ff},   {"d_model", &s.d_model},
      {"head_dim", &s.head_dim},  {"heads", &s.heads}, {"kv_heads", &s.kv_heads},
      {"layers", &s.layers},      {"vocab", &s.vocab}};
  std::set<std::string_view> seen;
  const std::string quoted = "shape '" + std::string(text.substr(0, 120)) + "'";
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    auto it = fields.find(key);
    if (eq == std::string_view::npos || it == fields.end() || !seen.insert(key).second) {
      return Status::InvalidArgument(quoted + ": unknown, repeated or valueless key '" +
                                     std::string(key.substr(0, 40)) + "'");
    }
    auto v = ParseUint(item.substr(eq + 1));
    if (!v || *v < 1 || *v > static_cast<uint64_t>(kMaxShapeValue)) {
      return Status::InvalidArgument(quoted + ": " + std::string(key) + " is not in [1, 2^24]");
    }
    *it->second = static_cast<int>(*v);
  }
  for (const auto& [key, field] : fields) {
    if (!seen.count(key))
      return Status::InvalidArgument(quoted + ": " + std::string(key) + " is missing");
  }
  return s;
}

Result<ModelShape> ShapeFromGguf(const formats::GgufFile& gguf) {
  PK_ASSIGN_OR_RETURN(std::string arch, gguf.GetString(names::kGeneralArchitecture));
  auto get = [&](const char* key, std::optional<int> fallback) -> Result<int> {
    const std::string full = names::ArchKey(arch, key);
    auto v = gguf.GetUint(full);
    if (!v.ok()) {
      if (fallback) return *fallback;
      return Status::InvalidArgument("gguf " + gguf.path() + ": " + full + " is missing");
    }
    if (*v < 1 || *v > static_cast<uint64_t>(kMaxShapeValue)) {
      return Status::InvalidArgument("gguf " + gguf.path() + ": " + full + " is out of range");
    }
    return static_cast<int>(*v);
  };
  ModelShape s;
  PK_ASSIGN_OR_RETURN(s.d_model, get(names::kEmbeddingLength, std::nullopt));
  PK_ASSIGN_OR_RETURN(s.layers, get(names::kBlockCount, std::nullopt));
  PK_ASSIGN_OR_RETURN(s.d_ff, get(names::kFeedForwardLength, std::nullopt));
  PK_ASSIGN_OR_RETURN(s.heads, get(names::kHeadCount, std::nullopt));
  PK_ASSIGN_OR_RETURN(s.kv_heads, get(names::kHeadCountKv, s.heads));
  PK_ASSIGN_OR_RETURN(s.context_length, get(names::kContextLength, std::nullopt));
  PK_ASSIGN_OR_RETURN(s.head_dim, get(names::kKeyLength, std::max(1, s.d_model / s.heads)));
  const formats::GgufValue* tokens = gguf.Find("tokenizer.ggml.tokens");
  if (tokens != nullptr && tokens->count >= 1 &&
      tokens->count <= static_cast<uint64_t>(kMaxShapeValue)) {
    s.vocab = static_cast<int>(tokens->count);
  } else {
    PK_ASSIGN_OR_RETURN(s.vocab, get(names::kVocabSize, std::nullopt));
  }
  return s;
}

Result<MachineFacts> MachineFactsFrom(const Platform& platform, const char* env) {
  MachineFacts f;
  const CpuFeatures& cpu = platform.cpu();
  f.isa = platform.allows_avx512() ? "avx512" : cpu.avx2 ? "avx2" : cpu.neon ? "neon" : "generic";
  f.memory_bytes = platform.available_memory_bytes();
  f.source = &platform == &Platform::Host() ? "MemAvailable" : platform.profile().name;
  if (&platform == &Platform::Host()) {
    if (auto headroom = CgroupHeadroom("/proc/self/cgroup", "/sys/fs/cgroup");
        headroom && (f.memory_bytes == 0 || *headroom < f.memory_bytes)) {
      f.memory_bytes = *headroom;
      f.source = "cgroup limit";
    }
  }
  if (env == nullptr || *env == '\0') return f;
  std::string_view text(env);
  const std::string quoted = "$POCKET_MACHINE '" + std::string(text.substr(0, 120)) + "'";
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
    if (key == "memory" || key == "gpu_memory") {
      auto v = ParseSize(value);
      if (!v) return Status::InvalidArgument(quoted + ": " + std::string(key) + " is not a size");
      (key == "memory" ? f.memory_bytes : f.gpu_memory_bytes) = *v;
      if (key == "memory") f.source = "POCKET_MACHINE";
    } else if (key == "isa" &&
               (value == "avx512" || value == "avx2" || value == "neon" || value == "generic")) {
      f.isa = std::string(value);
    } else {
      return Status::InvalidArgument(quoted +
                                     ": expected memory=SIZE, isa=avx512|avx2|neon|generic"
                                     " or gpu_memory=SIZE, got '" +
                                     std::string(item.substr(0, 40)) + "'");
    }
  }
  return f;
}

Result<MachineFacts> ReadMachineFacts() {
  return MachineFactsFrom(Platform::Default(), std::getenv("POCKET_MACHINE"));
}

std::string FormatBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  }
  return buf;
}

std::string Variant::Label() const {
  if (!quantization.empty()) return quantization;
  return IsValidDigest(descriptor.digest) ? std::string(DigestHex(descriptor.digest).substr(0, 12))
                                          : descriptor.digest.substr(0, 80);
}

std::vector<Variant> VariantsOf(const Index& index) {
  std::vector<Variant> out;
  for (const Descriptor& d : index.manifests) {
    Variant v;
    v.descriptor = d;
    auto text = [&](const char* key) {
      auto it = d.annotations.find(key);
      return it == d.annotations.end() ? std::string() : it->second.substr(0, 64);
    };
    v.quantization = text(kQuantizationAnnotation);
    v.parameter_count = AnnotationUint(d, kParameterCountAnnotation);
    v.weight_bytes = AnnotationUint(d, kWeightBytesAnnotation);
    v.min_memory_bytes = AnnotationUint(d, kMinMemoryAnnotation);
    v.requires_isa = text(kRequiresIsaAnnotation);
    if (auto it = d.annotations.find(kShapeAnnotation); it != d.annotations.end()) {
      if (auto shape = ParseShape(it->second); shape.ok()) v.shape = *shape;
    }
    out.push_back(std::move(v));
  }
  return out;
}

Result<Prefer> ParsePrefer(std::string_view text) {
  if (text == "quality") return Prefer::kQuality;
  if (text == "speed") return Prefer::kSpeed;
  return Status::InvalidArgument("--prefer: '" + std::string(text.substr(0, 40)) +
                                 "' is not quality or speed");
}

Result<VariantChoice> ChooseVariant(const std::vector<Variant>& variants,
                                    const VariantRequest& request, std::string_view what) {
  const MachineFacts& facts = request.facts;
  struct Judged {
    std::optional<uint64_t> need;
    bool available = true;
    std::string why_not;  // empty: fits
  };
  std::vector<Judged> judged(variants.size());
  for (size_t i = 0; i < variants.size(); ++i) {
    const Variant& v = variants[i];
    Judged& j = judged[i];
    j.need = request.memory_need ? request.memory_need(v) : std::nullopt;
    if (!request.memory_need && v.min_memory_bytes > 0) j.need = v.min_memory_bytes;
    j.available = !request.available || request.available(v);
    if (!j.available) {
      j.why_not = "not in the store";
    } else if (!IsaSatisfies(facts.isa, v.requires_isa)) {
      j.why_not = "needs " + v.requires_isa + ", this CPU has " + facts.isa;
    } else if (!j.need) {
      j.why_not = "memory need unknown";
    } else if (facts.memory_bytes != 0 && *j.need > facts.memory_bytes) {
      j.why_not = "does not fit";
    }
  }
  const std::string available = facts.memory_bytes == 0 ? std::string("unknown memory available")
                                                        : FormatBytes(facts.memory_bytes) +
                                                              " available (" + facts.source + ")";
  auto need_text = [&](size_t i) {
    return judged[i].need ? "needs " + FormatBytes(*judged[i].need) : std::string("needs ?");
  };
  auto others = [&](size_t chosen) {
    std::string s;
    for (size_t i = 0; i < variants.size(); ++i) {
      if (i == chosen) continue;
      s += (s.empty() ? "; others: " : ", ") + variants[i].Label() + " " + need_text(i) +
           (judged[i].why_not.empty() ? "" : " (" + judged[i].why_not + ")");
    }
    return s;
  };
  auto head = [&](size_t i) {
    return "variant " + variants[i].Label() + " (" + ShortDigest(variants[i].descriptor.digest) +
           "): " + need_text(i) + " of " + available;
  };

  if (!request.pick.empty()) {
    std::vector<size_t> hits;
    for (size_t i = 0; i < variants.size(); ++i) {
      if (variants[i].descriptor.digest == request.pick ||
          (!variants[i].quantization.empty() &&
           Lower(variants[i].quantization) == Lower(request.pick))) {
        hits.push_back(i);
      }
    }
    std::string labels;
    for (const Variant& v : variants) labels += (labels.empty() ? "" : ", ") + v.Label();
    if (hits.empty()) {
      return Status::NotFound(std::string(what) + " has no variant '" + request.pick.substr(0, 80) +
                              "' (variants: " + labels + ")");
    }
    if (hits.size() > 1) {
      return Status::InvalidArgument(std::string(what) + ": '" + request.pick.substr(0, 80) +
                                     "' names " + std::to_string(hits.size()) +
                                     " variants; give a digest");
    }
    const size_t i = hits[0];
    if (!judged[i].available) {
      return Status::NotFound(std::string(what) + ": variant " + variants[i].Label() +
                              " is not in the store (pull it with --variant " +
                              variants[i].Label() + ")");
    }
    VariantChoice c;
    c.index = i;
    c.need_bytes = judged[i].need.value_or(0);
    c.line = head(i) + "; chosen by --variant" +
             (judged[i].why_not.empty() ? "" : " (" + judged[i].why_not + " here)") + others(i);
    return c;
  }

  std::optional<size_t> best;
  auto size_of = [&](size_t i) {
    return variants[i].weight_bytes != 0 ? variants[i].weight_bytes : judged[i].need.value_or(0);
  };
  for (size_t i = 0; i < variants.size(); ++i) {
    if (!judged[i].why_not.empty()) continue;
    if (!best) {
      best = i;
      continue;
    }
    const uint64_t a = size_of(i), b = size_of(*best);
    const bool better =
        request.prefer == Prefer::kQuality
            ? (a != b ? a > b : variants[i].parameter_count > variants[*best].parameter_count)
            : (a != b ? a < b : variants[i].parameter_count < variants[*best].parameter_count);
    if (better) best = i;
  }
  if (!best) {
    std::string list;
    for (size_t i = 0; i < variants.size(); ++i) {
      list += (list.empty() ? "" : ", ") + variants[i].Label() + " " + need_text(i) + " (" +
              judged[i].why_not + ")";
    }
    return Status::ResourceExhausted("no variant of " + std::string(what) + " fits this machine: " +
                                     available + ", isa " + facts.isa + "; " + list +
                                     " (--variant picks one anyway; POCKET_MACHINE overrides "
                                     "the facts)");
  }
  VariantChoice c;
  c.index = *best;
  c.need_bytes = judged[*best].need.value_or(0);
  c.line = head(*best) + "; chosen for " +
           (request.prefer == Prefer::kQuality ? "quality, the largest that fits"
                                               : "speed, the smallest that fits") +
           others(*best);
  return c;
}

Result<std::string> MakeVariantIndex(const Store& store, const std::vector<ModelRef>& members) {
  if (members.empty()) return Status::InvalidArgument("an index needs at least one model");
  Index index;
  std::set<std::string> digests;
  for (const ModelRef& ref : members) {
    PK_ASSIGN_OR_RETURN(TagEntry entry, store.Find(ref));
    if (entry.is_index) {
      return Status::InvalidArgument("'" + ref.ToString() +
                                     "' is itself an index of variants; name its models");
    }
    PK_ASSIGN_OR_RETURN(ModelInfo info, store.Show(ref));
    if (!digests.insert(entry.manifest_digest).second) {
      return Status::InvalidArgument("'" + ref.ToString() +
                                     "' is the same model as another member (" +
                                     entry.manifest_digest + ")");
    }
    Descriptor d{
        info.manifest.media_type.empty() ? std::string(kOciManifestType) : info.manifest.media_type,
        entry.manifest_digest,
        static_cast<int64_t>(info.manifest_json.size()),
        info.manifest.artifact_type,
        {},
        ""};
    const nlohmann::json& config = info.config;
    if (config.contains("quantization") && config["quantization"].is_string()) {
      d.annotations[kQuantizationAnnotation] = config["quantization"].get<std::string>();
    }
    if (config.contains("parameter_count") && config["parameter_count"].is_number_unsigned()) {
      d.annotations[kParameterCountAnnotation] =
          std::to_string(config["parameter_count"].get<uint64_t>());
    }
    if (config.contains("min_memory_bytes") && config["min_memory_bytes"].is_number_unsigned()) {
      d.annotations[kMinMemoryAnnotation] =
          std::to_string(config["min_memory_bytes"].get<uint64_t>());
    }
    d.annotations[kWeightBytesAnnotation] = std::to_string(info.manifest.ModelLayer()->size);
    formats::GgufOpenOptions open_options;
    open_options.allow_unsupported_types = true;
    auto gguf = formats::GgufFile::Open(info.model_path, open_options);
    if (gguf.ok()) {
      if (auto shape = ShapeFromGguf(*gguf); shape.ok()) {
        d.annotations[kShapeAnnotation] = SerializeShape(*shape);
      }
    }
    index.manifests.push_back(std::move(d));
  }
  return SerializeIndex(index);
}

}  // namespace pocket::registry
