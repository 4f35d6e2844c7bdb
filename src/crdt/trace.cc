// Editing-trace loading (zlib for .gz) and replay; see trace.h.
#include "crdt/trace.h"

#include <simdjson.h>
#include <zlib.h>

#include <cstdint>

#include "base/file.h"

namespace pocket::crdt {
namespace {

// Decompresses a gzip member into a string whose capacity leaves `padding` bytes past the
// end (the JSON parser reads up to that far ahead). The trailer's ISIZE (size mod 2^32)
// sizes the buffer once for any trace under 4 GiB; a wrong ISIZE only costs regrowing.
Result<std::string> Gunzip(const std::string& in, const std::string& path, size_t padding) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return Status::Internal("zlib init failed");
  size_t expected = in.size() * 4 + 1024;
  if (in.size() >= 18) {
    const auto* t = reinterpret_cast<const unsigned char*>(in.data() + in.size() - 4);
    const size_t isize = size_t{t[0]} | size_t{t[1]} << 8 | size_t{t[2]} << 16 | size_t{t[3]} << 24;
    if (isize > 0) expected = isize;
  }
  std::string out;
  out.reserve(expected + padding);
  out.resize(expected);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (zs.total_out >= out.size()) {
      out.reserve(out.size() * 2 + padding);
      out.resize(out.size() * 2);
    }
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

Result<EditingTrace> ParseEditingTrace(std::string_view json, const std::string& name,
                                       size_t capacity) {
  // simdjson's on-demand parser: the trace is walked once, straight into TracePatch values,
  // with no DOM (nlohmann's DOM spent ~0.4 s of a 0.45 s whole-process replay on 260k small
  // arrays). Fields are taken in whatever order the file has them.
  namespace od = simdjson::ondemand;
  const auto bad = [&name](const char* what) {
    return Status::Corruption(name + ": bad trace: " + what);
  };
  // The parser reads up to simdjson::SIMDJSON_PADDING bytes past the end: parse in place when the
  // caller's buffer has them (LoadEditingTrace's does), else from a padded copy.
  simdjson::padded_string copy;
  simdjson::padded_string_view view(json.data(), json.size(),
                                    json.size() + simdjson::SIMDJSON_PADDING);
  if (json.size() + simdjson::SIMDJSON_PADDING > capacity) {
    copy = simdjson::padded_string(json);
    view = copy;
  }
  od::parser parser;
  od::document doc;
  od::object root;
  if (parser.iterate(view).get(doc) != simdjson::SUCCESS ||
      doc.get_object().get(root) != simdjson::SUCCESS) {
    return Status::Corruption(name + ": not a JSON object");
  }
  EditingTrace t;
  bool have_txns = false;
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key) != simdjson::SUCCESS) return bad("unreadable key");
    od::value value = field.value();
    if (key == "startContent" || key == "endContent") {
      std::string_view text;
      if (value.get_string().get(text) != simdjson::SUCCESS) return bad("content is not a string");
      (key == "startContent" ? t.start_content : t.end_content) = std::string(text);
    } else if (key == "txns") {
      od::array txns;
      if (value.get_array().get(txns) != simdjson::SUCCESS) {
        return Status::Corruption(name + ": missing \"txns\" array");
      }
      have_txns = true;
      for (auto txn_value : txns) {
        od::object txn;
        od::array patches_json;
        if (txn_value.get_object().get(txn) != simdjson::SUCCESS ||
            txn.find_field_unordered("patches").get_array().get(patches_json) !=
                simdjson::SUCCESS) {
          return bad("a transaction without a \"patches\" array");
        }
        std::vector<TracePatch> patches;
        for (auto patch_value : patches_json) {
          od::array patch;
          if (patch_value.get_array().get(patch) != simdjson::SUCCESS)
            return bad("a patch is not an array");
          TracePatch tp;
          size_t i = 0;
          for (auto element : patch) {
            uint64_t n = 0;
            std::string_view text;
            if (i < 2) {
              if (element.get_uint64().get(n) != simdjson::SUCCESS || n > UINT32_MAX) {
                return bad("a patch position or length is not an unsigned 32-bit integer");
              }
              (i == 0 ? tp.pos : tp.deleted) = static_cast<uint32_t>(n);
            } else if (i == 2) {
              if (element.get_string().get(text) != simdjson::SUCCESS) {
                return bad("a patch's text is not a string");
              }
              tp.text = std::string(text);
            }  // elements after the third: left unread (skipped)
            ++i;
          }
          if (i < 3) return bad("a patch has fewer than 3 elements");
          patches.push_back(std::move(tp));
        }
        t.num_patches += patches.size();
        t.txns.push_back(std::move(patches));
      }
    }  // other keys: left unread, which on-demand parsing skips
  }
  if (!have_txns) return Status::Corruption(name + ": missing \"txns\" array");
  t.has_astral = HasAstral(t.start_content);
  for (const auto& txn : t.txns) {
    for (const TracePatch& p : txn) t.has_astral = t.has_astral || HasAstral(p.text);
  }
  return t;
}

Result<EditingTrace> LoadEditingTrace(const std::string& path) {
  Result<std::string> read = ReadFile(path);
  if (!read.ok()) return read.status();
  const std::string& file = *read;
  if (file.starts_with("\x1f\x8b")) {  // gzip's magic bytes
    PK_ASSIGN_OR_RETURN(const std::string json, Gunzip(file, path, simdjson::SIMDJSON_PADDING));
    return ParseEditingTrace(json, path, json.capacity());
  }
  return ParseEditingTrace(file, path, file.capacity());
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
