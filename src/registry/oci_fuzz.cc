// libFuzzer target over the OCI manifest and index parsers (the store's index.json and
// manifest blobs; later, a registry's replies). The input is tried as both. Whatever parses
// must serialize and parse back to the same value (the store rewrites index.json it read),
// and never abort. An index's children also go through VariantsOf (the io.pocket.shape
// annotation's parser) and the chooser, and the input is tried as a shape annotation
// itself: a parsed shape must serialize back to the same value.
// Seeds: testdata/fuzz/oci_fuzz/.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "registry/oci.h"
#include "registry/variant.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (auto m = pocket::registry::ParseManifest(bytes, "fuzz"); m.ok()) {
    (void)m->ModelLayer();
    auto again = pocket::registry::ParseManifest(pocket::registry::SerializeManifest(*m), "again");
    if (!again.ok() || !(*again == *m)) std::abort();
  }
  if (auto index = pocket::registry::ParseIndex(bytes, "fuzz"); index.ok()) {
    auto again = pocket::registry::ParseIndex(pocket::registry::SerializeIndex(*index), "again");
    if (!again.ok() || !(*again == *index)) std::abort();
    const auto variants = pocket::registry::VariantsOf(*index);
    if (!variants.empty()) {
      pocket::registry::VariantRequest request;
      request.facts.memory_bytes = uint64_t{1} << 30;
      request.facts.isa = "avx2";
      auto choice = pocket::registry::ChooseVariant(variants, request, "fuzz");
      if (choice.ok() && choice->index >= variants.size()) std::abort();
    }
  }
  if (auto shape = pocket::registry::ParseShape(bytes); shape.ok()) {
    auto again = pocket::registry::ParseShape(pocket::registry::SerializeShape(*shape));
    if (!again.ok() || !(*again == *shape)) std::abort();
  }
  return 0;
}
