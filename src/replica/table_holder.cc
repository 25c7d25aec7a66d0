#include "replica/table_holder.h"

#include <string>
#include <utility>

namespace cairn::replica {

std::shared_ptr<const topology::RoutingTable> TableHolder::current() const {
  std::lock_guard<std::mutex> guard(mu_);
  return table_;
}

uint64_t TableHolder::epoch() const {
  std::lock_guard<std::mutex> guard(mu_);
  return table_ ? table_->epoch() : 0;
}

Status TableHolder::install(topology::RoutingTable table) {
  std::lock_guard<std::mutex> install_guard(install_mu_);
  auto installed = std::make_shared<const topology::RoutingTable>(std::move(table));
  std::shared_ptr<const topology::RoutingTable> previous;
  std::vector<BeforeListener> before;
  {
    std::lock_guard<std::mutex> guard(mu_);
    if (table_) {
      const uint64_t current = table_->epoch();
      const uint64_t offered = installed->epoch();
      if (offered == current && *installed == *table_) return Status::ok();  // idempotent push
      if (offered <= current) {
        return Status::invalid_argument(
            "routing table epoch " + std::to_string(offered) +
            (offered == current ? " differs from the installed table of the same epoch "
                                : " is older than the installed epoch ") +
            std::to_string(current));
      }
    }
    previous = table_;
    before = before_listeners_;
  }
  // install_mu_ keeps the table from changing meanwhile; mu_ is free so listeners may read.
  for (const auto& listener : before) listener(previous.get(), *installed);
  std::vector<std::function<void(const topology::RoutingTable&)>> listeners;
  {
    std::lock_guard<std::mutex> guard(mu_);
    table_ = installed;
    listeners = listeners_;
  }
  for (const auto& listener : listeners) listener(*installed);
  return Status::ok();
}

void TableHolder::before_change(BeforeListener listener) {
  std::lock_guard<std::mutex> guard(mu_);
  before_listeners_.push_back(std::move(listener));
}

void TableHolder::on_change(std::function<void(const topology::RoutingTable&)> listener) {
  std::lock_guard<std::mutex> guard(mu_);
  listeners_.push_back(std::move(listener));
}

}  // namespace cairn::replica
