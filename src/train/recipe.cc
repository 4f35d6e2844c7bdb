// The recipe parser (toml++, as router/policy.cc uses it) and the canonical form. Every key is read
// by one typed reader that knows its range, so the messages are uniform; the keys a section accepts
// are listed once, next to its reader, and anything else is an unknown key. Cross-key checks come
// after all sections are read.
#include "train/recipe.h"

#include <toml++/toml.h>

#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <initializer_list>
#include <sstream>

#include "base/file.h"
#include "base/sha256.h"
#include "tokenizer/pre_tokenizer.h"

namespace pocket::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kCheckpointTypes[] = {"f32", "f16", "q8_0", "q4_0", "q4_k", "q6_k"};

// Shortest text that reads back as the same double ("0.001", "1e-05", "10000").
std::string FormatDouble(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v, std::chars_format::general);
  return std::string(buf, r.ptr);
}

// TOML basic string: quotes, backslashes and control characters escaped.
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

// A path as written, lexically normalised ("./a//b" -> "a/b"), so spelling does not change the
// hash; and the same path resolved against `dir` when relative.
std::string NormalPath(const std::string& p) {
  std::string n = fs::path(p).lexically_normal().string();
  while (n.size() > 1 && n.back() == '/') n.pop_back();  // "notes/" is "notes"
  return n.empty() ? p : n;
}
std::string Resolve(const fs::path& dir, const std::string& p) {
  const fs::path path(p);
  if (path.is_absolute() || dir.empty()) return path.lexically_normal().string();
  return (dir / path).lexically_normal().string();
}

struct Range {
  double lo, hi;
  bool lo_open = false, hi_open = false;
  bool Contains(double v) const {
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
  }
  std::string ToString() const {
    return std::string(lo_open ? "(" : "[") + FormatDouble(lo) + ", " + FormatDouble(hi) +
           (hi_open ? ")" : "]");
  }
};

// One [section] of the recipe: typed readers that name the full key in every error.
class Section {
 public:
  Section(const toml::table* table, std::string name, const std::string* path)
      : table_(table), name_(std::move(name)), path_(path) {}

  Status Error(std::string_view key, const std::string& what) const {
    return Status::InvalidArgument("recipe " + *path_ + ": " + Key(key) + ": " + what);
  }
  std::string Key(std::string_view key) const { return name_ + "." + std::string(key); }

  Status CheckKeys(std::initializer_list<std::string_view> allowed) const {
    if (!table_) return Status::Ok();
    for (const auto& [k, v] : *table_) {
      bool ok = false;
      for (std::string_view a : allowed) ok = ok || k.str() == a;
      if (!ok) return Error(k.str(), "unknown key");
    }
    return Status::Ok();
  }

  Status Int(std::string_view key, int64_t lo, int64_t hi, int64_t* out) const {
    const toml::node* n = Get(key);
    if (!n) return Status::Ok();
    const auto* i = n->as_integer();
    if (!i) return Error(key, "expected an integer");
    const int64_t v = i->get();
    if (v < lo || v > hi) {
      return Error(key, std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "]");
    }
    *out = v;
    return Status::Ok();
  }

  // Integers are accepted where a float is expected (lr = 1).
  Status Float(std::string_view key, Range range, double* out) const {
    const toml::node* n = Get(key);
    if (!n) return Status::Ok();
    double v;
    if (const auto* i = n->as_integer()) {
      v = static_cast<double>(i->get());
    } else if (const auto* f = n->as_floating_point()) {
      v = f->get();
    } else {
      return Error(key, "expected a number");
    }
    if (!std::isfinite(v) || !range.Contains(v)) {
      return Error(key, FormatDouble(v) + " is out of range " + range.ToString());
    }
    *out = v;
    return Status::Ok();
  }

  Status Bool(std::string_view key, bool* out) const {
    const toml::node* n = Get(key);
    if (!n) return Status::Ok();
    const auto* b = n->as_boolean();
    if (!b) return Error(key, "expected true or false");
    *out = b->get();
    return Status::Ok();
  }

  // `choices` empty: any string.
  Status String(std::string_view key, std::initializer_list<std::string_view> choices,
                std::string* out) const {
    const toml::node* n = Get(key);
    if (!n) return Status::Ok();
    const auto* s = n->as_string();
    if (!s) return Error(key, "expected a string");
    if (choices.size() > 0) {
      std::string list;
      bool ok = false;
      for (std::string_view c : choices) {
        ok = ok || s->get() == c;
        list += (list.empty() ? "" : ", ") + std::string(c);
      }
      if (!ok) return Error(key, "'" + s->get() + "' is not one of " + list);
    }
    *out = s->get();
    return Status::Ok();
  }

