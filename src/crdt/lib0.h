// lib0 binary primitives as Yjs uses them (npm lib0 encoding.js / decoding.js): varUint,
// varInt (sign-and-magnitude), varString (UTF-8 byte length + bytes), varUint8Array and
// writeAny/readAny. The Decoder never reads past its input: every read reports failure
// through ok() and returns 0/empty, so callers check once per record.
// Internal to src/crdt. Thread safety: values, one thread each.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace pocket::crdt::lib0 {

// readAny's type 122 (a JS bigint) decodes to json binary of this subtype holding the 8
// big-endian bytes, and such a binary is written back as type 122: a bigint keeps its type
// (any 64-bit value, small ones too) instead of becoming a number.
inline constexpr uint8_t kBigIntSubtype = 122;

class Encoder {
 public:
  void Byte(uint8_t b) { buf_.push_back(b); }
  void VarUint(uint64_t v) {
    while (v > 0x7f) {
      buf_.push_back(static_cast<uint8_t>(0x80 | (v & 0x7f)));
      v >>= 7;
    }
    buf_.push_back(static_cast<uint8_t>(v));
  }
  // lib0 writeVarInt: first byte = continuation | sign | 6 bits.
  void VarInt(int64_t v) {
    const bool neg = v < 0;
    uint64_t n = neg ? static_cast<uint64_t>(-(v + 1)) + 1 : static_cast<uint64_t>(v);
    buf_.push_back(static_cast<uint8_t>((n > 63 ? 0x80 : 0) | (neg ? 0x40 : 0) | (n & 63)));
    n >>= 6;
    while (n > 0) {
      buf_.push_back(static_cast<uint8_t>((n > 127 ? 0x80 : 0) | (n & 127)));
      n >>= 7;
    }
  }
  void String(std::string_view s) {
    VarUint(s.size());
    Raw(s.data(), s.size());
  }
  void Raw(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  void Any(const nlohmann::json& v);
  std::vector<uint8_t>& buf() { return buf_; }
  std::vector<uint8_t> Take() { return std::move(buf_); }
  size_t size() const { return buf_.size(); }

 private:
  std::vector<uint8_t> buf_;
};

// Whether `s` is well-formed UTF-8 (no surrogates, overlongs or truncated sequences).
bool IsValidUtf8(std::string_view s);

class Decoder {
 public:
  static constexpr uint64_t kMaxSafeInteger = (uint64_t{1} << 53) - 1;
  explicit Decoder(std::span<const uint8_t> in) : p_(in.data()), end_(in.data() + in.size()) {}
  bool ok() const { return ok_; }
  bool AtEnd() const { return p_ == end_; }
  size_t Remaining() const { return static_cast<size_t>(end_ - p_); }
  void Fail() {
    ok_ = false;
    p_ = end_;
  }
  uint8_t Byte() {
    if (p_ == end_) {
      Fail();
      return 0;
    }
    return *p_++;
  }
  // Values above 2^53-1 (Number.MAX_SAFE_INTEGER) fail, like lib0.
  uint64_t VarUint() {
    uint64_t num = 0;
    int shift = 0;
    while (p_ != end_ && shift < 64) {
      const uint8_t r = *p_++;
      num |= static_cast<uint64_t>(r & 0x7f) << shift;
      if (r < 0x80) {
        if (num > kMaxSafeInteger) break;
        return num;
      }
      shift += 7;
    }
    Fail();
    return 0;
  }
  // A varUint that must fit 32 bits (client ids, clocks, lengths).
  uint32_t VarUint32() {
    const uint64_t v = VarUint();
    if (v > 0xffffffffu) {
      Fail();
      return 0;
    }
    return static_cast<uint32_t>(v);
  }
  int64_t VarInt() {
    uint8_t r = Byte();
    const bool neg = (r & 0x40) != 0;
    uint64_t num = r & 63;
    int shift = 6;
    while ((r & 0x80) && ok_) {
      if (shift >= 64) {
        Fail();
        return 0;
      }
      r = Byte();
      num |= static_cast<uint64_t>(r & 0x7f) << shift;
      shift += 7;
    }
    if (!ok_ || num > kMaxSafeInteger) {
      Fail();
      return 0;
    }
    return neg ? -static_cast<int64_t>(num) : static_cast<int64_t>(num);
  }
  // lib0 readVarInt as JavaScript computes it, for an Any number: in doubles, byte by
  // byte, with the 2^53 check only between bytes, so the last byte may carry the value
  // past it (lib0 then returns an inexact number); a sign bit on zero gives -0.
  double VarIntNumber() {
    uint8_t r = Byte();
    double num = r & 63, mult = 64;
    const double sign = (r & 0x40) != 0 ? -1.0 : 1.0;
    if ((r & 0x80) == 0) return ok_ ? sign * num : 0;
    while (ok_) {
      r = Byte();
      if (!ok_) break;
      num = num + static_cast<double>(r & 0x7f) * mult;
      mult *= 128;
      if (r < 0x80) return sign * num;
      if (num > static_cast<double>(kMaxSafeInteger)) break;
    }
    Fail();
    return 0;
  }
  // lib0 readVarUint8Array: length-prefixed raw bytes.
  std::string_view Buffer() {
    const uint64_t n = VarUint();
    if (!ok_ || n > Remaining()) {
      Fail();
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  // lib0 readVarString: like Buffer(), and ill-formed UTF-8 fails the decoder, as lib0's
  // fatal TextDecoder throws.
  std::string_view String() {
    const std::string_view s = Buffer();
    if (ok_ && !IsValidUtf8(s)) Fail();
    return ok_ ? s : std::string_view();
  }
  std::string_view Bytes(size_t n) {
    if (n > Remaining()) {
      Fail();
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(p_), n);
    p_ += n;
    return s;
  }
  // lib0 readAny; depth-limited against hostile nesting.
  nlohmann::json Any(int depth = 0);

 private:
  const uint8_t* p_;
  const uint8_t* end_;
  bool ok_ = true;
};

// UTF-16 length of valid UTF-8 (4-byte sequences count 2).
inline uint32_t Utf16Length(std::string_view s) {
  uint32_t n = 0;
  for (unsigned char c : s) n += ((c & 0xc0) != 0x80) + (c >= 0xf0);
  return n;
}
// Replaces invalid UTF-8 by U+FFFD (what TextEncoder does to lone surrogates). Returns
// true when `s` was already valid (and leaves *out untouched then).
bool SanitizeUtf8(std::string_view s, std::string* out);

}  // namespace pocket::crdt::lib0
