// lib0 primitives as y-protocols frames use them (dmonad/lib0 encoding.js/decoding.js):
// varUint (7 bits per byte, low group first, MSB = continuation, at most 53 bits),
// varString (varUint UTF-8 byte length + bytes) and varUint8Array (varUint length + bytes).
// Only what the sync layer needs; the document codec lives in crdt/.
// Thread safety: WireWriter/WireReader are plain values, one thread each.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace pocket::sync {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;

class WireWriter {
 public:
  void VarUint(uint64_t value);
  void VarString(std::string_view s);
  void VarUint8Array(ByteSpan bytes);
  void Raw(ByteSpan bytes) { out_.insert(out_.end(), bytes.begin(), bytes.end()); }
  Bytes& bytes() { return out_; }
  Bytes Take() { return std::move(out_); }

 private:
  Bytes out_;
};

// Reads from a borrowed span; every read returns Corruption naming `what` on truncated or
// over-long input and never reads past the end.
class WireReader {
 public:
  explicit WireReader(ByteSpan bytes) : bytes_(bytes) {}
  Result<uint64_t> VarUint(std::string_view what);
  Result<std::string> VarString(std::string_view what);
  // A view into the reader's span: valid as long as the caller's bytes are.
  Result<ByteSpan> VarUint8Array(std::string_view what);
  size_t remaining() const { return bytes_.size() - pos_; }
  bool done() const { return pos_ == bytes_.size(); }
  size_t pos() const { return pos_; }

 private:
  ByteSpan bytes_;
  size_t pos_ = 0;
};

}  // namespace pocket::sync
