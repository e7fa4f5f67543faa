// The S3 journal's object names and cursor, and the merge one poll makes of
// what it lists and fetches (the layout is described at the top of
// store/s3_journal.hpp). The merge is a pure decision core: listing pages and
// object bodies in; events in delivery order, problems, GAP events, the next
// cursor and the next request to make out. It sends no request and touches
// no file, so the poll in store/s3_journal.hpp only does what it says, and tests
// drive every decision without a server (tests/s3_merge_test.cpp).
#pragma once

#include <storewatch/detail/gap.hpp>
#include <storewatch/detail/text.hpp>
#include <storewatch/error.hpp>
#include <storewatch/event.hpp>
#include <storewatch/journal/format.hpp>
#include <storewatch/source.hpp>

#include <algorithm>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storewatch::s3::detail {

using storewatch::detail::parse_decimal;
using storewatch::detail::quote;
using storewatch::detail::take_field;

inline constexpr std::size_t stamp_digits = 13;   // milliseconds since 1970 up to the year 2286
inline constexpr std::size_t object_digits = 20;  // any 64-bit number
inline constexpr std::string_view floor_suffix = "!floor";  // '!' sorts before the '-' of records
inline constexpr char segment_separator = '~';  // in no record name: between a segment's last and first record

/// `number` in decimal, zero-padded to `width` digits.
inline std::string padded(std::uint64_t number, std::size_t width) {
  auto digits = std::to_string(number);
  if (digits.size() < width) digits.insert(0, width - digits.size(), '0');
  return digits;
}

/// The folder of `user`'s journal, relative to the store's key prefix.
inline std::string journal_folder(std::string_view user) { return "journals/" + std::string(user) + "/"; }

/// One entry of a journal folder, decoded from its name.
struct journal_entry {
  /// A record object, a retention floor, or a segment: records compacted
  /// into one object, whose other fields are those of the last record
  /// object it holds.
  enum class kind { record, floor, segment } what = kind::record;
  std::uint64_t stamp = 0;   ///< the writer's clock (record) or the retention limit (floor), in ms
  std::string writer{};      ///< records only
  std::uint64_t object = 0;  ///< records only: the object's number (in a sequenced name, among the writer's objects for this user)
  /// Sequenced record names only: the stamp of the writer's previous object
  /// for this user (0 for its first). Those names number a writer's objects
  /// for one user 1, 2, 3, ..., so a reader sees when one is missing.
  std::optional<std::uint64_t> previous{};
  /// Segments only: the name of the first record object it holds.
  std::string first{};
};

inline std::string record_name(std::string_view user, std::uint64_t stamp, std::string_view writer,
                               std::uint64_t object) {
  return journal_folder(user) + padded(stamp, stamp_digits) + '-' + std::string(writer) + '-' +
         padded(object, object_digits);
}

/// The name of writer `writer`'s object number `sequence` for `user` (its
/// objects for one user numbered 1, 2, 3, ...), stamped `stamp`; `previous`
/// is the stamp of its object number `sequence - 1` (0 for the first).
inline std::string sequenced_record_name(std::string_view user, std::uint64_t stamp, std::string_view writer,
                                         std::uint64_t sequence, std::uint64_t previous) {
  return record_name(user, stamp, writer, sequence) + '-' + padded(previous, stamp_digits);
}

inline std::string floor_name(std::string_view user, std::uint64_t stamp) {
  return journal_folder(user) + padded(stamp, stamp_digits) + std::string(floor_suffix);
}

/// The name of a segment of `user`'s journal holding the record objects
/// named `first` to `last` (relative to the journal folder, `first` not
/// after `last`): it sorts right after `last`.
inline std::string segment_name(std::string_view user, std::string_view first, std::string_view last) {
  return journal_folder(user) + std::string(last) + segment_separator + std::string(first);
}

/// One record object held by a segment: its name, relative to the journal
/// folder, and its body.
struct segment_member {
  std::string_view name;
  std::string_view body;
};

/// A segment's body: each member as a line "<name> <bytes>" followed by
/// that many bytes of its body.
inline std::string encode_segment(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out;
  for (const auto& [name, body] : members) {
    out += name;
    out += ' ';
    out += std::to_string(body.size());
    out += '\n';
    out += body;
  }
  return out;
}

