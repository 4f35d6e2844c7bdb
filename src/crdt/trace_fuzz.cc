// libFuzzer target: editing-trace JSON (ParseEditingTrace) and, when it parses, its replay
// into a fresh Doc. Any input must give a Status, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "crdt/doc.h"
#include "crdt/trace.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  auto trace = pocket::crdt::ParseEditingTrace(json, "fuzz");
  if (!trace.ok() || trace->num_patches > 4096) return 0;
  pocket::crdt::Doc doc(1);
  (void)pocket::crdt::ReplayTrace(*trace, doc);
  return 0;
}
