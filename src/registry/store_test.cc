// The local store on real files in a temp dir: import/ls/show/rm/gc/verify, dedupe, damage
// found and repaired, stale temp files, two processes importing one file, bad input, and the
// model-argument rule.
#include "registry/store.h"

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "base/file.h"
#include "formats/random_model.h"
#include "registry/file_lock.h"
#include "registry/resolve.h"

namespace pocket::registry {
namespace {

namespace fs = std::filesystem;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("pocket_store_test." + std::to_string(::getpid()) + "." +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    root_ = (dir_ / "store").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A tiny random GGUF model; `seed` changes its bytes.
  std::string MakeModel(const std::string& file, uint64_t seed) {
    auto spec = formats::NamedShape("tiny");
    EXPECT_TRUE(spec.ok());
    spec->seed = seed;
    spec->vocab_size = 512;
    spec->weight_type = tensor::DType::kF32;
    auto writer = formats::BuildRandomModel(*spec);
    EXPECT_TRUE(writer.ok()) << writer.status().message();
    writer->SetString("pocket.train.recipe_hash", "abc123");
    const std::string path = (dir_ / file).string();
    EXPECT_TRUE(writer->Write(path).ok());
    return path;
  }

  static ModelRef Ref(const std::string& text) { return *ParseModelRef(text); }

  size_t CountBlobs() const {
    size_t n = 0;
    for (const auto& e : fs::directory_iterator(root_ + "/blobs/sha256")) n += !e.is_directory();
    return n;
  }

  fs::path dir_;
  std::string root_;
};

TEST_F(StoreTest, ImportListShowRemoveGcRoundTrip) {
  const std::string model = MakeModel("m.gguf", 1);
  Store store(root_);
  auto imported = store.Import(model, Ref("tiny:v1"));
  ASSERT_TRUE(imported.ok()) << imported.status().message();
  EXPECT_TRUE(imported->layer_written);

  // An OCI image layout: oci-layout, index.json with the tag as ref.name.
  auto layout = ReadFile(root_ + "/oci-layout");
  ASSERT_TRUE(layout.ok());
  EXPECT_EQ(*layout, R"({"imageLayoutVersion":"1.0.0"})");
  auto index = ParseIndex(*ReadFile(root_ + "/index.json"), "index.json");
  ASSERT_TRUE(index.ok()) << index.status().message();
  ASSERT_EQ(index->manifests.size(), 1u);
  EXPECT_EQ(index->manifests[0].annotations.at(kRefNameAnnotation), "tiny:v1");

  auto tags = store.List();
  ASSERT_TRUE(tags.ok());
  ASSERT_EQ(tags->size(), 1u);
  EXPECT_EQ((*tags)[0].ref.ToString(), "tiny:v1");
  EXPECT_GT((*tags)[0].size_bytes, static_cast<int64_t>(fs::file_size(model)));
  EXPECT_FALSE((*tags)[0].created.empty());

  auto info = store.Show(Ref("tiny:v1"));
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(*ReadFile(info->model_path), *ReadFile(model));
  EXPECT_EQ(info->manifest.artifact_type, kModelArtifactType);
  EXPECT_EQ(info->manifest.config.media_type, kModelConfigType);
  ASSERT_EQ(info->manifest.layers.size(), 1u);
  EXPECT_EQ(info->manifest.layers[0].media_type, kGgufLayerType);
  EXPECT_EQ(info->config["architecture"], "llama");
  EXPECT_EQ(info->config["quantization"], "F32");
  EXPECT_EQ(info->config["tokenizer_model"], "gpt2");
  EXPECT_EQ(info->config["chat_template"], true);
  EXPECT_GT(info->config["parameter_count"].get<uint64_t>(), 0u);
  EXPECT_GT(info->config["min_memory_bytes"].get<uint64_t>(), fs::file_size(model));
  EXPECT_EQ(info->config["provenance"]["pocket.train.recipe_hash"], "abc123");

  ASSERT_TRUE(store.Remove(Ref("tiny:v1")).ok());
  EXPECT_TRUE(store.List()->empty());
  EXPECT_EQ(store.Remove(Ref("tiny:v1")).code(), StatusCode::kNotFound);
  EXPECT_EQ(CountBlobs(), 3u);  // blobs stay until gc
  auto gc = store.Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_EQ(gc->blobs_removed, 3);
  EXPECT_EQ(CountBlobs(), 0u);
  auto verify = store.Verify(false);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->clean());
}

TEST_F(StoreTest, SameFileUnderTwoTagsIsStoredOnce) {
  const std::string model = MakeModel("m.gguf", 1);
  Store store(root_);
  auto a = store.Import(model, Ref("tiny"));
  auto b = store.Import(model, Ref("other/name:q"));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->layer_written);
  EXPECT_FALSE(b->layer_written);
  EXPECT_EQ(a->entry.manifest_digest, b->entry.manifest_digest);
  EXPECT_EQ(CountBlobs(), 3u);  // one manifest, one config, one layer
  // Removing one tag and collecting keeps the blobs the other still uses.
  ASSERT_TRUE(store.Remove(Ref("tiny:latest")).ok());
  auto gc = store.Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->blobs_removed, 0);
  EXPECT_TRUE(store.Show(Ref("other/name:q")).ok());
  // A second model under a new tag adds its own blobs; retagging moves the tag.
  const std::string model2 = MakeModel("m2.gguf", 2);
  ASSERT_TRUE(store.Import(model2, Ref("other/name:q")).ok());
  EXPECT_EQ(store.List()->size(), 1u);
  gc = store.Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->blobs_removed, 3);
  EXPECT_EQ(*ReadFile(*store.ModelPath(Ref("other/name:q"))), *ReadFile(model2));
}