/// The members of the segment body `body`, in its order (views into it);
/// nullopt with `why` when it is not a segment body.
inline std::optional<std::vector<segment_member>> decode_segment(std::string_view body, std::string& why) {
  std::vector<segment_member> members;
  while (!body.empty()) {
    const auto newline = body.find('\n');
    const auto head = body.substr(0, newline);
    const auto space = head.rfind(' ');
    std::uint64_t size = 0;
    if (newline == std::string_view::npos || space == std::string_view::npos ||
        !parse_decimal(head.substr(space + 1), size) || size > body.size() - newline - 1) {
      why = "member " + std::to_string(members.size() + 1) + " has a bad header " + quote(head.substr(0, 200));
      return std::nullopt;
    }
    members.push_back({head.substr(0, space), body.substr(newline + 1, size)});
    body.remove_prefix(newline + 1 + size);
  }
  return members;
}

/// Decodes `name`, relative to its journal folder; nullopt when it is no
/// journal entry.
inline std::optional<journal_entry> parse_journal_entry(std::string_view name) {
  if (const auto tilde = name.find(segment_separator); tilde != std::string_view::npos) {
    auto last = parse_journal_entry(name.substr(0, tilde));
    const auto first_name = name.substr(tilde + 1);
    const auto first = parse_journal_entry(first_name);
    if (!last || !first || last->what != journal_entry::kind::record ||
        first->what != journal_entry::kind::record || first_name > name.substr(0, tilde)) {
      return std::nullopt;
    }
    last->what = journal_entry::kind::segment;
    last->first = std::string(first_name);
    return last;
  }
  journal_entry entry;
  if (name.size() <= stamp_digits || !parse_decimal(name.substr(0, stamp_digits), entry.stamp)) return std::nullopt;
  name.remove_prefix(stamp_digits);
  if (name == floor_suffix) {
    entry.what = journal_entry::kind::floor;
    return entry;
  }
  // "-<writer>-<object>[-<previous>]"; the writer may itself contain '-'.
  // An unsequenced name ends with the object's 20 digits, so a '-' 14
  // characters from its end marks a sequenced one.
  if (name.size() > stamp_digits && name[name.size() - stamp_digits - 1] == '-') {
    std::uint64_t previous = 0;
    if (!parse_decimal(name.substr(name.size() - stamp_digits), previous)) return std::nullopt;
    entry.previous = previous;
    name.remove_suffix(stamp_digits + 1);
  }
  if (name.size() < object_digits + 3 || name.front() != '-' || name[name.size() - object_digits - 1] != '-') {
    return std::nullopt;
  }
  const auto writer = name.substr(1, name.size() - object_digits - 2);
  if (!storewatch::detail::is_writer_name(writer) || !parse_decimal(name.substr(name.size() - object_digits), entry.object)) {
    return std::nullopt;
  }
  entry.writer = std::string(writer);
  return entry;
}

/// A decoded S3 journal cursor: "s1;<horizon>;<floor>;<writer>=<object>[:<records>]@<stamp>;...[;~<segment>]".
///
/// - horizon: the newest stamp delivered (0: nothing yet);
/// - floor: the newest retention limit seen (reported as a GAP once);
/// - per writer still within the late window: its last object delivered
///   wholly, or (":<records>") the number of records of it delivered so far,
///   and that object's stamp;
/// - the name of the last segment read to its end, if any: segments named
///   up to it are not fetched again.
struct s3_cursor {
  struct position {
    std::uint64_t object = 0;
    std::uint64_t records = 0;  ///< records of `object` delivered; `whole` when all
    std::uint64_t stamp = 0;
    static constexpr std::uint64_t whole = UINT64_MAX;
  };

  std::uint64_t horizon = 0;
  std::uint64_t floor = 0;
  std::map<std::string, position, std::less<>> writers;
  std::string segment{};  ///< relative to the journal folder; empty: none

  /// True for a cursor of a reader that has read something: events before
  /// its position are not "from the start" any more.
  bool resuming() const { return horizon != 0 || floor != 0 || !writers.empty() || !segment.empty(); }

