#include "sync/protocol.h"

namespace pocket::sync {
namespace {

Bytes EncodeSync(SyncType type, ByteSpan data) {
  WireWriter w;
  w.VarUint(static_cast<uint64_t>(MessageType::kSync));
  w.VarUint(static_cast<uint64_t>(type));
  w.VarUint8Array(data);
  return w.Take();
}

}  // namespace

Result<Message> DecodeMessage(ByteSpan bytes) {
  WireReader r(bytes);
  Message m;
  PK_ASSIGN_OR_RETURN(uint64_t type, r.VarUint("message type"));
  switch (type) {
    case 0: {
      m.type = MessageType::kSync;
      PK_ASSIGN_OR_RETURN(uint64_t st, r.VarUint("sync message type"));
      if (st > 2) {
        return Status::Corruption("y-protocols: unknown sync message type " + std::to_string(st));
      }
      m.sync_type = static_cast<SyncType>(st);
      PK_ASSIGN_OR_RETURN(m.payload, r.VarUint8Array("sync message data"));
      break;
    }
    case 1: {
      m.type = MessageType::kAwareness;
      PK_ASSIGN_OR_RETURN(m.payload, r.VarUint8Array("awareness message"));
      break;
    }
    case 2: {
      m.type = MessageType::kAuth;
      PK_ASSIGN_OR_RETURN(uint64_t auth_type, r.VarUint("auth message type"));
      if (auth_type != 0) {
        return Status::Corruption("y-protocols: unknown auth message type " +
                                  std::to_string(auth_type));
      }
      PK_ASSIGN_OR_RETURN(m.auth_reason, r.VarString("auth reason"));
      break;
    }
    case 3:
      m.type = MessageType::kQueryAwareness;
      break;
    default:
      return Status::Corruption("y-protocols: unknown message type " + std::to_string(type));
  }
  if (!r.done()) {
    return Status::Corruption("y-protocols: " + std::to_string(r.remaining()) +
                              " trailing bytes after message type " + std::to_string(type));
  }
  return m;
}

Bytes EncodeSyncStep1(ByteSpan state_vector) { return EncodeSync(SyncType::kStep1, state_vector); }
Bytes EncodeSyncStep2(ByteSpan update) { return EncodeSync(SyncType::kStep2, update); }
Bytes EncodeSyncUpdate(ByteSpan update) { return EncodeSync(SyncType::kUpdate, update); }

Bytes EncodeAwarenessMessage(ByteSpan awareness_update) {
  WireWriter w;
  w.VarUint(static_cast<uint64_t>(MessageType::kAwareness));
  w.VarUint8Array(awareness_update);
  return w.Take();
}

Bytes EncodeQueryAwareness() { return {static_cast<uint8_t>(MessageType::kQueryAwareness)}; }

Bytes EncodePermissionDenied(std::string_view reason) {
  WireWriter w;
  w.VarUint(static_cast<uint64_t>(MessageType::kAuth));
  w.VarUint(0);
  w.VarString(reason);
  return w.Take();
}

}  // namespace pocket::sync
