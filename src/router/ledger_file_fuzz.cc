// libFuzzer target: a ledger file's bytes at start-up (Ledger::CheckFile, then Open). The
// input is written to a temporary file. Nothing may crash; a file CheckFile refuses as
// damaged Open refuses too (never a silent fresh start), and nothing refused is changed.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>

#include "base/check.h"
#include "router/ledger.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pocket;
  static const std::string path =
      "/tmp/pocket_ledger_file_fuzz_" + std::to_string(getpid()) + ".db";
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((path + suffix).c_str());
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  const Status check = router::Ledger::CheckFile(path);
  if (check.code() == StatusCode::kCorruption) {
    auto opened = router::Ledger::Open(path);
    PK_CHECK(!opened.ok());
    std::ifstream in(path, std::ios::binary);
    PK_CHECK(std::string(std::istreambuf_iterator<char>(in), {}) == bytes);
  } else if (check.ok()) {
    auto opened = router::Ledger::Open(path);
    if (opened.ok()) (void)(*opened)->SpendFor(router::BudgetScope::Kind::kArea, "chat", 1.8e9);
  }
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((path + suffix).c_str());
  return 0;
}
