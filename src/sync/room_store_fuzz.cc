// libFuzzer target: room recovery over arbitrary bytes as a room's log and snapshot (a damaged
// disk). Nothing may crash or hang; the scan must account for every byte; recovery must keep
// exactly the records the scan verified, and a second Open must find a clean room.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "base/check.h"
#include "sync/room_store.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pocket;
  using namespace pocket::sync;
  // The first byte splits the input: snapshot bytes, then log bytes. A small record limit
  // makes the "length within bounds" and torn-tail paths reachable from short inputs.
  if (size == 0) return 0;
  const size_t split = std::min<size_t>(data[0], size - 1);
  const ByteSpan snapshot(data + 1, split), log(data + 1 + split, size - 1 - split);
  RoomStoreOptions options;
  options.max_record_bytes = 1024;
  options.fsync = false;

  const LogScan scan = ScanLog(log, options.max_record_bytes, nullptr);
  size_t covered = 0, pos = 0, ri = 0, ci = 0;
  // Records and corrupt ranges tile [0, torn_tail_offset) in order.
  while (ri < scan.records.size() || ci < scan.corrupt.size()) {
    if (ri < scan.records.size() && scan.records[ri].offset == pos) {
      pos += 8 + scan.records[ri++].size;
    } else {
      PK_CHECK(ci < scan.corrupt.size() && scan.corrupt[ci].offset == pos);
      PK_CHECK(scan.corrupt[ci].size > 0);
      pos += scan.corrupt[ci++].size;
    }
    covered = pos;
  }
  PK_CHECK(covered == scan.torn_tail_offset && scan.torn_tail_offset <= log.size());
  PK_CHECK(scan.work <= LogScanWorkBudget(log.size()));  // recovery's work is bounded

  // tmpfs when there is one: recovery fsyncs what it rewrites, which a disk makes slow.
  static const std::string dir = [] {
    std::error_code ec;
    const std::filesystem::path base = std::filesystem::is_directory("/dev/shm", ec)
                                           ? std::filesystem::path("/dev/shm")
                                           : std::filesystem::temp_directory_path();
    return (base / ("pocket_room_fuzz_" + std::to_string(::getpid()))).string();
  }();
  static const bool cleanup_registered = std::atexit([] {
                                           std::error_code ec;
                                           std::filesystem::remove_all(dir, ec);
                                         }) == 0;
  (void)cleanup_registered;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  auto write = [](const std::string& path, ByteSpan b) {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  };
  write(dir + "/log", log);
  if (!snapshot.empty()) write(dir + "/snapshot", snapshot);
  std::vector<Bytes> first;
  {
    auto store = RoomStore::Open(dir, options, nullptr);
    PK_CHECK(store.ok());
    PK_CHECK(store->recovery().log_records == scan.records.size());
    PK_CHECK(store->updates().size() == scan.records.size() + store->recovery().snapshot_records);
    first = store->updates();
  }
  auto again = RoomStore::Open(dir, options, nullptr);
  PK_CHECK(again.ok());
  PK_CHECK(again->updates() == first);
  PK_CHECK(!again->recovery().lost_data() && again->recovered_dropped_bytes() == 0);
  return 0;
}
