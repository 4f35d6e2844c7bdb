// lib0 writeAny/readAny and UTF-8 sanitising; see lib0.h.
#include "crdt/lib0.h"

#include <cmath>

#include "base/utf8.h"

namespace pocket::crdt::lib0 {
namespace {

constexpr int kMaxAnyDepth = 256;

void PutBigEndian(std::vector<uint8_t>& buf, uint64_t bits, int n) {
  for (int i = n - 1; i >= 0; --i) buf.push_back(static_cast<uint8_t>(bits >> (8 * i)));
}

// lib0 writeAny for a JS number.
void WriteNumber(Encoder& e, double d) {
  if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) <= 2147483647.0) {
    e.Byte(125);
    if (d == 0 && std::signbit(d)) {
      e.Byte(0x40);  // -0 keeps its sign in lib0's varInt
    } else {
      e.VarInt(static_cast<int64_t>(d));
    }
    return;
  }
  // lib0's isFloat32 is `getFloat32(setFloat32(d)) === d`, false for NaN: a NaN goes out
  // as float64 with its bits (JavaScript keeps NaN payloads).
  const float f = static_cast<float>(d);
  if (static_cast<double>(f) == d) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    e.Byte(124);
    PutBigEndian(e.buf(), bits, 4);
  } else {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    e.Byte(123);
    PutBigEndian(e.buf(), bits, 8);
  }
}

}  // namespace

void Encoder::Any(const nlohmann::json& v) {
  using T = nlohmann::json::value_t;
  switch (v.type()) {
    case T::null:
      Byte(126);
      break;
    case T::boolean:
      Byte(v.get<bool>() ? 120 : 121);
      break;
    case T::number_integer: {
      const int64_t i = v.get<int64_t>();
      if (i >= -2147483647 && i <= 2147483647) {
        Byte(125);
        VarInt(i);
      } else {
        WriteNumber(*this, static_cast<double>(i));
      }
      break;
    }
    case T::number_unsigned: {
      const uint64_t u = v.get<uint64_t>();
      if (u <= 2147483647u) {
        Byte(125);
        VarInt(static_cast<int64_t>(u));
      } else {
        WriteNumber(*this, static_cast<double>(u));
      }
      break;
    }
    case T::number_float:
      WriteNumber(*this, v.get<double>());
      break;
    case T::string:
      Byte(119);
      String(v.get_ref<const std::string&>());
      break;
    case T::array:
      Byte(117);
      VarUint(v.size());
      for (const auto& e : v) Any(e);
      break;
    case T::object:
      Byte(118);
      VarUint(v.size());
      for (auto it = v.begin(); it != v.end(); ++it) {
        String(it.key());
        Any(it.value());
      }
      break;
    case T::binary: {
      const auto& b = v.get_binary();
      if (b.has_subtype() && b.subtype() == kBigIntSubtype && b.size() == 8) {
        Byte(122);  // a bigint, kept as its 8 big-endian bytes (see lib0.h)
        Raw(b.data(), b.size());
        break;
      }
      Byte(116);
      VarUint(b.size());
      Raw(b.data(), b.size());
      break;
    }
    case T::discarded:
      Byte(127);
      break;
  }
}

nlohmann::json Decoder::Any(int depth) {
  if (depth > kMaxAnyDepth) {
    Fail();
    return nullptr;
  }
  const uint8_t type = Byte();
  if (!ok_) return nullptr;
  switch (type) {
    case 127:  // undefined: a discarded value, written back as 127 (Encoder::Any)
      return nlohmann::json(nlohmann::json::value_t::discarded);
    case 126:
      return nullptr;
    case 125: {
      const double v = VarIntNumber();
      if (!ok_) return nullptr;
      // An integer when it is one JSON can hold exactly; else the double lib0 returns
      // (written back as lib0 writes that number: -0 as a varInt, larger ones as floats).
      if (v == std::floor(v) && std::fabs(v) <= static_cast<double>(kMaxSafeInteger) &&
          !(v == 0 && std::signbit(v))) {
        return static_cast<int64_t>(v);
      }
      return v;
    }
    case 124: {
      const std::string_view b = Bytes(4);
      if (!ok_) return nullptr;
      uint32_t bits = 0;
      for (char c : b) bits = (bits << 8) | static_cast<uint8_t>(c);
      float f;
      std::memcpy(&f, &bits, 4);
      return static_cast<double>(f);
    }
    case 122: {  // bigint
      const std::string_view b = Bytes(8);
      if (!ok_) return nullptr;
      return nlohmann::json::binary(std::vector<uint8_t>(b.begin(), b.end()), kBigIntSubtype);
    }
    case 123: {
      const std::string_view b = Bytes(8);
      if (!ok_) return nullptr;
      uint64_t bits = 0;
      for (char c : b) bits = (bits << 8) | static_cast<uint8_t>(c);
      double d;
      std::memcpy(&d, &bits, 8);
      return d;
    }
    case 121:
      return false;
    case 120:
      return true;
    case 119: {
      const std::string_view s = String();
      if (!ok_) return nullptr;
      return std::string(s);
    }
    case 118: {
      const uint64_t n = VarUint();
      if (!ok_ || n > Remaining() / 2) {
        Fail();
        return nullptr;
      }
      nlohmann::json obj = nlohmann::json::object();
      for (uint64_t i = 0; i < n && ok_; ++i) {
        const std::string_view key = String();
        nlohmann::json value = Any(depth + 1);
        if (!ok_) return nullptr;
        obj[std::string(key)] = std::move(value);
      }
      return obj;
    }
    case 117: {
      const uint64_t n = VarUint();
      if (!ok_ || n > Remaining()) {
        Fail();
        return nullptr;
      }
      nlohmann::json arr = nlohmann::json::array();
      for (uint64_t i = 0; i < n && ok_; ++i) arr.push_back(Any(depth + 1));
      return ok_ ? arr : nlohmann::json();
    }
    case 116: {
      const std::string_view s = Buffer();
      if (!ok_) return nullptr;
      return nlohmann::json::binary(std::vector<uint8_t>(s.begin(), s.end()));
    }
    default:
      Fail();
      return nullptr;
  }
}

// The WHATWG UTF-8 decoder (what TextDecoder does): each maximal invalid subpart becomes
// one U+FFFD, so lengths agree with a JS peer even on hostile bytes.
bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const Utf8Step step = DecodeUtf8Step(s, i);
    if (step.kind != Utf8Kind::kValid) return false;
    i += step.length;
  }
  return true;
}

bool SanitizeUtf8(std::string_view s, std::string* out) {
  size_t i = 0;
  while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
  if (i == s.size()) return true;
  std::string res(s.substr(0, i));
  bool changed = false;
  static constexpr char kFffd[] = "\xEF\xBF\xBD";
  while (i < s.size()) {
    // An incomplete sequence at the end is ill-formed here too: one U+FFFD, as TextDecoder.
    const Utf8Step step = DecodeUtf8Step(s, i);
    if (step.kind == Utf8Kind::kValid) {
      res.append(s.substr(i, step.length));
    } else {
      res.append(kFffd, 3);
      changed = true;
    }
    i += step.length;
  }
  if (!changed) return true;
  *out = std::move(res);
  return false;
}

}  // namespace pocket::crdt::lib0
