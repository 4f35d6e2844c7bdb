// NAME[:TAG] parsing and the name/tag grammars (see reference.h). Hand-written rather than
// std::regex: these run on every model argument and the grammar is small.
#include "registry/reference.h"

namespace pocket::registry {
namespace {

bool IsAlnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

// One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)*
bool IsValidComponent(std::string_view s) {
  if (s.empty() || !IsAlnum(s.front()) || !IsAlnum(s.back())) return false;
  size_t i = 0;
  while (i < s.size()) {
    if (IsAlnum(s[i])) {
      ++i;
      continue;
    }
    // A separator run: '.', '_', '__', or one or more '-'.
    size_t j = i;
    while (j < s.size() && !IsAlnum(s[j])) ++j;
    const std::string_view sep = s.substr(i, j - i);
    const bool ok = sep == "." || sep == "_" || sep == "__" ||
                    sep.find_first_not_of('-') == std::string_view::npos;
    if (!ok) return false;
    i = j;
  }
  return true;
}

std::string Quoted(std::string_view text) {
  // Cut hostile input short; the message is one line.
  std::string out(text.substr(0, 128));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return "'" + out + (text.size() > 128 ? "...'" : "'");
}

}  // namespace

bool IsValidName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes) return false;
  size_t start = 0;
  // A registry host with a port ("127.0.0.1:5000/team/tiny"): the port is digits after the
  // first component, which must be followed by more of the name.
  if (const size_t first_slash = name.find('/'); first_slash != std::string_view::npos) {
    const std::string_view host = name.substr(0, first_slash);
    if (const size_t colon = host.find(':'); colon != std::string_view::npos) {
      const std::string_view port = host.substr(colon + 1);
      if (port.empty() || port.size() > 5 ||
          port.find_first_not_of("0123456789") != std::string_view::npos ||
          !IsValidComponent(host.substr(0, colon))) {
        return false;
      }
      start = first_slash + 1;
    }
  }
  while (true) {
    const size_t slash = name.find('/', start);
    const std::string_view part = name.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (!IsValidComponent(part)) return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

bool IsValidTag(std::string_view tag) {
  if (tag.empty() || tag.size() > 128) return false;
  for (size_t i = 0; i < tag.size(); ++i) {
    const char c = tag[i];
    const bool word =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!word && (i == 0 || (c != '.' && c != '-'))) return false;
  }
  return true;
}

Result<ModelRef> ParseModelRef(std::string_view text) {
  const size_t slash = text.rfind('/');
  const size_t colon = text.rfind(':');
  ModelRef ref;
  std::string_view name = text;
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    name = text.substr(0, colon);
    const std::string_view tag = text.substr(colon + 1);
    if (!IsValidTag(tag)) {
      return Status::InvalidArgument(
          Quoted(text) +
          " has an invalid tag (a tag is 1 to 128 of [A-Za-z0-9_.-], not "
          "starting with '.' or '-')");
    }
    ref.tag = std::string(tag);
  }
  if (!IsValidName(name)) {
    return Status::InvalidArgument(
        Quoted(text) +
        " is not a valid model name (lowercase [a-z0-9] words joined by '.', "
        "'_' or '-', in '/'-separated parts; no '..', no leading '/')");
  }
  ref.name = std::string(name);
  return ref;
}

}  // namespace pocket::registry
