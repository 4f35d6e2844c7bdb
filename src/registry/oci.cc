// Parsing and writing the OCI manifest and index JSON (see oci.h). Every field is checked
// before use, so a hand-edited or truncated index.json is one Corruption line naming the
// file and the field, never an exception or an abort.
#include "registry/oci.h"

#include <initializer_list>
#include <limits>
#include <nlohmann/json.hpp>

#include "base/json_limits.h"
#include "base/sha256.h"

namespace pocket::registry {
namespace {

using nlohmann::json;

// Descriptors and manifests nest at most 4 levels (index > manifests > descriptor >
// annotations); 16 leaves room for extensions we do not read.
constexpr int kMaxOciDepth = 16;

Status Bad(std::string_view what, const std::string& field, const std::string& why) {
  return Status::Corruption(std::string(what) + ": " + field + " " + why);
}

Status ReadString(const json& obj, const char* key, std::string_view what, const std::string& where,
                  bool required, std::string* out) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    return required ? Bad(what, where + key, "is missing") : Status::Ok();
  }
  if (!it->is_string()) return Bad(what, where + key, "is not a string");
  *out = it->get<std::string>();
  return Status::Ok();
}

Status ReadAnnotations(const json& obj, std::string_view what, const std::string& where,
                       std::map<std::string, std::string>* out) {
  auto it = obj.find("annotations");
  if (it == obj.end()) return Status::Ok();
  if (!it->is_object()) return Bad(what, where + "annotations", "is not an object");
  for (auto kv = it->begin(); kv != it->end(); ++kv) {
    if (!kv.value().is_string()) {
      return Bad(what, where + "annotations." + kv.key().substr(0, 64), "is not a string");
    }
    (*out)[kv.key()] = kv.value().get<std::string>();
  }
  return Status::Ok();
}

// The members of `obj` other than `known`, dumped ("" when none). Sorted keys, so equal
// extras are equal strings.
std::string Extra(const json& obj, std::initializer_list<const char*> known) {
  json extra = obj;
  for (const char* key : known) extra.erase(key);
  if (extra.empty()) return "";
  return extra.dump(-1, ' ', false, json::error_handler_t::replace);
}

// `extra` parsed back (our own dump, so valid; an object or nothing).
json ExtraObject(const std::string& extra) {
  if (extra.empty()) return json::object();
  json j = json::parse(extra, nullptr, /*allow_exceptions=*/false);
  return j.is_object() ? j : json::object();
}

Status ReadDescriptor(const json& obj, std::string_view what, const std::string& where,
                      Descriptor* d) {
  if (!obj.is_object()) return Bad(what, where.substr(0, where.size() - 1), "is not an object");
  PK_RETURN_IF_ERROR(ReadString(obj, "mediaType", what, where, true, &d->media_type));
  PK_RETURN_IF_ERROR(ReadString(obj, "digest", what, where, true, &d->digest));
  if (!IsValidDigest(d->digest)) {
    return Bad(what, where + "digest", "is not sha256:<64 lower-case hex>");
  }
  auto size = obj.find("size");
  if (size == obj.end()) return Bad(what, where + "size", "is missing");
  if (!size->is_number_integer()) return Bad(what, where + "size", "is not an integer");
  if (size->is_number_unsigned()) {
    const uint64_t v = size->get<uint64_t>();
    if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return Bad(what, where + "size", "is out of range");
    }
    d->size = static_cast<int64_t>(v);
  } else {
    d->size = size->get<int64_t>();
  }
  if (d->size < 0) return Bad(what, where + "size", "is negative");
  PK_RETURN_IF_ERROR(ReadString(obj, "artifactType", what, where, false, &d->artifact_type));
  PK_RETURN_IF_ERROR(ReadAnnotations(obj, what, where, &d->annotations));
  d->extra_json = Extra(obj, {"mediaType", "digest", "size", "artifactType", "annotations"});
  return Status::Ok();
}

Status CheckHeader(const json& doc, std::string_view what, const char* media_type,
                   std::string* media_type_out) {
  if (!doc.is_object()) return Status::Corruption(std::string(what) + ": is not a JSON object");
  auto version = doc.find("schemaVersion");
  if (version == doc.end()) return Bad(what, "schemaVersion", "is missing");
  if (!version->is_number_integer() || version->get<int64_t>() != 2) {
    return Bad(what, "schemaVersion", "is not 2");
  }
  std::string type;
  PK_RETURN_IF_ERROR(ReadString(doc, "mediaType", what, "", false, &type));
  // mediaType is optional in OCI but, when present, must be the document's own.
  const bool docker = type == kDockerManifestType && media_type == std::string(kOciManifestType);
  if (!type.empty() && type != media_type && !docker) {
    return Bad(what, "mediaType", "is '" + type.substr(0, 80) + "', expected " + media_type);
  }
  if (media_type_out) *media_type_out = type.empty() ? media_type : type;
  return Status::Ok();
}

