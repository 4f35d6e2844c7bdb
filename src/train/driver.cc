// RunRecipe (pocket train / repro) and Finetune (pocket finetune): the
// tokenizer, data, model, trainer loop, checkpoints, resume and final outputs
// described in driver.h.
#include "train/driver.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "base/file.h"
#include "base/sha256.h"
#include "formats/gguf.h"
#include "formats/quantize.h"
#include "kernels/backend.h"
#include "tokenizer/bpe_train.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"
#include "train/data.h"
#include "train/lora.h"
#include "train/params.h"
#include "train/trainer.h"

namespace pocket::train {
namespace {

constexpr char kCursorEpochKey[] = "pocket.train.cursor_epoch";
constexpr char kCursorPositionKey[] = "pocket.train.cursor_position";

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

void Note(const std::function<void(const std::string&)>& f, const std::string& line) {
  if (f) f(line);
}

size_t CountTargets(const std::vector<int32_t>& targets) {
  return static_cast<size_t>(
      std::count_if(targets.begin(), targets.end(), [](int32_t t) { return t >= 0; }));
}

// The mean loss over every counted target of `split`, evaluated micro_seqs
// sequences at a time in order (a fixed order: the same value for any thread
// count). nullopt for an empty split.
Result<std::optional<double>> SplitLoss(Trainer& trainer, const PackedSplit& split,
                                        size_t micro_seqs, size_t max_seqs = 0) {
  size_t n = split.num_sequences();
  if (max_seqs != 0) n = std::min(n, max_seqs);
  const size_t seq = split.seq_len();
  double sum = 0.0;
  size_t count = 0;
  std::vector<int32_t> inputs, targets;
  for (size_t first = 0; first < n; first += micro_seqs) {
    const size_t c = std::min(micro_seqs, n - first);
    inputs.assign(c * seq, 0);
    targets.assign(c * seq, -1);
    split.Sequences(first, c, inputs, targets);
    const size_t counted = CountTargets(targets);
    if (counted == 0) continue;
    PK_ASSIGN_OR_RETURN(double loss, trainer.Evaluate(Batch{c, seq, inputs, targets}));
    sum += loss * static_cast<double>(counted);
    count += counted;
  }
  if (count == 0) return std::optional<double>();
  return std::optional<double>(sum / static_cast<double>(count));
}

model::LlamaConfig ConfigOf(const ModelRecipe& m) {
  model::LlamaConfig c;
  c.arch = m.arch;
  c.d_model = static_cast<int>(m.d_model);
  c.num_layers = static_cast<int>(m.n_layers);
  c.num_heads = static_cast<int>(m.n_heads);
  c.num_kv_heads = static_cast<int>(m.n_kv_heads);
  c.head_dim = static_cast<int>(m.d_model / m.n_heads);
  c.d_ff = static_cast<int>(m.d_ff);
  c.vocab_size = static_cast<int>(m.vocab_size);
  c.context_length = static_cast<int>(m.context);
  c.rms_eps = static_cast<float>(m.norm_eps);
  c.rope_freq_base = static_cast<float>(m.rope_theta);
  c.tied_output = m.tied_embeddings;
  c.qkv_bias = m.arch == "qwen2";
  c.rope_neox = m.arch == "qwen2";
  return c;
}

// The recipe's tokenizer and, for kind "gguf", the file's chat template and
// SHA-256.
struct TokenizerSetup {
  std::unique_ptr<tokenizer::Tokenizer> tok;
  std::string chat_template;  // Jinja source written into the model; may be empty
  std::string parent_sha256;  // kind "gguf": the file's
};

Result<TokenizerSetup> BuildTokenizer(const Recipe& r, const DataOptions& data_options,
                                      const std::function<void(const std::string&)>& note) {
  TokenizerSetup out;
  const std::string where = "recipe " + r.path + ": ";
  if (r.tokenizer.kind == "gguf") {
    PK_ASSIGN_OR_RETURN(formats::GgufFile f, formats::GgufFile::Open(r.tokenizer.from_resolved));
    auto tok = tokenizer::Tokenizer::FromGguf(f);
    if (!tok.ok()) return tok.status().WithContext(where + "tokenizer.from");
    if (static_cast<int64_t>(tok->vocab_size()) != r.model.vocab_size) {
      return Status::InvalidArgument(
          where + "model.vocab_size: " + std::to_string(r.model.vocab_size) + " but " +
          r.tokenizer.from + " has " + std::to_string(tok->vocab_size()) + " tokens");
    }
    if (auto t = f.GetString("tokenizer.chat_template"); t.ok()) out.chat_template = *t;
    PK_ASSIGN_OR_RETURN(out.parent_sha256, FileSha256(r.tokenizer.from_resolved));
    out.tok = std::make_unique<tokenizer::Tokenizer>(std::move(*tok));
    return out;
  }
  tokenizer::BpeTrainOptions o;
  o.vocab_size = static_cast<size_t>(r.model.vocab_size);
  o.min_frequency = r.tokenizer.min_frequency;
  o.pre = r.tokenizer.pre;
  o.special_tokens = r.tokenizer.special_tokens;
  o.bos_token = r.tokenizer.bos_token;
  o.eos_token = r.tokenizer.eos_token;
  o.eot_token = r.tokenizer.eot_token;
  o.pad_token = r.tokenizer.pad_token;
  auto trainer = tokenizer::BpeTrainer::Create(std::move(o));
  if (!trainer.ok()) return trainer.status().WithContext(where + "tokenizer");
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& path : r.data.resolved_paths) {
    PK_ASSIGN_OR_RETURN(std::vector<std::string> texts, CorpusTexts(path, data_options));
    for (const std::string& t : texts) trainer->AddDocument(t);
  }
  PK_ASSIGN_OR_RETURN(tokenizer::BpeTrainResult bpe, trainer->Train());
  const size_t size = bpe.vocab.tokens.size();
  if (static_cast<int64_t>(size) != r.model.vocab_size) {
    return Status::InvalidArgument(
        where + "model.vocab_size: the data gives only " + std::to_string(size) +
        " tokens with tokenizer.min_frequency = " + std::to_string(r.tokenizer.min_frequency) +
        " (lower one of them, or add data)");
  }
  Note(note, "tokenizer: byte-level BPE of " + std::to_string(size) + " tokens trained on " +
                 std::to_string(bpe.num_distinct_words) + " distinct words in " +
                 std::to_string(static_cast<int>(Seconds(start) * 1000)) + " ms");
  PK_ASSIGN_OR_RETURN(tokenizer::Tokenizer tok, tokenizer::Tokenizer::FromVocab(bpe.vocab));
  out.tok = std::make_unique<tokenizer::Tokenizer>(std::move(tok));
  return out;
}

void SetProvenance(formats::GgufWriter& w, const std::string& recipe_sha,
                   const std::string& data_sha, const std::string& parent_sha, uint64_t seed) {
  w.SetString(kRecipeSha256Key, recipe_sha);
  w.SetString(kDataSha256Key, data_sha);
  if (!parent_sha.empty()) w.SetString(formats::kParentSha256Key, parent_sha);
  w.SetUint64(kSeedKey, seed);
  w.SetString(kToolVersionKey, kToolVersion);
}

// Everything a run holds.
struct Run {
  const Recipe* recipe = nullptr;
  std::string recipe_sha;
  TokenizerSetup tok;
  std::optional<Dataset> data;
  std::unique_ptr<ModelParams> model;
  std::unique_ptr<Trainer> trainer;
  std::string name;  // general.name: the recipe file's stem

