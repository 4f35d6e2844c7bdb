// WWW-Authenticate parsing, Basic credentials and token replies (see auth.h).
#include "registry/auth.h"

#include <cctype>

#include "base/json_limits.h"

namespace pocket::registry {
namespace {

constexpr size_t kMaxChallengeBytes = 8 << 10;

bool IsTokenChar(char c) {
  // RFC 9110 tchar.
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status Bad(std::string_view what, const std::string& why) {
  return Status::InvalidArgument(std::string(what) + ": malformed WWW-Authenticate: " + why);
}

}  // namespace

Result<Challenge> ParseChallenge(std::string_view h, std::string_view what) {
  if (h.size() > kMaxChallengeBytes) return Bad(what, "longer than 8 KiB");
  size_t i = 0;
  auto skip_ws = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  skip_ws();
  const size_t scheme_start = i;
  while (i < h.size() && IsTokenChar(h[i])) ++i;
  if (i == scheme_start) return Bad(what, "no scheme");
  Challenge c;
  c.scheme = Lower(h.substr(scheme_start, i - scheme_start));
  while (true) {
    skip_ws();
    if (i >= h.size()) break;
    const size_t name_start = i;
    while (i < h.size() && IsTokenChar(h[i])) ++i;
    if (i == name_start) return Bad(what, "expected a parameter name");
    const std::string name = Lower(h.substr(name_start, i - name_start));
    skip_ws();
    if (i >= h.size() || h[i] != '=') {
      // token68 (Basic's credentials form) or the start of a next challenge: stop here.
      break;
    }
    ++i;
    skip_ws();
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      bool closed = false;
      while (i < h.size()) {
        const char ch = h[i++];
        if (ch == '\\') {
          if (i >= h.size()) break;
          value += h[i++];
        } else if (ch == '"') {
          closed = true;
          break;
        } else {
          value += ch;
        }
      }
      if (!closed) return Bad(what, "unterminated quoted value of '" + name + "'");
    } else {
      const size_t v = i;
      while (i < h.size() && IsTokenChar(h[i])) ++i;
      value = std::string(h.substr(v, i - v));
    }
    c.params[name] = std::move(value);
    skip_ws();
    if (i < h.size()) {
      if (h[i] != ',') return Bad(what, "expected ',' after '" + name + "'");
      ++i;
    }
  }
  return c;
}

std::string BasicAuthorization(std::string_view user, std::string_view password) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string in = std::string(user) + ":" + std::string(password);
  std::string out;
  for (size_t i = 0; i < in.size(); i += 3) {
    uint32_t n = static_cast<uint32_t>(static_cast<unsigned char>(in[i])) << 16;
    if (i + 1 < in.size()) n |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 1])) << 8;
    if (i + 2 < in.size()) n |= static_cast<uint32_t>(static_cast<unsigned char>(in[i + 2]));
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < in.size() ? kAlphabet[n & 63] : '=';
  }
  return "Basic " + out;
}

Result<std::string> ParseTokenResponse(std::string_view body, std::string_view what) {
  auto j = ParseUntrustedJson(body, what);
  if (!j.ok()) return Status::InvalidArgument(j.status().message());
  if (!j->is_object()) return Status::InvalidArgument(std::string(what) + ": not a JSON object");
  for (const char* key : {"token", "access_token"}) {
    auto it = j->find(key);
    if (it != j->end() && it->is_string() && !it->get<std::string>().empty()) {
      return it->get<std::string>();
    }
  }
  return Status::InvalidArgument(std::string(what) + ": no token in the reply");
}

}  // namespace pocket::registry
