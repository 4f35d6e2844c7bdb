// libFuzzer target over the Yjs v1 update decoder and integration. Invariants: no crash,
// hang or leak; a rejected update leaves the doc byte-for-byte unchanged; an accepted one
// re-encodes to an update a fresh doc accepts; the Doc-less functions accept exactly what
// the decoder accepts. What the doc ends up holding is checked against real Yjs by
// tests/crdt/fuzz_diff.mjs over the corpus. Seeds: testdata/fuzz/update_fuzz.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/check.h"
#include "base/log.h"
#include "crdt/doc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using pocket::crdt::Doc;
  pocket::SetLogLevel(pocket::LogLevel::kError);  // the client-id warning, once per input
  std::span<const uint8_t> input(data, size);
  // A doc with some state of its own, so references into existing items are exercised.
  Doc doc(7);
  auto text = doc.GetText("content");
  doc.Transact([&](pocket::crdt::Transaction& t) { text.Insert(t, 0, "seed text \xF0\x9F\x98\x80"); });
  doc.Transact([&](pocket::crdt::Transaction& t) { text.Delete(t, 2, 3); });
  const auto before = doc.EncodeStateAsUpdate();
  PK_CHECK(before.ok());
  const pocket::Status st = doc.ApplyUpdate(input);
  const auto after = doc.EncodeStateAsUpdate();
  PK_CHECK(after.ok());
  if (!st.ok()) {
    PK_CHECK(*after == *before);
  } else {
    // What the doc now holds must load into a fresh doc. (It need not load to the same
    // text: an input can describe a history no peer could make, and then Yjs's result
    // depends on integration order too; tests/crdt/fuzz_diff.mjs checks this target's
    // corpus against real Yjs instead.)
    Doc copy(8);
    PK_CHECK(copy.ApplyUpdate(*after).ok());
    // Halves in reverse order must not crash either.
    Doc halves(9);
    const size_t mid = size / 2;
    (void)halves.ApplyUpdate(input.subspan(mid));
    (void)halves.ApplyUpdate(input.subspan(0, mid));
  }
  std::span<const uint8_t> both[2] = {input, *before};
  const auto merged = pocket::crdt::MergeUpdates(both);
  PK_CHECK(merged.ok() == st.ok());
  (void)pocket::crdt::EncodeStateVectorFromUpdate(input);
  (void)pocket::crdt::DiffUpdate(input, doc.EncodeStateVector());
  return 0;
}