  std::string encode() const {
    std::string out = "s1;" + std::to_string(horizon) + ';' + std::to_string(floor);
    for (const auto& [writer, at] : writers) {
      out += ';';
      out += writer;
      out += '=';
      out += std::to_string(at.object);
      if (at.records != position::whole) out += ':' + std::to_string(at.records);
      out += '@';
      out += std::to_string(at.stamp);
    }
    if (!segment.empty()) out += ";" + std::string(1, segment_separator) + segment;
    return out;
  }

  /// Decodes `text` (empty: from the start); nullopt with `why` when it is
  /// not an S3 journal cursor.
  static std::optional<s3_cursor> decode(std::string_view text, std::string& why) {
    s3_cursor cursor;
    if (text.empty()) return cursor;
    if (!text.starts_with("s1;")) {
      why = "does not start with \"s1;\"";
      return std::nullopt;
    }
    if (text.ends_with(';')) {
      why = "ends with ';'";
      return std::nullopt;
    }
    text.remove_prefix(3);
    const auto next_field = [&text] { return take_field(text); };
    if (!parse_decimal(next_field(), cursor.horizon) || !parse_decimal(next_field(), cursor.floor)) {
      why = "has a bad horizon or floor";
      return std::nullopt;
    }
    while (!text.empty()) {
      const auto field = next_field();
      if (field.starts_with(segment_separator)) {
        const auto segment = parse_journal_entry(field.substr(1));
        if (!cursor.segment.empty() || !segment || segment->what != journal_entry::kind::segment) {
          why = "has a bad segment entry " + quote(field);
          return std::nullopt;
        }
        cursor.segment = std::string(field.substr(1));
        continue;
      }
      const auto equals = field.find('=');
      const auto at = field.find('@');
      const auto bad = [&] {
        why = "has a bad writer entry " + quote(field);
        return std::nullopt;
      };
      if (equals == std::string_view::npos || at == std::string_view::npos || at < equals) return bad();
      const auto writer = field.substr(0, equals);
      auto number = field.substr(equals + 1, at - equals - 1);
      position where;
      where.records = position::whole;
      if (const auto colon = number.find(':'); colon != std::string_view::npos) {
        if (!parse_decimal(number.substr(colon + 1), where.records) || where.records == position::whole) return bad();
        number = number.substr(0, colon);
      }
      if (!storewatch::detail::is_writer_name(writer) || !parse_decimal(number, where.object) ||
          !parse_decimal(field.substr(at + 1), where.stamp) || cursor.writers.contains(writer)) {
        return bad();
      }
      cursor.writers.emplace(std::string(writer), where);
    }
    return cursor;
  }
};

/// The cursor of a reader that has delivered every journal record object in
/// `names` (relative to the journal folder): each writer's newest, the newest
/// stamp; with `floors`, the newest retention floor among them as seen.
/// Other keys are passed over.
inline s3_cursor cursor_after(const std::vector<std::string>& names, bool floors) {
  s3_cursor cursor;
  for (const auto& name : names) {
    const auto entry = parse_journal_entry(name);
    if (!entry) continue;
    if (entry->what == journal_entry::kind::floor) {
      if (floors) cursor.floor = std::max(cursor.floor, entry->stamp);
      continue;
    }
    if (entry->what == journal_entry::kind::segment) cursor.segment = std::max(cursor.segment, name);
    auto& at = cursor.writers[entry->writer];
    if (entry->object >= at.object) at = {entry->object, s3_cursor::position::whole, entry->stamp};
    cursor.horizon = std::max(cursor.horizon, entry->stamp);
  }
  return cursor;
}

/// What an S3 journal poll asks of the store next, as `s3_merge` decided
/// it: a decision, not an action.
struct s3_merge_step {
  enum class kind {
    list,   ///< list the journal folder: from `start_after`, or the page `continuation_token` names
    fetch,  ///< get the bodies of the objects `keys` names
    done,   ///< nothing more to ask this poll: take `s3_merge::finish()`
  };
  kind what = kind::done;
  std::string prefix{};              ///< list: the journal's folder
  std::string start_after{};         ///< list: where the late window starts (empty: at the oldest entry)
  std::string continuation_token{};  ///< list: the previous page's (empty for the first page)
  std::vector<std::string> keys{};   ///< fetch: object names relative to the store's key prefix, in listing order
  bool segment = false;              ///< fetch: the one key names a segment (immutable: its body may be kept)
};