  // The model as a GGUF with vocabulary and provenance (step >= 0: a
  // checkpoint's step key).
  Result<formats::GgufWriter> ModelGguf(tensor::DType type, int64_t step) const {
    PK_ASSIGN_OR_RETURN(formats::GgufWriter w, model->ToGguf(name, nullptr, type));
    tokenizer::AddVocabToGguf(tok.tok->vocab(), w);
    if (!tok.chat_template.empty()) w.SetString("tokenizer.chat_template", tok.chat_template);
    SetProvenance(w, recipe_sha, data->data_hash(), tok.parent_sha256, recipe->training.seed);
    if (step >= 0) w.SetInt64(kTrainStepKey, step);
    return w;
  }

  Status WriteCheckpoint(const CheckpointPaths& paths, const DataCursor& cursor) const {
    PK_ASSIGN_OR_RETURN(formats::GgufWriter state, trainer->StateToGguf());
    state.SetString(kRecipeSha256Key, recipe_sha);
    state.SetString(kDataSha256Key, data->data_hash());
    state.SetUint64(kCursorEpochKey, cursor.epoch);
    state.SetUint64(kCursorPositionKey, cursor.position);
    for (const Param& p : model->params()) {
      const std::vector<float> v = model->Values(p);
      std::string bytes(v.size() * sizeof(float), '\0');
      std::memcpy(bytes.data(), v.data(), bytes.size());
      PK_RETURN_IF_ERROR(state.AddTensor(p.name, p.ne, tensor::DType::kF32, std::move(bytes)));
    }
    // The state first: resuming reads it alone, so a kill between the two
    // writes loses nothing; the model file is for people and other tools.
    PK_RETURN_IF_ERROR(state.Write(paths.state));
    PK_ASSIGN_OR_RETURN(formats::GgufWriter m, ModelGguf(tensor::DType::kF32, trainer->step()));
    return m.Write(paths.model);
  }

