#include "report.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "harness.h"

namespace lockstep_cli::lab {

namespace {

std::string identical_text(const Scenario& s, const PairResult& p, bool is_problem) {
  if (!is_problem || s.inherent) return p.identical ? "yes" : "no";
  // A likely difference: say what was seen.
  return p.identical ? "yes (not seen)" : "no (seen)";
}

struct Row {
  std::string name, changed, p_same, p_delta, f_same, f_delta, check;
};

std::vector<Row> rows(const std::vector<LabRun>& runs) {
  std::vector<Row> out;
  for (const LabRun& run : runs) {
    const Scenario& s = *run.scenario;
    const ScenarioResult& r = run.result;
    if (r.skipped) {
      out.push_back({s.name, s.changes, r.skip_reason, "", "", "", "skipped"});
      continue;
    }
    out.push_back({s.name, s.changes, identical_text(s, r.problem, true), format_delta(r.problem.max_abs_delta),
                   identical_text(s, r.fix, false), format_delta(r.fix.max_abs_delta),
                   scenario_ok(s, r) ? "ok" : "FAIL"});
  }
  return out;
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
  if (!f) throw std::runtime_error("[lab] cannot write " + path);
}

}  // namespace

std::string format_delta(double d) {
  if (d == 0) return "0";
  if (std::isinf(d)) return "inf";
  return strf("%.3g", d);
}

std::string table_text(const std::vector<LabRun>& runs) {
  const std::vector<Row> rs = rows(runs);
  size_t w[7] = {8, 12, 16, 9, 12, 9, 5};
  for (const Row& r : rs) {
    const std::string* f[7] = {&r.name, &r.changed, &r.p_same, &r.p_delta, &r.f_same, &r.f_delta, &r.check};
    for (int i = 0; i < 7; ++i)
      if (!(r.check == "skipped" && i == 2)) w[i] = std::max(w[i], f[i]->size());
  }
  auto line = [&](const std::vector<std::string>& c) {
    std::string out;
    for (size_t i = 0; i < c.size(); ++i) {
      out += c[i];
      if (i + 1 < c.size()) out += std::string(w[i] > c[i].size() ? w[i] - c[i].size() + 2 : 2, ' ');
    }
    return out + "\n";
  };
  std::string out = line({"scenario", "what changed", "problem: same?", "max |d|", "fix: same?", "max |d|", "check"});
  for (const Row& r : rs) {
    if (r.check == "skipped")
      out += line({r.name, r.changed, r.p_same});
    else
      out += line({r.name, r.changed, r.p_same, r.p_delta, r.f_same, r.f_delta, r.check});
  }
  return out;
}

std::string table_markdown(const std::vector<LabRun>& runs) {
  std::string out =
      "| scenario | what changed | problem: identical bits? | problem max \\|Δ\\| | fix: identical bits? | fix max "
      "\\|Δ\\| | check |\n|---|---|---|---|---|---|---|\n";
  for (const Row& r : rows(runs))
    out += "| " + r.name + " | " + r.changed + " | " + r.p_same + " | " + r.p_delta + " | " + r.f_same + " | " +
           r.f_delta + " | " + r.check + " |\n";
  return out;
}

nlohmann::json report_json(const std::vector<LabRun>& runs, const LabOptions& o, double total_seconds, bool curves) {
  nlohmann::json j;
  j["quick"] = o.quick;
  j["threads"] = o.threads;
  j["seconds"] = total_seconds;
  bool ok = true;
  j["scenarios"] = nlohmann::json::array();
  for (const LabRun& run : runs) {
    const Scenario& s = *run.scenario;
    const ScenarioResult& r = run.result;
    nlohmann::json e;
    e["name"] = s.name;
    e["inherent"] = s.inherent;
    e["skipped"] = r.skipped;
    e["ok"] = scenario_ok(s, r);
    e["seconds"] = run.seconds;
    ok = ok && scenario_ok(s, r);
    if (r.skipped) {
      e["skip_reason"] = r.skip_reason;
    } else {
      // max |d| as text too: JSON has no infinity.
      auto pair = [](const PairResult& p) {
        return nlohmann::json{{"identical", p.identical},
                              {"max_abs_delta", std::isinf(p.max_abs_delta) ? -1.0 : p.max_abs_delta},
                              {"max_abs_delta_text", format_delta(p.max_abs_delta)}};
      };
      e["problem"] = pair(r.problem);
      e["fix"] = pair(r.fix);
    }
    if (curves) {
      e["description"] = s.description;
      e["changes"] = s.changes;
      e["compared"] = r.compared;
      e["note"] = r.note;
      e["extra"] = r.extra;
      nlohmann::json cs = nlohmann::json::array();
      for (const Series& c : r.curves) cs.push_back({{"label", c.label}, {"problem", c.problem}, {"y", c.y}});
      e["curves"] = cs;
    }
    j["scenarios"].push_back(e);
  }
  j["ok"] = ok;
  return j;
}

void write_reports(const std::string& dir, const std::vector<LabRun>& runs, const LabOptions& o,
                   double total_seconds, const std::string& command) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error("[lab] cannot create the report directory " + dir + ": " + ec.message());
  std::string md = "# lockstep lab report\n\nCommand: `" + command + "`  \n" +
                   strf("Settings: %s, %d threads; wall time %.1f s.\n\n", o.quick ? "quick" : "full", o.threads,
                        total_seconds) +
                   "Each scenario runs twice as the *problem* and twice as the *fix*; the columns say whether the "
                   "two runs gave identical bits and the largest difference between them. \"(seen)\" / \"(not "
                   "seen)\" mark problems whose difference depends on timing.\n\n" +
                   table_markdown(runs) + "\n";
  for (const LabRun& run : runs) {
    const Scenario& s = *run.scenario;
    const ScenarioResult& r = run.result;
    md += "## " + s.name + "\n\n" + s.description + ".\n\n";
    if (r.skipped) {
      md += r.skip_reason + "\n\n";
      continue;
    }
    md += "- what changes between the problem's two runs: " + s.changes + "\n";
    md += "- compared: " + r.compared + "\n";
    md += "- problem: " + std::string(r.problem.identical ? "identical bits" : "different bits") +
          ", max |Δ| " + format_delta(r.problem.max_abs_delta) + (s.inherent ? " (inherent)" : " (timing-dependent)") +
          "\n";
    md += "- fix: " + std::string(r.fix.identical ? "identical bits" : "different bits") + ", max |Δ| " +
          format_delta(r.fix.max_abs_delta) + "\n";
    if (!r.note.empty()) md += "- " + r.note + "\n";
    md += strf("- time: %.1f s\n\n", run.seconds);
    if (!r.curves.empty()) {
      md += "![" + s.name + "](" + s.name + ".svg)\n\n";
      write_file(dir + "/" + s.name + ".svg", plot_svg(s, r));
    }
  }
  write_file(dir + "/report.md", md);
  write_file(dir + "/report.json", report_json(runs, o, total_seconds, true).dump(1) + "\n");
  write_file(dir + "/report.html", report_html(runs, o, total_seconds, command));
}

}  // namespace lockstep_cli::lab