TEST_F(StoreTest, VerifyFindsCorruptBlobAndRepairDropsItAndItsTags) {
  Store store(root_);
  ASSERT_TRUE(store.Import(MakeModel("a.gguf", 1), Ref("a")).ok());
  ASSERT_TRUE(store.Import(MakeModel("a.gguf", 1), Ref("a:same")).ok());
  ASSERT_TRUE(store.Import(MakeModel("b.gguf", 2), Ref("b")).ok());
  const std::string layer = *store.ModelPath(Ref("a"));
  {  // flip one byte in place, same size: only re-hashing finds it
    std::fstream f(layer, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(100);
    f.put('\x7f');
  }
  auto report = store.Verify(false);
  ASSERT_TRUE(report.ok()) << report.status().message();
  ASSERT_EQ(report->bad_blobs.size(), 1u);
  EXPECT_EQ(report->bad_blobs[0].what, "sha256:" + fs::path(layer).filename().string());
  EXPECT_EQ(report->broken_tags.size(), 2u);
  EXPECT_FALSE(report->repaired);
  EXPECT_TRUE(fs::exists(layer));

  report = store.Verify(true);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->repaired);
  EXPECT_FALSE(fs::exists(layer));
  auto tags = store.List();
  ASSERT_EQ(tags->size(), 1u);
  EXPECT_EQ((*tags)[0].ref.ToString(), "b:latest");
  report = store.Verify(false);
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->clean());
  // The orphaned manifest and config of "a" go with gc.
  auto gc = store.Gc();
  ASSERT_TRUE(gc.ok());
  EXPECT_EQ(gc->blobs_removed, 2);
}

TEST_F(StoreTest, TruncatedBlobIsOneLineCorruptionNamingIt) {
  Store store(root_);
  ASSERT_TRUE(store.Import(MakeModel("a.gguf", 1), Ref("a")).ok());
  const std::string layer = *store.ModelPath(Ref("a"));
  fs::resize_file(layer, 1000);
  auto info = store.Show(Ref("a"));
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.status().code(), StatusCode::kCorruption);
  EXPECT_NE(info.status().message().find(fs::path(layer).filename().string()), std::string::npos);
  EXPECT_EQ(info.status().message().find('\n'), std::string::npos);
  // Re-importing the file replaces the truncated blob (size check under the blob lock).
  auto again = store.Import((dir_ / "a.gguf").string(), Ref("a"));
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(again->layer_written);
  EXPECT_TRUE(store.Verify(false)->clean());
}

