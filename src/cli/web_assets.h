// Where the binary finds the browser pages it serves (web/CMakeLists.txt lays them out):
// beside a build, <build>/pocket with <build>/share/pocket/web/<page>/, or in an install,
// <prefix>/bin/pocket with <prefix>/share/pocket/web/<page>/. Called by `pocket serve`
// (the chat page) and `pocket collab serve` (the editor page). Thread safety: none needed
// (reads the file system only).
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace pocket::cli {

// The folder of page `page` ("chat", "collab") relative to the running binary: the first of
// <exe dir>/share/pocket/web/<page> and <exe dir>/../share/pocket/web/<page> that holds an
// index.html. NotFound naming the folders looked in when neither does.
Result<std::string> FindWebPage(std::string_view page);

}  // namespace pocket::cli
