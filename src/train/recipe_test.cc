#include "train/recipe.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "base/file.h"

namespace pocket::train {
namespace {

using ::testing::HasSubstr;

constexpr char kMinimal[] = R"([data]
paths = ["corpus.txt"]
)";

// Every key written out, in a scrambled order, with comments and mixed number spellings.
constexpr char kFull[] = R"(
# a recipe
[training]
seed = 42            # the seed
lr = 3e-3
min_lr = 0.0003
steps = 600
warmup_steps = 30
batch_size = 16
grad_accum = 2
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
eps = 1e-8
clip_norm = 1
threads = 2

[model]
vocab_size = 4096
d_model = 192
n_layers = 4
n_heads = 6
n_kv_heads = 2
d_ff = 512
context = 256
rope_theta = 10000
norm_eps = 1e-5
tied_embeddings = true
init_std = 0.02
arch = "llama"

[tokenizer]
kind = "bpe"
pre = "smollm"
min_frequency = 2
special_tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
bos_token = "<|im_start|>"
eos_token = "<|endoftext|>"

[data]
paths = ["./text//kjv.txt", "/abs/notes"]
validation_fraction = 0.05
seq_len = 128
max_document_bytes = 65536

[checkpoint]
interval = 50
output = "out/model.gguf"
quantize = "q4_k"

[repro]
sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)";

// The same recipe as kFull, written differently: other order, other spacing, inline tables, other
// number spellings; threads, interval, output and sha256 changed (not hashed).
constexpr char kFullReordered[] = R"(
repro = { sha256 = "" }
checkpoint = { quantize = "q4_k", interval = 7, output = "elsewhere.gguf" }
[data]
max_document_bytes = 65_536
seq_len = 128
validation_fraction = 5e-2
paths = ["text/kjv.txt", "/abs/notes/"]
[model]
arch="llama"
init_std=2e-2
tied_embeddings=true
norm_eps=0.00001
rope_theta=1e4
context=256
d_ff=512
n_kv_heads=2
n_heads=6
n_layers=4
d_model=192
vocab_size=4096
[tokenizer]
eos_token = "<|endoftext|>"
bos_token = "<|im_start|>"
special_tokens = [
  "<|endoftext|>",
  "<|im_start|>",
  "<|im_end|>",
]
min_frequency = 2
pre = "smollm"
kind = "bpe"
[training]
threads = 1
clip_norm = 1.0
eps = 0.00000001
beta2 = 0.95
beta1 = 0.9
weight_decay = 0.1
grad_accum = 2
batch_size = 16
warmup_steps = 30
steps = 600
min_lr = 3e-4
lr = 0.003
seed = 42
)";

Status ParseError(const std::string& text) {
  auto r = ParseRecipe(text, "/r/recipe.toml");
  return r.ok() ? Status::Ok() : r.status();
}

