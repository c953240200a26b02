// Subcommands of the `lockstep` program; each lives in its own file.
#pragma once
#include <CLI/CLI.hpp>

namespace lockstep_cli {

// Adds the subcommand to app; the callback runs it and records its exit code in *rc.
void add_demo(CLI::App& app, int* rc);
void add_train(CLI::App& app, int* rc);    // train.cpp
void add_diff(CLI::App& app, int* rc);     // diff.cpp
void add_inspect(CLI::App& app, int* rc);  // inspect.cpp: inspect and hash
void add_lab(CLI::App& app, int* rc);

}  // namespace lockstep_cli
