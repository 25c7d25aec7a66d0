#include "metrics/text_format.h"

#include <cmath>
#include <limits>

#include <gtest/gtest.h>

namespace cairn::metrics {
namespace {

TEST(PrometheusText, FamiliesAndSamples) {
  PrometheusText out;
  out.family("cairn_commands_total", "counter", "Commands served.");
  out.sample("cairn_commands_total", {{"command", "get"}, {"outcome", "ok"}}, 12);
  out.family("cairn_commands_total", "counter", "declared twice: ignored");
  out.gauge("cairn_keys", "Keys stored.", 1.5);
  EXPECT_EQ(out.text(),
            "# HELP cairn_commands_total Commands served.\n"
            "# TYPE cairn_commands_total counter\n"
            "cairn_commands_total{command=\"get\",outcome=\"ok\"} 12\n"
            "# HELP cairn_keys Keys stored.\n"
            "# TYPE cairn_keys gauge\n"
            "cairn_keys 1.5\n");
}

TEST(PrometheusText, EscapesLabelValuesAndSpecialNumbers) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(format_sample_value(0), "0");
  EXPECT_EQ(format_sample_value(1e20), "1e+20");
  EXPECT_EQ(format_sample_value(0.25), "0.25");
  EXPECT_EQ(format_sample_value(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_sample_value(std::nan("")), "NaN");
}

TEST(PrometheusText, HistogramBucketsAreCumulativeInSeconds) {
  LogHistogram h;
  h.record(1);     // 1 us
  h.record(100);   // 100 us
  h.record(5000);  // 5 ms
  PrometheusText out;
  out.family("d_seconds", "histogram", "Durations.");
  out.histogram_us("d_seconds", {{"command", "set"}}, h.snapshot());
  const std::string& text = out.text();
  EXPECT_NE(text.find("d_seconds_bucket{command=\"set\",le=\"1e-06\"} 1\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_bucket{command=\"set\",le=\"0.000127\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_bucket{command=\"set\",le=\"0.008191\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_bucket{command=\"set\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_sum{command=\"set\"} 0.005101\n"), std::string::npos);
  EXPECT_NE(text.find("d_seconds_count{command=\"set\"} 3\n"), std::string::npos);
  // Cumulative: never decreasing along the bounds.
  uint64_t previous = 0;
  size_t at = 0;
  while ((at = text.find("_bucket{", at)) != std::string::npos) {
    const size_t space = text.find(' ', at);
    const uint64_t value = std::stoull(text.substr(space + 1));
    EXPECT_GE(value, previous);
    previous = value;
    at = space;
  }
}

}  // namespace
}  // namespace cairn::metrics
