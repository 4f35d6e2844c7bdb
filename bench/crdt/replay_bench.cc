// Side-by-side benchmark driver (C++ half): replays an editing trace into a crdt::Doc,
// encodes the full state (v1), loads it back into a fresh Doc, and prints one JSON line
// with times, encoded size and memory. bench/crdt/run.sh runs it next to yjs_bench.mjs.
//   pocket_crdt_replay_bench TRACE.json[.gz] [--client ID] [--runs N] [--out DOC.yjs]
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "base/file.h"
#include "base/memory.h"
#include "crdt/doc.h"
#include "crdt/trace.h"

namespace {
double Ms(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}
uint64_t HeapBytes() {
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s TRACE.json[.gz] [--client ID] [--runs N] [--out DOC.yjs]\n", argv[0]);
    return 2;
  }
  std::string path = argv[1], out;
  uint32_t client = 1;
  int runs = 5;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--client")) client = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    if (!std::strcmp(argv[i], "--runs")) runs = std::stoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--out")) out = argv[i + 1];
  }
  auto trace = pocket::crdt::LoadEditingTrace(path);
  if (!trace.ok()) {
    std::fprintf(stderr, "%s\n", trace.status().ToString().c_str());
    return 1;
  }
  using clock = std::chrono::steady_clock;
  double best_replay = 1e30, best_encode = 1e30, best_load = 1e30;
  size_t size = 0;
  uint64_t doc_heap = 0, load_heap = 0;
  bool text_ok = true;
  for (int r = 0; r < runs; ++r) {
    const uint64_t heap0 = HeapBytes();
    auto t0 = clock::now();
    auto doc = std::make_unique<pocket::crdt::Doc>(client);
    pocket::Status st = pocket::crdt::ReplayTrace(*trace, *doc);
    auto t1 = clock::now();
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.ToString().c_str());
      return 1;
    }
    const uint64_t heap1 = HeapBytes();
    auto t2 = clock::now();
    auto bytes = doc->EncodeStateAsUpdate();
    auto t3 = clock::now();
    const uint64_t heap2 = HeapBytes();
    auto doc2 = std::make_unique<pocket::crdt::Doc>(client + 1);
    st = doc2->ApplyUpdate(*bytes);
    auto t4 = clock::now();
    const uint64_t heap3 = HeapBytes();
    if (!st.ok()) {
      std::fprintf(stderr, "load: %s\n", st.ToString().c_str());
      return 1;
    }
    text_ok = text_ok && doc->GetText("content").ToString() == trace->end_content &&
              doc2->GetText("content").ToString() == trace->end_content;
    best_replay = std::min(best_replay, Ms(t0, t1));
    best_encode = std::min(best_encode, Ms(t2, t3));
    best_load = std::min(best_load, Ms(t3, t4));
    size = bytes->size();
    doc_heap = heap1 - heap0;
    load_heap = heap3 - heap2;
    if (r == 0 && !out.empty()) {
      pocket::Status w = pocket::WriteFileAtomic(
          out, std::string_view(reinterpret_cast<const char*>(bytes->data()), bytes->size()));
      if (!w.ok()) return 1;
    }
  }
  std::printf(
      "{\"impl\":\"pocket\",\"patches\":%zu,\"replay_ms\":%.3f,\"ns_per_patch\":%.1f,"
      "\"encode_ms\":%.3f,\"load_ms\":%.3f,\"v1_bytes\":%zu,\"doc_heap_bytes\":%llu,"
      "\"loaded_heap_bytes\":%llu,\"peak_rss_bytes\":%llu,\"text_ok\":%s}\n",
      trace->num_patches, best_replay, best_replay * 1e6 / trace->num_patches, best_encode,
      best_load, size, static_cast<unsigned long long>(doc_heap),
      static_cast<unsigned long long>(load_heap),
      static_cast<unsigned long long>(pocket::PeakRssBytes()), text_ok ? "true" : "false");
  return text_ok ? 0 : 1;
}
