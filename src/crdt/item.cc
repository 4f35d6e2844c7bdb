// Items (yjs v13 src/structs/Item.js): splitItem, the YATA integration (Item.integrate),
// deletion (Item.delete; a deleted type's children become GC structs, as with Yjs's gc),
// merging deleted runs (Item.mergeWith), and a local insert that makes and integrates an
// item. Finding positions in a type is abstract_type.cc's; wire structs are encoding.cc's.
#include <algorithm>
#include <unordered_set>

#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {

uint32_t DocImpl::Split(uint32_t idx, uint32_t offset) {
  const uint32_t r = AllocItem();
  Item& a = items_[idx];
  Item& b = items_[r];
  b = a;
  b.clock = a.clock + offset;
  b.len = a.len - offset;
  b.origin = {a.client, b.clock - 1};
  b.flags = static_cast<uint8_t>((a.flags | kHasOrigin) & ~kIndexed);
  b.left = idx;
  switch (a.ref) {
    case kRefString: {
      bool mid = false;
      const std::string_view s = Str(a);
      // One byte per UTF-16 unit means all ASCII: no scan needed.
      const size_t pos = a.aux == a.len ? offset : Utf8PosOfUtf16(s, offset, &mid);
      if (!mid) {
        b.content = a.content + static_cast<uint32_t>(pos);
        b.aux = a.aux - static_cast<uint32_t>(pos);
        a.aux = static_cast<uint32_t>(pos);
      } else {
        // ContentString.splice: both halves of a split surrogate pair become U+FFFD.
        std::string left(s.substr(0, pos));
        left += kFffd;
        std::string right = kFffd + std::string(s.substr(pos + 4));
        a.content = static_cast<uint32_t>(text_.size());
        a.aux = static_cast<uint32_t>(left.size());
        text_ += left;
        b.content = static_cast<uint32_t>(text_.size());
        b.aux = static_cast<uint32_t>(right.size());
        text_ += right;
      }
      break;
    }
    case kRefAny:
    case kRefJson:
      b.content = a.content + offset;
      break;
    default:
      break;
  }
  a.len = offset;
  a.right = r;
  if (b.right != kNil) items_[b.right].left = r;
  a.split_next = r;
  if (b.parent_sub != kNil && b.right == kNil && b.parent != kNil) {
    types_[b.parent].map[b.parent_sub] = r;
  }
  return r;
}

// Yjs Item.integrate: `left`/`right` hold the resolved origins on entry.
void DocImpl::Integrate(uint32_t idx) {
  Item* it = &items_[idx];
  TypeInfo& t = types_[it->parent];
  const bool need_scan =
      (it->left == kNil && (it->right == kNil || items_[it->right].left != kNil)) ||
      (it->left != kNil && items_[it->left].right != it->right);
  if (need_scan) {
    uint32_t left = it->left;
    uint32_t o;
    if (left != kNil) {
      o = items_[left].right;
    } else if (it->parent_sub != kNil) {
      auto f = t.map.find(it->parent_sub);
      o = f == t.map.end() ? kNil : f->second;
      while (o != kNil && items_[o].left != kNil) o = items_[o].left;
    } else {
      o = t.start;
    }
    std::unordered_set<uint32_t> conflicting, before_origin;
    const bool has_origin = it->flags & kHasOrigin;
    const bool has_ro = it->flags & kHasRightOrigin;
    while (o != kNil && o != it->right) {
      before_origin.insert(o);
      conflicting.insert(o);
      const Item& oi = items_[o];
      const bool o_has_origin = oi.flags & kHasOrigin;
      if (SameId(has_origin, it->origin, o_has_origin, oi.origin)) {
        if (oi.client < it->client) {
          left = o;
          conflicting.clear();
        } else if (SameId(has_ro, it->right_origin, oi.flags & kHasRightOrigin, oi.right_origin)) {
          break;
        }
      } else if (o_has_origin && before_origin.count(FindItem(oi.origin))) {
        if (!conflicting.count(FindItem(oi.origin))) {
          left = o;
          conflicting.clear();
        }
      } else {
        break;
      }
      o = items_[o].right;
    }
    it = &items_[idx];
    it->left = left;
  }
  if (it->left != kNil) {
    it->right = items_[it->left].right;
    items_[it->left].right = idx;
  } else {
    uint32_t r;
    if (it->parent_sub != kNil) {
      auto f = t.map.find(it->parent_sub);
      r = f == t.map.end() ? kNil : f->second;
      while (r != kNil && items_[r].left != kNil) r = items_[r].left;
    } else {
      r = t.start;
      t.start = idx;
    }
    it->right = r;
  }
  if (it->right != kNil) {
    items_[it->right].left = idx;
  } else if (it->parent_sub != kNil) {
    t.map[it->parent_sub] = idx;
    if (it->left != kNil) DeleteItem(it->left);
  }
  it = &items_[idx];
  if (it->parent_sub == kNil && it->visible()) t.length += it->len;
  AddStruct(idx);
  it = &items_[idx];
  if (it->ref == kRefDeleted) {
    // ContentDeleted.integrate: arrives deleted.
    it->flags |= kDeleted;
    txn_->AddDelete(it->client, it->clock, it->len);
  }
  MarkChanged(it->parent, it->parent_sub);
  if (!txn_->local) types_[it->parent].cursor_item = kNil;
  const uint32_t owner = types_[it->parent].item;
  if ((owner != kNil && items_[owner].deleted()) || (it->parent_sub != kNil && it->right != kNil)) {
    DeleteItem(idx);
  }
}

