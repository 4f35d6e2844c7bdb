// Static files over HttpServer: a Handler that answers GET and HEAD with the file a
// resolver names, for pages served beside an API or WebSocket rooms (`pocket collab
// serve` serves its editor page and the npm modules it imports this way). The resolver
// owns the mapping from URL to file name; IsSafeUrlPath is the check it should start with.
// Thread safety: the handler may run on any I/O thread at once; it reads the file on the
// calling thread (small files: pages and scripts).
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "net/http_server.h"

namespace pocket::net {

// Content-Type for a file name by extension ("application/octet-stream" when unknown).
std::string_view MimeType(std::string_view path);

// True for a URL path (no query) that may be appended to a directory: it starts with '/'
// and holds no "..", "//", backslash or NUL.
bool IsSafeUrlPath(std::string_view path);

// Maps a request target ("/app.js?v=1") to a file name; NotFound when there is none.
using FileResolver = std::function<Result<std::string>(std::string_view target)>;

// GET: 200 with the file, its MimeType and "Cache-Control: no-cache"; HEAD: the same head
// with an empty body; a target the resolver maps to no regular file: 404 text/plain "not
// found"; a file that cannot be read: 500; any other method: 405 text/plain.
Handler StaticFileHandler(FileResolver resolve);

}  // namespace pocket::net
