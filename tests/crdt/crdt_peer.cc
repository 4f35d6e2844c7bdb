// A line-protocol wrapper around crdt::Doc for the cross-language tests: node scripts in
// this folder spawn it and drive C++ documents next to real Yjs documents. One command per
// stdin line, one reply line on stdout. Binary data travels as lowercase hex.
//   new ID CLIENT GC            -> ok          (GC: 1 = gc on)
//   ins ID INDEX HEXUTF8        -> ok          (Y.Text "content", UTF-16 index)
//   insf ID INDEX HEXUTF8 JSON  -> ok          (insert with attributes)
//   del ID INDEX LEN            -> ok
//   fmt ID INDEX LEN JSON       -> ok
//   mset ID KEY JSON            -> ok          (Y.Map "m")
//   mdel ID KEY                 -> ok
//   ains ID INDEX JSONARRAY     -> ok          (Y.Array "a")
//   adel ID INDEX LEN           -> ok
//   apply ID HEX                -> ok | err MESSAGE
//   take ID                     -> upd [HEX ...]   (updates emitted since the last take)
//   state ID [SVHEX]            -> HEX         (encodeStateAsUpdate)
//   sv ID                       -> HEX
//   dump ID                     -> JSON {text, delta, map, array, pending, length}
//   merge HEX HEX ...           -> HEX | err   (MergeUpdates)
//   diff HEX SVHEX              -> HEX | err   (DiffUpdate)
//   svof HEX                    -> HEX | err   (EncodeStateVectorFromUpdate)
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "base/log.h"
#include "crdt/doc.h"

namespace {

using pocket::crdt::Doc;

std::vector<uint8_t> FromHex(const std::string& h) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
  }
  return out;
}
std::string ToHex(std::span<const uint8_t> b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (uint8_t x : b) {
    s.push_back(d[x >> 4]);
    s.push_back(d[x & 15]);
  }
  return s.empty() ? "-" : s;
}

struct Peer {
  std::unique_ptr<Doc> doc;
  std::vector<std::string> updates;
};

}  // namespace

int main() {
  std::ios::sync_with_stdio(false);
  pocket::SetLogLevel(pocket::LogLevel::kError);  // client-id changes are expected here
  std::map<std::string, Peer> peers;
  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, id;
    in >> cmd;
    if (cmd == "quit") break;
    std::string reply = "ok";
    if (cmd == "merge" || cmd == "diff" || cmd == "svof") {
      std::vector<std::vector<uint8_t>> bufs;
      std::string h;
      while (in >> h) bufs.push_back(h == "-" ? std::vector<uint8_t>{} : FromHex(h));
      pocket::Result<std::vector<uint8_t>> r = pocket::Status::Internal("bad command");
      if (cmd == "merge") {
        std::vector<std::span<const uint8_t>> spans(bufs.begin(), bufs.end());
        r = pocket::crdt::MergeUpdates(spans);
      } else if (cmd == "diff" && bufs.size() == 2) {
        r = pocket::crdt::DiffUpdate(bufs[0], bufs[1]);
      } else if (cmd == "svof" && bufs.size() == 1) {
        r = pocket::crdt::EncodeStateVectorFromUpdate(bufs[0]);
      }
      reply = r.ok() ? ToHex(*r) : "err " + r.status().message();
      std::cout << reply << "\n" << std::flush;
      continue;
    }
    in >> id;
    if (cmd == "new") {
      uint32_t client = 0;
      int gc = 1;
      in >> client >> gc;
      Peer p;
      p.doc = std::make_unique<Doc>(client, pocket::crdt::DocOptions{gc != 0});
      peers[id] = std::move(p);
      Peer& ref = peers[id];
      ref.doc->ObserveUpdates([&ref](std::span<const uint8_t> u, const void*) {
        ref.updates.push_back(ToHex(u));
      });
      std::cout << "ok\n" << std::flush;
      continue;
    }
    auto it = peers.find(id);
    if (it == peers.end()) {
      std::cout << "err unknown doc " << id << "\n" << std::flush;
      continue;
    }
    Peer& p = it->second;
    Doc& doc = *p.doc;
    auto text = doc.GetText("content");
    auto map = doc.GetMap("m");
    auto arr = doc.GetArray("a");
    if (cmd == "ins" || cmd == "insf") {
      size_t index;
      std::string hex, attrs;
      in >> index >> hex;
      std::getline(in, attrs);
      auto bytes = FromHex(hex);
      std::string s(bytes.begin(), bytes.end());
      nlohmann::json a = cmd == "insf" ? nlohmann::json::parse(attrs) : nlohmann::json();
      doc.Transact([&](pocket::crdt::Transaction& t) {
        text.Insert(t, index, s, cmd == "insf" ? &a : nullptr);
      });
    } else if (cmd == "del" || cmd == "adel") {
      size_t index, len;
      in >> index >> len;
      doc.Transact([&](pocket::crdt::Transaction& t) {
        if (cmd == "del") {
          text.Delete(t, index, len);
        } else {
          arr.Delete(t, index, len);
        }
      });
    } else if (cmd == "fmt") {
      size_t index, len;
      std::string attrs;
      in >> index >> len;
      std::getline(in, attrs);
      auto a = nlohmann::json::parse(attrs);
      doc.Transact([&](pocket::crdt::Transaction& t) { text.Format(t, index, len, a); });
    } else if (cmd == "mset") {
      std::string key, js;
      in >> key;
      std::getline(in, js);
      auto v = nlohmann::json::parse(js);
      doc.Transact([&](pocket::crdt::Transaction& t) { map.Set(t, key, v); });
    } else if (cmd == "mdel") {
      std::string key;
      in >> key;
      doc.Transact([&](pocket::crdt::Transaction& t) { map.Delete(t, key); });
    } else if (cmd == "ains") {
      size_t index;
      std::string js;
      in >> index;
      std::getline(in, js);
      auto v = nlohmann::json::parse(js);
      std::vector<nlohmann::json> vals(v.begin(), v.end());
      doc.Transact([&](pocket::crdt::Transaction& t) { arr.Insert(t, index, vals); });
    } else if (cmd == "apply") {
      std::string hex;
      in >> hex;
      auto st = doc.ApplyUpdate(FromHex(hex));
      if (!st.ok()) reply = "err " + st.message();
    } else if (cmd == "take") {
      reply = "upd";
      for (auto& u : p.updates) reply += " " + u;
      p.updates.clear();
    } else if (cmd == "state") {
      std::string sv;
      in >> sv;
      auto r = doc.EncodeStateAsUpdate(sv.empty() ? std::vector<uint8_t>{} : FromHex(sv));
      reply = r.ok() ? ToHex(*r) : "err " + r.status().message();
    } else if (cmd == "sv") {
      reply = ToHex(doc.EncodeStateVector());
    } else if (cmd == "dump") {
      nlohmann::json j = {{"text", text.ToString()},   {"delta", text.ToDelta()},
                          {"map", map.ToJson()},       {"array", arr.ToJson()},
                          {"pending", doc.HasPending()}, {"length", text.Length()}};
      reply = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    } else {
      reply = "err unknown command " + cmd;
    }
    std::cout << reply << "\n" << std::flush;
  }
  return 0;
}
