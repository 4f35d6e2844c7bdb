#include "tokenizer/tokenizer_testutil.h"

#include <nlohmann/json.hpp>

#include "base/file.h"

namespace pocket::tokenizer::testing {

std::string TestdataPath(const std::string& name) {
  return std::string(POCKET_SOURCE_DIR) + "/testdata/tokenizer/" + name;
}

Result<Golden> LoadGolden(const std::string& name) {
  PK_ASSIGN_OR_RETURN(std::string text, ReadFile(TestdataPath(name + ".json")));
  Golden g;
  try {
    const auto j = nlohmann::json::parse(text);
    PK_ASSIGN_OR_RETURN(g.vocab, VocabFromJson(text));
    for (const auto& c : j.at("cases")) {
      GoldenCase gc;
      gc.text = c.at("text").get<std::string>();
      gc.ids = c.at("ids").get<std::vector<int32_t>>();
      gc.ids_add_special = c.at("ids_add_special").get<std::vector<int32_t>>();
      if (c.contains("ids_no_parse_special")) {
        gc.has_no_parse_special = true;
        gc.ids_no_parse_special = c.at("ids_no_parse_special").get<std::vector<int32_t>>();
      }
      gc.decoded = c.at("decoded").get<std::string>();
      g.cases.push_back(std::move(gc));
    }
  } catch (const std::exception& e) {
    return Status::Corruption("golden " + name + ": " + e.what());
  }
  return g;
}

}  // namespace pocket::tokenizer::testing
