#pragma once
// The orchestrator's web dashboard: one page, served by the orchestrator with everything it uses
// (the chart library is compiled in, web_assets.h; nothing comes from another host). It polls
// the JSON API every two seconds and shows the cluster's health, ops/s and p99 over time, the
// ring coloured by load, shards, hot shards and keys, migrations with progress, the capacity
// projection, machines and the events.

#include <string_view>

namespace cairn::orchestrator {

// The HTML of the dashboard, served at GET /.
std::string_view dashboard_html();

}  // namespace cairn::orchestrator
