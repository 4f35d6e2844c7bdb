// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as used by iSCSI, ext4 and LevelDB
// log records. Table-driven; a few hundred MB/s, far above the update rates it guards.
// Thread safety: pure function.
#pragma once

#include <cstdint>
#include <span>

namespace pocket::sync {

// `crc` continues a previous value (0 to start). Crc32c("123456789") == 0xE3069283.
uint32_t Crc32c(std::span<const uint8_t> bytes, uint32_t crc = 0);

}  // namespace pocket::sync