TEST(RecipeTest, MinimalRecipeTakesTheDocumentedDefaults) {
  auto r = ParseRecipe(kMinimal, "/r/recipe.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model.arch, "llama");
  EXPECT_EQ(r->model.vocab_size, 4096);
  EXPECT_EQ(r->model.n_kv_heads, r->model.n_heads);  // resolved
  EXPECT_EQ(r->tokenizer.kind, "bpe");
  EXPECT_EQ(r->tokenizer.special_tokens, std::vector<std::string>{"<|endoftext|>"});
  EXPECT_EQ(r->training.steps, 1000);
  EXPECT_EQ(r->training.lr, 1e-3);
  EXPECT_EQ(r->checkpoint.quantize, "q8_0");
  EXPECT_EQ(r->checkpoint.output, "recipe.gguf");
  EXPECT_EQ(r->checkpoint.output_resolved, "/r/recipe.gguf");
  EXPECT_TRUE(r->recorded_sha256.empty());
}

TEST(RecipeTest, ReadsEveryKey) {
  auto r = ParseRecipe(kFull, "/r/sub/recipe.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->model.d_model, 192);
  EXPECT_EQ(r->model.n_heads, 6);
  EXPECT_EQ(r->model.n_kv_heads, 2);
  EXPECT_EQ(r->model.d_ff, 512);
  EXPECT_EQ(r->model.rope_theta, 10000.0);
  EXPECT_EQ(r->model.norm_eps, 1e-5);
  EXPECT_EQ(r->tokenizer.special_tokens.size(), 3u);
  EXPECT_EQ(r->tokenizer.bos_token, "<|im_start|>");
  EXPECT_EQ(r->data.seq_len, 128);
  EXPECT_EQ(r->training.lr, 3e-3);
  EXPECT_EQ(r->training.min_lr, 3e-4);
  EXPECT_EQ(r->training.grad_accum, 2);
  EXPECT_EQ(r->training.clip_norm, 1.0);
  EXPECT_EQ(r->training.seed, 42u);
  EXPECT_EQ(r->training.threads, 2);
  EXPECT_EQ(r->checkpoint.interval, 50);
  EXPECT_EQ(r->checkpoint.quantize, "q4_k");
  EXPECT_EQ(r->recorded_sha256, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
}

TEST(RecipeTest, RelativePathsResolveAgainstTheRecipesFolder) {
  auto r = ParseRecipe(kFull, "/r/sub/recipe.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->data.paths, (std::vector<std::string>{"text/kjv.txt", "/abs/notes"}));
  EXPECT_EQ(r->data.resolved_paths,
            (std::vector<std::string>{"/r/sub/text/kjv.txt", "/abs/notes"}));
  EXPECT_EQ(r->checkpoint.output_resolved, "/r/sub/out/model.gguf");
  auto g =
      ParseRecipe("[tokenizer]\nkind = \"gguf\"\nfrom = \"../base.gguf\"\n" + std::string(kMinimal),
                  "recipes/x.toml");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ(g->tokenizer.from, "../base.gguf");
  EXPECT_EQ(g->tokenizer.from_resolved, "base.gguf");
  EXPECT_EQ(g->data.resolved_paths, std::vector<std::string>{"recipes/corpus.txt"});
}

TEST(RecipeTest, UnknownKeysAnywhereNameTheFullKey) {
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[training]\nlr_max = 1\n").message(),
              HasSubstr("recipe /r/recipe.toml: training.lr_max: unknown key"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\nhidden = 1\n").message(),
              HasSubstr("model.hidden: unknown key"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[optimizer]\nlr = 1\n").message(),
              HasSubstr(": optimizer: unknown key"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[checkpoint.extra]\na = 1\n").message(),
              HasSubstr("checkpoint.extra: unknown key"));
  EXPECT_THAT(ParseError("steps = 3\n" + std::string(kMinimal)).message(),
              HasSubstr(": steps: unknown key"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[repro]\nsha = \"\"\n").message(),
              HasSubstr("repro.sha: unknown key"));
}

TEST(RecipeTest, WrongTypesNameTheKeyAndTheExpectedType) {
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\nd_model = \"256\"\n").message(),
              HasSubstr("model.d_model: expected an integer"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\nd_model = 256.0\n").message(),
              HasSubstr("model.d_model: expected an integer"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[training]\nlr = \"fast\"\n").message(),
              HasSubstr("training.lr: expected a number"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\ntied_embeddings = 1\n").message(),
              HasSubstr("model.tied_embeddings: expected true or false"));
  EXPECT_THAT(ParseError("[data]\npaths = [\"a\", 3]\n").message(),
              HasSubstr("data.paths: element 1: expected a string"));
  EXPECT_THAT(ParseError("model = 3\n" + std::string(kMinimal)).message(),
              HasSubstr("model: expected a table"));
}

TEST(RecipeTest, OutOfRangeValuesNameTheKeyAndTheRange) {
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[training]\nlr = 2\n").message(),
              HasSubstr("training.lr: 2 is out of range (0, 1]"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[training]\nsteps = 0\n").message(),
              HasSubstr("training.steps: 0 is out of range [1, "));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[training]\nbeta2 = 1\n").message(),
              HasSubstr("training.beta2: 1 is out of range [0, 1)"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[training]\nseed = -1\n").message(),
              HasSubstr("training.seed: -1 is out of range [0, "));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\nnorm_eps = nan\n").message(),
              HasSubstr("model.norm_eps: nan is out of range (0, 1)"));
  EXPECT_THAT(ParseError("[data]\npaths = [\"a\"]\nvalidation_fraction = 1\n").message(),
              HasSubstr("data.validation_fraction: 1 is out of range [0, 1)"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\narch = \"gpt2\"\n").message(),
              HasSubstr("model.arch: 'gpt2' is not one of llama, qwen2"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[checkpoint]\nquantize = \"q5_k\"\n").message(),
              HasSubstr("checkpoint.quantize: 'q5_k' is not one of f32, f16, q8_0, "
                        "q4_0, q4_k, "
                        "q6_k"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[tokenizer]\npre = \"nope\"\n").message(),
              HasSubstr("tokenizer.pre: 'nope' is not one of "));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[repro]\nsha256 = \"ABC\"\n").message(),
              HasSubstr("repro.sha256: expected 64 lower-case hex digits"));
}

TEST(RecipeTest, ValuesThatDoNotFitTogetherNameBothKeys) {
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\nn_heads = 3\n").message(),
              HasSubstr("model.n_heads: 3 does not divide model.d_model = 256"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\nd_model = 24\nn_heads = 8\n").message(),
              HasSubstr("model.n_heads: head_dim = model.d_model / model.n_heads = 3 "
                        "must be even"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\nn_kv_heads = 3\n").message(),
              HasSubstr("model.n_kv_heads: 3 does not divide model.n_heads = 4"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[training]\nmin_lr = 0.01\n").message(),
              HasSubstr("training.min_lr: 0.01 is above training.lr = 0.001"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[training]\nsteps = 10\n").message(),
              HasSubstr("training.warmup_steps: 100 is above training.steps = 10"));
  EXPECT_THAT(ParseError("[data]\npaths = [\"a\"]\nseq_len = 512\n").message(),
              HasSubstr("data.seq_len: 512 is above model.context = 256"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[model]\nvocab_size = 257\n").message(),
              HasSubstr("model.vocab_size: 257 is below 256 byte tokens + 1 special tokens"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[tokenizer]\nbos_token = \"<s>\"\n").message(),
              HasSubstr("tokenizer.bos_token: '<s>' is not one of tokenizer.special_tokens"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[tokenizer]\nspecial_tokens = [\"a\", \"a\"]\n")
                  .message(),
              HasSubstr("tokenizer.special_tokens: 'a' appears twice"));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[tokenizer]\nkind = \"gguf\"\n").message(),
              HasSubstr("tokenizer.from: required with tokenizer.kind = \"gguf\""));
  EXPECT_THAT(ParseError(std::string(kMinimal) +
                         "[tokenizer]\nkind = \"gguf\"\nfrom = \"b.gguf\"\npre = \"gpt2\"\n")
                  .message(),
              HasSubstr("tokenizer.pre: only with tokenizer.kind = \"bpe\""));
  EXPECT_THAT(ParseError(std::string(kMinimal) + "[tokenizer]\nfrom = \"b.gguf\"\n").message(),
              HasSubstr("tokenizer.from: only with tokenizer.kind = \"gguf\""));
}

TEST(RecipeTest, MissingDataAndSyntaxErrorsAreReported) {
  EXPECT_THAT(ParseError("").message(), HasSubstr("data.paths: required"));
  EXPECT_THAT(ParseError("[data]\npaths = []\n").message(), HasSubstr("data.paths: required"));
  const Status syntax = ParseError("[data]\npaths = [\"a\"\n");
  EXPECT_EQ(syntax.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(syntax.message(), HasSubstr("recipe /r/recipe.toml:"));
}

TEST(RecipeTest, HashIgnoresFormattingCommentsOrderAndUnhashedKeys) {
  auto a = ParseRecipe(kFull, "/r/recipe.toml");
  auto b = ParseRecipe(kFullReordered, "/elsewhere/other.toml");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(CanonicalRecipe(*a), CanonicalRecipe(*b));
  EXPECT_EQ(RecipeSha256(*a), RecipeSha256(*b));
  // Defaults written out or left implicit hash the same.
  auto minimal = ParseRecipe(kMinimal, "m.toml");
  auto explicit_defaults = ParseRecipe(std::string(kMinimal) +
                                           "[training]\nlr = 0.001\nsteps = 1000\n"
                                           "[model]\nn_kv_heads = 4\n",
                                       "m.toml");
  ASSERT_TRUE(explicit_defaults.ok()) << explicit_defaults.status().ToString();
  EXPECT_EQ(RecipeSha256(*minimal), RecipeSha256(*explicit_defaults));
}

TEST(RecipeTest, HashChangesWithEveryHashedValue) {
  const std::string base = RecipeSha256(ParseRecipe(kMinimal, "m.toml").value());
  for (const char* change : {"[model]\nd_model = 128\n", "[model]\ntied_embeddings = false\n",
                             "[model]\nrope_theta = 10000.5\n",
                             "[tokenizer]\nspecial_tokens = [\"<|endoftext|>\", \"<s>\"]\n",
                             "[training]\nseed = 1\n", "[training]\nlr = 0.0011\n",
                             "[model]\ncontext = 512\n", "[checkpoint]\nquantize = \"f32\"\n"}) {
    auto r = ParseRecipe(std::string(kMinimal) + change, "m.toml");
    ASSERT_TRUE(r.ok()) << change << r.status().ToString();
    EXPECT_NE(RecipeSha256(*r), base) << change;
  }
  for (const char* data :
       {"[data]\npaths = [\"other.txt\"]\n", "[data]\npaths = [\"corpus.txt\"]\nseq_len = 255\n"}) {
    auto r = ParseRecipe(data, "m.toml");
    ASSERT_TRUE(r.ok()) << data << r.status().ToString();
    EXPECT_NE(RecipeSha256(*r), base) << data;
  }
}

// The value pins the canonical form: a change to it (a key added, a format changed) changes every
// recorded recipe hash, so it must be deliberate (bump "canonical form v1").
TEST(RecipeTest, CanonicalFormIsStable) {
  const Recipe r = ParseRecipe(kFull, "/r/recipe.toml").value();
  EXPECT_EQ(CanonicalRecipe(r), R"(# pocket recipe, canonical form v1
[model]
arch = "llama"
vocab_size = 4096
d_model = 192
n_layers = 4
n_heads = 6
n_kv_heads = 2
d_ff = 512
context = 256
rope_theta = 10000.0
norm_eps = 1e-05
tied_embeddings = true
init_std = 0.02
[tokenizer]
kind = "bpe"
pre = "smollm"
min_frequency = 2
special_tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
bos_token = "<|im_start|>"
eos_token = "<|endoftext|>"
eot_token = ""
pad_token = ""
[data]
paths = ["text/kjv.txt", "/abs/notes"]
validation_fraction = 0.05
seq_len = 128
max_document_bytes = 65536
[training]
steps = 600
batch_size = 16
grad_accum = 2
lr = 0.003
min_lr = 0.0003
warmup_steps = 30
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
eps = 1e-08
clip_norm = 1.0
seed = 42
[checkpoint]
quantize = "q4_k"
)");
  // The canonical form is itself a recipe with the same canonical form.
  auto again = ParseRecipe(CanonicalRecipe(r), "/r/recipe.toml");
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(CanonicalRecipe(*again), CanonicalRecipe(r));
}

TEST(RecipeTest, LoadRecipeReadsTheFileAndNamesAMissingOne) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("pocket_recipe_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  ASSERT_TRUE(WriteFileAtomic(dir + "/r.toml", kMinimal).ok());
  auto r = LoadRecipe(dir + "/r.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->data.resolved_paths, std::vector<std::string>{dir + "/corpus.txt"});
  auto missing = LoadRecipe(dir + "/missing.toml");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(), HasSubstr(dir + "/missing.toml"));
  std::filesystem::remove_all(dir);
}

// The shipped default recipe parses.
TEST(RecipeTest, DefaultRecipeParses) {
  auto r = LoadRecipe(std::string(POCKET_SOURCE_DIR) + "/recipes/default.toml");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->tokenizer.kind, "bpe");
}

}  // namespace
}  // namespace pocket::train
