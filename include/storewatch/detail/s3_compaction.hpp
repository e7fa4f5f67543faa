// What a compaction of an S3 journal folds into segments, decided from the
// folder's listing alone (the layout and the reasons are at the top of
// store/s3_journal.hpp): free of I/O, as detail/s3_merge.hpp is for readers.
#pragma once

#include <storewatch/detail/s3_merge.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace storewatch::s3::detail {

/// Most record objects one segment holds: what one DeleteObjects request
/// removes, and one listing page.
inline constexpr std::size_t max_segment_objects = 1000;

/// Keys in one of compaction's DeleteObjects requests at first: not S3's
/// 1000, for s3rver reads the whole folder after each key it deletes, so a
/// request takes keys x folder size, and smaller requests cost little more.
inline constexpr std::size_t delete_batch = 200;
/// The fewest keys compaction sends in one DeleteObjects request: after a
/// request timed out (`request_timed_out`), its keys go again in requests of
/// half as many, down to this; one of this size that times out fails the
/// compaction.
inline constexpr std::size_t min_delete_batch = 10;

/// The keys per DeleteObjects request after a request of `batch` keys timed
/// out: half, at least `min_delete_batch`; 0 when `batch` is that already
/// (give up).
constexpr std::size_t smaller_delete_batch(std::size_t batch) noexcept {
  return batch <= min_delete_batch ? 0 : std::max(min_delete_batch, batch / 2);
}

/// What one compaction of a journal folder does, in this order.
struct s3_compaction_plan {
  /// An existing segment, and the record objects still listed in its
  /// range: those it holds are removed (a compaction that stopped after
  /// writing it left them), any other is a record that landed there later
  /// and is left alone.
  struct leftover {
    std::string segment;               ///< its key
    std::vector<std::string> records;  ///< keys, in listing order
  };
  std::vector<leftover> leftovers;
  /// Runs of record objects, each to be written as one segment and then
  /// removed: keys in listing order, none in the range of a segment.
  std::vector<std::vector<std::string>> runs;
};

/// Plans the compaction of the journal folder `folder` whose keys (relative
/// to the store's key prefix, in listing order) are `keys`: the record
/// objects stamped before `cutoff` (ms) that no segment covers, in runs of
/// consecutive keys of at most `segment_objects` (1 to
/// `max_segment_objects`) objects. A run ends at a segment's key and at a
/// record in a segment's range, so segments never overlap a run: a reader
/// reading them in key order delivers each writer's records in order.
inline s3_compaction_plan plan_compaction(std::string_view folder, const std::vector<std::string>& keys,
                                          std::uint64_t cutoff, std::size_t segment_objects) {
  segment_objects = std::clamp<std::size_t>(segment_objects, 1, max_segment_objects);
  struct range {
    std::string first, last;  // keys of its first and last record
    std::size_t leftover;     // its index in plan.leftovers
  };
  s3_compaction_plan plan;
  std::vector<range> segments;
  for (const auto& key : keys) {
    if (!key.starts_with(folder)) continue;
    const auto name = std::string_view(key).substr(folder.size());
    const auto entry = parse_journal_entry(name);
    if (!entry || entry->what != journal_entry::kind::segment) continue;
    segments.push_back({std::string(folder) + entry->first,
                        std::string(folder) + std::string(name.substr(0, name.find(segment_separator))),
                        plan.leftovers.size()});
    plan.leftovers.push_back({key, {}});
  }
  std::vector<std::string> run;
  const auto close_run = [&] {
    if (!run.empty()) plan.runs.push_back(std::move(run));
    run.clear();
  };
  for (const auto& key : keys) {
    const auto entry = key.starts_with(folder) ? parse_journal_entry(std::string_view(key).substr(folder.size()))
                                               : std::nullopt;
    if (!entry || entry->what == journal_entry::kind::floor) continue;  // not in segments, nor a run's end
    if (entry->what == journal_entry::kind::segment) {
      close_run();
      continue;
    }
    bool covered = false;
    for (const auto& segment : segments) {
      if (key >= segment.first && key <= segment.last) {
        plan.leftovers[segment.leftover].records.push_back(key);
        covered = true;
      }
    }
    if (covered || entry->stamp >= cutoff) {
      close_run();
      continue;
    }
    run.push_back(key);
    if (run.size() == segment_objects) close_run();
  }
  close_run();
  std::erase_if(plan.leftovers, [](const auto& leftover) { return leftover.records.empty(); });
  return plan;
}

/// The stamp before which a compaction folds records into segments: `settled`
/// ms before both the compacting machine's clock `now` and the newest record
/// stamp among `keys` (segments included), so that a reader that has read the
/// newest record does not list a segment again. 0 when nothing qualifies.
inline std::uint64_t compaction_cutoff(std::string_view folder, const std::vector<std::string>& keys,
                                       std::uint64_t now, std::uint64_t settled) {
  std::uint64_t newest = 0;
  for (const auto& key : keys) {
    const auto entry = key.starts_with(folder) ? parse_journal_entry(std::string_view(key).substr(folder.size()))
                                               : std::nullopt;
    if (entry && entry->what != journal_entry::kind::floor) newest = std::max(newest, entry->stamp);
  }
  const auto limit = std::min(now, newest);
  return limit > settled ? limit - settled : 0;
}

}  // namespace storewatch::s3::detail
