// The public handles (Doc, Text, Map, Array) forwarding to DocImpl, and RelativePosition
// encoding (yjs v13 src/utils/RelativePosition.js writeRelativePosition).
#include <algorithm>

#include "crdt/doc.h"
#include "crdt/doc_impl.h"

namespace pocket::crdt {
using internal::DocImpl;

Doc::Doc(uint32_t client_id, DocOptions opts)
    : impl_(std::make_unique<DocImpl>(client_id, opts)) {}
Doc::~Doc() = default;
Doc::Doc(Doc&&) noexcept = default;
Doc& Doc::operator=(Doc&&) noexcept = default;

uint32_t Doc::client_id() const { return impl_->client_id_; }
const DocOptions& Doc::options() const { return impl_->opts_; }
Text Doc::GetText(std::string_view name) { return Text(impl_.get(), impl_->RootType(name, 2)); }
Map Doc::GetMap(std::string_view name) { return Map(impl_.get(), impl_->RootType(name, 1)); }
Array Doc::GetArray(std::string_view name) {
  return Array(impl_.get(), impl_->RootType(name, 0));
}
std::vector<std::string> Doc::RootNames() const { return impl_->Info().root_types; }

Status Doc::ApplyUpdate(std::span<const uint8_t> update, const void* origin) {
  return impl_->ApplyUpdate(update, origin);
}
std::vector<uint8_t> Doc::EncodeStateVector() const { return impl_->EncodeStateVector(); }
Result<std::vector<uint8_t>> Doc::EncodeStateAsUpdate(std::span<const uint8_t> sv) const {
  return impl_->EncodeStateAsUpdate(sv);
}
void Doc::Transact(const std::function<void(Transaction&)>& fn, const void* origin) {
  impl_->Transact(fn, origin, /*local=*/true);
}
int Doc::ObserveUpdates(UpdateObserver fn) {
  const int id = impl_->next_observer_id_++;
  impl_->update_observers_.emplace_back(id, std::move(fn));
  return id;
}
void Doc::Unobserve(int id) {
  auto& v = impl_->update_observers_;
  v.erase(std::remove_if(v.begin(), v.end(), [id](const auto& p) { return p.first == id; }),
          v.end());
}
bool Doc::HasPending() const { return impl_->HasPending(); }
DocInfo Doc::Info() const { return impl_->Info(); }
std::optional<size_t> Doc::ResolveRelativePosition(const RelativePosition& pos) const {
  return impl_->ResolveRelPos(pos);
}

namespace {
int AddObserver(DocImpl* doc, uint32_t type, TypeObserver fn) {
  const int id = doc->next_observer_id_++;
  doc->types_[type].observers.emplace_back(id, std::move(fn));
  return id;
}
void RemoveObserver(DocImpl* doc, uint32_t type, int id) {
  auto& v = doc->types_[type].observers;
  v.erase(std::remove_if(v.begin(), v.end(), [id](const auto& p) { return p.first == id; }),
          v.end());
}
}  // namespace

std::string Text::ToString() const { return doc_->TextString(type_); }
size_t Text::Length() const { return doc_->types_[type_].length; }
void Text::Insert(Transaction&, size_t index, std::string_view utf8, const Attributes* attrs) {
  doc_->TextInsert(type_, index, utf8, attrs);
}
void Text::Delete(Transaction&, size_t index, size_t length) {
  doc_->ListDelete(type_, index, length);
}
void Text::Format(Transaction&, size_t index, size_t length, const Attributes& attrs) {
  doc_->TextFormat(type_, index, length, attrs);
}
nlohmann::json Text::ToDelta() const { return doc_->TextDelta(type_); }
RelativePosition Text::RelativePositionAt(size_t index, int32_t assoc) const {
  return doc_->RelPos(type_, index, assoc);
}
int Text::Observe(TypeObserver fn) { return AddObserver(doc_, type_, std::move(fn)); }
void Text::Unobserve(int id) { RemoveObserver(doc_, type_, id); }

void Map::Set(Transaction&, std::string_view key, const JsonValue& value) {
  doc_->MapSet(type_, key, value);
}
std::optional<JsonValue> Map::Get(std::string_view key) const { return doc_->MapGet(type_, key); }
bool Map::Has(std::string_view key) const { return doc_->MapGet(type_, key).has_value(); }
void Map::Delete(Transaction&, std::string_view key) { doc_->MapDelete(type_, key); }
std::vector<std::string> Map::Keys() const { return doc_->MapKeys(type_); }
size_t Map::Size() const { return doc_->MapKeys(type_).size(); }
JsonValue PlainJson(const JsonValue& v) {
  if (v.is_discarded()) return nullptr;
  if (v.is_array()) {
    JsonValue out = JsonValue::array();
    for (const auto& e : v) out.push_back(PlainJson(e));  // depth: lib0's Any limit
    return out;
  }
  if (v.is_object()) {
    JsonValue out = JsonValue::object();
    for (const auto& [k, e] : v.items()) {
      if (!e.is_discarded()) out[k] = PlainJson(e);
    }
    return out;
  }
  return v;
}

JsonValue Map::ToJson() const {
  JsonValue out = JsonValue::object();
  for (const auto& k : Keys()) out[k] = *Get(k);
  return PlainJson(out);
}
int Map::Observe(TypeObserver fn) { return AddObserver(doc_, type_, std::move(fn)); }
void Map::Unobserve(int id) { RemoveObserver(doc_, type_, id); }

void Array::Insert(Transaction&, size_t index, const std::vector<JsonValue>& values) {
  doc_->ArrayInsert(type_, index, values);
}
void Array::Push(Transaction&, const JsonValue& value) { doc_->ArrayPush(type_, value); }
void Array::Delete(Transaction&, size_t index, size_t length) {
  doc_->ListDelete(type_, index, length);
}
JsonValue Array::Get(size_t index) const { return doc_->ArrayGet(type_, index); }
size_t Array::Length() const { return doc_->types_[type_].length; }
JsonValue Array::ToJson() const { return PlainJson(doc_->ArrayJson(type_)); }
int Array::Observe(TypeObserver fn) { return AddObserver(doc_, type_, std::move(fn)); }
void Array::Unobserve(int id) { RemoveObserver(doc_, type_, id); }

std::vector<uint8_t> EncodeRelativePosition(const RelativePosition& pos) {
  lib0::Encoder e;
  if (pos.item) {
    e.VarUint(0);
    e.VarUint(pos.item->client);
    e.VarUint(pos.item->clock);
  } else if (!pos.type_name.empty() || !pos.type_item) {
    e.Byte(1);
    e.String(pos.type_name);
  } else {
    e.Byte(2);
    e.VarUint(pos.type_item->client);
    e.VarUint(pos.type_item->clock);
  }
  e.VarInt(pos.assoc);
  return e.Take();
}

Result<RelativePosition> DecodeRelativePosition(std::span<const uint8_t> bytes) {
  lib0::Decoder d(bytes);
  RelativePosition pos;
  switch (d.VarUint()) {
    case 0:
      pos.item = Id{d.VarUint32(), d.VarUint32()};
      break;
    case 1:
      pos.type_name = std::string(d.String());
      break;
    case 2:
      pos.type_item = Id{d.VarUint32(), d.VarUint32()};
      break;
    default:
      return Status::Corruption("yjs relative position: unknown kind");
  }
  if (d.ok() && !d.AtEnd()) pos.assoc = static_cast<int32_t>(d.VarInt());
  if (!d.ok()) return Status::Corruption("yjs relative position: truncated");
  return pos;
}

}  // namespace pocket::crdt