  // An array of strings; a single string is read as an array of one.
  Status Strings(std::string_view key, std::vector<std::string>* out) const {
    const toml::node* n = Get(key);
    if (!n) return Status::Ok();
    if (const auto* s = n->as_string()) {
      *out = {s->get()};
      return Status::Ok();
    }
    const auto* a = n->as_array();
    if (!a) return Error(key, "expected an array of strings");
    std::vector<std::string> v;
    for (size_t i = 0; i < a->size(); ++i) {
      const auto* s = a->get(i)->as_string();
      if (!s) return Error(key, "element " + std::to_string(i) + ": expected a string");
      v.push_back(s->get());
    }
    *out = std::move(v);
    return Status::Ok();
  }

  bool Has(std::string_view key) const { return Get(key) != nullptr; }

 private:
  const toml::node* Get(std::string_view key) const { return table_ ? table_->get(key) : nullptr; }
  const toml::table* table_;
  std::string name_;
  const std::string* path_;
};

constexpr int64_t kMaxInt = int64_t{1} << 62;

Status ReadModel(const Section& s, ModelRecipe* m) {
  PK_RETURN_IF_ERROR(
      s.CheckKeys({"arch", "vocab_size", "d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff",
                   "context", "rope_theta", "norm_eps", "tied_embeddings", "init_std"}));
  PK_RETURN_IF_ERROR(s.String("arch", {"llama", "qwen2"}, &m->arch));
  PK_RETURN_IF_ERROR(s.Int("vocab_size", 257, int64_t{1} << 31, &m->vocab_size));
  PK_RETURN_IF_ERROR(s.Int("d_model", 8, 65536, &m->d_model));
  PK_RETURN_IF_ERROR(s.Int("n_layers", 1, 1024, &m->n_layers));
  PK_RETURN_IF_ERROR(s.Int("n_heads", 1, 1024, &m->n_heads));
  PK_RETURN_IF_ERROR(s.Int("n_kv_heads", 1, 1024, &m->n_kv_heads));
  PK_RETURN_IF_ERROR(s.Int("d_ff", 1, 1 << 20, &m->d_ff));
  PK_RETURN_IF_ERROR(s.Int("context", 2, 1 << 20, &m->context));
  PK_RETURN_IF_ERROR(s.Float("rope_theta", {0, 1e12, true, false}, &m->rope_theta));
  PK_RETURN_IF_ERROR(s.Float("norm_eps", {0, 1, true, true}, &m->norm_eps));
  PK_RETURN_IF_ERROR(s.Bool("tied_embeddings", &m->tied_embeddings));
  PK_RETURN_IF_ERROR(s.Float("init_std", {0, 10, true, false}, &m->init_std));
  if (m->n_kv_heads == 0) m->n_kv_heads = m->n_heads;
  if (m->d_model % m->n_heads != 0) {
    return s.Error("n_heads", std::to_string(m->n_heads) +
                                  " does not divide model.d_model = " + std::to_string(m->d_model));
  }
  if ((m->d_model / m->n_heads) % 2 != 0) {
    return s.Error("n_heads", "head_dim = model.d_model / model.n_heads = " +
                                  std::to_string(m->d_model / m->n_heads) +
                                  " must be even (RoPE rotates pairs)");
  }
  if (m->n_heads % m->n_kv_heads != 0) {
    return s.Error("n_kv_heads",
                   std::to_string(m->n_kv_heads) +
                       " does not divide model.n_heads = " + std::to_string(m->n_heads));
  }
  return Status::Ok();
}

