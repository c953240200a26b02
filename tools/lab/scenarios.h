// The scenarios, one factory each; registry.cpp lists them in the lab's order.
#pragma once
#include "lab.h"

namespace lockstep_cli::lab {

Scenario init_seed_scenario();         // scenarios_seed.cpp
Scenario shuffle_seed_scenario();
Scenario dropout_eval_scenario();      // scenarios_eval.cpp
Scenario batchnorm_eval_scenario();
Scenario batch_invariance_scenario();
Scenario stateful_rng_scenario();      // scenarios_rng.cpp
Scenario augment_rng_scenario();
Scenario loader_workers_scenario();    // scenarios_loader.cpp
Scenario autotune_scenario();          // scenarios_kernels.cpp
Scenario reduction_order_scenario();
Scenario thread_count_scenario();
Scenario simd_level_scenario();
Scenario resume_scenario();            // scenarios_state.cpp
Scenario lossy_save_scenario();
Scenario seed_variance_scenario();     // scenarios_training.cpp
Scenario divergence_growth_scenario();
Scenario cpu_vs_gpu_scenario();        // scenario_devices.cpp
Scenario world_size_scenario();        // scenarios_dist.cpp
Scenario conv_autotune_scenario();     // scenarios_conv.cpp
Scenario winograd_numerics_scenario();
Scenario conv_wgrad_atomics_scenario();
Scenario loaded_model_scenario();      // scenario_loaded.cpp
Scenario maxpool_ties_scenario();      // scenarios_pool.cpp
Scenario batched_generation_scenario(); // scenarios_gpt.cpp
Scenario embedding_backward_scenario();
Scenario attention_split_scenario();

}  // namespace lockstep_cli::lab
