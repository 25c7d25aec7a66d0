#pragma once
// PrometheusText: writes the Prometheus text exposition format (version 0.0.4), the body of a
// GET /metrics. A family is declared once (HELP and TYPE lines) and its samples follow it; label
// values are escaped (\\, \", \n); a histogram writes its cumulative _bucket lines (le bounds in
// seconds from microsecond buckets), +Inf, _sum and _count.
//
//   PrometheusText out;
//   out.family("cairn_commands_total", "counter", "Commands served.");
//   out.sample("cairn_commands_total", {{"command", "get"}, {"outcome", "ok"}}, 12);
//   response.body = out.text();

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/histogram.h"

namespace cairn::metrics {

using Labels = std::vector<std::pair<std::string_view, std::string>>;

inline constexpr std::string_view kPrometheusContentType = "text/plain; version=0.0.4; charset=utf-8";

// A label value with \, " and newline escaped.
std::string escape_label_value(std::string_view value);
// A sample value: integers without a fraction, "NaN", "+Inf", "-Inf".
std::string format_sample_value(double value);

class PrometheusText {
 public:
  // Declares a family: type is "counter", "gauge", "histogram" or "untyped". A second
  // declaration of the same name is ignored (its samples must still follow the first).
  void family(std::string_view name, std::string_view type, std::string_view help);
  void sample(std::string_view name, const Labels& labels, double value);
  // family + one unlabelled sample.
  void counter(std::string_view name, std::string_view help, double value);
  void gauge(std::string_view name, std::string_view help, double value);
  // The samples of one histogram series from microsecond buckets, in seconds.
  void histogram_us(std::string_view name, const Labels& labels, const HistogramSnapshot& us);

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::set<std::string, std::less<>> declared_;
};

}  // namespace cairn::metrics
