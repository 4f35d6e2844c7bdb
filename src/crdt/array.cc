// Y.Array (yjs v13 src/types/YArray.js): insert, push, get and toJSON over the list
// helpers of abstract_type.cc.
#include <algorithm>

#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {

void DocImpl::ArrayInsert(uint32_t type, uint64_t index, const std::vector<JsonValue>& values) {
  if (values.empty()) return;
  index = std::min<uint64_t>(index, types_[type].length);
  auto [left, right] = FindPos(type, index);
  const uint32_t content = static_cast<uint32_t>(values_.size());
  values_.insert(values_.end(), values.begin(), values.end());
  const uint32_t idx = InsertLocal(type, kNil, left, right, kRefAny,
                                   static_cast<uint32_t>(values.size()), content, 0);
  types_[type].cursor_item = idx;
  types_[type].cursor_pos = index;
}

void DocImpl::ArrayPush(uint32_t type, const JsonValue& value) {
  // Yjs typeListPushGenerics: after the very last item, deleted or not.
  uint32_t last = kNil;
  for (uint32_t x = types_[type].cursor_item != kNil ? types_[type].cursor_item
                                                     : types_[type].start;
       x != kNil; x = items_[x].right) {
    last = x;
  }
  const uint32_t content = static_cast<uint32_t>(values_.size());
  values_.push_back(value);
  InsertLocal(type, kNil, last, kNil, kRefAny, 1, content, 0);
}

JsonValue DocImpl::ArrayGet(uint32_t type, uint64_t index) const {
  uint64_t pos = 0;
  for (uint32_t x = types_[type].start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (!it.visible()) continue;
    if (index < pos + it.len) return ItemValue(it, static_cast<uint32_t>(index - pos));
    pos += it.len;
  }
  return nullptr;
}

JsonValue DocImpl::ArrayJson(uint32_t type) const {
  JsonValue out = JsonValue::array();
  for (uint32_t x = types_[type].start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (!it.visible()) continue;
    for (uint32_t k = 0; k < it.len; ++k) out.push_back(ItemValue(it, k));
  }
  return out;
}

}  // namespace pocket::crdt::internal
