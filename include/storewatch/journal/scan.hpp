/// \file
/// Reading a journal writer's bytes without doing the reading: what the
/// reader decides about each line of a segment (a record, a void line, a
/// corrupt line, a line with no end, a torn tail) and where reading a
/// writer starts (and which bytes retention removed before it). Pure: the
/// reader (journal/reader.hpp) does the I/O and feeds the bytes, the tests
/// (tests/journal_scan_test.cpp) feed strings.
#pragma once

#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/journal/format.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storewatch::detail {

/// The bytes of a writer from `from` up to `to` (not included), as offsets
/// across its segments.
struct byte_range {
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  friend bool operator==(const byte_range&, const byte_range&) = default;
};

/// Where reading a writer starts, and the bytes before it that were never
/// read (to report as a GAP).
struct writer_start {
  std::uint64_t offset = 0;
  std::optional<byte_range> removed;
};

/// Where to start reading a writer whose oldest kept segment starts at
/// `oldest_base`, from the offset the cursor holds for it (none when the
/// cursor does not name it). Bytes before the oldest segment that the
/// cursor had not read were removed by retention: a gap when the cursor
/// named the writer, or when the reader is `resuming` (its cursor is of
/// this journal, so it would have read the writer's bytes had they been
/// there); a new reader just starts at the oldest bytes kept.
inline writer_start start_of_writer(std::uint64_t oldest_base, std::optional<std::uint64_t> cursor_offset,
                                    bool resuming) noexcept {
  writer_start start{cursor_offset.value_or(0), std::nullopt};
  if (start.offset < oldest_base && (cursor_offset || resuming)) start.removed = byte_range{start.offset, oldest_base};
  start.offset = std::max(start.offset, oldest_base);
  return start;
}

/// The bytes a reader at `offset` lost when the segment it was about to read
/// vanished (compacted meanwhile), when a later segment starts at
/// `next_base`; none when the segment was the newest or held nothing unread.
inline std::optional<byte_range> removed_while_reading(std::uint64_t offset,
                                                       std::optional<std::uint64_t> next_base) noexcept {
  if (!next_base || offset >= *next_base) return std::nullopt;
  return byte_range{offset, *next_base};
}

/// Something in a segment's bytes that is not delivered, and why.
struct scan_problem {
  enum class kind {
    corrupt_record,  ///< a whole line that is not a record, or one the record check refused; skipped
    no_record_end,   ///< `max_line` bytes with no newline; skipped
    torn_tail,       ///< an unfinished last line of a sealed segment (it will never be finished); skipped
    past_end,        ///< reading was to start past the segment's end; it starts at the end
  };
  kind what = kind::corrupt_record;
  /// Where the bytes skipped start, across the writer's segments; for
  /// `past_end`, the offset asked for.
  std::uint64_t offset = 0;
  /// How many bytes were skipped; for `past_end`, how far past the end the
  /// offset asked for was.
  std::uint64_t size = 0;
  /// For `corrupt_record`: what `decode_record` or the record check said.
  std::string why;

  /// `errc::invalid_cursor` for `past_end`, else `errc::corrupt_record`.
  errc code() const noexcept { return what == kind::past_end ? errc::invalid_cursor : errc::corrupt_record; }

  /// The problem as the journal source reports it, naming the segment's
  /// `file` and the offset in it (the segment starts at writer offset `base`).
  std::string message(std::string_view file, std::uint64_t base) const {
    std::string text = "journal ";
    text += file;
    if (what == kind::past_end) {
      return text + ": cursor offset " + std::to_string(offset) + " is past the end (" +
             std::to_string(offset - size) + "); reading on from the end";
    }
    text += " offset " + std::to_string(offset - base) + ": ";
    switch (what) {
      case kind::corrupt_record: return text + why + "; skipped " + std::to_string(size) + " bytes";
      case kind::no_record_end: return text + "no record end within " + std::to_string(size) + " bytes; skipped";
      default:
        return text + "torn record of " + std::to_string(size) + " bytes at the end of a finished segment; skipped";
    }
  }
};

/// What the reader knows of the segment it scans.
struct segment_extent {
  std::uint64_t base = 0;  ///< where the segment starts in its writer's bytes
  std::uint64_t end = 0;   ///< where its bytes end as the reader found them (base + its size)
  bool sealed = false;     ///< a later segment exists: nothing will be appended here again
};

/// How a scan reads records.
struct scan_options {
  /// The longest line (newline included) taken as a record; a line with no
  /// newline in its first `max_line` bytes has those bytes skipped.
  std::size_t max_line = 1 << 20;
  /// Records to find at most; the scan stops before the line after the last.
  std::size_t max_records = std::numeric_limits<std::size_t>::max();
  /// Checks each whole record's event: a non-empty answer (why) makes it a
  /// corrupt record. Empty or null: every record that decodes is taken.
  /// Must outlive the scanner.
  const std::function<std::string(const event&)>* record_check = nullptr;
};

/// What a scan found, in the order of the bytes.
struct segment_scan {
  std::vector<event> records;          ///< whole records that decoded (and passed the check)
  std::vector<scan_problem> problems;  ///< what was skipped, and why
  std::size_t voided = 0;              ///< void lines skipped silently (failed operations' records)
};

