// Editing traces in the format of the public editing-traces collection
// (github.com/josephg/editing-traces, sequential_traces): gzipped or plain JSON
// {"startContent", "endContent", "txns": [{"patches": [[pos, numDeleted, text], ...]}]},
// positions in Unicode code points. Used by `pocket doc replay` and bench/crdt.
// Thread safety: plain functions and values.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "crdt/doc.h"

namespace pocket::crdt {

struct TracePatch {
  uint32_t pos = 0;      // code points
  uint32_t deleted = 0;  // code points
  std::string text;      // UTF-8
};
struct EditingTrace {
  std::string start_content, end_content;
  std::vector<std::vector<TracePatch>> txns;
  bool has_astral = false;  // any non-BMP character (code point != UTF-16 positions)
  size_t num_patches = 0;
};

// Reads `path` (.gz detected by magic bytes). IOError / Corruption naming the path.
Result<EditingTrace> LoadEditingTrace(const std::string& path);
// The JSON text of a trace; Corruption naming `name` and what is wrong. Unknown top-level
// keys, patch elements after the third and anything after the root object are ignored.
// `capacity`: the bytes readable from
// json.data() (>= json.size()); with 64 or more to spare the text is parsed in place, else
// it is copied first.
Result<EditingTrace> ParseEditingTrace(std::string_view json, const std::string& name,
                                       size_t capacity = 0);

// Applies the trace to text `field` of `doc` as local edits, one Doc::Transact per trace
// transaction (startContent, if any, as a first transaction). Positions are converted from
// code points to UTF-16. InvalidArgument when a patch lies outside the text.
Status ReplayTrace(const EditingTrace& trace, Doc& doc, std::string_view field = "content");

}  // namespace pocket::crdt
