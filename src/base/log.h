// Logging for library code, which never prints: messages go to a sink that the program
// installs (the CLI sends them to stderr, the server to JSON lines). With no sink
// installed, messages below kWarning are dropped and the rest go to stderr.
// Thread safety: Log() may be called from any thread; SetLogSink() at start-up only.
#pragma once

#include <functional>
#include <sstream>
#include <string>
#include <string_view>

namespace pocket {

enum class LogLevel { kDebug, kInfo, kWarning, kError };
using LogSink = std::function<void(LogLevel, std::string_view message)>;

void SetLogSink(LogSink sink);
void SetLogLevel(LogLevel min_level);
bool LogEnabled(LogLevel level);
void Log(LogLevel level, std::string_view message);

namespace internal {
class LogLine {
 public:
  explicit LogLine(LogLevel level) : level_(level) {}
  ~LogLine() { Log(level_, stream_.str()); }
  template <typename T>
  LogLine& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace pocket

// PK_LOG(kInfo) << "loaded " << n << " tensors";
#define PK_LOG(level)                                     \
  if (!::pocket::LogEnabled(::pocket::LogLevel::level)) { \
  } else                                                  \
    ::pocket::internal::LogLine(::pocket::LogLevel::level)
