// Checkpoint files: atomic replacement under injected failures at every stage, rotation,
// and loads that fail -- damaged, truncated or mismatched files -- leaving the model and
// the optimizer exactly as they were.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "core/autograd.h"
#include "core/random.h"
#include "nn/models.h"
#include "optim/adam.h"
#include "optim/scheduler.h"
#include "serialize/checkpoint.h"
#include "test_util.h"

using namespace lockstep;
using namespace lockstep::serialize;
using lockstep_test::read_bytes;
using lockstep_test::write_bytes;

namespace {

std::vector<std::string> dir_entries(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d))
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") out.push_back(e->d_name);
  closedir(d);
  return out;
}

void remove_dir(const std::string& dir) {
  for (auto& f : dir_entries(dir)) std::remove((dir + "/" + f).c_str());
  rmdir(dir.c_str());
}

// A small model, AdamW and a cosine schedule after two training steps (so every optimizer
// state and the Dropout steps are non-trivial).
struct Setup {
  std::shared_ptr<nn::Sequential> model;
  std::unique_ptr<optim::AdamW> opt;
  std::unique_ptr<optim::CosineAnnealingLR> sched;
  Generator gen{5, 0};
  TrainingState state() {
    TrainingState s;
    s.model = model.get(), s.optimizer = opt.get(), s.scheduler = sched.get();
    s.generators = {{"noise", &gen}};
    return s;
  }
};

Setup make_setup(uint64_t seed, int steps) {
  Setup s;
  s.model = std::make_shared<nn::Sequential>(std::make_shared<nn::Linear>(6, 5), std::make_shared<nn::BatchNorm1d>(5),
                                             std::make_shared<nn::Dropout>(0.3), std::make_shared<nn::Linear>(5, 3));
  s.model->reset_parameters(seed);
  s.opt = std::make_unique<optim::AdamW>(s.model->parameters(), optim::AdamWOptions(1e-2));
  s.sched = std::make_unique<optim::CosineAnnealingLR>(*s.opt, 10);
  for (int i = 0; i < steps; ++i) {
    Tensor x = Tensor::empty({4, 6});
    s.gen.uniform_(x, -1, 1, 1);
    Tensor y = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 1}, {4});
    s.opt->zero_grad();
    cross_entropy(s.model->forward(x), y).backward();
    s.opt->step();
    s.sched->step();
  }
  return s;
}

// Snapshots to compare "unchanged" bit for bit.
std::vector<Tensor> snapshot(Setup& s) {
  std::vector<Tensor> out;
  auto add = [&](const nn::StateDict& sd) {  // sd outlives the loop (a temporary's items() would not)
    for (auto& kv : sd.items()) out.push_back(kv.second.clone());
  };
  add(s.model->state_dict());
  add(s.opt->state_dict());
  add(s.sched->state_dict());
  out.push_back(Tensor::from_vector(std::vector<int64_t>{static_cast<int64_t>(s.gen.offset())}, {1}));
  for (auto& c : s.model->children())
    if (auto* d = dynamic_cast<nn::Dropout*>(c.second.get()))
      out.push_back(Tensor::from_vector(std::vector<int64_t>{static_cast<int64_t>(d->step())}, {1}));
  return out;
}

void require_unchanged(Setup& s, const std::vector<Tensor>& before) {
  auto now = snapshot(s);
  REQUIRE(now.size() == before.size());
  for (size_t i = 0; i < now.size(); ++i) {
    INFO("tensor " << i);
    REQUIRE(equal_bits(now[i], before[i]));
  }
}

// load_checkpoint must throw a runtime_error naming the file and containing `field`.
void require_load_fails(const std::string& path, Setup& s, const std::string& field) {
  auto before = snapshot(s);
  TrainingState st = s.state();
  try {
    load_checkpoint(path, st);
    FAIL("accepted a bad checkpoint");
  } catch (const std::runtime_error& e) {
    INFO(e.what());
    REQUIRE(std::string(e.what()).find(path) != std::string::npos);
    REQUIRE(std::string(e.what()).find(field) != std::string::npos);
  }
  require_unchanged(s, before);
}

}  // namespace