TEST_F(StoreTest, GcRemovesStaleTempFilesButNotLiveOnes) {
  Store store(root_);
  ASSERT_TRUE(store.Import(MakeModel("a.gguf", 1), Ref("a")).ok());
  // A killed import leaves an unlocked temp file; a live writer holds a lock on its own.
  const std::string stale = root_ + "/tmp/0123456789abcdef.999999.0.tmp";
  const std::string live = root_ + "/tmp/fedcba9876543210.999999.1.tmp";
  ASSERT_TRUE(WriteFileAtomic(stale, "half a blob").ok());
  ASSERT_TRUE(WriteFileAtomic(live, "being written").ok());
  auto held = FileLock::TryAcquireExisting(live, FileLock::Mode::kExclusive);
  ASSERT_TRUE(held.ok());
  auto gc = store.Gc();
  ASSERT_TRUE(gc.ok()) << gc.status().message();
  EXPECT_EQ(gc->temp_files_removed, 1);
  EXPECT_FALSE(fs::exists(stale));
  EXPECT_TRUE(fs::exists(live));
  EXPECT_EQ(gc->blobs_removed, 0);
  EXPECT_TRUE(store.Show(Ref("a")).ok());
}

// Two processes import the same file at once: both succeed, the layer blob is written by
// exactly one of them, and the store verifies clean. Each child holds the blob lock for a
// while, so the other reaches the lock while it is held (and the outcome does not depend
// on how the two are scheduled).
TEST_F(StoreTest, ConcurrentImportsFromTwoProcessesWriteTheBlobOnce) {
  const std::string model = MakeModel("m.gguf", 7);
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pids[2];
  for (int i = 0; i < 2; ++i) {
    pids[i] = ::fork();
    ASSERT_GE(pids[i], 0);
    if (pids[i] == 0) {
      char go;
      if (::read(ready[0], &go, 1) != 1) ::_exit(3);
      Store store(root_);
      ImportOptions options;
      options.while_blob_locked = [] { ::usleep(200 * 1000); };
      auto r = store.Import(model, Ref(i == 0 ? "tiny:one" : "tiny:two"), options);
      ::_exit(!r.ok() ? 2 : r->layer_written ? 10 : 11);
    }
  }
  ASSERT_EQ(::write(ready[1], "gg", 2), 2);  // release both at once
  int written = 0, reused = 0;
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    ASSERT_TRUE(code == 10 || code == 11) << "child exit " << code;
    (code == 10 ? written : reused)++;
  }
  ::close(ready[0]);
  ::close(ready[1]);
  EXPECT_EQ(written, 1);
  EXPECT_EQ(reused, 1);
  Store store(root_);
  EXPECT_EQ(store.List()->size(), 2u);
  EXPECT_EQ(CountBlobs(), 3u);
  EXPECT_TRUE(fs::is_empty(root_ + "/tmp"));
  auto verify = store.Verify(false);
  ASSERT_TRUE(verify.ok());
  EXPECT_TRUE(verify->clean());
}

// kill -9 of an import at some point inside its blob write: whatever it left, no blob is
// under a name its bytes do not hash to, gc clears the leftovers, and importing again works.
// The kill lands anywhere from before the temp file to after the rename (how far the child
// got is up to the scheduler); the claim holds at every point, so no timing is assumed.
TEST_F(StoreTest, KillDuringImportNeverLeavesABadBlob) {
  auto spec = formats::NamedShape("tiny");
  ASSERT_TRUE(spec.ok());
  spec->vocab_size = 4096;  // a few MB, so the copy takes a while
  spec->weight_type = tensor::DType::kF32;
  const std::string model = (dir_ / "big.gguf").string();
  ASSERT_TRUE(formats::BuildRandomModel(*spec)->Write(model).ok());
  for (int delay_us : {0, 500, 2000, 8000}) {
    int locked[2];
    ASSERT_EQ(::pipe(locked), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ImportOptions options;
      options.while_blob_locked = [&] { (void)!::write(locked[1], "L", 1); };
      auto r = Store(root_).Import(model, Ref("big"), options);
      ::_exit(r.ok() ? 0 : 2);
    }
    char c;
    ASSERT_EQ(::read(locked[0], &c, 1), 1);
    ::usleep(delay_us);
    ::kill(pid, SIGKILL);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ::close(locked[0]);
    ::close(locked[1]);
    Store store(root_);
    auto report = store.Verify(false);
    ASSERT_TRUE(report.ok()) << report.status().message();
    EXPECT_TRUE(report->bad_blobs.empty())
        << "delay " << delay_us << ": " << report->bad_blobs[0].reason;
    ASSERT_TRUE(store.Gc().ok());
    EXPECT_TRUE(fs::is_empty(root_ + "/tmp")) << "delay " << delay_us;
    auto again = store.Import(model, Ref("big"));
    ASSERT_TRUE(again.ok()) << again.status().message();
    EXPECT_TRUE(store.Verify(false)->clean());
    ASSERT_TRUE(store.Remove(Ref("big")).ok());
    ASSERT_TRUE(store.Gc().ok());
  }
}