  // Restores parameters, optimizer state and cursor from the state file.
  Result<DataCursor> Resume(const std::string& path) {
    PK_ASSIGN_OR_RETURN(formats::GgufFile f, formats::GgufFile::Open(path));
    auto recipe_key = f.GetString(kRecipeSha256Key);
    if (!recipe_key.ok() || *recipe_key != recipe_sha) {
      return Status::InvalidArgument("checkpoint " + path +
                                     " was written by another recipe (its recipe hash differs); "
                                     "run without --resume to start over");
    }
    auto data_key = f.GetString(kDataSha256Key);
    if (!data_key.ok() || *data_key != data->data_hash()) {
      return Status::InvalidArgument("checkpoint " + path +
                                     " was written on other data (its data hash differs); run "
                                     "without --resume to start over");
    }
    for (const Param& p : model->params()) {
      const formats::TensorInfo* t = f.FindTensor(p.name);
      if (t == nullptr || t->dtype != tensor::DType::kF32 || t->ne != p.ne) {
        return Status::InvalidArgument("checkpoint " + path + ": no F32 tensor '" + p.name +
                                       "' of the parameter's shape");
      }
      const std::span<const std::byte> bytes = f.TensorBytes(*t);
      std::vector<float> v(p.size);
      std::memcpy(v.data(), bytes.data(), v.size() * sizeof(float));
      model->SetValues(p, v);
    }
    PK_RETURN_IF_ERROR(trainer->LoadState(f));
    DataCursor cursor;
    PK_ASSIGN_OR_RETURN(cursor.epoch, f.GetUint(kCursorEpochKey));
    PK_ASSIGN_OR_RETURN(cursor.position, f.GetUint(kCursorPositionKey));
    return cursor;
  }
};

// Creates the folder `path` will be written in. IOError naming it.
Status MakeParent(const std::string& path) {
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  if (dir.empty()) return Status::Ok();
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Status::IOError("cannot create folder " + dir.string() + ": " + ec.message());
  return Status::Ok();
}

// One JSON line of the training log.
std::string LogLine(const TrainProgress& p) {
  char buf[320];
  int n = std::snprintf(buf, sizeof(buf),
                        "{\"step\":%lld,\"loss\":%.6f,\"lr\":%.6g,\"grad_norm\":%.6g,"
                        "\"tokens_per_s\":%.1f",
                        static_cast<long long>(p.step), p.loss, static_cast<double>(p.lr),
                        p.grad_norm, p.tokens_per_s);
  std::string line(buf, static_cast<size_t>(n));
  if (p.has_validation) {
    std::snprintf(buf, sizeof(buf), ",\"val_loss\":%.6f", p.validation_loss);
    line += buf;
  }
  return line + "}\n";
}

struct LogPoint {
  int64_t step = 0;
  double loss = 0.0;
  bool has_val = false;
  double val = 0.0;
};

// Parses the lines LogLine wrote (others are skipped).
std::vector<LogPoint> ParseLog(std::string_view text) {
  std::vector<LogPoint> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    const std::string line(text.substr(pos, end - pos));
    pos = end + 1;
    LogPoint p;
    long long step = 0;
    if (std::sscanf(line.c_str(), "{\"step\":%lld,\"loss\":%lf", &step, &p.loss) != 2) continue;
    p.step = step;
    if (const size_t v = line.find("\"val_loss\":"); v != std::string::npos) {
      p.has_val = std::sscanf(line.c_str() + v + 11, "%lf", &p.val) == 1;
    }
    out.push_back(p);
  }
  return out;
}

