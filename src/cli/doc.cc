// `pocket doc replay|text|merge|info`: Yjs-compatible documents on disk (v1 updates, the
// bytes of Y.encodeStateAsUpdate). Library: src/crdt (docs/crdt.md).
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "base/file.h"
#include "cli/command.h"
#include "cli/model_flags.h"
#include "crdt/doc.h"
#include "crdt/trace.h"

namespace pocket::cli {
namespace {

struct DocFlags {
  std::string trace, out, field = "content";
  std::vector<std::string> inputs;
  uint32_t client = 1;
  bool quiet = false;
};

Result<std::vector<uint8_t>> ReadBytes(const std::string& path) {
  PK_ASSIGN_OR_RETURN(std::string s, ReadFile(path));
  return std::vector<uint8_t>(s.begin(), s.end());
}

Status WriteBytes(const std::string& path, const std::vector<uint8_t>& b) {
  return WriteFileAtomic(path, std::string_view(reinterpret_cast<const char*>(b.data()), b.size()));
}

Result<crdt::Doc> LoadDoc(const std::string& path) {
  PK_ASSIGN_OR_RETURN(auto bytes, ReadBytes(path));
  crdt::Doc doc(0);
  Status st = doc.ApplyUpdate(bytes);
  if (!st.ok()) return st.WithContext(path);
  return doc;
}

int Replay(const DocFlags& f) {
  auto trace = crdt::LoadEditingTrace(f.trace);
  if (!trace.ok()) return Fail("doc replay", trace.status());
  crdt::Doc doc(f.client);
  const auto t0 = std::chrono::steady_clock::now();
  Status st = crdt::ReplayTrace(*trace, doc, f.field);
  const auto t1 = std::chrono::steady_clock::now();
  if (!st.ok()) return Fail("doc replay", st.WithContext(f.trace));
  const std::string text = doc.GetText(f.field).ToString();
  if (text != trace->end_content) {
    return Fail("doc replay", Status::Internal(f.trace + ": replayed text differs from endContent"));
  }
  auto bytes = doc.EncodeStateAsUpdate();
  if (!bytes.ok()) return Fail("doc replay", bytes.status());
  st = WriteBytes(f.out, *bytes);
  if (!st.ok()) return Fail("doc replay", st);
  if (!f.quiet) {
    const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
    std::printf("replayed %zu patches in %zu transactions in %.1f ms (%.0f ns/patch); end text "
                "matches (%zu bytes); wrote %s (%zu bytes, Yjs update v1)\n",
                trace->num_patches, trace->txns.size(), ms, ms * 1e6 / std::max<size_t>(1, trace->num_patches),
                text.size(), f.out.c_str(), bytes->size());
  }
  return 0;
}

int TextMain(const DocFlags& f) {
  auto doc = LoadDoc(f.inputs.at(0));
  if (!doc.ok()) return Fail("doc text", doc.status());
  const std::string text = doc->GetText(f.field).ToString();
  std::fwrite(text.data(), 1, text.size(), stdout);
  if (!text.empty() && text.back() != '\n') std::fputc('\n', stdout);
  return 0;
}

int MergeMain(const DocFlags& f) {
  std::vector<std::vector<uint8_t>> bufs;
  for (const auto& p : f.inputs) {
    auto b = ReadBytes(p);
    if (!b.ok()) return Fail("doc merge", b.status());
    bufs.push_back(std::move(*b));
  }
  std::vector<std::span<const uint8_t>> spans(bufs.begin(), bufs.end());
  auto merged = crdt::MergeUpdates(spans);
  if (!merged.ok()) return Fail("doc merge", merged.status());
  // Check that the merge integrates completely before writing it.
  crdt::Doc check(0);
  Status st = check.ApplyUpdate(*merged);
  if (!st.ok()) return Fail("doc merge", st);
  st = WriteBytes(f.out, *merged);
  if (!st.ok()) return Fail("doc merge", st);
  if (!f.quiet) {
    std::printf("merged %zu updates into %s (%zu bytes)%s\n", bufs.size(), f.out.c_str(),
                merged->size(), check.HasPending() ? "; some structs still wait for missing updates" : "");
  }
  return 0;
}

int InfoMain(const DocFlags& f) {
  auto bytes = ReadBytes(f.inputs.at(0));
  if (!bytes.ok()) return Fail("doc info", bytes.status());
  crdt::Doc doc(0);
  Status st = doc.ApplyUpdate(*bytes);
  if (!st.ok()) return Fail("doc info", st.WithContext(f.inputs[0]));
  const crdt::DocInfo info = doc.Info();
  std::printf("file: %s (%zu bytes, Yjs update v1)\n", f.inputs[0].c_str(), bytes->size());
  std::printf("root types:");
  for (const auto& name : info.root_types) {
    crdt::Text t = doc.GetText(name);
    std::printf(" %s (%zu UTF-16 units)", name.c_str(), t.Length());
  }
  std::printf("\nclients: %zu%s\n", info.clients.size(), info.has_pending ? " (pending structs: yes)" : "");
  std::printf("%12s %12s %10s %14s %14s\n", "client", "next_clock", "structs", "deleted_units",
              "deleted_ranges");
  for (const auto& c : info.clients) {
    std::printf("%12" PRIu32 " %12" PRIu32 " %10" PRIu64 " %14" PRIu64 " %14" PRIu64 "\n", c.client,
                c.next_clock, c.structs, c.deleted_units, c.deleted_ranges);
  }
  return 0;
}

CommandMain Configure(CLI::App& app) {
  auto f = std::make_shared<DocFlags>();
  app.description(
      "Yjs-compatible CRDT documents stored as Yjs v1 updates (what Y.encodeStateAsUpdate "
      "writes and Y.applyUpdate reads).");
  SetExamples(app, {"pocket doc replay testdata/crdt/small-trace.json --out /tmp/doc.yjs",
                    "pocket doc text /tmp/doc.yjs", "pocket doc info /tmp/doc.yjs"});
  app.require_subcommand(1);
  CLI::App* replay = app.add_subcommand(
      "replay", "apply an editing trace (editing-traces format, .json or .json.gz) as local edits");
  replay->add_option("trace", f->trace, "TRACE.json[.gz]")->required();
  replay->add_option("--out", f->out, "where to write the document (Yjs v1 update)")->required();
  replay->add_option("--client", f->client, "client id of the editor")->capture_default_str();
  replay->add_option("--field", f->field, "Y.Text name")->capture_default_str();
  replay->add_flag("-q,--quiet", f->quiet, "print nothing on success");
  CLI::App* text = app.add_subcommand("text", "print a Y.Text of a document");
  text->add_option("doc", f->inputs, "DOC.yjs")->required()->expected(1);
  text->add_option("--field", f->field, "Y.Text name")->capture_default_str();
  CLI::App* merge = app.add_subcommand("merge", "merge documents/updates into one (Yjs mergeUpdates)");
  merge->add_option("docs", f->inputs, "A.yjs B.yjs ...")->required()->expected(2, -1);
  merge->add_option("--out", f->out, "merged document")->required();
  merge->add_flag("-q,--quiet", f->quiet, "print nothing on success");
  CLI::App* info = app.add_subcommand("info", "clients, clocks, sizes and deleted ranges");
  info->add_option("doc", f->inputs, "DOC.yjs")->required()->expected(1);
  return [f, replay, text, merge, info] {
    if (replay->parsed()) return Replay(*f);
    if (text->parsed()) return TextMain(*f);
    if (merge->parsed()) return MergeMain(*f);
    if (info->parsed()) return InfoMain(*f);
    return 2;
  };
}

POCKET_COMMAND(doc, "doc", "Yjs-compatible documents: replay a trace, print, merge, inspect",
               Configure);

}  // namespace
}  // namespace pocket::cli
