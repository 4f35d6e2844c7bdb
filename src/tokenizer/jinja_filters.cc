// The chat-template renderer's built-ins: jinja2's filters and tests and the Python str/dict
// methods templates call (strip, split, startswith, items, get, ...), with the string
// helpers they need (Python's whitespace, strip and split). Statements and expressions are
// in jinja_render.cc.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <optional>

#include "base/utf8.h"
#include "tokenizer/jinja_render.h"

namespace pocket::tokenizer::jinja {
namespace {

// Python's str.isspace() code points: what str.strip(), str.split() and Jinja's trim remove.
bool IsPyWhitespace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

// Decodes the code point starting at s[k] (an invalid byte decodes as itself, length 1).
uint32_t CodePointAt(std::string_view s, size_t k, size_t* len) {
  const auto c = static_cast<unsigned char>(s[k]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
  if (k + n > s.size()) n = 1;
  for (size_t j = 1; j < n; ++j) {
    if ((static_cast<unsigned char>(s[k + j]) & 0xC0) != 0x80) n = 1;
  }
  *len = n;
  if (n == 1) return c;
  uint32_t cp = c & (0xFF >> (n + 1));
  for (size_t j = 1; j < n; ++j) cp = (cp << 6) | (static_cast<unsigned char>(s[k + j]) & 0x3F);
  return cp;
}

// Length of the whitespace character ending at s[e-1], or 0.
size_t TrailingWhitespace(std::string_view s, size_t b, size_t e) {
  for (size_t n = 1; n <= 4 && n <= e - b; ++n) {
    if (n < 4 && (static_cast<unsigned char>(s[e - n]) & 0xC0) == 0x80) continue;
    size_t len = 0;
    const uint32_t cp = CodePointAt(s, e - n, &len);
    if (len == n) return IsPyWhitespace(cp) ? n : 0;
  }
  return 0;
}

std::string Strip(std::string_view s, std::string_view chars, bool left, bool right) {
  size_t b = 0, e = s.size();
  if (!chars.empty()) {
    auto strip_char = [&](char c) { return chars.find(c) != std::string_view::npos; };
    while (left && b < e && strip_char(s[b])) ++b;
    while (right && e > b && strip_char(s[e - 1])) --e;
    return std::string(s.substr(b, e - b));
  }
  while (left && b < e) {
    size_t len = 0;
    if (!IsPyWhitespace(CodePointAt(s, b, &len))) break;
    b += len;
  }
  while (right && e > b) {
    const size_t n = TrailingWhitespace(s, b, e);
    if (n == 0) break;
    e -= n;
  }
  return std::string(s.substr(b, e - b));
}

// Splits on runs of whitespace (Python's str.split() without arguments).
std::vector<std::string> SplitWhitespace(std::string_view s) {
  std::vector<std::string> parts;
  size_t k = 0, start = std::string::npos;
  while (k < s.size()) {
    size_t len = 0;
    const bool ws = IsPyWhitespace(CodePointAt(s, k, &len));
    if (ws && start != std::string::npos) {
      parts.emplace_back(s.substr(start, k - start));
      start = std::string::npos;
    } else if (!ws && start == std::string::npos) {
      start = k;
    }
    k += len;
  }
  if (start != std::string::npos) parts.emplace_back(s.substr(start));
  return parts;
}

std::string ReplaceAll(std::string s, const std::string& from, const std::string& to) {
  if (from.empty()) return s;
  std::string out;
  size_t k = 0;
  while (true) {
    const size_t f = s.find(from, k);
    if (f == std::string::npos) break;
    out.append(s, k, f - k);
    out += to;
    k = f + from.size();
  }
  out.append(s, k);
  return out;
}

std::string Capitalize(const std::string& s) {
  std::string r = s;
  for (size_t k = 0; k < r.size(); ++k) {
    r[k] = static_cast<char>(k == 0 ? std::toupper(static_cast<unsigned char>(r[k]))
                                    : std::tolower(static_cast<unsigned char>(r[k])));
  }
  return r;
}

std::string Title(const std::string& s) {
  std::string r = s;
  bool prev_alpha = false;
  for (char& c : r) {
    const bool alpha = std::isalpha(static_cast<unsigned char>(c)) != 0;
    if (alpha) {
      c = static_cast<char>(prev_alpha ? std::tolower(static_cast<unsigned char>(c))
                                       : std::toupper(static_cast<unsigned char>(c)));
    }
    prev_alpha = alpha;
  }
  return r;
}

}  // namespace

const std::vector<std::string_view>& KnownFilters() {
  static const std::vector<std::string_view> names = {
      "trim",     "length",      "count",          "upper",
      "lower",    "capitalize",  "title",          "tojson",
      "string",   "int",         "float",          "default",
      "d",        "first",       "last",           "join",
      "list",     "replace",     "items",          "reverse",
      "safe",     "abs",         "selectattr",     "rejectattr",
      "map",      "unique",      "round",          "wordcount",
      "e",        "escape",      "indent",         "sum",
      "min",      "max",         "sort",           "batch",
      "dictsort", "center",      "truncate",       "striptags",
      "xmlattr",  "urlencode",   "filesizeformat", "format",
      "pprint",   "random",      "slice",          "attr",
      "groupby",  "forceescape", "wordwrap",       "urlize",
      "select",   "reject",      "tojson"};
  return names;
}

const std::vector<std::string_view>& KnownTests() {
  static const std::vector<std::string_view> names = {
      "defined", "undefined",   "none",     "string",   "number", "integer", "float",
      "mapping", "iterable",    "sequence", "boolean",  "true",   "false",   "even",
      "odd",     "divisibleby", "eq",       "equalto",  "==",     "ne",      "!=",
      "in",      "lower",       "upper",    "callable", "sameas"};
  return names;
}

// Python str/dict methods, bound to `self`.
Value Renderer::Method(const Value& self, const std::string& name) {
  if (self.is_string()) {
    const std::string s = self.s;
    auto strip = [s](bool l, bool r) {
      return Value::Fn([s, l, r](std::vector<Value>& a, KwArgs&) -> Result<Value> {
        return Value::Str(Strip(s, a.empty() || a[0].is_none() ? "" : jinja::ToString(a[0]), l, r));
      });
    };
    if (name == "strip") return strip(true, true);
    if (name == "lstrip") return strip(true, false);
    if (name == "rstrip") return strip(false, true);
    if (name == "upper" || name == "lower") {
      const bool up = name == "upper";
      return Value::Fn([s, up](std::vector<Value>&, KwArgs&) -> Result<Value> {
        std::string r = s;
        for (char& c : r)
          c = static_cast<char>(up ? std::toupper(static_cast<unsigned char>(c))
                                   : std::tolower(static_cast<unsigned char>(c)));
        return Value::Str(r);
      });
    }
    if (name == "startswith" || name == "endswith") {
      const bool start = name == "startswith";
      return Value::Fn([s, start](std::vector<Value>& a, KwArgs&) -> Result<Value> {
        if (a.empty()) return Status::InvalidArgument("startswith/endswith needs an argument");
        std::vector<Value> options = a[0].is_array() ? *a[0].arr : std::vector<Value>{a[0]};
        for (const Value& o : options) {
          const std::string p = jinja::ToString(o);
          if (start ? s.starts_with(p) : s.ends_with(p)) return Value::Bool(true);
        }
        return Value::Bool(false);
      });
    }
    if (name == "split") {
      return Value::Fn([s](std::vector<Value>& a, KwArgs&) -> Result<Value> {
        Array parts;
        if (a.empty() || a[0].is_none()) {
          for (auto& p : SplitWhitespace(s)) parts.push_back(Value::Str(std::move(p)));
          return Value::List(std::move(parts));
        }
        const std::string sep = jinja::ToString(a[0]);
        if (sep.empty()) return Status::InvalidArgument("split: empty separator");
        int64_t max_split = a.size() > 1 ? AsInt(a[1]) : -1;
        size_t k = 0;
        while (true) {
          const size_t f = max_split == 0 ? std::string::npos : s.find(sep, k);
          if (f == std::string::npos) {
            parts.push_back(Value::Str(s.substr(k)));
            break;
          }
          parts.push_back(Value::Str(s.substr(k, f - k)));
          k = f + sep.size();
          if (max_split > 0) --max_split;
        }
        return Value::List(std::move(parts));
      });
    }
    if (name == "replace") {
      return Value::Fn([s](std::vector<Value>& a, KwArgs&) -> Result<Value> {
        if (a.size() < 2) return Status::InvalidArgument("replace needs two arguments");
        return Value::Str(ReplaceAll(s, jinja::ToString(a[0]), jinja::ToString(a[1])));
      });
    }
    if (name == "title" || name == "capitalize") {
      const bool title = name == "title";
      return Value::Fn([s, title](std::vector<Value>&, KwArgs&) -> Result<Value> {
        return Value::Str(title ? Title(s) : Capitalize(s));
      });
    }
    if (name == "join") {
      return Value::Fn([s](std::vector<Value>& a, KwArgs&) -> Result<Value> {
        if (a.empty() || !a[0].is_array()) return Status::InvalidArgument("join needs a list");
        std::string r;
        for (size_t k = 0; k < a[0].arr->size(); ++k) {
          if (k > 0) r += s;
          r += jinja::ToString((*a[0].arr)[k]);
        }
        return Value::Str(r);
      });
    }
  }
  if (self.is_object()) {
    const auto obj = self.obj;
    if (name == "items" || name == "keys" || name == "values") {
      const int which = name == "items" ? 0 : name == "keys" ? 1 : 2;
      return Value::Fn([obj, which](std::vector<Value>&, KwArgs&) -> Result<Value> {
        Array out;
        for (const auto& [k, v] : obj->items) {
          if (which == 0) {
            out.push_back(Value::List({Value::Str(k), v}));
          } else {
            out.push_back(which == 1 ? Value::Str(k) : v);
          }
        }
        return Value::List(std::move(out));
      });
    }
    if (name == "get") {
      return Value::Fn([obj](std::vector<Value>& a, KwArgs&) -> Result<Value> {
        if (a.empty()) return Status::InvalidArgument("get needs a key");
        if (const Value* v = obj->Find(jinja::ToString(a[0]))) return *v;
        return a.size() > 1 ? a[1] : Value::None();
      });
    }
  }
  return Value::Undefined(name);
}

const Value* Renderer::Kwarg(const KwArgs& kwargs, std::string_view name) {
  for (const auto& [k, v] : kwargs) {
    if (k == name) return &v;
  }
  return nullptr;
}

Result<Value> Renderer::EvalFilter(const Expr& e) {
  PK_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
  std::vector<Value> args;
  for (size_t k = 1; k < e.args.size(); ++k) {
    PK_ASSIGN_OR_RETURN(Value a, Eval(*e.args[k]));
    args.push_back(std::move(a));
  }
  KwArgs kwargs;
  for (const auto& [k, x] : e.kwargs) {
    PK_ASSIGN_OR_RETURN(Value a, Eval(*x));
    kwargs.emplace_back(k, std::move(a));
  }
  const std::string& f = e.name;
  auto arg = [&](size_t k, std::string_view kw) -> const Value* {
    if (k < args.size()) return &args[k];
    return Kwarg(kwargs, kw);
  };
  if (f == "default" || f == "d") {
    const Value* def = arg(0, "default_value");
    const Value* boolean = arg(1, "boolean");
    const bool use_default =
        v.is_undefined() || (boolean && jinja::Truthy(*boolean) && !jinja::Truthy(v));
    if (use_default) return def ? *def : Value::Str("");
    return v;
  }
  if (f == "safe" || f == "e" || f == "escape" || f == "forceescape") {
    // transformers' environment does not autoescape; |e on plain strings is HTML escape.
    if (f == "safe") return v;
    std::string s = jinja::ToString(v), out;
    for (char c : s) {
      switch (c) {
        case '&':
          out += "&amp;";
          break;
        case '<':
          out += "&lt;";
          break;
        case '>':
          out += "&gt;";
          break;
        case '"':
          out += "&#34;";
          break;
        case '\'':
          out += "&#39;";
          break;
        default:
          out += c;
      }
    }
    return Value::Str(out);
  }
  if (f == "tojson") {
    const Value* indent = arg(0, "indent");
    PK_ASSIGN_OR_RETURN(
        std::string json,
        jinja::ToJson(v, indent && indent->is_number() ? static_cast<int>(AsInt(*indent)) : -1));
    return Value::Str(std::move(json));
  }
  if (v.is_undefined() && f != "length" && f != "count" && f != "list" && f != "string") {
    return RenderError(e.line, "'" + v.s + "' is undefined (filter " + f + ")");
  }
  if (f == "trim") {
    const Value* chars = arg(0, "chars");
    return Value::Str(Strip(jinja::ToString(v), chars ? jinja::ToString(*chars) : "", true, true));
  }
  if (f == "length" || f == "count") {
    if (v.is_string()) return Value::Int(static_cast<int64_t>(Utf8Chars(v.s).size()));
    if (v.is_array()) return Value::Int(static_cast<int64_t>(v.arr->size()));
    if (v.is_object()) return Value::Int(static_cast<int64_t>(v.obj->items.size()));
    if (v.is_undefined()) return Value::Int(0);
    return RenderError(e.line, "object of type '" + TypeName(v) + "' has no len()");
  }
  if (f == "upper" || f == "lower") {
    std::string s = jinja::ToString(v);
    for (char& c : s)
      c = static_cast<char>(f == "upper" ? std::toupper(static_cast<unsigned char>(c))
                                         : std::tolower(static_cast<unsigned char>(c)));
    return Value::Str(s);
  }
  if (f == "capitalize") return Value::Str(Capitalize(jinja::ToString(v)));
  if (f == "title") return Value::Str(Title(jinja::ToString(v)));
  if (f == "string") return Value::Str(jinja::ToString(v));
  if (f == "int") {
    if (v.is_string()) {
      char* end = nullptr;
      const long long x = std::strtoll(Strip(v.s, "", true, true).c_str(), &end, 10);
      return Value::Int(end && *end == '\0' ? x : (args.empty() ? 0 : AsInt(args[0])));
    }
    if (v.is_number()) return Value::Int(AsInt(v));
    return Value::Int(args.empty() ? 0 : AsInt(args[0]));
  }
  if (f == "float") {
    if (v.is_string()) return Value::Float(std::strtod(v.s.c_str(), nullptr));
    if (v.is_number()) return Value::Float(AsDouble(v));
    return Value::Float(0);
  }
  if (f == "abs") {
    if (v.kind == Value::Kind::kFloat) return Value::Float(std::fabs(v.f));
    return Value::Int(std::llabs(AsInt(v)));
  }
  if (f == "first" || f == "last") {
    PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
    if (items.empty()) return Value::Undefined(f);
    return f == "first" ? items.front() : items.back();
  }
  if (f == "list") {
    PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
    return Value::List(std::move(items));
  }
  if (f == "reverse") {
    if (v.is_string()) {
      auto chars = Utf8Chars(v.s);
      std::string r;
      for (auto it = chars.rbegin(); it != chars.rend(); ++it) r += *it;
      return Value::Str(r);
    }
    PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
    std::reverse(items.begin(), items.end());
    return Value::List(std::move(items));
  }
  if (f == "join") {
    const Value* sep = arg(0, "d");
    const Value* attribute = arg(1, "attribute");
    PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
    std::string r;
    for (size_t k = 0; k < items.size(); ++k) {
      if (k > 0 && sep) r += jinja::ToString(*sep);
      Value item = items[k];
      if (attribute) {
        PK_ASSIGN_OR_RETURN(item, GetAttr(item, jinja::ToString(*attribute), e.line));
      }
      r += jinja::ToString(item);
    }
    return Value::Str(r);
  }
  if (f == "replace") {
    if (args.size() < 2) return RenderError(e.line, "replace needs two arguments");
    return Value::Str(
        ReplaceAll(jinja::ToString(v), jinja::ToString(args[0]), jinja::ToString(args[1])));
  }
  if (f == "items") {
    if (!v.is_object()) return RenderError(e.line, "items needs a mapping");
    Array out;
    for (const auto& [k, x] : v.obj->items) out.push_back(Value::List({Value::Str(k), x}));
    return Value::List(std::move(out));
  }
  if (f == "unique") {
    PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
    Array out;
    for (const Value& x : items) {
      if (std::none_of(out.begin(), out.end(),
                       [&](const Value& y) { return jinja::Equals(x, y); })) {
        out.push_back(x);
      }
    }
    return Value::List(std::move(out));
  }
  if (f == "selectattr" || f == "rejectattr" || f == "select" || f == "reject") {
    PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
    const bool by_attr = f == "selectattr" || f == "rejectattr";
    const bool select = f == "selectattr" || f == "select";
    const size_t first_test_arg = by_attr ? 1 : 0;
    if (by_attr && args.empty()) return RenderError(e.line, f + " needs an attribute name");
    Array out;
    for (const Value& item : items) {
      Value subject = item;
      if (by_attr) {
        PK_ASSIGN_OR_RETURN(subject, GetAttrOrUndefined(item, jinja::ToString(args[0]), e.line));
      }
      bool pass;
      if (args.size() > first_test_arg) {
        std::vector<Value> test_args(args.begin() + static_cast<ptrdiff_t>(first_test_arg) + 1,
                                     args.end());
        PK_ASSIGN_OR_RETURN(
            pass, RunTest(jinja::ToString(args[first_test_arg]), subject, test_args, e.line));
      } else {
        pass = jinja::Truthy(subject);
      }
      if (pass == select) out.push_back(item);
    }
    return Value::List(std::move(out));
  }
  if (f == "map") {
    PK_ASSIGN_OR_RETURN(std::vector<Value> items, Iterate(v, e.line));
    const Value* attribute = Kwarg(kwargs, "attribute");
    Array out;
    for (const Value& item : items) {
      if (attribute) {
        PK_ASSIGN_OR_RETURN(Value x, GetAttrOrUndefined(item, jinja::ToString(*attribute), e.line));
        if (x.is_undefined()) {
          if (const Value* def = Kwarg(kwargs, "default")) x = *def;
        }
        out.push_back(std::move(x));
      } else if (!args.empty()) {
        Expr fake;
        fake.kind = Expr::Kind::kFilter;
        fake.line = e.line;
        fake.name = jinja::ToString(args[0]);
        const auto& known = KnownFilters();
        if (std::find(known.begin(), known.end(), fake.name) == known.end()) {
          return RenderError(e.line, "unknown filter '" + fake.name + "' in map");
        }
        auto lit = std::make_unique<Expr>();
        lit->kind = Expr::Kind::kLiteral;
        lit->literal = item;
        fake.args.push_back(std::move(lit));
        PK_ASSIGN_OR_RETURN(Value x, EvalFilter(fake));
        out.push_back(std::move(x));
      } else {
        out.push_back(item);
      }
    }
    return Value::List(std::move(out));
  }
  if (f == "indent") {
    const Value* width = arg(0, "width");
    const Value* first = arg(1, "first");
    const Value* blank = arg(2, "blank");
    const std::string pad =
        width && width->is_string()
            ? width->s
            : std::string(static_cast<size_t>(width ? std::max<int64_t>(0, AsInt(*width)) : 4),
                          ' ');
    const std::string s = jinja::ToString(v);
    std::string out;
    size_t k = 0;
    bool first_line = true;
    while (k <= s.size()) {
      size_t nl = s.find('\n', k);
      const std::string line = s.substr(k, nl == std::string::npos ? std::string::npos : nl - k);
      const bool do_pad = (!first_line || (first && jinja::Truthy(*first))) &&
                          (!line.empty() || (blank && jinja::Truthy(*blank)));
      if (do_pad) out += pad;
      out += line;
      if (nl == std::string::npos) break;
      out += '\n';
      k = nl + 1;
      first_line = false;
    }
    return Value::Str(out);
  }
  return RenderError(e.line, "filter '" + f + "' is not supported");
}

Result<Value> Renderer::GetAttrOrUndefined(const Value& item, const std::string& path, int line) {
  Value cur = item;
  size_t k = 0;
  while (k <= path.size()) {
    const size_t dot = path.find('.', k);
    const std::string part = path.substr(k, dot == std::string::npos ? std::string::npos : dot - k);
    if (cur.is_undefined()) return cur;
    PK_ASSIGN_OR_RETURN(cur, GetItem(cur, Value::Str(part), line));
    if (dot == std::string::npos) break;
    k = dot + 1;
  }
  return cur;
}

Result<bool> Renderer::EvalTest(const Expr& e) {
  PK_ASSIGN_OR_RETURN(Value v, Eval(*e.args[0]));
  std::vector<Value> args;
  for (size_t k = 1; k < e.args.size(); ++k) {
    PK_ASSIGN_OR_RETURN(Value a, Eval(*e.args[k]));
    args.push_back(std::move(a));
  }
  return RunTest(e.name, v, args, e.line);
}

Result<bool> Renderer::RunTest(const std::string& t, const Value& v, const std::vector<Value>& args,
                               int line) {
  using K = Value::Kind;
  if (t == "defined") return !v.is_undefined();
  if (t == "undefined") return v.is_undefined();
  if (t == "none") return v.is_none();
  if (t == "string") return v.is_string();
  if (t == "number") return v.kind == K::kInt || v.kind == K::kFloat;
  if (t == "integer") return v.kind == K::kInt;
  if (t == "float") return v.kind == K::kFloat;
  if (t == "boolean") return v.kind == K::kBool;
  if (t == "true") return v.kind == K::kBool && v.b;
  if (t == "false") return v.kind == K::kBool && !v.b;
  if (t == "mapping") return v.is_object();
  if (t == "iterable") return v.is_array() || v.is_object() || v.is_string() || v.is_undefined();
  if (t == "sequence") return v.is_array() || v.is_object() || v.is_string();
  if (t == "callable") return v.kind == K::kFunction;
  if (t == "even" || t == "odd") {
    if (!v.is_number()) return RenderError(line, "even/odd needs a number");
    return (AsInt(v) % 2 == 0) == (t == "even");
  }
  if (t == "divisibleby") {
    if (args.empty() || AsInt(args[0]) == 0)
      return RenderError(line, "divisibleby needs a nonzero number");
    return AsInt(v) % AsInt(args[0]) == 0;
  }
  if (t == "lower" || t == "upper") {
    const std::string s = jinja::ToString(v);
    for (char c : s) {
      if (t == "lower" && std::isupper(static_cast<unsigned char>(c))) return false;
      if (t == "upper" && std::islower(static_cast<unsigned char>(c))) return false;
    }
    return true;
  }
  if (args.empty()) return RenderError(line, "test '" + t + "' needs an argument");
  if (t == "eq" || t == "equalto" || t == "==") return jinja::Equals(v, args[0]);
  if (t == "ne" || t == "!=") return !jinja::Equals(v, args[0]);
  if (t == "sameas") {
    return v.kind == args[0].kind &&
           (v.is_none() || v.is_undefined() || (v.kind == K::kBool && v.b == args[0].b) ||
            (v.obj && v.obj == args[0].obj) || (v.arr && v.arr == args[0].arr));
  }
  if (t == "in") return Contains(args[0], v, line);
  return RenderError(line, "test '" + t + "' is not supported");
}

}  // namespace pocket::tokenizer::jinja
