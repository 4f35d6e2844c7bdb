// Relative positions (yjs v13 src/utils/RelativePosition.js
// createRelativePositionFromTypeIndex, createAbsolutePositionFromRelativePosition). Their
// encoding is api.cc's.
#include <algorithm>

#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {

RelativePosition DocImpl::RelPos(uint32_t type, uint64_t index, int32_t assoc) const {
  const TypeInfo& t = types_[type];
  RelativePosition rp;
  rp.assoc = assoc;
  if (t.item == kNil) {
    rp.type_name = t.name;
  } else {
    rp.type_item = Id{items_[t.item].client, items_[t.item].clock};
  }
  if (assoc < 0) {
    if (index == 0) return rp;
    --index;
  }
  for (uint32_t x = t.start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (it.visible()) {
      if (it.len > index) {
        rp.item = Id{it.client, it.clock + static_cast<uint32_t>(index)};
        return rp;
      }
      index -= it.len;
    }
    if (it.right == kNil && assoc < 0) {
      rp.item = Id{it.client, it.clock + it.len - 1};
      return rp;
    }
  }
  return rp;
}

std::optional<size_t> DocImpl::ResolveRelPos(const RelativePosition& pos) const {
  if (pos.item) {
    if (NextClock(pos.item->client) <= pos.item->clock) return std::nullopt;
    const uint32_t x = FindItemConst(*pos.item, nullptr);
    const Item& it = items_[x];
    if (it.ref == kRefGc || it.parent == kNil) return std::nullopt;
    const TypeInfo& t = types_[it.parent];
    if (t.item != kNil && items_[t.item].deleted()) return 0;
    size_t index = it.visible() ? (pos.item->clock - it.clock) + (pos.assoc >= 0 ? 0 : 1) : 0;
    for (uint32_t y = it.left; y != kNil; y = items_[y].left) {
      if (items_[y].visible()) index += items_[y].len;
    }
    return index;
  }
  const TypeInfo* t = nullptr;
  if (!pos.type_name.empty()) {
    auto f = roots_.find(pos.type_name);
    if (f == roots_.end()) return pos.assoc >= 0 ? std::optional<size_t>(0) : 0;
    t = &types_[f->second];
  } else if (pos.type_item) {
    if (NextClock(pos.type_item->client) <= pos.type_item->clock) return std::nullopt;
    const Item& it = items_[FindItemConst(*pos.type_item, nullptr)];
    if (it.ref != kRefType) return std::nullopt;
    t = &types_[it.content];
  } else {
    return std::nullopt;
  }
  return pos.assoc >= 0 ? static_cast<size_t>(t->length) : 0;
}

}  // namespace pocket::crdt::internal
