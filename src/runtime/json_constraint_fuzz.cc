// libFuzzer: arbitrary bytes through runtime::JsonRecognizer (it judges untrusted model
// output byte by byte). It must never crash; feeding bytes one at a time and all at once
// must agree; a refused byte stays refused; and whatever it calls a complete object,
// nlohmann::json parses as an object (the reference the unit tests also compare with).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "base/check.h"
#include "runtime/json_constraint.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  pocket::runtime::JsonRecognizer one_by_one;
  size_t accepted = 0;
  while (accepted < size && one_by_one.Push(data[accepted])) ++accepted;
  PK_CHECK(accepted == size || one_by_one.dead());
  if (accepted < size) PK_CHECK(!one_by_one.Push(uint8_t{'}'}));  // dead stays dead

  pocket::runtime::JsonRecognizer whole;
  const bool ok = whole.Push(bytes);
  PK_CHECK(ok == (accepted == size));
  PK_CHECK(whole.complete() == one_by_one.complete());

  if (ok && whole.complete()) {
    const nlohmann::json j = nlohmann::json::parse(bytes, nullptr, /*allow_exceptions=*/false);
    PK_CHECK(!j.is_discarded() && j.is_object());
  }
  return 0;
}
