// Which events a resumed run has delivered already, free of I/O so it can
// be tested alone.
//
// A consumer's position is a source cursor plus the ids of events past it
// that it has delivered (a cursor moves only with the last event of a poll,
// so a crash mid-batch leaves some delivered past it). `note_delivered`
// keeps that position as events reach the consumer (the checkpoint records
// with it); `repeat_filter` is the poller's side: it drops those ids when a
// poll from the cursor returns them again, and hands the ones still
// expected on with the batch's cursor.
#pragma once

#include <storewatch/event.hpp>

#include <cstddef>
#include <string>
#include <unordered_set>
#include <vector>

namespace storewatch::detail {

/// Notes that `e` reached the consumer whose position is `cursor` and
/// `delivered_ids`: an event that carries a cursor (the last of a poll)
/// moves the position to it, with the ids past it delivered before
/// (`e.delivered_past_cursor`); any other adds its id.
inline void note_delivered(const event& e, std::string& cursor, std::vector<std::string>& delivered_ids) {
  if (!e.cursor.empty()) {
    cursor = e.cursor;
    delivered_ids = e.delivered_past_cursor;
  } else {
    delivered_ids.push_back(e.id);
  }
}

/// The poller's memory of the ids a start state lists as delivered past its
/// cursor. Each is dropped once, the first time a poll returns it; an id
/// not listed is never dropped.
class repeat_filter {
 public:
  repeat_filter() = default;
  explicit repeat_filter(const std::vector<std::string>& delivered_ids)
      : expected_(delivered_ids.begin(), delivered_ids.end()) {}

  /// Removes from `events` those delivered already; returns how many.
  std::size_t drop_repeats(std::vector<event>& events) {
    if (expected_.empty()) return 0;
    return std::erase_if(events, [this](const event& e) { return expected_.erase(e.id) > 0; });
  }

  /// Marks a poll's events (repeats dropped) as one batch: its last event
  /// carries `next_cursor` and the repeats still expected. A cursor holds a
  /// position per writer, and a batch need not reach every writer: those
  /// repeats may lie past it, so a consumer that checkpoints there must keep
  /// them.
  void close_batch(std::vector<event>& events, const std::string& next_cursor) const {
    if (events.empty()) return;
    events.back().cursor = next_cursor;
    events.back().delivered_past_cursor.assign(expected_.begin(), expected_.end());
  }

  /// The ids still expected again.
  std::size_t expected() const noexcept { return expected_.size(); }

 private:
  std::unordered_set<std::string> expected_;
};

}  // namespace storewatch::detail
