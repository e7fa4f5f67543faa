// GAP events: what a source says when events it should deliver are gone.
#pragma once

#include <storewatch/detail/sys.hpp>
#include <storewatch/event.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace storewatch::detail {

/// 16 hex digits that depend only on `bytes` (FNV-1a, 64 bits): a stable
/// name for some text, not a secure one.
inline std::string stable_hash_hex(std::string_view bytes) {
  std::uint64_t hash = 0xcbf29ce484222325ull;
  for (const unsigned char c : bytes) {
    hash ^= c;
    hash *= 0x100000001b3ull;
  }
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (int shift = 60; shift >= 0; shift -= 4) out += hex[(hash >> shift) & 0xF];
  return out;
}

/// A GAP event reporting `what` (which journal, epoch and range are gone).
/// Its id is derived from `what`, so the same gap reported again (say, by a
/// listener resuming from a checkpoint taken before it was delivered) is a
/// duplicate that deduplication removes, like any repeated event.
inline event make_gap(std::string what) {
  event e;
  e.name = event_name::gap;
  e.id = "gap-" + stable_hash_hex(what);
  e.data = std::move(what);
  e.occurred_at = sys::now();
  return e;
}

}  // namespace storewatch::detail
