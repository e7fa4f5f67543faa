// When an event listener saves its checkpoint, and what it does with an
// event taken after stop(), free of I/O so it can be tested alone.
//
// A save is durable and blocks for an fsync, so it is not done per event:
// after `every` unsaved deliveries at most (what a crash can make a resumed
// listener deliver again), whenever the handlers have caught up with the
// stream, and when delivery ends. There is no time-based save: an idle
// listener has caught up, so it has saved already.
#pragma once

#include <cstddef>

namespace storewatch::detail {

/// What the delivery loop does with an event it took from the stream.
enum class taken_event {
  deliver,            ///< call the handlers, record it
  leave_undelivered,  ///< stop() came first: neither deliver, count nor record it, and end
};

struct checkpoint_cadence {
  std::size_t every;  ///< `listener_options::checkpoint_every`

  /// At start: a checkpoint with no file yet saves the starting position
  /// first, so a kill at any later moment resumes from it, not from
  /// wherever the source would begin.
  static bool save_at_start(bool file_exists) noexcept { return !file_exists; }

  /// An event taken while `stopping` is left undelivered, so that a
  /// listener resuming from the checkpoint gets it.
  static taken_event on_taken(bool stopping) noexcept {
    return stopping ? taken_event::leave_undelivered : taken_event::deliver;
  }

  /// After a delivery was recorded: `unsaved` changes are not saved yet;
  /// `caught_up`: the stream holds no further event.
  bool save_after_delivery(std::size_t unsaved, bool caught_up) const noexcept {
    return unsaved >= every || caught_up;
  }

  /// Delivery ended (a stop, the stream's end or error): save what is not.
  static bool save_at_end(std::size_t unsaved) noexcept { return unsaved > 0; }
};

}  // namespace storewatch::detail
