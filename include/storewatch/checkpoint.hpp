/// \file
/// Durable cursors: where a listener resumes, and what it already delivered.
#pragma once

#include <storewatch/detail/dedup.hpp>
#include <storewatch/detail/files.hpp>
#include <storewatch/detail/text.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace storewatch {

/// Where to resume: the source cursor, plus the ids of events delivered
/// after that cursor (so a restart can drop them as duplicates).
struct checkpoint_state {
  std::string cursor{};                      ///< a source cursor; empty: the source's beginning
  std::vector<std::string> delivered_ids{};  ///< ids of events after `cursor` already delivered

  /// Equal when cursor and ids (in order) are.
  friend bool operator==(const checkpoint_state&, const checkpoint_state&) = default;
};

/// The text form of a checkpoint: one JSON object,
/// `{"format": 1, "cursor": ..., "delivered_after_cursor": [...]}`.
/// Throws `std::system_error` with `errc::checkpoint_failed` and a message
/// that starts with `origin` and names the field when the cursor or an id
/// is not UTF-8 (a source's text may hold any bytes; JSON holds only text).
inline std::string encode_checkpoint(const checkpoint_state& state, std::string_view origin = "checkpoint") {
  const auto refuse = [&](std::string_view field, std::string_view text) {
    throw std::system_error(errc::checkpoint_failed, std::string(origin) + ": cannot save field \"" +
                                                         std::string(field) + "\": " + detail::quote(text) +
                                                         " is not UTF-8, and a checkpoint holds only text");
  };
  if (!detail::is_valid_utf8(state.cursor)) refuse("cursor", state.cursor);
  for (const auto& id : state.delivered_ids) {
    if (!detail::is_valid_utf8(id)) refuse("delivered_after_cursor", id);
  }
  return nlohmann::json{{"format", 1}, {"cursor", state.cursor}, {"delivered_after_cursor", state.delivered_ids}}
             .dump();
}

/// Reads the text form. Throws `std::system_error` with `errc::invalid_cursor`
/// and a message that starts with `origin` (say, the file's path) and names
/// the bad field.
inline checkpoint_state decode_checkpoint(std::string_view text, std::string_view origin = "checkpoint") {
  const auto fail = [&](const std::string& why) {
    throw std::system_error(errc::invalid_cursor, std::string(origin) + ": " + why);
  };
  // An empty file is most often one made by hand (`touch`) for storewatch
  // to fill; our own saves never leave one (they replace the file whole).
  // It is refused all the same: treated as "nothing saved", a checkpoint
  // emptied by accident would start a listener afresh and skip events.
  if (text.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    fail("the file is empty, not a checkpoint (storewatch creates the file on its first save: "
         "remove the empty file to start a new checkpoint)");
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& error) {
    fail("not a checkpoint (JSON syntax error at byte " + std::to_string(error.byte) + ")");
  } catch (const nlohmann::json::exception& error) {
    fail(std::string("not a checkpoint (") + error.what() + ")");  // say, a number beyond a double's range
  }
  if (!j.is_object()) fail("not a checkpoint (expected a JSON object)");
  const auto format = j.find("format");
  if (format == j.end() || !format->is_number_integer()) fail("missing field \"format\"");
  if (*format != 1) fail("unsupported format " + format->dump() + " (this version reads format 1)");
  checkpoint_state state;
  const auto cursor = j.find("cursor");
  if (cursor == j.end() || !cursor->is_string()) fail("field \"cursor\" must be a string");
  state.cursor = cursor->get<std::string>();
  const auto ids = j.find("delivered_after_cursor");
  if (ids == j.end() || !ids->is_array()) fail("field \"delivered_after_cursor\" must be an array");
  for (const auto& id : *ids) {
    if (!id.is_string()) fail("field \"delivered_after_cursor\" must hold only strings");
    state.delivered_ids.push_back(id.get<std::string>());
  }
  return state;
}


/// The state saved in checkpoint `file`, or nullopt when there is no such
/// file. Reads without taking the checkpoint's lock (say, to inspect the
/// checkpoint of a running listener). Throws as `checkpoint`'s constructor.
inline std::optional<checkpoint_state> load_checkpoint(const std::filesystem::path& file) {
  auto text = detail::read_whole_file(file, errc::checkpoint_failed, "checkpoint");
  if (!text) return std::nullopt;
  return decode_checkpoint(*text, "checkpoint " + file.string());
}