void DocImpl::DeleteItem(uint32_t idx) {
  Item& it = items_[idx];
  if (it.deleted() || it.ref == kRefGc) return;
  if (it.parent_sub == kNil && it.visible() && it.parent != kNil) {
    types_[it.parent].length -= it.len;
  }
  it.flags |= kDeleted;
  txn_->AddDelete(it.client, it.clock, it.len);
  MarkChanged(it.parent, it.parent_sub);
  if (it.parent != kNil && !txn_->local) types_[it.parent].cursor_item = kNil;
  if (it.ref == kRefType) {
    // ContentType.delete / gc, iteratively: children are deleted, and with gc they become
    // GC structs (their parent is gone).
    std::vector<uint32_t> stack{it.content};
    while (!stack.empty()) {
      const uint32_t t = stack.back();
      stack.pop_back();
      std::vector<uint32_t> children;
      for (uint32_t o = types_[t].start; o != kNil; o = items_[o].right) children.push_back(o);
      for (const auto& [key, cur] : types_[t].map) {
        for (uint32_t o = cur; o != kNil; o = items_[o].left) children.push_back(o);
      }
      for (uint32_t c : children) {
        Item& ci = items_[c];
        if (ci.ref == kRefGc) continue;
        if (!ci.deleted()) {
          if (ci.parent_sub == kNil && ci.visible()) types_[t].length -= ci.len;
          ci.flags |= kDeleted;
          txn_->AddDelete(ci.client, ci.clock, ci.len);
        }
        if (ci.ref == kRefType) stack.push_back(ci.content);
        if (opts_.gc) ci.ref = kRefGc;
      }
      if (opts_.gc) {
        types_[t].start = kNil;
        types_[t].map.clear();
      }
    }
    items_[idx].flags |= kNoMerge;
  }
  if (opts_.gc) items_[idx].ref = kRefDeleted;
}

// Merges `right` into `left` when Yjs's Item.mergeWith would (both gc'd deleted runs).
bool DocImpl::TryMergeDeleted(uint32_t left, uint32_t right) {
  if (left == kNil || right == kNil) return false;
  Item& l = items_[left];
  Item& r = items_[right];
  if (l.ref != kRefDeleted || r.ref != kRefDeleted || !l.deleted() || !r.deleted()) return false;
  if (l.right != right || l.split_next != right || (r.flags & (kIndexed | kNoMerge)) ||
      (l.flags & kNoMerge) || l.parent_sub != kNil || r.parent_sub != kNil) {
    return false;
  }
  if (l.client != r.client || l.clock + l.len != r.clock || !(r.flags & kHasOrigin) ||
      !(r.origin == Id{l.client, l.clock + l.len - 1}) ||
      !SameId(l.flags & kHasRightOrigin, l.right_origin, r.flags & kHasRightOrigin,
              r.right_origin)) {
    return false;
  }
  l.len += r.len;
  l.right = r.right;
  if (r.right != kNil) items_[r.right].left = left;
  l.split_next = r.split_next;
  TypeInfo& t = types_[l.parent];
  if (t.cursor_item == right) t.cursor_item = kNil;
  items_[right].len = 0;  // stale for FindItem's cache until reused
  items_[right].client = 0;
  free_items_.push_back(right);
  return true;
}

uint32_t DocImpl::InsertLocal(uint32_t type, uint32_t parent_sub, uint32_t left, uint32_t right,
                              uint8_t ref, uint32_t len, uint32_t content, uint32_t aux) {
  const uint32_t idx = AllocItem();
  Item& it = items_[idx];
  it.client = client_id_;
  it.clock = OwnClient().next_clock;
  it.len = len;
  it.ref = ref;
  it.parent = type;
  it.parent_sub = parent_sub;
  it.content = content;
  it.aux = aux;
  it.left = left;
  it.right = right;
  if (left != kNil) {
    it.flags |= kHasOrigin;
    it.origin = {items_[left].client, items_[left].clock + items_[left].len - 1};
  }
  if (right != kNil) {
    it.flags |= kHasRightOrigin;
    it.right_origin = {items_[right].client, items_[right].clock};
  }
  Integrate(idx);
  return idx;
}

}  // namespace pocket::crdt::internal