TEST_CASE("checkpoint: a failure at any write stage leaves the previous file intact and no temporary file",
          "[checkpoint]") {
  const std::string dir = lockstep_test::make_temp_dir("lockstep_ckpt");
  const std::string path = dir + "/ckpt.safetensors";
  Setup a = make_setup(1, 2);
  save_checkpoint(path, a.state());
  const std::string old_bytes = read_bytes(path);
  Setup b = make_setup(2, 3);  // different contents to write over it

  struct Case {
    WriteStage stage;
    int nth;  // fail the nth call of that stage
  };
  for (Case c : {Case{WriteStage::open, 0}, Case{WriteStage::write, 0}, Case{WriteStage::fsync, 0},
                 Case{WriteStage::rename, 0}}) {
    INFO("failing " << write_stage_name(c.stage) << " #" << c.nth);
    int seen = 0;
    SaveOptions opt;
    opt.atomic.fault = [&](WriteStage s) { return s == c.stage && seen++ == c.nth; };
    REQUIRE_THROWS_WITH(save_checkpoint(path, b.state(), opt), Catch::Contains(path) && Catch::Contains("unchanged"));
    REQUIRE(seen > c.nth);  // the stage was reached
    REQUIRE(read_bytes(path) == old_bytes);
    REQUIRE(dir_entries(dir) == std::vector<std::string>{"ckpt.safetensors"});
    Setup fresh = make_setup(9, 0);
    TrainingState st = fresh.state();
    load_checkpoint(path, st);  // the old checkpoint still loads
  }
  // Nothing to keep: the message must not promise a previous file that never existed.
  {
    const std::string fresh_path = dir + "/new.safetensors";
    SaveOptions opt;
    opt.atomic.fault = [](WriteStage s) { return s == WriteStage::write; };
    REQUIRE_THROWS_WITH(save_checkpoint(fresh_path, b.state(), opt),
                        Catch::Contains("no file was written") && !Catch::Contains("unchanged"));
    REQUIRE(dir_entries(dir) == std::vector<std::string>{"ckpt.safetensors"});
  }
  // A file of several write() calls (header and small tensors, then a large tensor from its
  // own storage) failing in the second one.
  {
    const std::string big = dir + "/big.safetensors";
    save_safetensors(big, {{"a", Tensor::zeros({4})}});
    const std::string big_old = read_bytes(big);
    int seen = 0;
    SaveOptions opt;
    opt.atomic.fault = [&](WriteStage s) { return s == WriteStage::write && seen++ == 1; };
    REQUIRE_THROWS_WITH(save_safetensors(big, {{"a", Tensor::ones({4})}, {"b", Tensor::ones({100000})}}, {}, opt),
                        Catch::Contains("write"));
    REQUIRE(seen == 2);
    REQUIRE(read_bytes(big) == big_old);
    REQUIRE(dir_entries(dir).size() == 2);
    std::remove(big.c_str());
  }
  // A failed directory fsync comes after the rename: the new file is in place, and the
  // error says it may not be durable.
  SaveOptions opt;
  opt.atomic.fault = [](WriteStage s) { return s == WriteStage::sync_dir; };
  REQUIRE_THROWS_WITH(save_checkpoint(path, b.state(), opt), Catch::Contains("directory"));
  REQUIRE(read_bytes(path) != old_bytes);
  REQUIRE(dir_entries(dir) == std::vector<std::string>{"ckpt.safetensors"});
  remove_dir(dir);
}

