// List helpers shared by Text and Array (yjs v13 src/types/AbstractType.js): finding the
// position of an index (findMarker with this doc's per-type cursor), deleting a range
// (typeListDelete), and an item's content as a value (Content*.getContent).
#include <algorithm>

#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {

// (left, right) around UTF-16/element `index`: left is the visible item ending exactly at
// index (split if needed), kNil at 0. Starts from the type's cursor when it has one.
std::pair<uint32_t, uint32_t> DocImpl::FindPos(uint32_t type, uint64_t index) {
  TypeInfo& t = types_[type];
  if (index == 0) return {kNil, t.start};
  uint32_t x = kNil;
  uint64_t pos = 0;
  if (t.cursor_item != kNil) {
    x = t.cursor_item;
    pos = t.cursor_pos;
    if (pos >= index) {
      // Walk left until an item starting before index.
      uint32_t y = items_[x].left;
      x = kNil;
      while (y != kNil) {
        const Item& yi = items_[y];
        if (yi.visible()) {
          pos -= yi.len;
          if (pos < index) {
            x = y;
            break;
          }
        }
        y = yi.left;
      }
    }
  }
  if (x == kNil) {
    x = t.start;
    pos = 0;
  }
  while (x != kNil) {
    const Item& xi = items_[x];
    if (xi.visible()) {
      if (pos + xi.len >= index) {
        if (pos + xi.len > index) Split(x, static_cast<uint32_t>(index - pos));
        t.cursor_item = x;
        t.cursor_pos = pos;
        return {x, items_[x].right};
      }
      pos += xi.len;
    }
    x = xi.right;
  }
  return {kNil, t.start};  // unreachable for index <= length
}

void DocImpl::ListDelete(uint32_t type, uint64_t index, uint64_t length) {
  TypeInfo& t = types_[type];
  if (index >= t.length || length == 0) return;
  length = std::min<uint64_t>(length, t.length - index);
  auto [left, x] = FindPos(type, index);
  while (length > 0 && x != kNil) {
    const Item& xi = items_[x];
    if (xi.visible()) {
      if (length < xi.len) Split(x, static_cast<uint32_t>(length));
      length -= items_[x].len;
      DeleteItem(x);
      const uint32_t next = items_[x].right;
      // Keep gc'd runs merged like Yjs does after the transaction.
      TryMergeDeleted(x, items_[x].right);
      if (TryMergeDeleted(items_[x].left, x)) {
        x = next;
        continue;
      }
      x = items_[x].right;
      continue;
    }
    x = xi.right;
  }
  TypeInfo& t2 = types_[type];
  t2.cursor_item = left;
  if (left != kNil) t2.cursor_pos = index - items_[left].len;
}

JsonValue DocImpl::ItemValue(const Item& it, uint32_t offset) const {
  static const char* kTypeNames[] = {"YArray",       "YMap",     "YText",   "YXmlElement",
                                     "YXmlFragment", "YXmlHook", "YXmlText"};
  switch (it.ref) {
    case kRefAny:
    case kRefJson:
      return values_[it.content + offset];
    case kRefString: {
      bool mid = false;
      const std::string_view s = Str(it);
      const size_t p = Utf8PosOfUtf16(s, offset, &mid);
      bool mid2 = false;
      const size_t q = Utf8PosOfUtf16(s, offset + 1, &mid2);
      return std::string(s.substr(p, std::max(q, p + 1) - p));
    }
    case kRefEmbed: {
      JsonValue v = JsonValue::parse(blobs_[it.content], nullptr, false);
      return v.is_discarded() ? JsonValue() : v;
    }
    case kRefBinary:
      return JsonValue::binary(
          std::vector<uint8_t>(blobs_[it.content].begin(), blobs_[it.content].end()));
    case kRefType: {
      const uint8_t r = types_[it.content].type_ref;
      return {{"$type", r < 7 ? kTypeNames[r] : "unknown"}};
    }
    case kRefDoc:
      return {{"$doc", blobs_[it.content]}};
    default:
      return nullptr;
  }
}

}  // namespace pocket::crdt::internal
