#include "base/log.h"

#include <atomic>
#include <cstdio>
#include <mutex>

namespace pocket {
namespace {

LogSink& Sink() {
  static LogSink sink;
  return sink;
}
std::atomic<int> g_min_level{static_cast<int>(LogLevel::kWarning)};
std::mutex g_mu;

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarning: return "warning";
    case LogLevel::kError: return "error";
  }
  return "?";
}

}  // namespace

void SetLogSink(LogSink sink) { Sink() = std::move(sink); }
void SetLogLevel(LogLevel min_level) { g_min_level = static_cast<int>(min_level); }
bool LogEnabled(LogLevel level) { return static_cast<int>(level) >= g_min_level.load(); }

void Log(LogLevel level, std::string_view message) {
  std::lock_guard<std::mutex> lock(g_mu);
  if (Sink()) {
    Sink()(level, message);
  } else {
    std::fprintf(stderr, "pocket %s: %.*s\n", LevelName(level), static_cast<int>(message.size()),
                 message.data());
  }
}

}  // namespace pocket