// The loss curve: training loss per step (a line) and validation loss at checkpoints (dots).
std::string LossSvg(const std::vector<LogPoint>& points, int64_t total_steps) {
  const double w = 640, h = 360, left = 50, right = 10, top = 20, bottom = 30;
  double lo = 1e300, hi = -1e300;
  for (const LogPoint& p : points) {
    lo = std::min({lo, p.loss, p.has_val ? p.val : p.loss});
    hi = std::max({hi, p.loss, p.has_val ? p.val : p.loss});
  }
  if (points.empty()) lo = 0, hi = 1;
  if (hi - lo < 1e-9) hi = lo + 1;
  const double steps = static_cast<double>(std::max<int64_t>(total_steps, 1));
  auto x = [&](int64_t s) { return left + (w - left - right) * static_cast<double>(s) / steps; };
  auto y = [&](double l) { return top + (h - top - bottom) * (hi - l) / (hi - lo); };
  char buf[256];
  std::string svg;
  std::snprintf(buf, sizeof(buf),
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                "font-family=\"sans-serif\" font-size=\"11\">\n",
                w, h);
  svg += buf;
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::snprintf(buf, sizeof(buf),
                "<path d=\"M%.1f %.1fV%.1fH%.1f\" stroke=\"black\" fill=\"none\"/>\n", left, top,
                h - bottom, w - right);
  svg += buf;
  std::snprintf(buf, sizeof(buf),
                "<text x=\"4\" y=\"%.1f\">%.3f</text><text x=\"4\" y=\"%.1f\">%.3f</text>"
                "<text x=\"%.1f\" y=\"%.1f\">step %lld</text>"
                "<text x=\"%.1f\" y=\"14\">loss (line: training, dots: validation)</text>\n",
                top + 4, hi, h - bottom, lo, w - right - 80, h - 8,
                static_cast<long long>(total_steps), left + 10);
  svg += buf;
  std::string path;
  for (const LogPoint& p : points) {
    std::snprintf(buf, sizeof(buf), "%s%.1f %.1f", path.empty() ? "M" : " L", x(p.step), y(p.loss));
    path += buf;
  }
  svg += "<path d=\"" + path + "\" stroke=\"#1f77b4\" fill=\"none\"/>\n";
  for (const LogPoint& p : points) {
    if (!p.has_val) continue;
    std::snprintf(buf, sizeof(buf), "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#ff7f0e\"/>\n",
                  x(p.step), y(p.val));
    svg += buf;
  }
  return svg + "</svg>\n";
}

std::string Stem(const std::string& path) {
  std::string s = std::filesystem::path(path).filename().string();
  if (s.ends_with(".toml")) s.resize(s.size() - 5);
  return s;
}

}  // namespace