TEST_CASE("checkpoint: rotation keeps the last N", "[checkpoint]") {
  const std::string dir = lockstep_test::make_temp_dir("lockstep_ckpt");
  Setup a = make_setup(1, 1);
  TrainingState st = a.state();
  for (int64_t step : {5, 10, 15, 20}) {
    st.step = step;
    save_checkpoint_rotating(dir, "run", st, 2);
  }
  auto all = list_checkpoints(dir, "run");
  REQUIRE(all == std::vector<std::string>{dir + "/run-000000000015.safetensors", dir + "/run-000000000020.safetensors"});
  REQUIRE(latest_checkpoint(dir, "run").value() == all.back());
  Setup fresh = make_setup(3, 0);
  TrainingState f = fresh.state();
  load_checkpoint(all.back(), f);
  REQUIRE(f.step == 20);
  REQUIRE(!latest_checkpoint(dir, "other").has_value());
  remove_dir(dir);
}

TEST_CASE("checkpoint: round trip restores every component", "[checkpoint]") {
  const std::string dir = lockstep_test::make_temp_dir("lockstep_ckpt");
  const std::string path = dir + "/c.safetensors";
  Setup a = make_setup(1, 3);
  TrainingState st = a.state();
  st.step = 3, st.epoch = 1, st.user = {{"run", "alpha"}};
  save_checkpoint(path, st);
  Setup b = make_setup(7, 1);
  TrainingState sb = b.state();
  CheckpointInfo info = load_checkpoint(path, sb);
  REQUIRE(info.mode == "deterministic");
  REQUIRE(!info.lockstep_version.empty());
  REQUIRE(sb.step == 3);
  REQUIRE(sb.epoch == 1);
  REQUIRE(sb.user == Metadata{{"run", "alpha"}});
  require_unchanged(b, snapshot(a));  // b now equals a, bit for bit
  auto* da = dynamic_cast<nn::Dropout*>((*a.model)[2].get());
  auto* db = dynamic_cast<nn::Dropout*>((*b.model)[2].get());
  REQUIRE(db->seed() == da->seed());  // restored although b was built from another seed
  REQUIRE(db->step() == 3);
  // The file format: each Dropout's position under rng.dropout.<module name> (seed,
  // stream, step as int64 bits), the generators under rng.generator.<name>.
  const SafetensorsContents file = load_safetensors(path);
  const Tensor drop = file.tensors.at("rng.dropout.2");
  REQUIRE(drop.to_vector<int64_t>() == std::vector<int64_t>{static_cast<int64_t>(da->seed()),
                                                            static_cast<int64_t>(da->stream()), 3});
  REQUIRE(file.tensors.contains("rng.generator.noise"));
  REQUIRE(file.tensors.contains("model.1.num_batches_tracked"));
  remove_dir(dir);
}

