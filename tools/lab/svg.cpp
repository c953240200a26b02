// Hand-written SVG line plots of a scenario's curves: the problem's runs in warm colours,
// the fix's in cool ones, each second run dashed, so a curve hidden under another shows
// that the two runs coincide.
#include <algorithm>
#include <cmath>
#include <limits>

#include "harness.h"
#include "report.h"

namespace lockstep_cli::lab {

namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

constexpr double kW = 720, kH = 420, kLeft = 80, kRight = 20, kTop = 44, kBottom = 120;

}  // namespace

std::string plot_svg(const Scenario& s, const ScenarioResult& r) {
  // y range over the finite values (log: the positive ones; zeros are drawn on the floor).
  double lo = std::numeric_limits<double>::infinity(), hi = -lo;
  size_t n = 1;
  for (const Series& c : r.curves) {
    n = std::max(n, c.y.size());
    for (double v : c.y)
      if (std::isfinite(v) && (!r.log_y || v > 0)) lo = std::min(lo, v), hi = std::max(hi, v);
  }
  bool has_floor = false;
  if (r.log_y) {
    if (!(lo <= hi)) lo = 1e-12, hi = 1e-11;
    lo = std::pow(10.0, std::floor(std::log10(lo)) - 1), hi = std::pow(10.0, std::ceil(std::log10(hi)));
    for (const Series& c : r.curves)
      for (double v : c.y) has_floor = has_floor || v <= 0;
  } else {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) lo -= 0.5, hi += 0.5;
    const double pad = 0.05 * (hi - lo);
    lo -= pad, hi += pad;
  }
  const double pw = kW - kLeft - kRight, ph = kH - kTop - kBottom;
  auto X = [&](size_t i) { return kLeft + (n > 1 ? pw * double(i) / double(n - 1) : pw / 2); };
  auto Y = [&](double v) {
    double t = r.log_y ? (std::log10(std::max(v, lo)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                       : (v - lo) / (hi - lo);
    return kTop + ph * (1 - t);
  };

  std::string o = strf("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                       "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
                       kW, kH, kW, kH);
  o += strf("<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", kW, kH);
  o += strf("<text x=\"%.0f\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", kLeft,
            xml_escape("lockstep lab: " + s.name).c_str());
  // Axes, ticks and grid.
  o += strf("<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n", kLeft,
            kTop, pw, ph);
  std::vector<double> ticks;
  if (r.log_y) {
    for (double e = std::log10(lo); e <= std::log10(hi) + 1e-9; e += 1) ticks.push_back(std::pow(10.0, e));
    while (ticks.size() > 9) {  // keep every other decade
      std::vector<double> t;
      for (size_t i = 0; i < ticks.size(); i += 2) t.push_back(ticks[i]);
      ticks = t;
    }
  } else {
    for (int i = 0; i <= 5; ++i) ticks.push_back(lo + (hi - lo) * i / 5);
  }
  for (double t : ticks) {
    o += strf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", kLeft, Y(t), kLeft + pw, Y(t));
    o += strf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", kLeft - 6, Y(t) + 4,
              xml_escape(r.log_y ? strf("1e%.0f", std::log10(t)) : strf("%.4g", t)).c_str());
  }
  for (int i = 0; i <= 4; ++i) {
    size_t xi = (n - 1) * i / 4;
    o += strf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%zu</text>\n", X(xi), kTop + ph + 16, xi);
  }
  o += strf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", kLeft + pw / 2, kTop + ph + 34,
            xml_escape(r.x_label).c_str());
  o += strf("<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">%s%s</text>\n", kTop + ph / 2,
            xml_escape(r.y_label).c_str(), r.log_y ? " (log scale)" : "");
  // Curves: problem red/orange, fix blue/green; the second of each pair dashed.
  const char* warm[] = {"#d62728", "#ff7f0e"};
  const char* cool[] = {"#1f77b4", "#2ca02c"};
  int nw = 0, nc = 0;
  double ly = kTop + ph + 56;
  for (size_t k = 0; k < r.curves.size(); ++k) {
    const Series& c = r.curves[k];
    int idx = c.problem ? nw++ : nc++;
    const char* colour = c.problem ? warm[idx % 2] : cool[idx % 2];
    const char* dash = idx % 2 ? " stroke-dasharray=\"6 4\"" : "";
    std::string pts;
    for (size_t i = 0; i < c.y.size(); ++i)
      if (std::isfinite(c.y[i])) pts += strf("%.1f,%.1f ", X(i), Y(c.y[i]));
    o += strf("<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s points=\"%s\"/>\n", colour,
              idx % 2 ? "1.5" : "2.5", dash, pts.c_str());
    if (c.y.size() <= 25)
      for (size_t i = 0; i < c.y.size(); ++i)
        if (std::isfinite(c.y[i])) o += strf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", X(i), Y(c.y[i]), colour);
    // Legend, two columns.
    const double lx = kLeft + (k % 2) * pw / 2, yy = ly + 18.0 * double(k / 2);
    o += strf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n", lx,
              yy - 4, lx + 28, yy - 4, colour, dash);
    o += strf("<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx + 34, yy, xml_escape(c.label).c_str());
  }
  if (has_floor)
    o += strf("<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">values of 0 (identical) are drawn on the bottom edge</text>\n",
              kLeft, kH - 8);
  o += "</svg>\n";
  return o;
}

}  // namespace lockstep_cli::lab
