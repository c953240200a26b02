// Hand-written SVG plots of a scenario's curves: the problem's runs in warm colours, the
// fix's in cool ones, each second run dashed, so a curve hidden under another shows that the
// two runs coincide. Ticks fall on round values (1, 2 or 5 times a power of ten; decades on
// a log axis); the legend sits below the plot area, never over a curve. A strip plot
// (ScenarioResult::strip) draws each series as a column of points with its mean and +-1 sd.
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

constexpr double kSvgW = 720, kLeft = 80, kRight = 20, kTop = 44, kPlotH = 256, kLegendRow = 18;

// The tick step for [lo, hi] with about `target` intervals: 1, 2 or 5 times a power of ten.
double nice_step(double lo, double hi, int target) {
  const double raw = (hi - lo) / target;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * p >= raw) return m * p;
  return 10 * p;
}

// Linear ticks: *lo and *hi widened to multiples of the step; the ticks between them.
std::vector<double> nice_ticks(double* lo, double* hi, int target, double min_step = 0) {
  const double step = std::max(nice_step(*lo, *hi, target), min_step);
  *lo = std::floor(*lo / step + 1e-9) * step, *hi = std::ceil(*hi / step - 1e-9) * step;
  if (*hi <= *lo) *hi = *lo + step;
  std::vector<double> t;
  for (double v = *lo; v <= *hi + step * 1e-6; v += step) t.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return t;
}

// A tick label with as many decimals as the step needs: 0.05 -> "0.05", 2 -> "2".
std::string tick_text(double v, double step) {
  const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
  return strf("%.*f", decimals, v);
}

