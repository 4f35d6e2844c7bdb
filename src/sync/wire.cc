#include "sync/wire.h"

namespace pocket::sync {

void WireWriter::VarUint(uint64_t value) {
  while (value > 0x7f) {
    out_.push_back(static_cast<uint8_t>(0x80 | (value & 0x7f)));
    value >>= 7;
  }
  out_.push_back(static_cast<uint8_t>(value));
}

void WireWriter::VarString(std::string_view s) {
  VarUint(s.size());
  out_.insert(out_.end(), s.begin(), s.end());
}

void WireWriter::VarUint8Array(ByteSpan bytes) {
  VarUint(bytes.size());
  Raw(bytes);
}

Result<uint64_t> WireReader::VarUint(std::string_view what) {
  uint64_t value = 0;
  // lib0 reads up to 53 bits (Number.MAX_SAFE_INTEGER); 8 bytes carry 56, so check the value.
  for (int shift = 0; shift < 56; shift += 7) {
    if (pos_ >= bytes_.size()) {
      return Status::Corruption("y-protocols: truncated varUint in " + std::string(what));
    }
    const uint8_t b = bytes_[pos_++];
    value |= static_cast<uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      if (value > (uint64_t{1} << 53) - 1) break;
      return value;
    }
  }
  return Status::Corruption("y-protocols: varUint in " + std::string(what) +
                            " exceeds 2^53-1");
}

Result<ByteSpan> WireReader::VarUint8Array(std::string_view what) {
  PK_ASSIGN_OR_RETURN(uint64_t n, VarUint(what));
  if (n > remaining()) {
    return Status::Corruption("y-protocols: " + std::string(what) + " claims " +
                              std::to_string(n) + " bytes, " + std::to_string(remaining()) +
                              " left");
  }
  ByteSpan out = bytes_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Result<std::string> WireReader::VarString(std::string_view what) {
  PK_ASSIGN_OR_RETURN(ByteSpan s, VarUint8Array(what));
  return std::string(s.begin(), s.end());
}

}  // namespace pocket::sync
