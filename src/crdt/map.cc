// Y.Map (yjs v13 src/types/YMap.js): set, delete, get and keys; each key's current item
// is the last one integrated for it (typeMapSet / typeMapGet in AbstractType.js).
#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {

void DocImpl::MapSet(uint32_t type, std::string_view key, const JsonValue& value) {
  const uint32_t k = KeyIndex(key);
  auto f = types_[type].map.find(k);
  const uint32_t left = f == types_[type].map.end() ? kNil : f->second;
  const uint32_t content = static_cast<uint32_t>(values_.size());
  values_.push_back(value);
  InsertLocal(type, k, left, kNil, kRefAny, 1, content, 0);
}

void DocImpl::MapDelete(uint32_t type, std::string_view key) {
  auto k = key_index_.find(std::string(key));
  if (k == key_index_.end()) return;
  auto f = types_[type].map.find(k->second);
  if (f != types_[type].map.end()) DeleteItem(f->second);
}

std::optional<JsonValue> DocImpl::MapGet(uint32_t type, std::string_view key) const {
  auto k = key_index_.find(std::string(key));
  if (k == key_index_.end()) return std::nullopt;
  auto f = types_[type].map.find(k->second);
  if (f == types_[type].map.end() || items_[f->second].deleted()) return std::nullopt;
  const Item& it = items_[f->second];
  return ItemValue(it, it.len - 1);
}

std::vector<std::string> DocImpl::MapKeys(uint32_t type) const {
  std::vector<std::string> out;
  for (const auto& [k, x] : types_[type].map) {
    if (!items_[x].deleted()) out.push_back(keys_[k]);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace pocket::crdt::internal