/// One page of the listing of a journal folder, as the merge reads it.
struct s3_listing_page {
  std::vector<std::string> keys{};   ///< relative to the store's key prefix, in the listing's order
  bool truncated = false;            ///< another page follows
  std::string continuation_token{};  ///< names the next page when `truncated`
};

/// What a merge knows of the journal it reads.
struct s3_merge_settings {
  std::string folder{};   ///< the journal's folder, `journal_folder(user)`
  std::string journal{};  ///< names it in messages and GAP events: "s3://<bucket>/<prefix>journals/<user>/"
  std::chrono::milliseconds late_window{60'000};            ///< `s3_journal_options::late_window`
  std::function<std::string(const event&)> record_check{};  ///< `s3_journal_options::record_check`
};

/// What a source knows, beyond the cursor, that shapes one poll's listing.
struct s3_poll_hints {
  /// List only the tail first (see `s3_merge`, `s3_listing_plan`).
  bool tail_first = false;
  /// The server's clock now, in ms, when the source's client has learnt it
  /// (at its earliest, given the Date headers' error). A horizon ahead of it
  /// came from a writer whose clock is ahead: the listing then starts from
  /// this clock instead, so that writer cannot push other writers' records
  /// out of the window.
  std::optional<std::uint64_t> server_now{};
  /// The objects the previous poll found gone (`s3_merge::gone()`): passed
  /// over if they are gone again.
  std::set<std::string> gone{};
};

/// One poll of an S3 journal, from a cursor to the next. Fed the listing's
/// pages and the bodies it asked for, it decides which records to deliver
/// and in what order, which entries to skip or report, when a GAP is due,
/// where the cursor goes, and which request comes next.
///
/// Driving it: while `next().what` is not `done`, make the request it
/// names and hand the answer to `on_page` (list) or `on_bodies` (fetch);
/// then `finish()` gives the poll's result.
class s3_merge {
 public:
  /// Most record objects one fetch step asks for.
  static constexpr std::size_t fetch_batch = 32;
  /// How many late windows the cursor remembers a writer after its last
  /// object: a sequenced object whose predecessor is that recent and not in
  /// the cursor was never read, and is reported with a GAP.
  static constexpr std::uint64_t writer_memory = 10;

  /// A merge reading up to `max_events` events after `cursor`. A malformed
  /// cursor is reported as a problem and answered with a GAP event, and the
  /// merge reads from the oldest entry kept. `settings` and `reported` (the
  /// keys already reported as no journal entry, to which the merge adds
  /// those it reports, so each is reported once) must outlive the merge.
  ///
  /// The listing starts a late window before the horizon, or before
  /// `hints.server_now` when that is earlier. With `hints.tail_first`, a
  /// resuming merge first lists only from there plus the window: when that
  /// page holds nothing new the poll ends there, one LIST however many
  /// objects the late window holds; otherwise it lists the whole window as
  /// without it. Records that land late are then read by the next poll that
  /// lists the window, which comes before the horizon moves (only new
  /// records move it), so none is missed.
  s3_merge(const s3_merge_settings& settings, std::set<std::string>& reported, std::string_view cursor,
           std::size_t max_events, s3_poll_hints hints = {})
      : settings_(settings),
        reported_(reported),
        max_events_(max_events),
        gone_before_(std::move(hints.gone)),
        window_(static_cast<std::uint64_t>(std::max<std::int64_t>(0, settings.late_window.count()))) {
    std::string why;
    if (auto decoded = s3_cursor::decode(cursor, why)) {
      cursor_ = std::move(*decoded);
    } else {
      result_.problems.push_back({errc::invalid_cursor, where() + ": cursor " + quote(cursor) + " " + why +
                                                            "; reading from the oldest records kept"});
      result_.events.push_back(storewatch::detail::make_gap("cursor " + quote(cursor) + " was not understood"));
    }
    resuming_ = cursor_.resuming();
    list_.what = s3_merge_step::kind::list;
    list_.prefix = settings_.folder;
    const auto newest = hints.server_now ? std::min(cursor_.horizon, *hints.server_now) : cursor_.horizon;
    if (newest > window_) list_.start_after = settings_.folder + padded(newest - window_, stamp_digits);
    if (hints.tail_first && !list_.start_after.empty() && result_.events.empty()) {
      tail_ = true;
      step_ = list_;
      step_.start_after = tail_start(newest);
      return;
    }
    advance();
  }

