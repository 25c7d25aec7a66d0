#pragma once
// TableHolder: the routing table this machine currently follows (docs/cluster.md, docs/operations.md).
// Thread-safe: readers take a snapshot (a shared_ptr) and use it for one request; install()
// swaps in a newer table atomically.
//
// Invariants:
//  1. The epoch never goes backwards: install() accepts a table only if its epoch is higher
//     than the current one (an equal epoch is accepted only if the tables are identical, which
//     makes pushes idempotent).
//  2. Before any table is installed, current() is null: the machine is in single-machine mode
//     or waiting for its first table.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "common/status.h"
#include "topology/routing_table.h"

namespace cairn::replica {

class TableHolder {
 public:
  std::shared_ptr<const topology::RoutingTable> current() const;
  uint64_t epoch() const;  // 0 if none
  // Installs `table` if it is newer (invariant 1). Returns invalid_argument with the two epochs
  // if it is older or a different table at the same epoch.
  Status install(topology::RoutingTable table);
  // Called after each successful install (on the installing thread).
  void on_change(std::function<void(const topology::RoutingTable&)> listener);
  // Called once a table passed the checks, before it becomes current (so before any request at
  // its epoch is served here), with the table it replaces (null: none). On the installing
  // thread; must not call install().
  using BeforeListener =
      std::function<void(const topology::RoutingTable* previous, const topology::RoutingTable& next)>;
  void before_change(BeforeListener listener);

 private:
  // Serializes install() with its notifications, so listeners see tables in epoch order; held
  // without mu_ while listeners run, so a listener may call current() (but not install()).
  std::mutex install_mu_;
  mutable std::mutex mu_;
  std::shared_ptr<const topology::RoutingTable> table_;
  std::vector<std::function<void(const topology::RoutingTable&)>> listeners_;
  std::vector<BeforeListener> before_listeners_;
};

}  // namespace cairn::replica