// A full disk, simulated in a child process by a file-size limit (writes past it fail with
// EFBIG, as they would with ENOSPC): the import fails with one line naming the temp file,
// and nothing is left under a final name or in tmp/.
TEST_F(StoreTest, FullDiskDuringImportLeavesNothingBehind) {
  auto spec = formats::NamedShape("tiny");
  ASSERT_TRUE(spec.ok());
  spec->vocab_size = 4096;
  spec->weight_type = tensor::DType::kF32;
  const std::string model = (dir_ / "big.gguf").string();
  ASSERT_TRUE(formats::BuildRandomModel(*spec)->Write(model).ok());
  ASSERT_GT(fs::file_size(model), 1u << 20);
  const std::string message_file = (dir_ / "message").string();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {512 * 1024, 512 * 1024};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    auto r = Store(root_).Import(model, Ref("big"));
    if (r.ok()) ::_exit(1);
    std::ofstream(message_file) << StatusCodeName(r.status().code()) << " " << r.status().message();
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the import succeeded";
  const std::string message = *ReadFile(message_file);
  EXPECT_EQ(message.rfind("IOError cannot write " + root_ + "/tmp/", 0), 0u) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos);
  EXPECT_EQ(CountBlobs(), 0u);
  EXPECT_TRUE(fs::is_empty(root_ + "/tmp"));
  Store store(root_);
  EXPECT_TRUE(store.List()->empty());
  EXPECT_TRUE(store.Verify(false)->clean());
  EXPECT_TRUE(store.Import(model, Ref("big")).ok());  // with room again
}

TEST_F(StoreTest, MalformedIndexIsOneLineErrorAndNothingChanges) {
  Store store(root_);
  ASSERT_TRUE(store.Import(MakeModel("a.gguf", 1), Ref("a")).ok());
  const std::string index_path = root_ + "/index.json";
  ASSERT_TRUE(
      WriteFileAtomic(index_path, R"({"schemaVersion":2,"manifests":[{"digest":1}]})").ok());
  const std::string before = *ReadFile(index_path);
  const size_t blobs = CountBlobs();
  for (const Status& s :
       {store.List().status(), store.Import(MakeModel("b.gguf", 2), Ref("b")).status(),
        store.Remove(Ref("a")), store.Gc().status(), store.Verify(true).status()}) {
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.message();
    EXPECT_NE(s.message().find(index_path), std::string::npos) << s.message();
    EXPECT_EQ(s.message().find('\n'), std::string::npos);
  }
  EXPECT_EQ(*ReadFile(index_path), before);
  // The import wrote its blobs before it read the index; gc (after a fix) removes them.
  EXPECT_GE(CountBlobs(), blobs);
}

TEST_F(StoreTest, MalformedManifestBlobIsReportedAndRepaired) {
  Store store(root_);
  auto a = store.Import(MakeModel("a.gguf", 1), Ref("a"));
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(store.Import(MakeModel("b.gguf", 2), Ref("b")).ok());
  // Replace the manifest blob by bytes that are not a manifest (so its name lies too).
  const std::string manifest = store.BlobPath(a->entry.manifest_digest);
  ASSERT_TRUE(WriteFileAtomic(manifest, "{oops").ok());
  auto info = store.Show(Ref("a"));
  ASSERT_FALSE(info.ok());
  EXPECT_NE(info.status().message().find("tag 'a:latest'"), std::string::npos)
      << info.status().message();
  auto gc = store.Gc();
  ASSERT_FALSE(gc.ok());  // what it references is unknown: nothing is removed
  EXPECT_NE(gc.status().message().find("verify --repair"), std::string::npos);
  auto report = store.Verify(true);
  ASSERT_TRUE(report.ok()) << report.status().message();
  EXPECT_EQ(report->broken_tags.size(), 1u);
  EXPECT_TRUE(store.Gc().ok());
  EXPECT_TRUE(store.Verify(false)->clean());
  EXPECT_TRUE(store.Show(Ref("b")).ok());
}

