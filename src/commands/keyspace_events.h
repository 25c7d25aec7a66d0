#pragma once
// Keyspace notifications (docs/pubsub.md "Keyspace notifications"): the event classes of
// notify-keyspace-events and the events each write command emits, with Redis's event names.
//
// dispatch() calls emit_keyspace_events() after a write command ran, when any class is enabled.
// What happened is read from the command's arguments and its reply (an error reply, a null or a
// zero count means nothing changed), so the table needs no cooperation from the handlers; it is
// exact for single-key commands; DEL/UNLINK of several keys read which exist first
// (plan_keyspace_events), since their reply only counts them. Stream commands are the
// exception: what they did is not all in their reply (XADD's reply does not say it trimmed,
// XREADGROUP's that it created a consumer), so their handlers report their events
// (report_keyspace_event) and emit_keyspace_events() publishes them after the table's.
// Pure apart from the ServerControl it publishes through.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "commands/command.h"

namespace cairn::commands {

// Redis's NOTIFY_* bits.
enum KeyspaceEventClass : uint32_t {
  kEventKeyspace = 1u << 0,  // K
  kEventKeyevent = 1u << 1,  // E
  kEventGeneric = 1u << 2,   // g
  kEventString = 1u << 3,    // $
  kEventList = 1u << 4,      // l
  kEventSet = 1u << 5,       // s
  kEventHash = 1u << 6,      // h
  kEventZset = 1u << 7,      // z
  kEventExpired = 1u << 8,   // x
  kEventEvicted = 1u << 9,   // e
  kEventStream = 1u << 10,   // t
  kEventKeyMiss = 1u << 11,  // m (not in A)
  kEventModule = 1u << 12,   // d
  kEventNew = 1u << 13,      // n (not in A)
};

// The bits of a notify-keyspace-events value ("KEA", "Elg$"...); unknown characters are ignored
// (CONFIG SET checks them first).
uint32_t parse_keyspace_event_flags(std::string_view text);

// What must be read before a write runs to name its events exactly: for DEL/UNLINK of several
// keys, which of them exist (the reply only counts them). Empty for other commands.
struct KeyspaceEventPlan {
  bool planned = false;
  std::vector<std::string> existing;
};
KeyspaceEventPlan plan_keyspace_events(CommandContext& context, const CommandSpec& spec);

// Publishes the events of one write command that succeeded with `reply`.
void emit_keyspace_events(CommandContext& context, const CommandSpec& spec,
                          std::string_view reply, const KeyspaceEventPlan& plan = {});

// For a handler: records `event` (a string literal) on `key` for emit_keyspace_events(), if its
// class is enabled. Reported events are published in the order reported, after the command,
// unless its reply is an error.
void report_keyspace_event(CommandContext& context, uint32_t event_class, std::string_view event,
                           const std::string& key);

}  // namespace cairn::commands
