// Values of the chat-template interpreter (jinja_render.cc, jinja_filters.cc): Python-like
// dynamic values with Jinja's Undefined. Internal to the tokenizer layer. Thread safety:
// values are shared immutable data except namespace() objects, which live inside one render.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"

namespace pocket::tokenizer::jinja {

struct Value;
struct Object;
using Array = std::vector<Value>;
using KwArgs = std::vector<std::pair<std::string, Value>>;
using Function = std::function<Result<Value>(std::vector<Value>& args, KwArgs& kwargs)>;

struct Value {
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kArray,
    kObject,
    kFunction
  };
  Kind kind = Kind::kUndefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // string; for kUndefined the name that was looked up (for errors)
  std::shared_ptr<Array> arr;
  std::shared_ptr<Object> obj;
  std::shared_ptr<const Function> fn;

  static Value Undefined(std::string name = {}) {
    Value v;
    v.s = std::move(name);
    return v;
  }
  static Value None() {
    Value v;
    v.kind = Kind::kNone;
    return v;
  }
  static Value Bool(bool x) {
    Value v;
    v.kind = Kind::kBool;
    v.b = x;
    return v;
  }
  static Value Int(int64_t x) {
    Value v;
    v.kind = Kind::kInt;
    v.i = x;
    return v;
  }
  static Value Float(double x) {
    Value v;
    v.kind = Kind::kFloat;
    v.f = x;
    return v;
  }
  static Value Str(std::string x) {
    Value v;
    v.kind = Kind::kString;
    v.s = std::move(x);
    return v;
  }
  static Value List(Array a = {}) {
    Value v;
    v.kind = Kind::kArray;
    v.arr = std::make_shared<Array>(std::move(a));
    return v;
  }
  static Value Dict();  // empty object
  static Value Fn(Function f) {
    Value v;
    v.kind = Kind::kFunction;
    v.fn = std::make_shared<const Function>(std::move(f));
    return v;
  }

  bool is_undefined() const { return kind == Kind::kUndefined; }
  bool is_none() const { return kind == Kind::kNone; }
  bool is_string() const { return kind == Kind::kString; }
  bool is_number() const {
    return kind == Kind::kInt || kind == Kind::kFloat || kind == Kind::kBool;
  }
  bool is_array() const { return kind == Kind::kArray; }
  bool is_object() const { return kind == Kind::kObject; }
};

// A dict (insertion-ordered, like Python's) or a namespace() (whose attributes `set` may
// assign).
struct Object {
  std::vector<std::pair<std::string, Value>> items;
  bool is_namespace = false;

  const Value* Find(std::string_view key) const {
    for (const auto& [k, v] : items) {
      if (k == key) return &v;
    }
    return nullptr;
  }
  void Set(std::string key, Value v) {
    for (auto& [k, old] : items) {
      if (k == key) {
        old = std::move(v);
        return;
      }
    }
    items.emplace_back(std::move(key), std::move(v));
  }
};

inline Value Value::Dict() {
  Value v;
  v.kind = Kind::kObject;
  v.obj = std::make_shared<Object>();
  return v;
}

bool Truthy(const Value& v);
// Python str(): what {{ v }} prints. Undefined prints as "".
std::string ToString(const Value& v);
// Python repr() (inside lists and dicts).
std::string Repr(const Value& v);
// Python ==.
bool Equals(const Value& a, const Value& b);
// json.dumps(v, ensure_ascii=False, indent=indent) as transformers' tojson does; indent < 0
// means none.
Result<std::string> ToJson(const Value& v, int indent);

}  // namespace pocket::tokenizer::jinja
