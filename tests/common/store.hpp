// Shared helpers for tests of the local store: selections, version names,
// and reading a user's journal step by step.
#pragma once

#include <storewatch/storewatch.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace storewatch::test {

inline const std::string star(version_separator);  // ✹, UTF-8 E2 9C B9

/// A selection in one expression.
inline selection chosen(std::string prefix, bool recursive, std::optional<timestamp> since = std::nullopt,
                        std::optional<timestamp> until = std::nullopt) {
  selection which;
  which.prefix = std::move(prefix);
  which.recursive = recursive;
  which.since = since;
  which.until = until;
  return which;
}

inline timestamp now_ms() {
  return std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
}

/// The version's text, for expectations.
inline std::string text(const versioned_path& v) { return v.to_string(); }

inline std::vector<std::string> names_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.name);
  return out;
}

inline std::vector<std::string> data_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.data);
  return out;
}

inline std::vector<std::string> texts_of(const std::vector<versioned_path>& versions) {
  std::vector<std::string> out;
  for (const auto& v : versions) out.push_back(v.to_string());
  return out;
}

inline std::vector<std::string> sorted(std::vector<std::string> values) {
  std::sort(values.begin(), values.end());
  return values;
}

/// Reads one journal through a source, remembering where it stopped.
class journal_reader {
 public:
  /// Polls with `poll(cursor, max_events)`.
  using poll_function = std::function<poll_result(const std::string&, std::size_t)>;

  explicit journal_reader(poll_function poll) : poll_(std::move(poll)) {}
  explicit journal_reader(journal_source source)
      : journal_reader([source = std::make_shared<journal_source>(std::move(source))](const std::string& cursor,
                                                                                        std::size_t max_events) {
          return source->poll(cursor, max_events);
        }) {}
  explicit journal_reader(const local_store& store) : journal_reader(store.events()) {}

  struct batch {
    std::vector<event> events;
    std::vector<source_problem> problems;
  };

  /// Every event and problem after the last call; all of them on the first.
  batch take_all() {
    batch all;
    for (;;) {
      auto result = poll_(cursor_, max_events);
      for (auto& problem : result.problems) all.problems.push_back(std::move(problem));
      // A poll that returns events without moving the cursor (a GAP for a
      // cursor it did not understand) would repeat forever.
      const bool moved = result.next_cursor != cursor_;
      cursor_ = result.next_cursor;
      const bool more = result.events.size() == max_events;
      for (auto& e : result.events) all.events.push_back(std::move(e));
      if (!more || !moved) break;
    }
    return all;
  }

  /// Where the next call starts.
  const std::string& cursor() const { return cursor_; }

  /// Every event after the last call; a problem fails the test.
  std::vector<event> take() {
    auto all = take_all();
    for (const auto& problem : all.problems) FAIL_CHECK("journal problem: " << problem.message);
    return std::move(all.events);
  }

 private:
  static constexpr std::size_t max_events = 1000;
  poll_function poll_;
  std::string cursor_;
};

}  // namespace storewatch::test
