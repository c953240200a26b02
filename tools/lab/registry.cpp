// The scenario registry: the lab's order is the order a newcomer meets the problems in.
#include "scenarios.h"

namespace lockstep_cli::lab {

const std::vector<Scenario>& scenarios() {
  static const std::vector<Scenario> all = {
      init_seed_scenario(),       dropout_eval_scenario(),      batchnorm_eval_scenario(),
      stateful_rng_scenario(),    autotune_scenario(),          reduction_order_scenario(),
      thread_count_scenario(),    simd_level_scenario(),        batch_invariance_scenario(),
      shuffle_seed_scenario(),    loader_workers_scenario(),    augment_rng_scenario(),
      resume_scenario(),          lossy_save_scenario(),        loaded_model_scenario(),
      seed_variance_scenario(),
      divergence_growth_scenario(), cpu_vs_gpu_scenario(),      world_size_scenario(),
      conv_autotune_scenario(),   winograd_numerics_scenario(), conv_wgrad_atomics_scenario(),
      maxpool_ties_scenario(),    embedding_backward_scenario(), attention_split_scenario(),
      batched_generation_scenario(),
  };
  return all;
}

const Scenario* find_scenario(const std::string& name) {
  for (const Scenario& s : scenarios())
    if (s.name == name) return &s;
  return nullptr;
}

}  // namespace lockstep_cli::lab
