#include "metrics/text_format.h"

#include <cmath>

#include <fmt/format.h>

namespace cairn::metrics {

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_sample_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 9.007199254740992e15) {
    return fmt::format("{}", static_cast<int64_t>(value));
  }
  return fmt::format("{}", value);  // shortest round-trip form
}

void PrometheusText::family(std::string_view name, std::string_view type, std::string_view help) {
  if (declared_.find(name) != declared_.end()) return;
  declared_.emplace(name);
  std::string escaped_help;
  for (char c : help) {
    if (c == '\\') escaped_help += "\\\\";
    else if (c == '\n') escaped_help += "\\n";
    else escaped_help += c;
  }
  text_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, escaped_help, name, type);
}

void PrometheusText::sample(std::string_view name, const Labels& labels, double value) {
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    bool first = true;
    for (const auto& [label, label_value] : labels) {
      if (!first) text_ += ',';
      first = false;
      text_ += fmt::format("{}=\"{}\"", label, escape_label_value(label_value));
    }
    text_ += '}';
  }
  text_ += ' ';
  text_ += format_sample_value(value);
  text_ += '\n';
}

void PrometheusText::counter(std::string_view name, std::string_view help, double value) {
  family(name, "counter", help);
  sample(name, {}, value);
}

void PrometheusText::gauge(std::string_view name, std::string_view help, double value) {
  family(name, "gauge", help);
  sample(name, {}, value);
}

void PrometheusText::histogram_us(std::string_view name, const Labels& labels,
                                  const HistogramSnapshot& us) {
  const std::string bucket = std::string(name) + "_bucket";
  Labels with_le = labels;
  with_le.emplace_back("le", "");
  for (uint64_t bound : prometheus_bounds()) {
    // Values are whole microseconds, so "le = bound us" counts exactly the buckets up to it.
    with_le.back().second = format_sample_value(static_cast<double>(bound) / 1e6);
    sample(bucket, with_le, static_cast<double>(us.count_at_most(bound)));
  }
  with_le.back().second = "+Inf";
  sample(bucket, with_le, static_cast<double>(us.count));
  sample(std::string(name) + "_sum", labels, static_cast<double>(us.sum) / 1e6);
  sample(std::string(name) + "_count", labels, static_cast<double>(us.count));
}

}  // namespace cairn::metrics