  s3_merge(const s3_merge&) = delete;
  s3_merge& operator=(const s3_merge&) = delete;

  /// What to do next.
  const s3_merge_step& next() const noexcept { return step_; }

  /// The answer to a `list` step.
  void on_page(s3_listing_page page) {
    assert(step_.what == s3_merge_step::kind::list);
    more_ = page.truncated;
    list_.continuation_token = std::move(page.continuation_token);
    items_.clear();
    next_ = fetched_ = 0;
    for (auto& key : page.keys) {
      auto entry = key.starts_with(settings_.folder)
                       ? parse_journal_entry(std::string_view(key).substr(settings_.folder.size()))
                       : std::nullopt;
      if (!entry) {
        if (reported_.insert(key).second) {
          result_.problems.push_back(
              {errc::corrupt_record, where() + ": object " + quote(key) + " is not a journal record; skipped"});
        }
        continue;
      }
      if (entry->what == journal_entry::kind::record && delivered(*entry)) continue;
      if (entry->what == journal_entry::kind::segment && !cursor_.segment.empty() &&
          std::string_view(key).substr(settings_.folder.size()) <= cursor_.segment) {
        continue;  // read to its end before
      }
      items_.push_back({std::move(key), std::move(*entry)});
    }
    if (tail_) {
      tail_ = false;
      if (items_.empty() && !more_) {
        step_ = {};  // nothing new after the horizon: the window is not listed
        return;
      }
      items_.clear();
      more_ = true;
      list_.continuation_token.clear();
      step_ = list_;
      return;
    }
    ++window_pages_;
    mark_segment_ranges();
    advance();
  }

  /// The answer to a `fetch` step: one body per key, in its order; nullopt
  /// for an object that is gone (a failed operation taken back, or
  /// retention, whose floor follows).
  void on_bodies(std::vector<std::optional<std::string>> bodies) {
    assert(step_.what == s3_merge_step::kind::fetch && bodies.size() == batch_.size());
    for (std::size_t i = 0; i < batch_.size() && i < bodies.size(); ++i) items_[batch_[i]].body = std::move(bodies[i]);
    advance();
  }

  /// The cursor so far.
  const s3_cursor& cursor() const noexcept { return cursor_; }

  /// The pages of the late window's listing this poll read (0 when a
  /// `tail_first` poll found nothing new).
  std::size_t window_pages() const noexcept { return window_pages_; }

  /// The record objects and segments this poll found gone when it fetched
  /// them: those the previous poll had found gone too, passed over, and the
  /// one it ended at (see `advance`); for the next poll's
  /// `s3_poll_hints::gone`. Remembering them all, not only the last, lets
  /// a poll pass over two or more objects that stay listed but gone.
  const std::set<std::string>& gone() const noexcept { return gone_; }

  /// The poll's events, problems and next cursor; once `next()` is `done`.
  poll_result finish() {
    // Writers whose last object is older than the window are not listed
    // again, but are remembered for `writer_memory` windows, so that a
    // missing object between theirs and a later one shows (`check_sequence`);
    // then forgotten (a later object of theirs is new to the cursor).
    std::erase_if(cursor_.writers, [&](const auto& writer) {
      return writer.second.records == s3_cursor::position::whole &&
             writer.second.stamp + window_ * writer_memory < cursor_.horizon;
    });
    result_.next_cursor = cursor_.encode();
    return std::move(result_);
  }

 private:
  // An entry of the current page not delivered before, with its body once fetched.
  struct item {
    std::string name;
    journal_entry entry;
    std::optional<std::string> body{};
    // For a record listed in the range of a segment listed after it on
    // the same page: that segment's index. It is read with the segment's
    // members, in name order, not before them (see `read_segment`).
    std::size_t segment = no_segment;
  };
  static constexpr std::size_t no_segment = SIZE_MAX;

