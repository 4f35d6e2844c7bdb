// Variants: one model name pointing at several builds of a model
// (quantizations, sizes) as one OCI image index, and the choice of the one that
// fits this machine (issue 16 §3, docs/registry.md "Variants").
//
// An index's child descriptors carry annotations (oci.h:
// io.pocket.quantization, .parameter_count, .weight_bytes, .min_memory_bytes,
// .shape, .requires.isa) so the chooser reads the index alone: `pocket pull` of
// an index downloads the chosen child only.
//
// The chooser is a pure function of the variants and a VariantRequest: the
// machine's facts (MachineFacts: memory that may be allocated, CPU ISA; GPU
// memory is a seam, always 0 until a GPU backend exists), a preference
// (quality: the largest variant that fits; speed: the smallest, since CPU
// decoding streams every weight byte per token) and an override (--variant: a
// quantization name or a child digest). Each variant's memory need comes from
// the caller (VariantRequest::memory_need): src/registry may not depend on
// runtime, so src/cli supplies runtime::EstimateMemory of the shape annotation
// at the requested context; without it, the annotation's min_memory_bytes is
// the need. A variant that does not fit (memory, ISA) or whose need is unknown
// is never chosen automatically; when none fits the error lists each one's need
// against what is available.
//
// Called by pull.cc (remote index), resolve.cc (a stored index for
// run/chat/serve/...) and src/cli (pocket index, pocket pull). Thread safety:
// pure functions and values, but ReadMachineFacts() reads the environment and
// /proc, /sys.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/platform.h"
#include "base/status.h"
#include "formats/gguf.h"
#include "registry/oci.h"

namespace pocket::registry {

// What runtime::EstimateMemory reads of a model (model::LlamaConfig's sizes).
// Every field in [1, 2^24].
struct ModelShape {
  int context_length = 0;
  int d_ff = 0;
  int d_model = 0;
  int head_dim = 0;
  int heads = 0;
  int kv_heads = 0;
  int layers = 0;
  int vocab = 0;
  bool operator==(const ModelShape&) const = default;
};

// "ctx=2048,d_ff=1536,d_model=512,head_dim=64,heads=8,kv_heads=2,layers=6,vocab=4096".
std::string SerializeShape(const ModelShape& shape);
// The inverse; takes untrusted bytes (an index from a registry).
// InvalidArgument naming the key for an unknown or repeated key, a missing one,
// or a value outside [1, 2^24].
Result<ModelShape> ParseShape(std::string_view text);
// From a GGUF header (<arch>.block_count, ... as model::LlamaConfig::FromGguf
// reads them; vocab: tokenizer.ggml.tokens' count, else <arch>.vocab_size).
// InvalidArgument naming the missing key.
Result<ModelShape> ShapeFromGguf(const formats::GgufFile& gguf);

// The machine, as the chooser sees it.
struct MachineFacts {
  uint64_t memory_bytes = 0;      // may be allocated now; 0: unknown (memory rules nothing out)
  std::string isa;                // "avx512", "avx2", "neon" or "generic"
  uint64_t gpu_memory_bytes = 0;  // seam for the GPU backend: 0 (none) until it exists
  std::string source;             // where the memory figure came from, for the choice line
};

// The facts of `platform` (available memory, capped by the cgroup v2 limit
// memory.max - memory.current of this process's cgroup when there is one; ISA
// from its CPU features and cap), unless `env` (the value of $POCKET_MACHINE,
// may be null) overrides them: "memory=2G,isa=avx2" (keys memory, isa,
// gpu_memory; sizes in bytes or with a K, M, G or T suffix, binary).
// InvalidArgument naming $POCKET_MACHINE when it is malformed.
Result<MachineFacts> MachineFactsFrom(const Platform& platform, const char* env);
// MachineFactsFrom(Platform::Default(), getenv("POCKET_MACHINE")).
Result<MachineFacts> ReadMachineFacts();
// The cgroup v2 headroom (memory.max - memory.current, 0 when over) of the cgroup that the
// file `proc_self_cgroup` ("0::/path", normally /proc/self/cgroup) names under
// `cgroup_root` (normally /sys/fs/cgroup); nullopt without cgroup v2 or without a limit
// ("max"). Exposed for tests.
std::optional<uint64_t> CgroupHeadroom(const std::string& proc_self_cgroup,
                                       const std::string& cgroup_root);

// "1.5 GiB", "12.0 MiB", "900 B".
std::string FormatBytes(uint64_t bytes);

// One child of an index, with what its annotations say (0 or empty when absent
// or malformed: an index written by another tool has none).
struct Variant {
  Descriptor descriptor;  // the child manifest's descriptor
  std::string quantization;
  uint64_t parameter_count = 0;
  uint64_t weight_bytes = 0;
  uint64_t min_memory_bytes = 0;
  std::optional<ModelShape> shape;
  std::string requires_isa;
  // A short name for messages: the quantization, else the digest's first 12 hex
  // digits.
  std::string Label() const;
};

std::vector<Variant> VariantsOf(const Index& index);

enum class Prefer { kQuality, kSpeed };
// "quality" | "speed"; InvalidArgument otherwise.
Result<Prefer> ParsePrefer(std::string_view text);

// The memory a variant needs at the requested context, in bytes; nullopt when
// it cannot be told.
using MemoryNeedFn = std::function<std::optional<uint64_t>(const Variant&)>;

struct VariantRequest {
  MachineFacts facts;
  Prefer prefer = Prefer::kQuality;
  // --variant: a quantization name (case-insensitive) or a child's digest; "" =
  // choose.
  std::string pick;
  // Empty: a variant's min_memory_bytes annotation (0 = unknown).
  MemoryNeedFn memory_need;
  // Only these children may be chosen (e.g. those in the local store); empty =
  // all.
  std::function<bool(const Variant&)> available;
};

struct VariantChoice {
  size_t index = 0;         // into the variants given
  uint64_t need_bytes = 0;  // 0 when unknown (an override of a variant without annotations)
  // One line: which variant, why, what the others needed, e.g. "variant Q4_0
  // (sha256:ab12…): needs 12.0 MiB of 1.0 GiB available (POCKET_MACHINE);
  // chosen for quality, the largest that fits; others: Q8_0 needs 2.0 GiB (does
  // not fit)".
  std::string line;
};

// Chooses among `variants` (see the file comment). With `pick`, the variant it
// names, fitting or not (the user asked; the line says when it may not fit);
// NotFound listing the variants when it names none, InvalidArgument when it
// names several. Otherwise the preferred one among those that fit;
// ResourceExhausted with each variant's need against what is available when
// none does. `what` names the index in messages ("tiny:v1"). REQUIRES:
// !variants.empty().
Result<VariantChoice> ChooseVariant(const std::vector<Variant>& variants,
                                    const VariantRequest& request, std::string_view what);

class Store;
struct ModelRef;

// The bytes of an OCI image index over the stored models `members` (each a
// NAME:TAG whose tag is a model manifest, not itself an index), its children
// annotated as above from each model's config and GGUF header, in the order
// given. InvalidArgument for an empty list, a member that is an index, or two
// members that are the same manifest; the store's errors for a missing or
// damaged member.
Result<std::string> MakeVariantIndex(const Store& store, const std::vector<ModelRef>& members);

}  // namespace pocket::registry
