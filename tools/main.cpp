// The `lockstep` program. Errors print a message naming what was wrong and exit non-zero.
#include <cstdio>
#include <exception>

#include "commands.h"
#include "lockstep/config.h"

int main(int argc, char** argv) {
  CLI::App app{"lockstep " LOCKSTEP_VERSION ": bitwise-reproducible deep learning, and what breaks it"};
  app.require_subcommand(1);
  app.set_version_flag("--version", LOCKSTEP_VERSION);
  int rc = 0;
#ifndef LOCKSTEP_CLI_TRAIN_ONLY  // LOCKSTEP_CLI_COMMANDS=train (tools/CMakeLists.txt): the cross builds
  lockstep_cli::add_demo(app, &rc);
#endif
  lockstep_cli::add_train(app, &rc);
#ifndef LOCKSTEP_CLI_TRAIN_ONLY
  lockstep_cli::add_generate(app, &rc);
  lockstep_cli::add_diff(app, &rc);
  lockstep_cli::add_inspect(app, &rc);
  lockstep_cli::add_lab(app, &rc);
  lockstep_cli::add_lab_predict(app, &rc);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // usage errors (bad flags, values) exit 2
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lockstep: error: %s\n", e.what());
    return 1;
  }
  return rc;
}
