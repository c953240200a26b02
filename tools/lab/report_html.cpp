// report.html: one page linking every scenario's section, plot and text, with no external
// resources (viewable offline from the report directory). On load, a few lines of script
// count the images that rendered and write "ok N/N" (or "missing K/N", K not drawn) into the body's
// data-images attribute, which the headless-browser test reads (tests/lab_report_html.sh).
#include "harness.h"
#include "report.h"

namespace lockstep_cli::lab {

namespace {

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else if (c == '"')
      out += "&quot;";
    else
      out += c;
  }
  return out;
}

const char* kStyle =
    "body{font-family:sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;line-height:1.4}"
    "table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:left}"
    ".ok{color:#1a7f37}.FAIL{color:#b00;font-weight:bold}.skipped{color:#777}"
    "img{max-width:100%;border:1px solid #ddd}section{border-top:1px solid #ddd;margin-top:1.5em}"
    "pre{background:#f6f8fa;padding:.5em;overflow-x:auto}";

// Images rendered (complete, non-zero width) out of all, written on the body for tests.
const char* kImageCheck =
    "<script>window.addEventListener('load',function(){var im=document.images,ok=0;"
    "for(var i=0;i<im.length;i++)if(im[i].complete&&im[i].naturalWidth>0)ok++;"
    "document.body.setAttribute('data-images',ok==im.length?'ok '+ok+'/'+im.length:'missing "
    "'+(im.length-ok)+'/'+im.length);"
    "});</script>\n";

}  // namespace

std::string report_html(const std::vector<LabRun>& runs, const LabOptions& o, double total_seconds,
                        const std::string& command) {
  std::string h =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>lockstep lab report</title>"
      "<style>" +
      std::string(kStyle) + "</style></head>\n<body data-images=\"pending\">\n";
  h += "<h1>lockstep lab report</h1>\n<p>Command: <code>" + html_escape(command) + "</code><br>" +
       strf("Settings: %s, %d threads; wall time %.1f s.", o.quick ? "quick" : "full", o.threads, total_seconds) +
       "</p>\n<p>The same report as text: <a href=\"report.md\">report.md</a>, "
       "<a href=\"report.json\">report.json</a>.</p>\n";
  h += "<p>Each scenario runs twice as the <em>problem</em> and twice as the <em>fix</em>; the columns say whether "
       "the two runs gave identical bits and the largest difference between them.</p>\n<table>\n<tr><th>scenario</th>"
       "<th>what changed</th><th>problem: identical?</th><th>max |&Delta;|</th><th>fix: identical?</th>"
       "<th>max |&Delta;|</th><th>check</th><th>plot</th></tr>\n";
  for (const LabRun& run : runs) {
    const Scenario& s = *run.scenario;
    const ScenarioResult& r = run.result;
    const std::string link = "<a href=\"#" + s.name + "\">" + s.name + "</a>";
    if (r.skipped) {
      h += "<tr class=\"skipped\"><td>" + link + "</td><td>" + html_escape(s.changes) + "</td><td colspan=\"6\">" +
           html_escape(r.skip_reason) + "</td></tr>\n";
      continue;
    }
    const std::string check = scenario_ok(s, r) ? "ok" : "FAIL";
    h += "<tr><td>" + link + "</td><td>" + html_escape(s.changes) + "</td><td>" + (r.problem.identical ? "yes" : "no") +
         "</td><td>" + format_delta(r.problem.max_abs_delta) + "</td><td>" + (r.fix.identical ? "yes" : "no") +
         "</td><td>" + format_delta(r.fix.max_abs_delta) + "</td><td class=\"" + check + "\">" + check + "</td><td>" +
         (r.curves.empty() ? "" : "<a href=\"" + s.name + ".svg\">" + s.name + ".svg</a>") + "</td></tr>\n";
  }
  h += "</table>\n";
  for (const LabRun& run : runs) {
    const Scenario& s = *run.scenario;
    const ScenarioResult& r = run.result;
    h += "<section id=\"" + s.name + "\">\n<h2>" + s.name + "</h2>\n<p>" + html_escape(s.description) + ".</p>\n";
    if (r.skipped) {
      h += "<p class=\"skipped\">" + html_escape(r.skip_reason) + "</p>\n</section>\n";
      continue;
    }
    h += "<ul><li>what changes between the problem's two runs: " + html_escape(s.changes) + "</li>";
    h += "<li>compared: " + html_escape(r.compared) + "</li>";
    h += "<li>problem: " + std::string(r.problem.identical ? "identical bits" : "different bits") + ", max |&Delta;| " +
         format_delta(r.problem.max_abs_delta) + (s.inherent ? " (inherent)" : " (timing-dependent)") + "</li>";
    h += "<li>fix: " + std::string(r.fix.identical ? "identical bits" : "different bits") + ", max |&Delta;| " +
         format_delta(r.fix.max_abs_delta) + "</li>";
    h += strf("<li>time: %.1f s</li></ul>\n", run.seconds);
    if (!r.note.empty()) h += "<p>" + html_escape(r.note) + "</p>\n";
    if (r.extra.contains("culprit_report") && r.extra["culprit_report"].is_string())
      h += "<pre>" + html_escape(r.extra["culprit_report"].get<std::string>()) + "</pre>\n";
    if (!r.curves.empty())
      h += "<p><a href=\"" + s.name + ".svg\"><img src=\"" + s.name + ".svg\" alt=\"plot: " + s.name +
           "\" width=\"720\"></a></p>\n";
    h += "<p><a href=\"#\">back to the table</a></p>\n</section>\n";
  }
  return h + kImageCheck + "</body></html>\n";
}

}  // namespace lockstep_cli::lab