Status ReadTokenizer(const Section& s, const fs::path& dir, TokenizerRecipe* t) {
  PK_RETURN_IF_ERROR(s.CheckKeys({"kind", "from", "pre", "min_frequency", "special_tokens",
                                  "bos_token", "eos_token", "eot_token", "pad_token"}));
  PK_RETURN_IF_ERROR(s.String("kind", {"bpe", "gguf"}, &t->kind));
  PK_RETURN_IF_ERROR(s.String("from", {}, &t->from));
  if (t->kind == "gguf") {
    // The vocabulary, its specials and pre-tokenizer all come from the file.
    for (const char* k : {"pre", "min_frequency", "special_tokens", "bos_token", "eos_token",
                          "eot_token", "pad_token"}) {
      if (s.Has(k)) return s.Error(k, "only with tokenizer.kind = \"bpe\"");
    }
    if (t->from.empty()) return s.Error("from", "required with tokenizer.kind = \"gguf\"");
    t->from = NormalPath(t->from);
    t->from_resolved = Resolve(dir, t->from);
    t->special_tokens.clear();
    t->eos_token.clear();
    return Status::Ok();
  }
  if (s.Has("from")) return s.Error("from", "only with tokenizer.kind = \"gguf\"");
  std::string pre_choices;
  const std::vector<std::string> pres = tokenizer::PreTokenizerNames();
  PK_RETURN_IF_ERROR(s.String("pre", {}, &t->pre));
  bool known = false;
  for (const std::string& p : pres) {
    known = known || p == t->pre;
    pre_choices += (pre_choices.empty() ? "" : ", ") + p;
  }
  if (!known) return s.Error("pre", "'" + t->pre + "' is not one of " + pre_choices);
  PK_RETURN_IF_ERROR(s.Int("min_frequency", 1, kMaxInt, &t->min_frequency));
  PK_RETURN_IF_ERROR(s.Strings("special_tokens", &t->special_tokens));
  if (t->special_tokens.empty()) return s.Error("special_tokens", "must not be empty");
  for (size_t i = 0; i < t->special_tokens.size(); ++i) {
    if (t->special_tokens[i].empty()) {
      return s.Error("special_tokens", "element " + std::to_string(i) + " is empty");
    }
    for (size_t j = 0; j < i; ++j) {
      if (t->special_tokens[i] == t->special_tokens[j]) {
        return s.Error("special_tokens", "'" + t->special_tokens[i] + "' appears twice");
      }
    }
  }
  for (auto [key, out] : {std::pair<const char*, std::string*>{"bos_token", &t->bos_token},
                          {"eos_token", &t->eos_token},
                          {"eot_token", &t->eot_token},
                          {"pad_token", &t->pad_token}}) {
    PK_RETURN_IF_ERROR(s.String(key, {}, out));
    if (out->empty()) continue;
    bool found = false;
    for (const std::string& sp : t->special_tokens) found = found || sp == *out;
    if (!found) return s.Error(key, "'" + *out + "' is not one of tokenizer.special_tokens");
  }
  return Status::Ok();
}

Status ReadData(const Section& s, const fs::path& dir, DataRecipe* d) {
  PK_RETURN_IF_ERROR(
      s.CheckKeys({"paths", "validation_fraction", "seq_len", "max_document_bytes"}));
  PK_RETURN_IF_ERROR(s.Strings("paths", &d->paths));
  if (d->paths.empty()) return s.Error("paths", "required: the text files or folders to train on");
  for (size_t i = 0; i < d->paths.size(); ++i) {
    if (d->paths[i].empty()) return s.Error("paths", "element " + std::to_string(i) + " is empty");
    d->paths[i] = NormalPath(d->paths[i]);
    d->resolved_paths.push_back(Resolve(dir, d->paths[i]));
  }
  PK_RETURN_IF_ERROR(s.Float("validation_fraction", {0, 1, false, true}, &d->validation_fraction));
  PK_RETURN_IF_ERROR(s.Int("seq_len", 1, 1 << 20, &d->seq_len));
  PK_RETURN_IF_ERROR(s.Int("max_document_bytes", 0, kMaxInt, &d->max_document_bytes));
  return Status::Ok();
}

Status ReadTraining(const Section& s, TrainingRecipe* t) {
  PK_RETURN_IF_ERROR(
      s.CheckKeys({"steps", "batch_size", "grad_accum", "lr", "min_lr", "warmup_steps",
                   "weight_decay", "beta1", "beta2", "eps", "clip_norm", "seed", "threads"}));
  PK_RETURN_IF_ERROR(s.Int("steps", 1, int64_t{1} << 40, &t->steps));
  PK_RETURN_IF_ERROR(s.Int("batch_size", 1, 1 << 20, &t->batch_size));
  PK_RETURN_IF_ERROR(s.Int("grad_accum", 1, 1 << 20, &t->grad_accum));
  PK_RETURN_IF_ERROR(s.Float("lr", {0, 1, true, false}, &t->lr));
  PK_RETURN_IF_ERROR(s.Float("min_lr", {0, 1, false, false}, &t->min_lr));
  PK_RETURN_IF_ERROR(s.Int("warmup_steps", 0, int64_t{1} << 40, &t->warmup_steps));
  PK_RETURN_IF_ERROR(s.Float("weight_decay", {0, 10, false, false}, &t->weight_decay));
  PK_RETURN_IF_ERROR(s.Float("beta1", {0, 1, false, true}, &t->beta1));
  PK_RETURN_IF_ERROR(s.Float("beta2", {0, 1, false, true}, &t->beta2));
  PK_RETURN_IF_ERROR(s.Float("eps", {0, 1, true, false}, &t->eps));
  PK_RETURN_IF_ERROR(s.Float("clip_norm", {0, 1e9, false, false}, &t->clip_norm));
  int64_t seed = static_cast<int64_t>(t->seed);
  PK_RETURN_IF_ERROR(s.Int("seed", 0, INT64_MAX, &seed));
  t->seed = static_cast<uint64_t>(seed);
  PK_RETURN_IF_ERROR(s.Int("threads", 0, 1024, &t->threads));
  if (t->min_lr > t->lr) {
    return s.Error("min_lr",
                   FormatDouble(t->min_lr) + " is above training.lr = " + FormatDouble(t->lr));
  }
  if (t->warmup_steps > t->steps) {
    return s.Error("warmup_steps", std::to_string(t->warmup_steps) +
                                       " is above training.steps = " + std::to_string(t->steps));
  }
  return Status::Ok();
}