TEST_F(StoreTest, UnwritableStoreIsOneLineIOErrorNamingIt) {
  const std::string file = (dir_ / "a-file").string();
  ASSERT_TRUE(WriteFileAtomic(file, "x").ok());
  Store store(file + "/store");  // under a regular file: nothing can be created
  auto r = store.Import(MakeModel("a.gguf", 1), Ref("a"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kIOError);
  EXPECT_NE(r.status().message().find(file + "/store"), std::string::npos) << r.status().message();
  EXPECT_EQ(r.status().message().find('\n'), std::string::npos);
  // Reading a store that does not exist is an empty list, not an error.
  auto tags = Store((dir_ / "nothing").string()).List();
  ASSERT_TRUE(tags.ok());
  EXPECT_TRUE(tags->empty());
}

TEST_F(StoreTest, ImportOfNonGgufFileIsRefusedNamingIt) {
  const std::string bad = (dir_ / "notes.txt").string();
  ASSERT_TRUE(WriteFileAtomic(bad, "not a model at all, just text").ok());
  Store store(root_);
  auto r = store.Import(bad, Ref("x"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(bad), std::string::npos);
  EXPECT_FALSE(fs::exists(root_));  // nothing written
  auto missing = store.Import((dir_ / "missing.gguf").string(), Ref("x"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("missing.gguf"), std::string::npos);
}

TEST_F(StoreTest, ModelArgumentIsAPathFirstThenAStoredName) {
  const std::string model = MakeModel("m.gguf", 1);
  ASSERT_EQ(::setenv("POCKET_HOME", root_.c_str(), 1), 0);
  Store store(root_);
  ASSERT_TRUE(store.Import(model, Ref("tiny:v1")).ok());
  auto by_name = ResolveModelPath("tiny:v1");
  ASSERT_TRUE(by_name.ok()) << by_name.status().message();
  EXPECT_EQ(*by_name, *store.ModelPath(Ref("tiny:v1")));
  EXPECT_EQ(*ResolveModelPath(model), model);  // a path that exists
  // A file named like a model wins over the store (run from dir_).
  const fs::path cwd = fs::current_path();
  fs::current_path(dir_);
  ASSERT_TRUE(WriteFileAtomic((dir_ / "tiny:v1").string(), "x").ok());
  EXPECT_EQ(*ResolveModelPath("tiny:v1"), "tiny:v1");
  // A directory does not shadow a stored model; one that is not a stored name is returned
  // for the loader to refuse.
  fs::create_directories(dir_ / "tiny");
  ASSERT_TRUE(store.Import(model, Ref("tiny")).ok());
  EXPECT_EQ(*ResolveModelPath("tiny"), *store.ModelPath(Ref("tiny")));
  fs::create_directories(dir_ / "notstored");
  EXPECT_EQ(*ResolveModelPath("notstored"), "notstored");
  fs::current_path(cwd);
  auto missing = ResolveModelPath("tiny:v2");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("'tiny:v2'"), std::string::npos);
  auto missing_file = ResolveModelPath("/nonexistent/model.gguf");
  ASSERT_FALSE(missing_file.ok());
  EXPECT_NE(missing_file.status().message().find("model file '/nonexistent/model.gguf'"),
            std::string::npos);
  auto bad = ResolveModelPath("Not A Name");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kNotFound);
  ::unsetenv("POCKET_HOME");
}

TEST_F(StoreTest, DefaultStoreRootFollowsPocketHomeThenXdgThenHome) {
  const char* saved_home = std::getenv("HOME");
  const std::string home = saved_home ? saved_home : "";
  ::unsetenv("POCKET_HOME");
  ::setenv("XDG_DATA_HOME", "/xdg", 1);
  EXPECT_EQ(*DefaultStoreRoot(), "/xdg/pocket");
  ::setenv("XDG_DATA_HOME", "relative", 1);  // ignored, as the XDG spec says
  ::setenv("HOME", "/home/u", 1);
  EXPECT_EQ(*DefaultStoreRoot(), "/home/u/.local/share/pocket");
  ::setenv("POCKET_HOME", "/p", 1);
  EXPECT_EQ(*DefaultStoreRoot(), "/p");
  ::unsetenv("POCKET_HOME");
  ::unsetenv("XDG_DATA_HOME");
  ::unsetenv("HOME");
  EXPECT_EQ(DefaultStoreRoot().status().code(), StatusCode::kNotFound);
  if (saved_home) ::setenv("HOME", home.c_str(), 1);
}

}  // namespace
}  // namespace pocket::registry
