// Backend names, the factory and DeviceBuffer; the implementations live in cpu/ and ref/.
#include "kernels/backend.h"

#include <string>

#include "base/platform.h"
#include "kernels/cpu/cpu_backend.h"
#include "kernels/ref/ref_backend.h"

namespace pocket::kernels {

std::string_view BackendName(BackendKind kind) {
  switch (kind) {
    case BackendKind::kCpu:
      return "cpu";
    case BackendKind::kReference:
      return "reference";
  }
  return "?";
}

Result<BackendKind> ParseBackendKind(std::string_view name) {
  for (BackendKind k : {BackendKind::kCpu, BackendKind::kReference}) {
    if (name == BackendName(k)) return k;
  }
  return Status::InvalidArgument("backend '" + std::string(name) + "' unknown (cpu or reference)");
}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& o) noexcept {
  if (this != &o) {
    Reset();
    backend_ = std::exchange(o.backend_, nullptr);
    buffer_ = std::exchange(o.buffer_, {});
  }
  return *this;
}

void DeviceBuffer::Reset() {
  if (backend_ != nullptr && buffer_.handle != nullptr) backend_->Free(buffer_);
  backend_ = nullptr;
  buffer_ = {};
}

Result<std::shared_ptr<Backend>> MakeBackend(BackendKind kind, int threads) {
  if (threads < 0 || threads > 1024) {
    return Status::InvalidArgument("backend: threads " + std::to_string(threads) +
                                   " outside [0, 1024]");
  }
  switch (kind) {
    case BackendKind::kCpu:
      // The Platform's ISA cap restricts the kernels (an emulated AVX2-only device); it
      // never widens them: the kernels probe the CPU themselves for what they may run.
      if (Platform::Default().isa_cap() == IsaCap::kAvx2) {
        PK_RETURN_IF_ERROR(LimitInstructionSet("avx2"));
      }
      return cpu::MakeCpuBackend(threads);
    case BackendKind::kReference:
      return ref::MakeRefBackend();
  }
  return Status::InvalidArgument("backend: unknown kind");
}

}  // namespace pocket::kernels