  std::string where() const { return "S3 journal " + settings_.journal; }

  // Where a tail listing starts: at `newest`, or, when that is the horizon,
  // just before the first object stamped with it that the cursor has, so
  // that a burst of one millisecond is not listed again.
  std::string tail_start(std::uint64_t newest) const {
    auto start = settings_.folder + padded(newest, stamp_digits);
    if (newest != cursor_.horizon) return start;
    std::optional<std::string> first;
    for (const auto& [writer, at] : cursor_.writers) {
      if (at.stamp != newest || at.object == 0) continue;
      // Sorts before the name of object `at.object`, in either form.
      auto before = start + '-' + writer + '-' + padded(at.object - 1, object_digits);
      if (!first || before < *first) first = std::move(before);
    }
    return first.value_or(std::move(start));
  }

  bool delivered(const journal_entry& entry) const {
    const auto known = cursor_.writers.find(entry.writer);
    if (known == cursor_.writers.end()) return false;
    const auto& at = known->second;
    return entry.object < at.object || (entry.object == at.object && at.records == s3_cursor::position::whole);
  }

  // Walks the page in order until a request is needed, the events are
  // enough, or the listing is done; fetches the records ahead up to
  // `fetch_batch` objects at a time, never more objects than events wanted.
  void advance() {
    while (result_.events.size() < max_events_) {
      if (next_ == items_.size()) {
        if (!more_) break;
        step_ = list_;
        return;
      }
      if (next_ == fetched_) {
        const auto budget = std::min(max_events_ - result_.events.size(), fetch_batch);
        batch_.clear();
        // A segment is fetched on its own: it holds many records.
        bool segment = false;
        for (; fetched_ < items_.size() && batch_.size() < budget; ++fetched_) {
          const auto what = items_[fetched_].entry.what;
          if (what == journal_entry::kind::segment) {
            if (batch_.empty()) {
              batch_.push_back(fetched_++);
              segment = true;
            }
            break;
          }
          if (what == journal_entry::kind::record) batch_.push_back(fetched_);
        }
        if (!batch_.empty()) {
          step_ = {};
          step_.what = s3_merge_step::kind::fetch;
          step_.segment = segment;
          for (const auto index : batch_) step_.keys.push_back(items_[index].name);
          return;
        }
      }
      // An object listed but gone when fetched: a compaction may have
      // folded it into a segment this listing did not show, with this
      // writer's later objects still here; delivering those would skip it.
      // The poll ends before it and the next lists again. Gone again then
      // (a failed operation taken back, or retention): passed over.
      const auto& it = items_[next_];
      if (it.segment != no_segment) {  // read with its segment
        ++next_;
        continue;
      }
      if (!it.body && it.entry.what != journal_entry::kind::floor) {
        gone_.insert(it.name);  // remembered while it stays listed
        if (!gone_before_.contains(it.name)) break;
      }
      take(next_++);
    }
    step_ = {};
  }

  // Marks the records listed in the range of a segment listed after them
  // (records that a compaction that stopped left beside it, or that landed
  // there after it was written; see `item::segment`). A segment sorts
  // right after its last record, so they are the entries right before it
  // that are not before its first. A record in the ranges of two segments
  // (compactions that raced) goes with the first.
  void mark_segment_ranges() {
    for (std::size_t j = 0; j < items_.size(); ++j) {
      if (items_[j].entry.what != journal_entry::kind::segment) continue;
      const auto first = settings_.folder + items_[j].entry.first;
      for (std::size_t i = j; i-- > 0 && items_[i].name >= first;) {
        if (items_[i].entry.what == journal_entry::kind::record && items_[i].segment == no_segment) {
          items_[i].segment = j;
        }
      }
    }
  }

