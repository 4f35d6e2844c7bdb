#include "tokenizer/jinja_value.h"

#include <charconv>
#include <cmath>

namespace pocket::tokenizer::jinja {

bool Truthy(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return false;
    case Value::Kind::kBool:
      return v.b;
    case Value::Kind::kInt:
      return v.i != 0;
    case Value::Kind::kFloat:
      return v.f != 0;
    case Value::Kind::kString:
      return !v.s.empty();
    case Value::Kind::kArray:
      return !v.arr->empty();
    case Value::Kind::kObject:
      return v.obj->is_namespace || !v.obj->items.empty();
    case Value::Kind::kFunction:
      return true;
  }
  return false;
}

namespace {

// Python's float repr: the shortest round-trip digits, always with a '.' or exponent.
std::string FloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), d);
  std::string s(buf, ec == std::errc() ? end : buf);
  if (s.find_first_of(".en") == std::string::npos) s += ".0";
  return s;
}

std::string StrRepr(const std::string& s) {
  const bool has_single = s.find('\'') != std::string::npos;
  const bool has_double = s.find('"') != std::string::npos;
  const char q = has_single && !has_double ? '"' : '\'';
  std::string out(1, q);
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == static_cast<unsigned char>(q)) {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7F) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += q;
  return out;
}

void JsonString(const std::string& s, std::string& out) {
  out += '"';
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

Status JsonValue(const Value& v, int indent, int depth, std::string& out) {
  const auto newline = [&](int d) {
    out += '\n';
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(d), ' ');
  };
  // Python's json.dumps: ", " / ": " without indent, "," + newline / ": " with it.
  const char* item_sep = indent < 0 ? ", " : ",";
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return Status::InvalidArgument("tojson: '" + v.s + "' is undefined");
    case Value::Kind::kNone:
      out += "null";
      break;
    case Value::Kind::kBool:
      out += v.b ? "true" : "false";
      break;
    case Value::Kind::kInt:
      out += std::to_string(v.i);
      break;
    case Value::Kind::kFloat:
      if (std::isnan(v.f)) {
        out += "NaN";
      } else if (std::isinf(v.f)) {
        out += v.f > 0 ? "Infinity" : "-Infinity";
      } else {
        out += FloatRepr(v.f);
      }
      break;
    case Value::Kind::kString:
      JsonString(v.s, out);
      break;
    case Value::Kind::kArray: {
      if (v.arr->empty()) {
        out += "[]";
        break;
      }
      out += '[';
      for (size_t k = 0; k < v.arr->size(); ++k) {
        if (k > 0) out += item_sep;
        if (indent >= 0) newline(depth + 1);
        PK_RETURN_IF_ERROR(JsonValue((*v.arr)[k], indent, depth + 1, out));
      }
      if (indent >= 0) newline(depth);
      out += ']';
      break;
    }
    case Value::Kind::kObject: {
      if (v.obj->items.empty()) {
        out += "{}";
        break;
      }
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.obj->items) {
        if (!first) out += item_sep;
        first = false;
        if (indent >= 0) newline(depth + 1);
        JsonString(k, out);
        out += ": ";
        PK_RETURN_IF_ERROR(JsonValue(item, indent, depth + 1, out));
      }
      if (indent >= 0) newline(depth);
      out += '}';
      break;
    }
    case Value::Kind::kFunction:
      return Status::InvalidArgument("tojson: a function is not JSON serializable");
  }
  return Status::Ok();
}

}  // namespace

std::string Repr(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kString:
      return StrRepr(v.s);
    case Value::Kind::kArray: {
      std::string out = "[";
      for (size_t k = 0; k < v.arr->size(); ++k) {
        if (k > 0) out += ", ";
        out += Repr((*v.arr)[k]);
      }
      return out + "]";
    }
    case Value::Kind::kObject: {
      if (v.obj->is_namespace) return "<Namespace>";
      std::string out = "{";
      bool first = true;
      for (const auto& [k, item] : v.obj->items) {
        if (!first) out += ", ";
        first = false;
        out += StrRepr(k) + ": " + Repr(item);
      }
      return out + "}";
    }
    default:
      return ToString(v);
  }
}

std::string ToString(const Value& v) {
  switch (v.kind) {
    case Value::Kind::kUndefined:
      return "";
    case Value::Kind::kNone:
      return "None";
    case Value::Kind::kBool:
      return v.b ? "True" : "False";
    case Value::Kind::kInt:
      return std::to_string(v.i);
    case Value::Kind::kFloat:
      return FloatRepr(v.f);
    case Value::Kind::kString:
      return v.s;
    case Value::Kind::kArray:
    case Value::Kind::kObject:
      return Repr(v);
    case Value::Kind::kFunction:
      return "<function>";
  }
  return "";
}

bool Equals(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    const auto num = [](const Value& x) {
      return x.kind == Value::Kind::kFloat ? x.f
             : x.kind == Value::Kind::kInt ? static_cast<double>(x.i)
                                           : (x.b ? 1.0 : 0.0);
    };
    if (a.kind != Value::Kind::kFloat && b.kind != Value::Kind::kFloat) {
      const auto as_int = [](const Value& x) {
        return x.kind == Value::Kind::kInt ? x.i : (x.b ? 1 : 0);
      };
      return as_int(a) == as_int(b);
    }
    return num(a) == num(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Value::Kind::kUndefined:
    case Value::Kind::kNone:
      return true;
    case Value::Kind::kString:
      return a.s == b.s;
    case Value::Kind::kArray:
      if (a.arr->size() != b.arr->size()) return false;
      for (size_t k = 0; k < a.arr->size(); ++k) {
        if (!Equals((*a.arr)[k], (*b.arr)[k])) return false;
      }
      return true;
    case Value::Kind::kObject:
      if (a.obj == b.obj) return true;
      if (a.obj->is_namespace || b.obj->is_namespace) return false;
      if (a.obj->items.size() != b.obj->items.size()) return false;
      for (const auto& [k, item] : a.obj->items) {
        const Value* other = b.obj->Find(k);
        if (other == nullptr || !Equals(item, *other)) return false;
      }
      return true;
    case Value::Kind::kFunction:
      return a.fn == b.fn;
    default:
      return false;
  }
}

Result<std::string> ToJson(const Value& v, int indent) {
  std::string out;
  PK_RETURN_IF_ERROR(JsonValue(v, indent, 0, out));
  return out;
}

}  // namespace pocket::tokenizer::jinja