Status ReadCheckpoint(const Section& s, const fs::path& dir, const std::string& recipe_path,
                      CheckpointRecipe* c) {
  PK_RETURN_IF_ERROR(s.CheckKeys({"interval", "output", "quantize"}));
  PK_RETURN_IF_ERROR(s.Int("interval", 0, int64_t{1} << 40, &c->interval));
  PK_RETURN_IF_ERROR(s.String("output", {}, &c->output));
  if (s.Has("output") && c->output.empty()) return s.Error("output", "must not be empty");
  if (c->output.empty()) c->output = fs::path(recipe_path).stem().string() + ".gguf";
  c->output = NormalPath(c->output);
  c->output_resolved = Resolve(dir, c->output);
  // The same list as kCheckpointTypes.
  PK_RETURN_IF_ERROR(
      s.String("quantize", {"f32", "f16", "q8_0", "q4_0", "q4_k", "q6_k"}, &c->quantize));
  return Status::Ok();
}

Status ReadRepro(const Section& s, std::string* sha256) {
  PK_RETURN_IF_ERROR(s.CheckKeys({"sha256"}));
  PK_RETURN_IF_ERROR(s.String("sha256", {}, sha256));
  if (sha256->empty()) return Status::Ok();
  bool hex = sha256->size() == 64;
  for (char c : *sha256) hex = hex && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
  if (!hex) return s.Error("sha256", "expected 64 lower-case hex digits");
  return Status::Ok();
}

}  // namespace

std::string CheckpointTypeNames() {
  std::string out;
  for (const char* t : kCheckpointTypes) out += (out.empty() ? "" : ", ") + std::string(t);
  return out;
}

Result<Recipe> ParseRecipe(std::string_view toml_text, const std::string& path) {
  toml::table root;
  try {
    root = toml::parse(toml_text, path);
  } catch (const toml::parse_error& e) {
    std::ostringstream msg;
    msg << "recipe " << path << ":" << e.source().begin.line << ":" << e.source().begin.column
        << ": " << e.description();
    return Status::InvalidArgument(msg.str());
  } catch (const std::exception& e) {
    return Status::InvalidArgument("recipe " + path + ": " + e.what());
  }
  Recipe r;
  r.path = path;
  const fs::path dir = fs::path(path).parent_path();
  static constexpr std::string_view kSections[] = {"model",    "tokenizer",  "data",
                                                   "training", "checkpoint", "repro"};
  for (const auto& [k, v] : root) {
    bool known = false;
    for (std::string_view s : kSections) known = known || k.str() == s;
    if (!known)
      return Status::InvalidArgument("recipe " + path + ": " + std::string(k.str()) +
                                     ": unknown key");
    if (!v.is_table()) {
      return Status::InvalidArgument("recipe " + path + ": " + std::string(k.str()) +
                                     ": expected a table ([" + std::string(k.str()) + "])");
    }
  }
  auto section = [&](std::string_view name) {
    return Section(root.get_as<toml::table>(name), std::string(name), &r.path);
  };
  PK_RETURN_IF_ERROR(ReadModel(section("model"), &r.model));
  PK_RETURN_IF_ERROR(ReadTokenizer(section("tokenizer"), dir, &r.tokenizer));
  PK_RETURN_IF_ERROR(ReadData(section("data"), dir, &r.data));
  PK_RETURN_IF_ERROR(ReadTraining(section("training"), &r.training));
  PK_RETURN_IF_ERROR(ReadCheckpoint(section("checkpoint"), dir, path, &r.checkpoint));
  PK_RETURN_IF_ERROR(ReadRepro(section("repro"), &r.recorded_sha256));

  // Checks across sections.
  const Section model = section("model"), data = section("data");
  if (r.tokenizer.kind == "bpe") {
    // BpeTrainOptions' floor: the special tokens and the 256 byte tokens, plus one merge.
    const int64_t floor = 256 + static_cast<int64_t>(r.tokenizer.special_tokens.size()) + 1;
    if (r.model.vocab_size < floor) {
      return model.Error("vocab_size", std::to_string(r.model.vocab_size) +
                                           " is below 256 byte tokens + " +
                                           std::to_string(r.tokenizer.special_tokens.size()) +
                                           " special tokens + 1 merge = " + std::to_string(floor));
    }
  }
  if (r.data.seq_len > r.model.context) {
    return data.Error("seq_len", std::to_string(r.data.seq_len) + " is above model.context = " +
                                     std::to_string(r.model.context));
  }
  return r;
}

