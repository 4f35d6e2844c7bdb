// Test helpers: loads the golden vocabularies in testdata/tokenizer/*.json (written by
// tests/golden/tokenizer/make_golden.py with Hugging Face tokenizers).
#pragma once

#include <string>
#include <vector>

#include "base/status.h"
#include "tokenizer/tokenizer.h"

namespace pocket::tokenizer::testing {

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;                   // add_special=false, specials parsed
  std::vector<int32_t> ids_add_special;       // add_special_tokens=True
  std::vector<int32_t> ids_no_parse_special;  // encode_special_tokens=True (may be empty)
  bool has_no_parse_special = false;
  std::string decoded;  // HF decode(ids, skip_special_tokens=False)
};

struct Golden {
  Vocab vocab;
  std::vector<GoldenCase> cases;
};

std::string TestdataPath(const std::string& name);
Result<Golden> LoadGolden(const std::string& name);

}  // namespace pocket::tokenizer::testing
