#pragma once
// Tokens place keys on the ring (docs/architecture.md). Pure: no I/O, no clock.
//
// A key's token is xxh3-64 of the key, or of its hash tag: the bytes between the first '{' and
// the first '}' after it, when that span is non-empty (the rule of Redis Cluster). Keys that share
// a tag therefore share a token and always live on one shard.

#include <cstdint>
#include <string_view>

namespace cairn::topology {

using Token = uint64_t;

// The part of `key` that is hashed: its hash tag if it has a non-empty one, else the whole key.
std::string_view hash_tag(std::string_view key);

// The token of `key`.
Token token_of(std::string_view key);

}  // namespace cairn::topology