Result<Recipe> LoadRecipe(const std::string& path) {
  auto text = ReadFile(path);
  if (!text.ok()) return text.status().WithContext("recipe " + path);
  return ParseRecipe(*text, path);
}

std::string CanonicalRecipe(const Recipe& r) {
  std::string out = "# pocket recipe, canonical form v1\n";
  auto kv = [&out](std::string_view key, const std::string& value) {
    out += std::string(key) + " = " + value + "\n";
  };
  auto i = [](int64_t v) { return std::to_string(v); };
  auto b = [](bool v) { return std::string(v ? "true" : "false"); };
  auto strings = [](const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t j = 0; j < v.size(); ++j) s += (j ? ", " : "") + Quote(v[j]);
    return s + "]";
  };
  // Floats always carry a '.', an exponent or both, so they read back as TOML floats.
  auto f = [](double v) {
    std::string s = FormatDouble(v);
    if (s.find_first_of(".e") == std::string::npos) s += ".0";
    return s;
  };
  const ModelRecipe& m = r.model;
  out += "[model]\n";
  kv("arch", Quote(m.arch));
  kv("vocab_size", i(m.vocab_size));
  kv("d_model", i(m.d_model));
  kv("n_layers", i(m.n_layers));
  kv("n_heads", i(m.n_heads));
  kv("n_kv_heads", i(m.n_kv_heads));
  kv("d_ff", i(m.d_ff));
  kv("context", i(m.context));
  kv("rope_theta", f(m.rope_theta));
  kv("norm_eps", f(m.norm_eps));
  kv("tied_embeddings", b(m.tied_embeddings));
  kv("init_std", f(m.init_std));
  const TokenizerRecipe& t = r.tokenizer;
  out += "[tokenizer]\n";
  kv("kind", Quote(t.kind));
  if (t.kind == "gguf") {
    kv("from", Quote(t.from));
  } else {
    kv("pre", Quote(t.pre));
    kv("min_frequency", i(t.min_frequency));
    kv("special_tokens", strings(t.special_tokens));
    kv("bos_token", Quote(t.bos_token));
    kv("eos_token", Quote(t.eos_token));
    kv("eot_token", Quote(t.eot_token));
    kv("pad_token", Quote(t.pad_token));
  }
  const DataRecipe& d = r.data;
  out += "[data]\n";
  kv("paths", strings(d.paths));
  kv("validation_fraction", f(d.validation_fraction));
  kv("seq_len", i(d.seq_len));
  kv("max_document_bytes", i(d.max_document_bytes));
  const TrainingRecipe& tr = r.training;
  out += "[training]\n";
  kv("steps", i(tr.steps));
  kv("batch_size", i(tr.batch_size));
  kv("grad_accum", i(tr.grad_accum));
  kv("lr", f(tr.lr));
  kv("min_lr", f(tr.min_lr));
  kv("warmup_steps", i(tr.warmup_steps));
  kv("weight_decay", f(tr.weight_decay));
  kv("beta1", f(tr.beta1));
  kv("beta2", f(tr.beta2));
  kv("eps", f(tr.eps));
  kv("clip_norm", f(tr.clip_norm));
  kv("seed", std::to_string(tr.seed));
  out += "[checkpoint]\n";
  kv("quantize", Quote(r.checkpoint.quantize));
  return out;
}

std::string RecipeSha256(const Recipe& recipe) { return Sha256Hex(CanonicalRecipe(recipe)); }

}  // namespace pocket::train
