// The lab's reports: the table on stdout, report.md, report.json and one SVG per scenario.
#pragma once
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab.h"

namespace lockstep_cli::lab {

struct LabRun {
  const Scenario* scenario = nullptr;
  ScenarioResult result;
  double seconds = 0;  // wall time of the scenario
};

// The table (fixed-width text): scenario, what changed, problem identical? and max |d|,
// fix identical? and max |d|, and whether the scenario kept the lab's promise.
std::string table_text(const std::vector<LabRun>& runs);
// The same table in Markdown.
std::string table_markdown(const std::vector<LabRun>& runs);
// Everything: settings, per scenario the description, results, note, extra numbers and,
// with curves, the plotted series.
nlohmann::json report_json(const std::vector<LabRun>& runs, const LabOptions& o, double total_seconds, bool curves);
// Writes report.md, report.json, report.html and <scenario>.svg into dir (created if needed); throws
// std::runtime_error naming the file that could not be written.
void write_reports(const std::string& dir, const std::vector<LabRun>& runs, const LabOptions& o,
                   double total_seconds, const std::string& command);

// report.html: the table linking each scenario's section, its plot and its text; no
// external resources (report_html.cpp).
std::string report_html(const std::vector<LabRun>& runs, const LabOptions& o, double total_seconds,
                        const std::string& command);

// The scenario's curves as a hand-written SVG line plot (log y axis when r.log_y).
std::string plot_svg(const Scenario& s, const ScenarioResult& r);

// "0" for zero, else 3 significant digits; "inf" for infinity.
std::string format_delta(double d);

}  // namespace lockstep_cli::lab