CheckpointPaths CheckpointPathsFor(const std::string& output) {
  std::string base = output;
  if (base.ends_with(".gguf")) base.resize(base.size() - 5);
  return {output, base + ".ckpt.gguf", base + ".ckpt-state.gguf", base + ".log.jsonl",
          base + ".loss.svg"};
}

Result<std::string> FileSha256(const std::string& path) {
  PK_ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
  return Sha256Hex(bytes);
}

Result<TrainRunResult> RunRecipe(const Recipe& recipe, const TrainRunOptions& options) {
  const Recipe& r = recipe;
  const std::string where = "recipe " + r.path + ": ";
  if (r.data.resolved_paths.size() != 1) {
    return Status::InvalidArgument(where + "data.paths: name one file or folder (" +
                                   std::to_string(r.data.resolved_paths.size()) +
                                   " given; put the files in one folder)");
  }
  const int threads = options.threads >= 0 ? options.threads : static_cast<int>(r.training.threads);
  const CheckpointPaths paths =
      CheckpointPathsFor(options.output.empty() ? r.checkpoint.output_resolved : options.output);
  PK_RETURN_IF_ERROR(MakeParent(paths.output));
  TrainRunResult result;
  Run run;
  run.recipe = &r;
  run.recipe_sha = RecipeSha256(r);
  run.name = Stem(r.path);

  DataOptions dopts;
  dopts.seq_len = static_cast<size_t>(r.data.seq_len);
  dopts.validation_fraction = r.data.validation_fraction;
  dopts.max_document_bytes = static_cast<size_t>(r.data.max_document_bytes);
  PK_ASSIGN_OR_RETURN(run.tok, BuildTokenizer(r, dopts, options.on_note));
  std::optional<tokenizer::ChatTemplate> tmpl;
  if (!run.tok.chat_template.empty()) {
    PK_ASSIGN_OR_RETURN(tokenizer::ChatTemplate t,
                        tokenizer::ChatTemplate::Parse(run.tok.chat_template));
    tmpl.emplace(std::move(t));
  }
  {
    PK_ASSIGN_OR_RETURN(Dataset ds, Dataset::Load(r.data.resolved_paths[0], *run.tok.tok,
                                                  tmpl ? &*tmpl : nullptr, dopts));
    run.data.emplace(std::move(ds));
  }
  const DataStats& st = run.data->stats();
  result.data_hash = run.data->data_hash();
  Note(options.on_note, "data: " + std::to_string(st.files_read) + " files, " +
                            std::to_string(st.train_documents) + " + " +
                            std::to_string(st.validation_documents) + " documents, " +
                            std::to_string(st.train_tokens) + " training and " +
                            std::to_string(st.validation_tokens) +
                            " held-out tokens; data sha256 " + result.data_hash);

  PK_ASSIGN_OR_RETURN(auto backend, kernels::MakeBackend(kernels::BackendKind::kCpu, threads));
  InitOptions init;
  init.seed = r.training.seed;
  init.std = static_cast<float>(r.model.init_std);
  PK_ASSIGN_OR_RETURN(run.model, ModelParams::Init(backend, ConfigOf(r.model), init));
  OptimizerOptions opt;
  opt.lr = static_cast<float>(r.training.lr);
  opt.min_lr = static_cast<float>(r.training.min_lr);
  opt.warmup_steps = r.training.warmup_steps;
  opt.total_steps = r.training.steps;
  opt.beta1 = static_cast<float>(r.training.beta1);
  opt.beta2 = static_cast<float>(r.training.beta2);
  opt.eps = static_cast<float>(r.training.eps);
  opt.weight_decay = static_cast<float>(r.training.weight_decay);
  opt.clip_norm = static_cast<float>(r.training.clip_norm);
  const size_t micro = static_cast<size_t>(r.training.batch_size);
  const size_t seq = static_cast<size_t>(r.data.seq_len);
  PK_ASSIGN_OR_RETURN(
      run.trainer,
      Trainer::Create(run.model.get(), Trainer::AllParams(run.model.get()), opt, micro, seq));
  DataCursor cursor;
  std::error_code ec;
  std::string log_text;  // the JSON-lines log, written beside each checkpoint
  std::vector<LogPoint> log_points;
  if (options.resume && std::filesystem::exists(paths.state, ec)) {
    PK_ASSIGN_OR_RETURN(cursor, run.Resume(paths.state));
    result.resumed_from = run.trainer->step();
    Note(options.on_note,
         "resuming from " + paths.state + " at step " + std::to_string(result.resumed_from));
    // The log up to the checkpoint (a killed run may have logged later steps elsewhere).
    if (auto old = ReadFile(paths.log); old.ok()) {
      for (const LogPoint& lp : ParseLog(*old)) {
        if (lp.step > result.resumed_from) break;
        log_points.push_back(lp);
      }
      size_t pos = 0;
      for (size_t i = 0; i < log_points.size(); ++i) pos = old->find('\n', pos) + 1;
      log_text = old->substr(0, pos);
    }
  } else if (options.resume) {
    Note(options.on_note, "no checkpoint at " + paths.state + ": starting at step 0");
  }
  const size_t step_seqs = micro * static_cast<size_t>(r.training.grad_accum);
  PK_ASSIGN_OR_RETURN(BatchIterator batches,
                      BatchIterator::Create(run.data->train(), step_seqs, r.training.seed, cursor));
  std::vector<int32_t> inputs(step_seqs * seq), targets(step_seqs * seq);
  const auto start = std::chrono::steady_clock::now();
  size_t tokens = 0;
  const int64_t total = r.training.steps;
  const int64_t interval = r.checkpoint.interval;
  while (run.trainer->step() < total) {
    batches.Next(inputs, targets);
    PK_ASSIGN_OR_RETURN(StepStats s, run.trainer->Step(Batch{step_seqs, seq, inputs, targets}));
    const int64_t step = run.trainer->step();
    tokens += s.tokens;
    TrainProgress p;
    p.step = step;
    p.total_steps = total;
    p.loss = s.loss;
    p.lr = s.lr;
    p.grad_norm = s.grad_norm;
    const double secs = Seconds(start);
    p.tokens_per_s = secs > 0 ? static_cast<double>(tokens) / secs : 0.0;
    const int64_t done = step - result.resumed_from;
    p.eta_s = done > 0 ? secs / static_cast<double>(done) * static_cast<double>(total - step) : 0;
    const bool stop = options.stop_after > 0 && step >= options.stop_after;
    p.checkpoint = step == total || stop || (interval > 0 && step % interval == 0);
    if (p.checkpoint) {
      PK_ASSIGN_OR_RETURN(std::optional<double> val,
                          SplitLoss(*run.trainer, run.data->validation(), micro));
      p.has_validation = val.has_value();
      p.validation_loss = val.value_or(0.0);
      result.validation_loss = p.validation_loss;
      PK_RETURN_IF_ERROR(run.WriteCheckpoint(paths, batches.cursor()));
    }
    log_text += LogLine(p);
    log_points.push_back({p.step, p.loss, p.has_validation, p.validation_loss});
    if (p.checkpoint) {
      PK_RETURN_IF_ERROR(WriteFileAtomic(paths.log, log_text));
      PK_RETURN_IF_ERROR(WriteFileAtomic(paths.svg, LossSvg(log_points, total)));
    }
    if (options.on_progress) options.on_progress(p);
    if (stop && step < total) {
      result.step = step;
      return result;
    }
  }
  result.step = run.trainer->step();
  if (result.resumed_from == total) {
    // Resumed a finished run: its last checkpoint is the model; still report
    // validation.
    PK_ASSIGN_OR_RETURN(std::optional<double> val,
                        SplitLoss(*run.trainer, run.data->validation(), micro));
    result.validation_loss = val.value_or(0.0);
    PK_RETURN_IF_ERROR(run.WriteCheckpoint(paths, batches.cursor()));
  }

  // The final output.
  const std::string& q = r.checkpoint.quantize;
  if (q == "f32" || q == "f16") {
    PK_ASSIGN_OR_RETURN(formats::GgufWriter w,
                        run.ModelGguf(q == "f32" ? tensor::DType::kF32 : tensor::DType::kF16, -1));
    PK_RETURN_IF_ERROR(w.Write(paths.output));
  } else {
    const auto type = formats::QuantizeTypeFromName(q);
    if (!type) {
      return Status::InvalidArgument(where + "checkpoint.quantize: unknown type " + q);
    }
    formats::QuantizeOptions qo;
    qo.type = *type;
    qo.num_threads = static_cast<size_t>(threads);
    PK_RETURN_IF_ERROR(formats::QuantizeGguf(paths.model, paths.output, qo).status());
  }
  PK_ASSIGN_OR_RETURN(result.sha256, FileSha256(paths.output));
  result.output = paths.output;
  result.finished = true;
  return result;
}