  void take(std::size_t index) {
    const auto& it = items_[index];
    if (it.entry.what == journal_entry::kind::floor) {
      if (it.entry.stamp > cursor_.floor) {
        if (resuming_) {
          result_.events.push_back(storewatch::detail::make_gap(settings_.journal + ": records stamped before " +
                                                                std::to_string(it.entry.stamp) +
                                                                " ms were removed by retention; some may not have been read"));
        }
        cursor_.floor = it.entry.stamp;
      }
      return;
    }
    if (it.entry.what == journal_entry::kind::segment) {
      read_segment(index);
      return;
    }
    check_sequence(it.entry);
    if (it.body) read_object(it.name, it.entry, *it.body);
  }

  // Reads the members of a segment, and the records listed in its range
  // (`mark_segment_ranges`) that it does not hold, in name order, as record
  // objects listed at their own names: members the window's listing would
  // not list, or that the cursor says were delivered (a reader that read
  // them before they were compacted, or read another segment holding
  // them), are passed over, so each record is delivered once and each
  // writer's in order. A record that landed in the range after the segment
  // was written is delivered in its place, not passed over. Once read to
  // its end, the cursor names the segment, and later polls do not fetch it
  // again. A segment gone (retention) or unreadable leaves the records
  // listed in its range, read as such; its problems are reported once.
  void read_segment(std::size_t index) {
    const auto& key = items_[index].name;
    std::optional<std::vector<segment_member>> members;
    if (const auto& body = items_[index].body) {
      std::string why;
      members = decode_segment(*body, why);
      if (!members && reported_.insert(key).second) {
        result_.problems.push_back(
            {errc::corrupt_record, where() + ": segment " + quote(key) + " " + why + "; skipped"});
      }
    }
    struct entry_to_read {
      std::string_view name;  // relative to the journal folder
      std::string_view body;
      bool member;
    };
    std::vector<entry_to_read> all;
    for (const auto& member : members.value_or(std::vector<segment_member>{})) {
      all.push_back({member.name, member.body, true});
    }
    // The records listed in its range that it does not hold, if any: then
    // in name order with the members (as they are when none is).
    std::set<std::string_view> held;
    for (std::size_t i = 0; i < index; ++i) {
      const auto& it = items_[i];
      if (it.segment != index || !it.body) continue;
      if (held.empty()) {
        for (const auto& e : all) held.insert(e.name);
      }
      const auto name = std::string_view(it.name).substr(settings_.folder.size());
      if (!held.contains(name)) all.push_back({name, *it.body, false});
    }
    if (!held.empty()) {
      std::stable_sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    }
    for (const auto& e : all) {
      if (result_.events.size() >= max_events_) return;  // the rest in the next poll
      auto name = settings_.folder + std::string(e.name);
      if (e.member && name <= list_.start_after) continue;
      const auto entry = parse_journal_entry(e.name);
      if (!entry || entry->what != journal_entry::kind::record) {
        if (reported_.insert(key + ' ' + std::string(e.name)).second) {
          result_.problems.push_back({errc::corrupt_record, where() + ": segment " + quote(key) + " member " +
                                                                quote(e.name) + " is not a journal record; skipped"});
        }
        continue;
      }
      if (delivered(*entry)) continue;
      check_sequence(*entry);
      read_object(name, *entry, e.body);
      if (cursor_.writers[entry->writer].records != s3_cursor::position::whole) return;
    }
    if (items_[index].body) cursor_.segment = std::max(cursor_.segment, key.substr(settings_.folder.size()));
  }

  // Before a sequenced object is read: a GAP when an object its writer
  // wrote for this user before it was never read. Listing from the late
  // window's start misses an object stamped earlier than that (a writer's
  // clock far behind another's, or a PUT that landed very late); its
  // successor's number and `previous` stamp show it.
  void check_sequence(const journal_entry& entry) {
    if (!entry.previous || *entry.previous < cursor_.floor) return;  // before the floor: retention's GAP says so
    const auto known = cursor_.writers.find(entry.writer);
    std::string missing;
    if (known != cursor_.writers.end()) {
      const auto& at = known->second;
      const auto first = at.records == s3_cursor::position::whole ? at.object + 1 : at.object;
      if (entry.object <= first) return;  // the next one, or the rest of one begun
      missing = "objects " + std::to_string(first) + " to " + std::to_string(entry.object - 1) + ", stamped " +
                std::to_string(at.stamp) + " to " + std::to_string(*entry.previous) + " ms,";
    } else {
      // A reader from the oldest entry lists all there are; a writer last
      // read longer ago than the cursor remembers may have been read.
      if (entry.object <= 1 || !resuming_ || *entry.previous + window_ * writer_memory < cursor_.horizon) return;
      missing = "objects 1 to " + std::to_string(entry.object - 1) + ", the last stamped " +
                std::to_string(*entry.previous) + " ms,";
    }
    result_.events.push_back(storewatch::detail::make_gap(
        settings_.journal + ": writer " + entry.writer + "'s " + missing +
        " were not read: stamped before the late window (" + std::to_string(window_) +
        " ms behind the newest record read) when listed, as when writers' clocks disagree by more than that"));
  }

