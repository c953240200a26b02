// Subcommands of the `lockstep` program; each lives in its own folder under tools/.
#pragma once
#include <CLI/CLI.hpp>

namespace lockstep_cli {

// Adds the subcommand to app; the callback runs it and records its exit code in *rc.
void add_demo(CLI::App& app, int* rc);     // demo/demo.cpp
void add_train(CLI::App& app, int* rc);    // train/train.cpp
void add_generate(CLI::App& app, int* rc); // generate/generate.cpp
void add_diff(CLI::App& app, int* rc);     // diff/diff.cpp
void add_inspect(CLI::App& app, int* rc);  // inspect/inspect.cpp: inspect and hash
void add_lab(CLI::App& app, int* rc);      // lab/lab.cpp
void add_lab_predict(CLI::App& app, int* rc);  // lab/scenario_loaded.cpp (hidden: the lab's child process)

}  // namespace lockstep_cli
