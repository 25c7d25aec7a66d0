#pragma once
// The orchestrator's web dashboard: one static page (no external assets) that polls the JSON API
// every two seconds and shows the cluster: status, machines, shards, the ring and recent events.

#include <string_view>

namespace cairn::orchestrator {

// The HTML of the dashboard, served at GET /.
std::string_view dashboard_html();

}  // namespace cairn::orchestrator