  // Delivers the records of one object after those the cursor says were
  // delivered, as many as fit; a line that is no good record is reported.
  void read_object(const std::string& name, const journal_entry& entry, std::string_view body) {
    auto& at = cursor_.writers[entry.writer];
    const std::uint64_t skip = at.object == entry.object && at.records != s3_cursor::position::whole ? at.records : 0;
    at.object = entry.object;
    at.stamp = entry.stamp;
    cursor_.horizon = std::max(cursor_.horizon, entry.stamp);
    std::uint64_t index = 0;
    std::size_t line_number = 0;
    while (!body.empty()) {
      ++line_number;
      const auto newline = body.find('\n');
      const auto line = body.substr(0, newline);
      body = newline == std::string_view::npos ? std::string_view{} : body.substr(newline + 1);
      if (index++ < skip) continue;
      if (result_.events.size() >= max_events_) {
        at.records = index - 1;
        return;
      }
      std::string why = newline == std::string_view::npos ? "no newline at the end" : "";
      auto e = why.empty() ? storewatch::detail::decode_record(line, why) : std::nullopt;
      if (e && settings_.record_check) why = settings_.record_check(*e);
      if (e && why.empty()) {
        result_.events.push_back(std::move(*e));
      } else {
        result_.problems.push_back({errc::corrupt_record, where() + ": object " + quote(name) + " line " +
                                                              std::to_string(line_number) + ": " + why + "; skipped"});
      }
    }
    at.records = s3_cursor::position::whole;
  }

  const s3_merge_settings& settings_;
  std::set<std::string>& reported_;
  std::size_t max_events_;
  std::set<std::string> gone_before_;  // hints.gone
  std::set<std::string> gone_{};       // see gone()
  std::uint64_t window_;
  s3_cursor cursor_{};
  bool resuming_ = false;
  bool tail_ = false;              // the list step under way is the tail's
  std::size_t window_pages_ = 0;
  s3_merge_step list_{};           // the next list step: its start and continuation token
  bool more_ = true;               // the listing has another page
  std::vector<item> items_{};      // the current page's entries not delivered before
  std::size_t next_ = 0;           // the next item to take
  std::size_t fetched_ = 0;        // items before it need no fetch step
  std::vector<std::size_t> batch_{};  // the items of the fetch step
  s3_merge_step step_{};
  poll_result result_{};
};

/// Which polls of a source list only the journal's tail (`s3_merge`'s
/// `tail_first`): while the late window's listing takes more than one page,
/// the polls after one that listed it, up to `rescan_every` of them, until
/// one finds something new. So an idle poll is one LIST however many objects
/// the window holds; a record landing late in an idle journal is read within
/// `rescan_every` polls (a journal whose window fits one page lists it every
/// poll, as that costs one LIST too).
struct s3_listing_plan {
  static constexpr unsigned rescan_every = 12;
  std::size_t window_pages = 0;  ///< pages of the last listing of the window
  unsigned tail_polls = 0;       ///< polls since, that listed only the tail

  bool tail_first() const noexcept { return window_pages > 1 && tail_polls + 1 < rescan_every; }

  /// Learns from a finished poll.
  void after(const s3_merge& merge) noexcept {
    if (merge.window_pages() == 0) {
      ++tail_polls;
    } else {
      window_pages = merge.window_pages();
      tail_polls = 0;
    }
  }
};

}  // namespace storewatch::s3::detail