/// Scans one segment of a writer's journal from a byte offset on: fed the
/// segment's bytes in pieces of any size (a record may be split across two
/// feeds), it decodes each whole line and says where a cursor may stand
/// after them. No I/O: the caller reads `wanted()` bytes from `next_byte()`
/// and feeds them, then calls `finish()`.
///
/// Each line is one of: a void line (skipped silently, counted), a record
/// (kept), or corrupt (reported with its offset and size, skipped). After
/// the last newline, bytes may be a record being written: held until more
/// bytes come; at `finish()` they are a torn tail if the segment is sealed
/// (reported, skipped to the end), else left for a later read (the offset
/// stays before them).
class segment_scanner {
 public:
  /// A scan of `segment` starting at writer offset `offset` (a line start).
  /// An offset past the segment's end is reported (`past_end`) and the scan
  /// starts at the end.
  segment_scanner(segment_extent segment, std::uint64_t offset, scan_options options = {})
      : segment_(segment), options_(options), offset_(offset) {
    options_.max_line = std::max<std::size_t>(options_.max_line, 1);
    if (offset_ > segment_.end) {
      found_.problems.push_back({scan_problem::kind::past_end, offset_, offset_ - segment_.end, {}});
      offset_ = segment_.end;
    }
    fed_ = offset_;
    // Room for the records the bytes ahead may hold (lines of a typical
    // 100 bytes), up to a poll's worth: fewer moves as the vector grows.
    found_.records.reserve(static_cast<std::size_t>(
        std::min<std::uint64_t>({options_.max_records, (segment_.end - offset_) / 100, 4096})));
  }

  /// Where the next line to scan starts: every byte before it was scanned,
  /// so a cursor may hold it.
  std::uint64_t offset() const noexcept { return offset_; }
  /// The writer offset of the next byte to feed.
  std::uint64_t next_byte() const noexcept { return fed_; }
  /// How many bytes are still to feed, up to the segment's end; 0 once
  /// `max_records` were found.
  std::uint64_t wanted() const noexcept { return full() ? 0 : segment_.end - std::min(fed_, segment_.end); }
  /// True once `max_records` records were found.
  bool full() const noexcept { return found_.records.size() >= options_.max_records; }
  /// What the scan found so far.
  const segment_scan& found() const noexcept { return found_; }
  /// Takes what the scan found.
  segment_scan take() noexcept { return std::move(found_); }

  /// Scans `bytes`, which follow those fed before (only the first
  /// `wanted()` are used). Stops once `max_records` were found; the bytes
  /// after the last record taken are dropped then (`next_byte()` goes back
  /// to `offset()`).
  void feed(std::string_view bytes) {
    bytes = bytes.substr(0, static_cast<std::size_t>(std::min<std::uint64_t>(bytes.size(), wanted())));
    fed_ += bytes.size();
    while (!full()) {
      // The line starting at offset_ is held_ followed by `bytes`; its end
      // counts only within its first max_line bytes.
      const auto room = options_.max_line - held_.size();
      const auto newline = bytes.substr(0, room).find('\n');
      if (newline != std::string_view::npos) {
        if (held_.empty()) {
          scan_line(bytes.substr(0, newline));
        } else {
          held_.append(bytes.substr(0, newline));
          scan_line(held_);
          held_.clear();
        }
        bytes.remove_prefix(newline + 1);
        continue;
      }
      if (bytes.size() >= room) {  // max_line bytes and no newline among them
        found_.problems.push_back({scan_problem::kind::no_record_end, offset_, options_.max_line, {}});
        offset_ += options_.max_line;
        held_.clear();
        bytes.remove_prefix(room);
        continue;
      }
      held_.append(bytes);  // a line not finished yet
      return;
    }
    held_.clear();
    fed_ = offset_;
  }

  /// Ends the scan: the bytes up to the segment's end were fed, or reading
  /// found no more. A line still unfinished is a torn tail of a sealed
  /// segment, reported and skipped to the end; in a segment still written
  /// it may be a record being written, and stays unscanned. Returns true
  /// when the scan reached the segment's end.
  bool finish() {
    if (!held_.empty() && segment_.sealed) {
      found_.problems.push_back({scan_problem::kind::torn_tail, offset_, segment_.end - offset_, {}});
      offset_ = fed_ = segment_.end;
      held_.clear();
    }
    return offset_ >= segment_.end;
  }

 private:
  // One whole line (without its newline) at offset_.
  void scan_line(std::string_view line) {
    const auto size = line.size() + 1;
    if (is_void_line(line)) {
      ++found_.voided;
    } else {
      // Decoded in place, at the end of the records: no event is moved.
      std::string why;
      auto& e = found_.records.emplace_back();
      const bool decoded = decode_record(line, e, why);
      if (decoded && options_.record_check && *options_.record_check) why = (*options_.record_check)(e);
      if (!decoded || !why.empty()) {
        found_.records.pop_back();
        found_.problems.push_back({scan_problem::kind::corrupt_record, offset_, size, std::move(why)});
      }
    }
    offset_ += size;
  }

  segment_extent segment_;
  scan_options options_;
  std::uint64_t offset_;    // start of the next line to scan
  std::uint64_t fed_ = 0;   // offset of the next byte to feed
  std::string held_;        // the bytes of an unfinished line, from offset_
  segment_scan found_;
};

}  // namespace storewatch::detail
