// Editing-trace loading (zlib for .gz) and replay; see trace.h.
#include "crdt/trace.h"

#include <zlib.h>

#include <nlohmann/json.hpp>

#include "base/file.h"

namespace pocket::crdt {
namespace {

Result<std::string> Gunzip(const std::string& in, const std::string& path) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return Status::Internal("zlib init failed");
  std::string out;
  out.resize(in.size() * 4 + 1024);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.total_out >= out.size()) out.resize(out.size() * 2);
    zs.next_out = reinterpret_cast<Bytef*>(out.data() + zs.total_out);
    zs.avail_out = static_cast<uInt>(out.size() - zs.total_out);
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END) {
      inflateEnd(&zs);
      return Status::Corruption(path + ": bad gzip data");
    }
    if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      return Status::Corruption(path + ": truncated gzip data");
    }
  }
  out.resize(zs.total_out);
  inflateEnd(&zs);
  return out;
}

bool HasAstral(const std::string& s) {
  for (unsigned char c : s) {
    if (c >= 0xf0) return true;
  }
  return false;
}

// UTF-16 units of the first `cps` code points of s (all of s if shorter).
size_t Utf16OfCodePoints(const std::u32string& s, size_t from, size_t cps, size_t* end) {
  size_t units = 0, i = from;
  for (; i < s.size() && i < from + cps; ++i) units += s[i] > 0xffff ? 2 : 1;
  *end = i;
  return units;
}

std::u32string ToU32(std::string_view s) {
  std::u32string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    char32_t cp;
    int n;
    if (c < 0x80) {
      cp = c, n = 1;
    } else if (c < 0xe0) {
      cp = c & 0x1f, n = 2;
    } else if (c < 0xf0) {
      cp = c & 0x0f, n = 3;
    } else {
      cp = c & 0x07, n = 4;
    }
    for (int k = 1; k < n && i + k < s.size(); ++k) cp = (cp << 6) | (s[i + k] & 0x3f);
    out.push_back(cp);
    i += n;
  }
  return out;
}

}  // namespace

Result<EditingTrace> LoadEditingTrace(const std::string& path) {
  PK_ASSIGN_OR_RETURN(std::string raw, ReadFile(path));
  if (raw.size() >= 2 && static_cast<unsigned char>(raw[0]) == 0x1f &&
      static_cast<unsigned char>(raw[1]) == 0x8b) {
    PK_ASSIGN_OR_RETURN(raw, Gunzip(raw, path));
  }
  nlohmann::json j = nlohmann::json::parse(raw, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return Status::Corruption(path + ": not a JSON object");
  EditingTrace t;
  try {
    t.start_content = j.value("startContent", "");
    t.end_content = j.value("endContent", "");
    if (!j.contains("txns") || !j["txns"].is_array()) {
      return Status::Corruption(path + ": missing \"txns\" array");
    }
    t.has_astral = HasAstral(t.start_content);
    for (const auto& txn : j["txns"]) {
      std::vector<TracePatch> patches;
      for (const auto& p : txn.at("patches")) {
        TracePatch tp;
        tp.pos = p.at(0).get<uint32_t>();
        tp.deleted = p.at(1).get<uint32_t>();
        tp.text = p.at(2).get<std::string>();
        t.has_astral = t.has_astral || HasAstral(tp.text);
        patches.push_back(std::move(tp));
      }
      t.num_patches += patches.size();
      t.txns.push_back(std::move(patches));
    }
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": bad trace: " + e.what());
  }
  return t;
}

Status ReplayTrace(const EditingTrace& trace, Doc& doc, std::string_view field) {
  Text text = doc.GetText(field);
  Status status;
  if (!trace.start_content.empty()) {
    doc.Transact([&](Transaction& txn) { text.Insert(txn, text.Length(), trace.start_content); });
  }
  if (!trace.has_astral) {
    // Code points == UTF-16 units: apply directly.
    // The lambda captures one pointer so std::function stores it inline (no allocation
    // per transaction).
    struct Ctx {
      Text& text;
      Status& status;
      const std::vector<TracePatch>* patches;
    } ctx{text, status, nullptr};
    for (const auto& patches : trace.txns) {
      ctx.patches = &patches;
      doc.Transact([c = &ctx](Transaction& txn) {
        Text& t = c->text;
        for (const auto& p : *c->patches) {
          if (p.pos + size_t{p.deleted} > t.Length()) {
            c->status = Status::InvalidArgument("trace patch at " + std::to_string(p.pos) +
                                             " lies outside the text");
            return;
          }
          if (p.deleted) t.Delete(txn, p.pos, p.deleted);
          if (!p.text.empty()) t.Insert(txn, p.pos, p.text);
        }
      });
      PK_RETURN_IF_ERROR(status);
    }
    return Status::Ok();
  }
  // Astral characters: keep a code-point shadow of the text to convert positions.
  std::u32string shadow = ToU32(trace.start_content);
  for (const auto& patches : trace.txns) {
    doc.Transact([&](Transaction& txn) {
      for (const auto& p : patches) {
        if (p.pos + size_t{p.deleted} > shadow.size()) {
          status = Status::InvalidArgument("trace patch at " + std::to_string(p.pos) +
                                           " lies outside the text");
          return;
        }
        size_t end = 0;
        const size_t at = Utf16OfCodePoints(shadow, 0, p.pos, &end);
        const size_t del = Utf16OfCodePoints(shadow, p.pos, p.deleted, &end);
        if (p.deleted) text.Delete(txn, at, del);
        if (!p.text.empty()) text.Insert(txn, at, p.text);
        shadow.erase(p.pos, p.deleted);
        shadow.insert(p.pos, ToU32(p.text));
      }
    });
    PK_RETURN_IF_ERROR(status);
  }
  return Status::Ok();
}

}  // namespace pocket::crdt
