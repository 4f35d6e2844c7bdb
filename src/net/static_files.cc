// StaticFileHandler and its helpers: the GET/HEAD answers of a static file server. What a
// URL maps to is the caller's resolver's business.
#include "net/static_files.h"

#include <filesystem>
#include <memory>
#include <system_error>
#include <utility>

#include "base/file.h"

namespace pocket::net {

std::string_view MimeType(std::string_view path) {
  auto ends = [&](std::string_view ext) {
    return path.size() >= ext.size() && path.substr(path.size() - ext.size()) == ext;
  };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js") || ends(".mjs")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".json") || ends(".map")) return "application/json";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  return "application/octet-stream";
}

bool IsSafeUrlPath(std::string_view path) {
  return !path.empty() && path.front() == '/' && path.find("..") == std::string_view::npos &&
         path.find('\\') == std::string_view::npos && path.find('\0') == std::string_view::npos &&
         path.find("//") == std::string_view::npos;
}

Handler StaticFileHandler(FileResolver resolve) {
  return [resolve = std::move(resolve)](HttpRequest req, std::shared_ptr<Exchange> ex) {
    if (req.method != "GET" && req.method != "HEAD") {
      return ex->Respond(405, {{"Content-Type", "text/plain"}}, "method not allowed\n");
    }
    auto path = resolve(req.target);
    std::error_code fec;
    if (!path.ok() || !std::filesystem::is_regular_file(*path, fec)) {
      return ex->Respond(404, {{"Content-Type", "text/plain"}}, "not found\n");
    }
    auto body = ReadFile(*path);
    if (!body.ok()) return ex->Respond(500, {}, "");
    ex->Respond(200,
                {{"Content-Type", std::string(MimeType(*path))}, {"Cache-Control", "no-cache"}},
                req.method == "GET" ? std::move(body).value() : std::string());
  };
}

}  // namespace pocket::net
