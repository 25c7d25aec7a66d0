#pragma once
// Tables for the topology tests: machines 1..n on 127.0.0.<id>, and make_initial over them.

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "topology/routing_table.h"

namespace cairn::topology::test {

inline std::vector<Machine> make_machines(size_t count) {
  std::vector<Machine> machines;
  for (size_t i = 1; i <= count; ++i) {
    machines.push_back(Machine{i, "127.0.0." + std::to_string(i) + ":7000",
                               "127.0.0." + std::to_string(i) + ":17000", MachineState::kUp});
  }
  return machines;
}

inline RoutingTable initial(size_t machines, uint32_t shards, uint32_t rf,
                            uint32_t ranges_per_shard) {
  Result<RoutingTable> table =
      RoutingTable::make_initial(make_machines(machines), shards, rf, ranges_per_shard);
  EXPECT_TRUE(table.is_ok()) << table.status().to_string();
  return std::move(table).value();
}

}  // namespace cairn::topology::test