TEST_CASE("checkpoint: a failed load leaves model and optimizer unchanged", "[checkpoint]") {
  const std::string dir = lockstep_test::make_temp_dir("lockstep_ckpt");
  const std::string path = dir + "/c.safetensors";
  Setup a = make_setup(1, 3);
  save_checkpoint(path, a.state());
  const std::string good = read_bytes(path);
  Setup b = make_setup(4, 2);
  const std::string bad = dir + "/bad.safetensors";

  SECTION("truncated at many offsets") {
    for (size_t n = 0; n < good.size(); n += (n < 4096 ? 7 : 97)) {
      INFO("truncated to " << n);
      write_bytes(bad, good.substr(0, n));
      require_load_fails(bad, b, "bad.safetensors");
    }
  }
  SECTION("flipped bytes in header and data") {
    for (size_t i = 0; i < good.size(); i += 13) {
      INFO("byte " << i);
      std::string g = good;
      g[i] = static_cast<char>(g[i] ^ 0x5a);
      write_bytes(bad, g);
      require_load_fails(bad, b, "bad.safetensors");
    }
  }
  // Files that are well-formed safetensors with valid checksums, but wrong as checkpoints.
  SafetensorsContents c = load_safetensors(path);
  auto rewrite = [&](const std::function<void(NamedTensors&, Metadata&)>& edit) {
    NamedTensors t(c.tensors.items().begin(), c.tensors.items().end());
    Metadata m = c.metadata;
    edit(t, m);
    save_safetensors(bad, t, m);
  };
  auto erase = [](NamedTensors& t, const std::string& key) {
    for (auto it = t.begin(); it != t.end(); ++it)
      if (it->first == key) return void(t.erase(it));
    FAIL("no key " << key);
  };
  auto replace = [](NamedTensors& t, const std::string& key, Tensor v) {
    for (auto& kv : t)
      if (kv.first == key) return void(kv.second = v);
    FAIL("no key " << key);
  };
  SECTION("missing model key") {
    rewrite([&](NamedTensors& t, Metadata&) { erase(t, "model.1.running_var"); });
    require_load_fails(bad, b, "'1.running_var'");
  }
  SECTION("unexpected key") {
    rewrite([&](NamedTensors& t, Metadata&) { t.push_back({"model.9.weight", Tensor::zeros({2})}); });
    require_load_fails(bad, b, "'9.weight'");
  }
  SECTION("shape mismatch with the model") {
    rewrite([&](NamedTensors& t, Metadata&) { replace(t, "model.3.weight", Tensor::zeros({3, 4})); });
    require_load_fails(bad, b, "'3.weight'");
  }
  SECTION("bad optimizer state") {
    rewrite([&](NamedTensors& t, Metadata&) { replace(t, "optimizer.state.0.exp_avg", Tensor::zeros({5, 5})); });
    require_load_fails(bad, b, "optimizer.");
  }
  SECTION("bad scheduler state, after the optimizer loaded: the optimizer is put back") {
    rewrite([&](NamedTensors& t, Metadata&) { replace(t, "scheduler.last_epoch", Tensor::scalar(1.0, DType::f64)); });
    require_load_fails(bad, b, "scheduler.");
  }
  SECTION("Dropout random state: missing, unexpected, of another layer's stream") {
    rewrite([&](NamedTensors& t, Metadata&) { erase(t, "rng.dropout.2"); });
    require_load_fails(bad, b, "rng.dropout.2");
    rewrite([&](NamedTensors& t, Metadata&) { t.push_back({"rng.dropout.9", Tensor::zeros({3}, DType::i64)}); });
    require_load_fails(bad, b, "rng.dropout.9");
    rewrite([&](NamedTensors& t, Metadata&) { replace(t, "rng.dropout.2", Tensor::zeros({3}, DType::f32)); });
    require_load_fails(bad, b, "rng.dropout.2");
    // A value only the layer can judge: checked before anything changes all the same.
    rewrite([&](NamedTensors& t, Metadata&) { replace(t, "rng.dropout.2", Tensor::zeros({3}, DType::i64)); });
    require_load_fails(bad, b, "'dropout.2'");
    require_load_fails(bad, b, "does not match the layer's");
  }
  SECTION("missing generator, wrong format, other mode") {
    rewrite([&](NamedTensors& t, Metadata&) { erase(t, "rng.generator.noise"); });
    require_load_fails(bad, b, "rng.generator.noise");
    rewrite([&](NamedTensors&, Metadata& m) { m["format_version"] = "99"; });
    require_load_fails(bad, b, "format_version");
    rewrite([&](NamedTensors&, Metadata& m) { m["mode"] = "fast"; });
    require_load_fails(bad, b, "__metadata__.mode");
  }
  SECTION("a checkpoint without optimizer state for a state with an optimizer") {
    rewrite([&](NamedTensors& t, Metadata&) {
      t.erase(std::remove_if(t.begin(), t.end(), [](auto& kv) { return kv.first.rfind("optimizer.", 0) == 0; }),
              t.end());
    });
    require_load_fails(bad, b, "optimizer.*");
  }
  remove_dir(dir);
}