json DescriptorJson(const Descriptor& d) {
  json j = ExtraObject(d.extra_json);
  j["mediaType"] = d.media_type;
  j["digest"] = d.digest;
  j["size"] = d.size;
  if (!d.artifact_type.empty()) j["artifactType"] = d.artifact_type;
  if (!d.annotations.empty()) j["annotations"] = d.annotations;
  return j;
}

Result<json> Parse(std::string_view bytes, std::string_view what) {
  auto doc = ParseUntrustedJson(bytes, what, kMaxOciDepth);
  if (!doc.ok()) return Status::Corruption(doc.status().message());
  return std::move(doc).value();
}

}  // namespace

bool IsValidDigest(std::string_view digest) {
  if (digest.size() != 71 || digest.substr(0, 7) != "sha256:") return false;
  for (char c : digest.substr(7)) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

std::string_view DigestHex(std::string_view digest) { return digest.substr(7); }

std::string DigestOf(std::string_view bytes) { return "sha256:" + Sha256Hex(bytes); }

const Descriptor* Manifest::ModelLayer() const {
  for (const Descriptor& d : layers) {
    if (d.media_type == kGgufLayerType || d.media_type == kOllamaModelLayerType ||
        d.media_type == kModelPackRawWeightType) {
      return &d;
    }
  }
  return nullptr;
}

Result<Manifest> ParseManifest(std::string_view bytes, std::string_view what) {
  PK_ASSIGN_OR_RETURN(json doc, Parse(bytes, what));
  Manifest m;
  PK_RETURN_IF_ERROR(CheckHeader(doc, what, kOciManifestType, &m.media_type));
  PK_RETURN_IF_ERROR(ReadString(doc, "artifactType", what, "", false, &m.artifact_type));
  auto config = doc.find("config");
  if (config == doc.end()) return Bad(what, "config", "is missing");
  PK_RETURN_IF_ERROR(ReadDescriptor(*config, what, "config.", &m.config));
  auto layers = doc.find("layers");
  if (layers == doc.end()) return Bad(what, "layers", "is missing");
  if (!layers->is_array()) return Bad(what, "layers", "is not an array");
  for (size_t i = 0; i < layers->size(); ++i) {
    Descriptor d;
    PK_RETURN_IF_ERROR(
        ReadDescriptor((*layers)[i], what, "layers[" + std::to_string(i) + "].", &d));
    m.layers.push_back(std::move(d));
  }
  PK_RETURN_IF_ERROR(ReadAnnotations(doc, what, "", &m.annotations));
  if (auto subject = doc.find("subject"); subject != doc.end()) {
    Descriptor d;
    PK_RETURN_IF_ERROR(ReadDescriptor(*subject, what, "subject.", &d));
    m.subject = std::move(d);
  }
  return m;
}

Result<Index> ParseIndex(std::string_view bytes, std::string_view what) {
  PK_ASSIGN_OR_RETURN(json doc, Parse(bytes, what));
  PK_RETURN_IF_ERROR(CheckHeader(doc, what, kOciIndexType, nullptr));
  Index index;
  auto manifests = doc.find("manifests");
  if (manifests == doc.end()) return Bad(what, "manifests", "is missing");
  if (!manifests->is_array()) return Bad(what, "manifests", "is not an array");
  index.manifests.reserve(manifests->size());
  for (size_t i = 0; i < manifests->size(); ++i) {
    Descriptor d;
    PK_RETURN_IF_ERROR(
        ReadDescriptor((*manifests)[i], what, "manifests[" + std::to_string(i) + "].", &d));
    index.manifests.push_back(std::move(d));
  }
  index.extra_json = Extra(doc, {"schemaVersion", "mediaType", "manifests"});
  return index;
}

std::string SerializeManifest(const Manifest& m) {
  json j = {
      {"schemaVersion", 2}, {"mediaType", m.media_type}, {"config", DescriptorJson(m.config)}};
  if (!m.artifact_type.empty()) j["artifactType"] = m.artifact_type;
  json layers = json::array();
  for (const Descriptor& d : m.layers) layers.push_back(DescriptorJson(d));
  j["layers"] = std::move(layers);
  if (!m.annotations.empty()) j["annotations"] = m.annotations;
  if (m.subject) j["subject"] = DescriptorJson(*m.subject);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string SerializeIndex(const Index& index) {
  json manifests = json::array();
  for (const Descriptor& d : index.manifests) manifests.push_back(DescriptorJson(d));
  json j = ExtraObject(index.extra_json);
  j["schemaVersion"] = 2;
  j["mediaType"] = kOciIndexType;
  j["manifests"] = std::move(manifests);
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace pocket::registry