Result<FinetuneResult> Finetune(const FinetuneOptions& o) {
  if (o.rank < 1 || o.rank > 4096) {
    return Status::InvalidArgument("--lora-rank: " + std::to_string(o.rank) +
                                   " is out of range [1, 4096]");
  }
  if (!(o.alpha > 0)) return Status::InvalidArgument("--lora-alpha: must be above 0");
  if (o.steps < 0) return Status::InvalidArgument("--steps: must be at least 0");
  if (!(o.lr > 0 && o.lr <= 1)) return Status::InvalidArgument("--lr: must be in (0, 1]");
  if (o.batch < 1) return Status::InvalidArgument("--batch: must be at least 1");
  if (o.seq_len < 1) return Status::InvalidArgument("--seq-len: must be at least 1");
  auto targets = ParseLoraTargets(o.targets);
  if (!targets.ok()) return targets.status().WithContext("--targets");

  PK_ASSIGN_OR_RETURN(formats::GgufFile base, formats::GgufFile::Open(o.base));
  auto tok = tokenizer::Tokenizer::FromGguf(base);
  if (!tok.ok()) return tok.status().WithContext(o.base);
  std::optional<tokenizer::ChatTemplate> tmpl;
  if (!o.chat_template.empty()) {
    auto t = tokenizer::ChatTemplate::Builtin(o.chat_template);
    if (!t.ok()) t = tokenizer::ChatTemplate::Parse(o.chat_template);
    if (!t.ok()) return t.status().WithContext("--chat-template");
    tmpl.emplace(std::move(*t));
  } else if (auto t = tokenizer::ChatTemplate::FromGguf(base); t.ok()) {
    tmpl.emplace(std::move(*t));
  }
  DataOptions dopts;
  dopts.seq_len = static_cast<size_t>(o.seq_len);
  dopts.validation_fraction = o.validation_fraction;
  PK_ASSIGN_OR_RETURN(Dataset data, Dataset::Load(o.data, *tok, tmpl ? &*tmpl : nullptr, dopts));
  const DataStats& st = data.stats();
  Note(o.on_note, "data: " + std::to_string(st.files_read) + " files, " +
                      std::to_string(st.train_documents) + " + " +
                      std::to_string(st.validation_documents) + " documents, " +
                      std::to_string(st.train_loss_tokens) + " training and " +
                      std::to_string(st.validation_loss_tokens) + " held-out target tokens");

  PK_ASSIGN_OR_RETURN(auto backend, kernels::MakeBackend(kernels::BackendKind::kCpu, o.threads));
  PK_ASSIGN_OR_RETURN(auto model, ModelParams::FromGguf(backend, base, /*trainable=*/false));
  if (o.seq_len > model->config().context_length) {
    return Status::InvalidArgument("--seq-len: " + std::to_string(o.seq_len) +
                                   " exceeds the model's context " +
                                   std::to_string(model->config().context_length));
  }
  LoraOptions lo;
  lo.targets = *targets;
  lo.rank = static_cast<size_t>(o.rank);
  lo.alpha = static_cast<float>(o.alpha);
  lo.seed = o.seed;
  const size_t micro = static_cast<size_t>(o.batch);
  const size_t seq = static_cast<size_t>(o.seq_len);
  lo.max_tokens = micro * seq;
  PK_ASSIGN_OR_RETURN(auto adapters, AttachLora(model.get(), lo));
  OptimizerOptions opt;
  opt.lr = static_cast<float>(o.lr);
  opt.min_lr = static_cast<float>(o.lr / 10);
  opt.warmup_steps = std::min<int64_t>(o.steps / 10, 100);
  opt.total_steps = std::max<int64_t>(o.steps, 1);
  opt.beta2 = 0.999f;
  opt.weight_decay = 0.0f;
  std::vector<Param*> params = LoraParams(adapters);
  FinetuneResult result;
  result.num_matrices = adapters.size();
  for (const Param* p : params) result.num_params += p->size;
  PK_ASSIGN_OR_RETURN(auto trainer, Trainer::Create(model.get(), params, opt, micro, seq));

  // Losses: the training split's first sequences (up to 16 batches) and the
  // whole held-out split.
  const size_t train_eval_seqs = 16 * micro;
  auto losses = [&](double* train_loss, double* val_loss) -> Status {
    PK_ASSIGN_OR_RETURN(auto t, SplitLoss(*trainer, data.train(), micro, train_eval_seqs));
    PK_ASSIGN_OR_RETURN(auto v, SplitLoss(*trainer, data.validation(), micro));
    *train_loss = t.value_or(0.0);
    *val_loss = v.value_or(0.0);
    return Status::Ok();
  };
  PK_RETURN_IF_ERROR(losses(&result.train_loss_before, &result.validation_loss_before));
  PK_ASSIGN_OR_RETURN(BatchIterator batches, BatchIterator::Create(data.train(), micro, o.seed));
  std::vector<int32_t> inputs(micro * seq), targets_buf(micro * seq);
  const auto start = std::chrono::steady_clock::now();
  size_t tokens = 0;
  for (int64_t i = 0; i < o.steps; ++i) {
    batches.Next(inputs, targets_buf);
    PK_ASSIGN_OR_RETURN(StepStats s, trainer->Step(Batch{micro, seq, inputs, targets_buf}));
    tokens += s.tokens;
    if (o.on_progress) {
      TrainProgress p;
      p.step = trainer->step();
      p.total_steps = o.steps;
      p.loss = s.loss;
      p.lr = s.lr;
      p.grad_norm = s.grad_norm;
      const double secs = Seconds(start);
      p.tokens_per_s = secs > 0 ? static_cast<double>(tokens) / secs : 0.0;
      p.eta_s = secs / static_cast<double>(i + 1) * static_cast<double>(o.steps - i - 1);
      o.on_progress(p);
    }
  }
  PK_RETURN_IF_ERROR(losses(&result.train_loss_after, &result.validation_loss_after));

  PK_ASSIGN_OR_RETURN(const std::string base_sha, FileSha256(o.base));
  PK_RETURN_IF_ERROR(MakeParent(o.out));
  if (!o.merge.empty()) PK_RETURN_IF_ERROR(MakeParent(o.merge));
  PK_ASSIGN_OR_RETURN(formats::GgufWriter w, LoraAdapterGguf(model->config().arch, adapters));
  w.SetString(kDataSha256Key, data.data_hash());
  w.SetString(formats::kParentSha256Key, base_sha);
  w.SetUint64(kSeedKey, o.seed);
  w.SetString(kToolVersionKey, kToolVersion);
  PK_RETURN_IF_ERROR(w.Write(o.out));
  PK_ASSIGN_OR_RETURN(result.adapter_sha256, FileSha256(o.out));
  if (!o.merge.empty()) {
    PK_ASSIGN_OR_RETURN(formats::GgufWriter m, MergeLora(base, adapters));
    PK_RETURN_IF_ERROR(m.Write(o.merge));
    PK_ASSIGN_OR_RETURN(result.merged_sha256, FileSha256(o.merge));
  }
  return result;
}

}  // namespace pocket::train