// "1e-5" style label of a decade, "1" and "10" spelled out.
std::string decade_text(double v) {
  const int e = static_cast<int>(std::lround(std::log10(v)));
  if (e >= 0 && e <= 3) return strf("%.0f", v);
  return strf("1e%d", e);
}

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
  std::vector<double> yticks;
  double ystep = 1;
  if (r.log_y) {
    if (!(lo <= hi)) lo = 1e-12, hi = 1e-11;
    lo = std::pow(10.0, std::floor(std::log10(lo)) - 1), hi = std::pow(10.0, std::ceil(std::log10(hi)));
    for (const Series& c : r.curves)
      for (double v : c.y) has_floor = has_floor || v <= 0;
    for (double e = std::log10(lo); e <= std::log10(hi) + 1e-9; e += 1) yticks.push_back(std::pow(10.0, e));
    while (yticks.size() > 9) {  // keep every other decade
      std::vector<double> t;
      for (size_t i = 0; i < yticks.size(); i += 2) t.push_back(yticks[i]);
      yticks = t;
    }
  } else {
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) lo -= 0.5 * std::max(1e-3, std::fabs(hi)), hi = 2 * hi - lo;
    const double pad = 0.04 * (hi - lo);
    lo -= pad, hi += pad;
    yticks = nice_ticks(&lo, &hi, 5);
    ystep = yticks.size() > 1 ? yticks[1] - yticks[0] : 1;
  }
  // x: steps 0..n-1 on round integer ticks, or one column per series in a strip plot.
  double xlo = 0, xhi = static_cast<double>(n > 1 ? n - 1 : 1);
  std::vector<double> xticks;
  if (!r.strip) {  // the range stays the data's; ticks at the round values inside it
    double tlo = xlo, thi = xhi;
    for (double t : nice_ticks(&tlo, &thi, 6, 1.0))
      if (t >= xlo - 1e-9 && t <= xhi + 1e-9) xticks.push_back(t);
  }
  const double xstep = xticks.size() > 1 ? xticks[1] - xticks[0] : 1;  // for the labels' decimals
  const size_t legend_rows = r.strip ? 0 : (r.curves.size() + 1) / 2;
  const double kSvgH = kTop + kPlotH + 60 + kLegendRow * static_cast<double>(legend_rows) + (r.log_y ? 18 : 0);
  const double pw = kSvgW - kLeft - kRight, ph = kPlotH;
  const size_t ncat = std::max<size_t>(1, r.curves.size());
  auto X = [&](double i) {
    if (r.strip) return kLeft + pw * (i + 0.5) / static_cast<double>(ncat);
    return kLeft + pw * (i - xlo) / (xhi - xlo);
  };
  auto Y = [&](double v) {
    double t = r.log_y ? (std::log10(std::max(v, lo)) - std::log10(lo)) / (std::log10(hi) - std::log10(lo))
                       : (v - lo) / (hi - lo);
    return kTop + ph * (1 - t);
  };

  std::string o = strf("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                       "viewBox=\"0 0 %.0f %.0f\" font-family=\"sans-serif\" font-size=\"12\">\n",
                       kSvgW, kSvgH, kSvgW, kSvgH);
  o += strf("<rect width=\"%.0f\" height=\"%.0f\" fill=\"white\"/>\n", kSvgW, kSvgH);
  o += strf("<text x=\"%.0f\" y=\"22\" font-size=\"15\" font-weight=\"bold\">%s</text>\n", kLeft,
            xml_escape("lockstep lab: " + s.name).c_str());
  o += strf("<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#444\"/>\n", kLeft,
            kTop, pw, ph);
  for (double t : yticks) {
    o += strf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", kLeft, Y(t), kLeft + pw,
              Y(t));
    o += strf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", kLeft - 6, Y(t) + 4,
              xml_escape(r.log_y ? decade_text(t) : tick_text(t, ystep)).c_str());
  }
  if (r.strip) {
    for (size_t k = 0; k < r.curves.size(); ++k)
      o += strf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", X(double(k)), kTop + ph + 16,
                xml_escape(r.curves[k].label).c_str());
  } else {
    for (double t : xticks)
      o += strf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", X(t), kTop + ph + 16,
                tick_text(t, xstep).c_str());
  }
  o += strf("<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s</text>\n", kLeft + pw / 2, kTop + ph + 36,
            xml_escape(r.x_label).c_str());
  o += strf("<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">%s%s</text>\n", kTop + ph / 2,
            xml_escape(r.y_label).c_str(), r.log_y ? " (log scale)" : "");
  // Problem curves cycle red, orange (dashed), purple; fix curves blue, green (dashed).
  const char* warm[] = {"#d62728", "#ff7f0e", "#9467bd"};
  const char* cool[] = {"#1f77b4", "#2ca02c"};
  if (r.strip) {
    // One column per series: points spread by a fixed pattern (no randomness), mean bar, +-1 sd.
    for (size_t k = 0; k < r.curves.size(); ++k) {
      const Series& c = r.curves[k];
      const char* colour = c.problem ? warm[0] : cool[0];
      double m = 0, q = 0, cnt = 0;
      for (size_t i = 0; i < c.y.size(); ++i) {
        if (!std::isfinite(c.y[i])) continue;
        const double jitter = (static_cast<double>((i * 7) % 11) - 5.0) * 0.025 * pw / static_cast<double>(ncat);
        o += strf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\" fill-opacity=\"0.6\"/>\n", X(double(k)) + jitter,
                  Y(c.y[i]), colour);
        m += c.y[i], cnt += 1;
      }
      if (cnt < 1) continue;
      m /= cnt;
      for (double v : c.y)
        if (std::isfinite(v)) q += (v - m) * (v - m);
      const double sd = cnt > 1 ? std::sqrt(q / (cnt - 1)) : 0, hw = 0.22 * pw / static_cast<double>(ncat);
      o += strf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#222\" stroke-width=\"2\"/>\n",
                X(double(k)) - hw, Y(m), X(double(k)) + hw, Y(m));
      o += strf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#222\"/>\n", X(double(k)) + hw + 8,
                Y(m - sd), X(double(k)) + hw + 8, Y(m + sd));
    }
    o += strf("<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">one dot per seed; bar: mean; whisker: +-1 sd</text>\n", kLeft,
              kSvgH - 8);
    return o + "</svg>\n";
  }
  int nw = 0, nc = 0;
  const double ly = kTop + ph + 60;
  for (size_t k = 0; k < r.curves.size(); ++k) {
    const Series& c = r.curves[k];
    int idx = c.problem ? nw++ : nc++;
    const char* colour = c.problem ? warm[idx % 3] : cool[idx % 2];
    const char* dash = idx % 2 ? " stroke-dasharray=\"6 4\"" : "";
    std::string pts;
    for (size_t i = 0; i < c.y.size(); ++i)
      if (std::isfinite(c.y[i])) pts += strf("%.1f,%.1f ", X(double(i)), Y(c.y[i]));
    o += strf("<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s points=\"%s\"/>\n", colour,
              idx % 2 ? "1.5" : "2.5", dash, pts.c_str());
    if (c.y.size() <= 25)
      for (size_t i = 0; i < c.y.size(); ++i)
        if (std::isfinite(c.y[i]))
          o += strf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n", X(double(i)), Y(c.y[i]), colour);
    // Legend below the plot area, two columns.
    const double lx = kLeft + static_cast<double>(k % 2) * pw / 2, yy = ly + kLegendRow * static_cast<double>(k / 2);
    o += strf("<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2.5\"%s/>\n", lx,
              yy - 4, lx + 28, yy - 4, colour, dash);
    o += strf("<text x=\"%.1f\" y=\"%.1f\">%s</text>\n", lx + 34, yy, xml_escape(c.label).c_str());
  }
  if (has_floor)
    o += strf("<text x=\"%.1f\" y=\"%.1f\" fill=\"#555\">values of 0 (identical) are drawn on the bottom edge</text>\n",
              kLeft, kSvgH - 8);
  o += "</svg>\n";
  return o;
}

}  // namespace lockstep_cli::lab
