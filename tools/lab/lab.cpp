// `lockstep lab`: the nondeterminism lab. Each scenario runs twice as the problem and twice
// as the fix; the table says whether each pair gave identical bits. See docs/lab.md.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "base/parallel.h"
#include "lab/harness.h"
#include "lab/lab.h"
#include "lab/report.h"

namespace lockstep_cli {
namespace {

struct LabFlags {
  std::vector<std::string> names;
  bool list = false, json = false, check = false;
  std::string report_dir;
  lab::LabOptions options;
  std::string command;  // as typed, for the report
};

int list_scenarios() {
  for (const lab::Scenario& s : lab::scenarios())
    std::printf("%-18s %-9s %s\n", s.name.c_str(), s.inherent ? "inherent" : "likely", s.description.c_str());
  return 0;
}

int run_lab(const LabFlags& f) {
  if (f.list) return list_scenarios();
  std::vector<const lab::Scenario*> chosen;
  for (const std::string& n : f.names) {
    const lab::Scenario* s = lab::find_scenario(n);
    if (!s) {
      std::fprintf(stderr, "lockstep lab: unknown scenario '%s' (`lockstep lab --list` shows the %zu scenarios)\n",
                   n.c_str(), lab::scenarios().size());
      return 2;
    }
    chosen.push_back(s);
  }
  if (chosen.empty())
    for (const lab::Scenario& s : lab::scenarios()) chosen.push_back(&s);

  using clock = std::chrono::steady_clock;
  lockstep::ThreadsGuard tg(f.options.threads);
  const auto t0 = clock::now();
  std::vector<lab::LabRun> runs;
  for (size_t i = 0; i < chosen.size(); ++i) {
    std::fprintf(stderr, "[%zu/%zu] %s ...\n", i + 1, chosen.size(), chosen[i]->name.c_str());
    const auto s0 = clock::now();
    lab::LabRun run;
    run.scenario = chosen[i];
    run.result = chosen[i]->run(f.options);
    run.seconds = std::chrono::duration<double>(clock::now() - s0).count();
    runs.push_back(std::move(run));
  }
  const double total = std::chrono::duration<double>(clock::now() - t0).count();

  std::printf("%s", lab::table_text(runs).c_str());
  for (const lab::LabRun& r : runs)
    if (!r.result.skipped && !r.result.note.empty())
      std::printf("  %s: %s\n", r.scenario->name.c_str(), r.result.note.c_str());
  std::printf("%zu scenarios in %.1f s (%s, %d threads)\n", runs.size(), total, f.options.quick ? "quick" : "full",
              f.options.threads);
  if (!f.report_dir.empty()) {
    lab::write_reports(f.report_dir, runs, f.options, total, f.command);
    std::printf("report: %s/report.html (with report.md, report.json and one SVG per scenario)\n", f.report_dir.c_str());
  }

  bool ok = true, all_skipped = true;
  for (const lab::LabRun& r : runs) {
    ok = ok && lab::scenario_ok(*r.scenario, r.result);
    all_skipped = all_skipped && r.result.skipped;
  }
  if (f.check && !ok) std::printf("check FAILED: a fix was not bit-identical or an inherent problem showed no difference\n");
  if (f.json) std::printf("%s\n", lab::report_json(runs, f.options, total, false).dump().c_str());
  if (!f.check) return 0;
  if (!ok) return 1;
  return all_skipped ? 77 : 0;  // 77: ctest's SKIP_RETURN_CODE (cpu-vs-gpu without a GPU)
}

}  // namespace

void add_lab(CLI::App& app, int* rc) {
  auto f = std::make_shared<LabFlags>();
  CLI::App* sub = app.add_subcommand("lab", "the nondeterminism lab: each scenario's problem and fix, compared bit for bit");
  sub->add_option("scenarios", f->names, "scenario names (default: all; see --list)");
  sub->add_flag("--list", f->list, "list the scenarios and exit");
  sub->add_flag("--quick", f->options.quick, "smaller data and fewer steps (the whole lab in well under 3 minutes)");
  sub->add_option("--seeds", f->options.seeds, "seeds for seed-variance (default 4 with --quick, else 16)")
      ->check(CLI::Range(1, 100));
  sub->add_option("--report", f->report_dir, "write report.html, report.md, report.json and SVG plots into this directory");
  sub->add_option("--threads", f->options.threads, "CPU threads (default 2)")->check(CLI::Range(1, 256));
  sub->add_option("--data", f->options.data_dir, "Fashion-MNIST directory (default /usr/share/datasets/fashion-mnist)");
  sub->add_flag("--json", f->json, "print a machine-readable summary as the last line");
  sub->add_flag("--check", f->check,
                "exit 1 if a fix is not bit-identical or an inherent problem shows no difference; 77 if all skipped");
  sub->callback([f, rc] {
    // The command as the report quotes it, rebuilt from the parsed flags.
    f->command = "lockstep lab";
    if (f->options.quick) f->command += " --quick";
    if (f->options.seeds > 0) f->command += " --seeds " + std::to_string(f->options.seeds);
    f->command += " --threads " + std::to_string(f->options.threads);
    if (!f->options.data_dir.empty()) f->command += " --data " + f->options.data_dir;
    if (!f->report_dir.empty()) f->command += " --report " + f->report_dir;
    for (const std::string& n : f->names) f->command += " " + n;
    *rc = run_lab(*f);
  });
}

}  // namespace lockstep_cli
