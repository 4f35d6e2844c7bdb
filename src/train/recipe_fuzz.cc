// libFuzzer target over the recipe parser (a recipe is user input): any bytes must give a
// Recipe or an InvalidArgument, never a crash or an escaping exception; and a recipe that
// parses has a canonical form that parses back to the same canonical form (the property the
// recipe hash relies on). Seeds: recipes/*.toml.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "train/recipe.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto r = pocket::train::ParseRecipe(text, "/fuzz/recipe.toml");
  if (!r.ok()) return 0;
  const std::string canonical = pocket::train::CanonicalRecipe(*r);
  auto again = pocket::train::ParseRecipe(canonical, "/fuzz/recipe.toml");
  if (!again.ok() || pocket::train::CanonicalRecipe(*again) != canonical) std::abort();
  return 0;
}
