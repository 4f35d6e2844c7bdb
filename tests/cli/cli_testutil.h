// What the gtest binaries of tests/cli share: a command's captured result, reading a file
// whole, quoting for /bin/sh, and counting lines (the one-line-error checks).
// Who calls: cli_test.cc, registry_cli_test.cc, registry_remote_test.cc.
// Thread safety: pure functions.
#pragma once

#include <filesystem>
#include <string>

namespace pocket::cli_test {

// Exit status (-1 when the command did not exit normally) and what it wrote.
struct Output {
  int rc = -1;
  std::string out, err;
};

// The file's bytes; "" when it cannot be read.
std::string Slurp(const std::filesystem::path& p);

// `s` in single quotes for /bin/sh, embedded quotes escaped.
std::string Quote(const std::string& s);

// Newlines in `s`.
int Lines(const std::string& s);

}  // namespace pocket::cli_test
