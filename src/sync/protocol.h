// y-protocols 1.0.7 messages as y-websocket 3.x frames them (one WebSocket binary message
// each, see ../shared notes and y-websocket src/y-websocket.js):
//   varUint(0 Sync)      varUint(0 Step1 | 1 Step2 | 2 Update) varUint8Array(data)
//   varUint(1 Awareness) varUint8Array(awareness update, see awareness.h)
//   varUint(2 Auth)      varUint(0 = permission denied) varString(reason)
//   varUint(3 QueryAwareness)
// Step1 data is a v1 state vector, Step2/Update data a v1 update; this layer treats both as
// opaque bytes (crdt/ interprets them). Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "sync/wire.h"

namespace pocket::sync {

enum class MessageType : uint8_t { kSync = 0, kAwareness = 1, kAuth = 2, kQueryAwareness = 3 };
enum class SyncType : uint8_t { kStep1 = 0, kStep2 = 1, kUpdate = 2 };

// A decoded message. `payload` points into the bytes given to DecodeMessage.
struct Message {
  MessageType type = MessageType::kSync;
  SyncType sync_type = SyncType::kStep1;  // kSync only
  ByteSpan payload;                       // kSync data, kAwareness update
  std::string auth_reason;                // kAuth only
};

// Corruption for an unknown message type, unknown sync type, truncation, or trailing bytes.
Result<Message> DecodeMessage(ByteSpan bytes);

Bytes EncodeSyncStep1(ByteSpan state_vector);
Bytes EncodeSyncStep2(ByteSpan update);
Bytes EncodeSyncUpdate(ByteSpan update);
Bytes EncodeAwarenessMessage(ByteSpan awareness_update);
Bytes EncodeQueryAwareness();
Bytes EncodePermissionDenied(std::string_view reason);

// The empty v1 update (no structs, empty delete set) and the empty state vector.
inline const Bytes& EmptyUpdate() {
  static const Bytes kEmpty = {0, 0};
  return kEmpty;
}
inline const Bytes& EmptyStateVector() {
  static const Bytes kEmpty = {0};
  return kEmpty;
}

}  // namespace pocket::sync