/// Writes `state` to checkpoint `file` durably (temporary file, fsync,
/// rename), as `checkpoint::save` does, without the checkpoint object: for a
/// save made elsewhere (say, on another thread) from a copy of its state.
/// The caller must hold the checkpoint's lock and make one such write at a
/// time. Throws `std::system_error` with `errc::checkpoint_failed`, naming
/// the file and the failed step.
inline void write_checkpoint(const std::filesystem::path& file, const checkpoint_state& state) {
  detail::write_file_atomically(file, encode_checkpoint(state, "checkpoint " + file.string()), errc::checkpoint_failed,
                                "checkpoint");
}

/// A checkpoint kept in a file, owned by one listener at a time.
///
/// Loading happens in the constructor, which also locks the checkpoint
/// (`<file>.lock`, held until the object is destroyed; a process that dies
/// drops it), so that two listeners never save over each other's progress.
/// `record()` notes each delivered event; `save()` writes the state durably
/// (temporary file, fsync, rename), so after a crash the file holds the
/// last saved state, never a torn one. File I/O blocks the calling thread:
/// call it where blocking for an fsync is acceptable. Not thread-safe.
class checkpoint {
 public:
  /// Locks `file` and loads it if it exists (a missing file means "nothing
  /// saved yet": see `exists()`). Throws `std::system_error`:
  /// `errc::invalid_cursor` when the file is not a checkpoint,
  /// `errc::checkpoint_failed` when it cannot be read, when its lock file
  /// cannot be made (say, its folder is missing), or when another checkpoint
  /// object holds the lock; every message names the file.
  explicit checkpoint(std::filesystem::path file) : file_(std::move(file)) {
    auto lock_file = file_;
    lock_file += ".lock";
    lock_ = detail::try_lock_file(lock_file, errc::checkpoint_failed, "checkpoint");
    if (!lock_) {
      throw std::system_error(errc::checkpoint_failed, "checkpoint " + file_.string() +
                                                           " is in use by another listener (" +
                                                           lock_file.string() + " is locked)");
    }
    if (auto saved = load_checkpoint(file_)) {
      state_ = std::move(*saved);
      exists_ = true;
    }
  }

  /// The checkpoint's file.
  const std::filesystem::path& file() const noexcept { return file_; }

  /// True when the file held a state when loaded, or has been saved since.
  bool exists() const noexcept { return exists_; }

  /// Where to resume, and which events past it were delivered already.
  const checkpoint_state& state() const noexcept { return state_; }

  /// Replaces the state (say, with a listener's starting position), not
  /// saved until `save()`.
  void reset(checkpoint_state state) {
    state_ = std::move(state);
    ++unsaved_;
  }

  /// Notes that `e` reached the handlers: an event that carries a cursor
  /// (the last of a poll) moves the state to that cursor, and the ids to
  /// those of events past it delivered before (`e.delivered_past_cursor`);
  /// any other adds its id. Not saved until `save()`.
  void record(const event& e) {
    detail::note_delivered(e, state_.cursor, state_.delivered_ids);
    ++unsaved_;
  }

  /// Changes recorded since the last save.
  std::size_t unsaved() const noexcept { return unsaved_; }

  /// Writes the state durably. Throws `std::system_error` with
  /// `errc::checkpoint_failed`, naming the file and the failed step.
  void save() {
    write_checkpoint(file_, state_);
    unsaved_ = 0;
    exists_ = true;
  }

  /// Notes that a copy of the state, taken when `unsaved()` was `changes`,
  /// has been written with `write_checkpoint`: the changes recorded since
  /// the copy stay unsaved.
  void saved(std::size_t changes) noexcept {
    unsaved_ -= std::min(changes, unsaved_);
    exists_ = true;
  }

 private:
  std::filesystem::path file_;
  detail::unique_fd lock_;
  checkpoint_state state_;
  std::size_t unsaved_ = 0;
  bool exists_ = false;
};

}  // namespace storewatch
