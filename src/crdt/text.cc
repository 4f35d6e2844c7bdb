// Y.Text (yjs v13 src/types/YText.js): insertText, formatText with its attribute marks
// (insertAttributes, minimizeAttributeChanges), toString and toDelta. Positions and
// deletion come from abstract_type.cc.
#include <algorithm>

#include "crdt/doc_impl.h"

namespace pocket::crdt::internal {

void DocImpl::Forward(ListPos& p) const {
  const Item& r = items_[p.right];
  if (r.ref == kRefFormat) {
    if (!r.deleted()) {
      const JsonValue v = FormatValue(r);
      const std::string& key = formats_[r.content].first;
      if (v.is_null()) {
        p.attrs.erase(key);
      } else {
        p.attrs[key] = v;
      }
    }
  } else if (!r.deleted()) {
    p.index += r.len;
  }
  p.left = p.right;
  p.right = r.right;
}

JsonValue DocImpl::FormatValue(const Item& it) const {
  JsonValue v = JsonValue::parse(formats_[it.content].second, nullptr, false);
  return v.is_discarded() ? JsonValue() : v;
}

ListPos DocImpl::FindPosFull(uint32_t type, uint64_t index) {
  ListPos p;
  p.right = types_[type].start;
  uint64_t count = index;
  while (p.right != kNil && count > 0) {
    const Item& r = items_[p.right];
    if (r.ref != kRefFormat && !r.deleted()) {
      if (count < r.len) Split(p.right, static_cast<uint32_t>(count));
      count -= items_[p.right].len;
    }
    Forward(p);
  }
  return p;
}

void DocImpl::InsertFormatAt(uint32_t type, ListPos& p, const std::string& key,
                             const JsonValue& v) {
  const uint32_t f = static_cast<uint32_t>(formats_.size());
  formats_.emplace_back(key, v.dump());
  const uint32_t idx = InsertLocal(type, kNil, p.left, p.right, kRefFormat, 1, f, 0);
  p.right = idx;
  Forward(p);
}

void DocImpl::TextInsert(uint32_t type, uint64_t index, std::string_view utf8,
                         const Attributes* attrs) {
  std::string fixed;
  if (!lib0::SanitizeUtf8(utf8, &fixed)) utf8 = fixed;
  const uint32_t len = lib0::Utf16Length(utf8);
  if (len == 0) return;
  TypeInfo& t = types_[type];
  index = std::min<uint64_t>(index, t.length);
  if (attrs == nullptr) {
    auto [left, right] = FindPos(type, index);
    // minimizeAttributeChanges: step over deleted items on the right.
    while (right != kNil && items_[right].deleted()) {
      left = right;
      right = items_[right].right;
    }
    // Fast path: extend our own last run in place (what Yjs's mergeWith would do after
    // the transaction), so sequential typing allocates nothing.
    if (left != kNil) {
      Item& l = items_[left];
      const ClientState& own = OwnClient();
      if (l.client == client_id_ && l.ref == kRefString && !l.deleted() &&
          l.clock + l.len == own.next_clock && l.content + l.aux == text_.size() &&
          l.parent_sub == kNil &&
          SameId(l.flags & kHasRightOrigin, l.right_origin, right != kNil,
                 right != kNil ? Id{items_[right].client, items_[right].clock} : Id{})) {
        NoteClock(client_id_, own.next_clock);
        text_.append(utf8);
        l.aux += static_cast<uint32_t>(utf8.size());
        l.len += len;
        OwnClient().next_clock += len;
        t.length += len;
        t.cursor_item = left;
        t.cursor_pos = index + len - l.len;
        MarkChanged(type, kNil);
        return;
      }
    }
    const uint32_t content = static_cast<uint32_t>(text_.size());
    text_.append(utf8);
    const uint32_t idx = InsertLocal(type, kNil, left, right, kRefString, len, content,
                                     static_cast<uint32_t>(utf8.size()));
    types_[type].cursor_item = idx;
    types_[type].cursor_pos = index;
    return;
  }
  // With attributes: Yjs insertText (minimizeAttributeChanges, insertAttributes,
  // insertNegatedAttributes).
  t.cursor_item = kNil;
  ListPos p = FindPosFull(type, index);
  JsonValue want = attrs->is_object() ? *attrs : JsonValue::object();
  for (auto it = p.attrs.begin(); it != p.attrs.end(); ++it) {
    if (!want.contains(it.key())) want[it.key()] = nullptr;
  }
  MinimizeAttributeChanges(p, want);
  JsonValue negated = InsertAttributes(type, p, want);
  const uint32_t content = static_cast<uint32_t>(text_.size());
  text_.append(utf8);
  const uint32_t idx = InsertLocal(type, kNil, p.left, p.right, kRefString, len, content,
                                   static_cast<uint32_t>(utf8.size()));
  p.right = idx;
  Forward(p);
  while (p.right != kNil) {
    const Item& r = items_[p.right];
    if (r.deleted()) {
      Forward(p);
      continue;
    }
    if (r.ref == kRefFormat) {
      const std::string& key = formats_[r.content].first;
      if (negated.contains(key) && negated[key] == FormatValue(r)) {
        negated.erase(key);
        Forward(p);
        continue;
      }
    }
    break;
  }
  for (auto it = negated.begin(); it != negated.end(); ++it) {
    InsertFormatAt(type, p, it.key(), it.value());
  }
}

// Yjs minimizeAttributeChanges: step over deleted items and format marks that already
// set what `attrs` asks for.
void DocImpl::MinimizeAttributeChanges(ListPos& p, const JsonValue& attrs) {
  while (p.right != kNil) {
    const Item& r = items_[p.right];
    if (r.deleted()) {
      Forward(p);
      continue;
    }
    if (r.ref == kRefFormat) {
      const std::string& key = formats_[r.content].first;
      const JsonValue w = attrs.contains(key) ? attrs[key] : JsonValue();
      if (w == FormatValue(r)) {
        Forward(p);
        continue;
      }
    }
    break;
  }
}

// Yjs insertAttributes: inserts a mark for every attribute that differs from the current
// ones at `p`; returns the previous values, to be restored after the formatted range.
JsonValue DocImpl::InsertAttributes(uint32_t type, ListPos& p, const JsonValue& attrs) {
  JsonValue negated = JsonValue::object();
  for (auto it = attrs.begin(); it != attrs.end(); ++it) {
    const JsonValue cur = p.attrs.contains(it.key()) ? p.attrs[it.key()] : JsonValue();
    if (cur != it.value()) {
      negated[it.key()] = cur;
      InsertFormatAt(type, p, it.key(), it.value());
    }
  }
  return negated;
}

void DocImpl::TextFormat(uint32_t type, uint64_t index, uint64_t length, const Attributes& attrs) {
  if (!attrs.is_object() || attrs.empty()) return;
  types_[type].cursor_item = kNil;
  ListPos p = FindPosFull(type, index);
  if (p.right == kNil) return;
  MinimizeAttributeChanges(p, attrs);
  JsonValue negated = InsertAttributes(type, p, attrs);
  while (p.right != kNil &&
         (length > 0 ||
          (!negated.empty() && (items_[p.right].deleted() || items_[p.right].ref == kRefFormat)))) {
    const Item& r = items_[p.right];
    if (!r.deleted()) {
      if (r.ref == kRefFormat) {
        const std::string key = formats_[r.content].first;
        const JsonValue value = FormatValue(r);
        if (attrs.contains(key)) {
          if (attrs[key] == value) {
            negated.erase(key);
          } else {
            if (length == 0) break;
            negated[key] = value;
          }
          DeleteItem(p.right);
        } else {
          p.attrs[key] = value;
        }
      } else {
        if (length < r.len) Split(p.right, static_cast<uint32_t>(length));
        length -= items_[p.right].len;
      }
    }
    Forward(p);
  }
  while (p.right != kNil) {
    const Item& r = items_[p.right];
    if (r.deleted()) {
      Forward(p);
      continue;
    }
    if (r.ref == kRefFormat) {
      const std::string& key = formats_[r.content].first;
      if (negated.contains(key) && negated[key] == FormatValue(r)) {
        negated.erase(key);
        Forward(p);
        continue;
      }
    }
    break;
  }
  for (auto it = negated.begin(); it != negated.end(); ++it) {
    InsertFormatAt(type, p, it.key(), it.value());
  }
}

std::string DocImpl::TextString(uint32_t type) const {
  std::string out;
  for (uint32_t x = types_[type].start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (it.ref == kRefString && !it.deleted()) out.append(Str(it));
  }
  return out;
}

nlohmann::json DocImpl::TextDelta(uint32_t type) const {
  nlohmann::json ops = nlohmann::json::array();
  nlohmann::json attrs = nlohmann::json::object();
  std::string str;
  auto pack = [&] {
    if (str.empty()) return;
    nlohmann::json op = {{"insert", str}};
    if (!attrs.empty()) op["attributes"] = attrs;
    ops.push_back(std::move(op));
    str.clear();
  };
  for (uint32_t x = types_[type].start; x != kNil; x = items_[x].right) {
    const Item& it = items_[x];
    if (it.deleted()) continue;
    switch (it.ref) {
      case kRefString:
        str.append(Str(it));
        break;
      case kRefEmbed:
      case kRefType: {
        pack();
        nlohmann::json op = {{"insert", ItemValue(it, 0)}};
        if (!attrs.empty()) op["attributes"] = attrs;
        ops.push_back(std::move(op));
        break;
      }
      case kRefFormat: {
        pack();
        const JsonValue v = FormatValue(it);
        if (v.is_null()) {
          attrs.erase(formats_[it.content].first);
        } else {
          attrs[formats_[it.content].first] = v;
        }
        break;
      }
      default:
        break;
    }
  }
  pack();
  return ops;
}

}  // namespace pocket::crdt::internal
