// The durable per-user journal: record framing, cursors, corrupt and torn
// bytes in real segment files, segment rotation, retention (compaction and
// GAP), epochs (a recreated journal) and the cost of an idle poll.
//
// Journals are written with a real local_store (or, where only the bytes
// matter, with detail::journal_writer) into a fresh temp dir, then read with
// the journal source's synchronous poll().
#include "common/fixture.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <csignal>
#include <sys/resource.h>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace journal_test {

using namespace storewatch;
using namespace storewatch::test;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const std::string writer_user = "alice222";
const std::string reader_user = "bob123";

std::string read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  REQUIRE(out);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out);
}

void append_bytes(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::app);
  REQUIRE(out);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out);
}

/// Offsets at which the lines of `bytes` start.
std::vector<std::size_t> line_starts(const std::string& bytes) {
  std::vector<std::size_t> starts;
  std::size_t at = 0;
  while (at < bytes.size()) {
    starts.push_back(at);
    const auto newline = bytes.find('\n', at);
    if (newline == std::string::npos) break;
    at = newline + 1;
  }
  return starts;
}

std::vector<std::string> data_of(const std::vector<event>& events) {
  std::vector<std::string> out;
  for (const auto& e : events) out.push_back(e.data);
  return out;
}

std::vector<std::string> numbered(const std::string& prefix, int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(prefix + std::to_string(i));
  return out;
}

std::string hex8(std::uint32_t value) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out(8, '0');
  for (int i = 0; i < 8; ++i) out[static_cast<std::size_t>(i)] = hex[(value >> (28 - 4 * i)) & 0xF];
  return out;
}

/// A line with a correct checksum around any text.
std::string framed(const std::string& json) { return hex8(detail::checksum(json)) + " " + json; }

event sample_event() {
  event e;
  e.name = "SHARE";
  e.data = "SharedEvents/a b.txt" + std::string(version_separator) + "alice222_1761135341619";
  e.id = "host-1-abcdef01-7";
  e.actor = "alice222";
  e.occurred_at = timestamp{std::chrono::milliseconds{1761135341619}};
  e.attributes = nlohmann::json{{"size", 12}, {"note", "line1\nline2"}};
  return e;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A store root with a writer (alice222) publishing to bob123's journal and
/// bob123's journal source.
struct journal_fixture {
  explicit journal_fixture(local_store_options options = {})
      : alice(io.get_executor(), dir.path(), writer_user, options),
        source(io.get_executor(), dir.path() / "journals" / reader_user) {}

  fs::path journal() const { return dir.path() / "journals" / reader_user; }

  /// The only writer folder of bob123's journal.
  fs::path writer_dir() const {
    const auto writers = detail::list_writers(journal());
    REQUIRE(writers.size() == 1);
    return journal() / writers.front();
  }

  fs::path segment(std::uint64_t number) const { return writer_dir() / detail::segment_name(number); }

  void publish(const std::string& data) { alice.publish_event("NOTE", data, {reader_user}); }

  void publish_numbered(const std::string& prefix, int from, int to) {
    for (int i = from; i < to; ++i) publish(prefix + std::to_string(i));
  }

  std::size_t compact(std::chrono::seconds age) {
    std::error_code result_error = make_error_code(errc::stopped);
    std::size_t removed = 0;
    bool done = false;
    alice.async_compact(age, [&](std::error_code ec, std::size_t n) {
      result_error = ec;
      removed = n;
      done = true;
    });
    REQUIRE(run_until(io, [&] { return done; }));
    REQUIRE_FALSE(result_error);
    return removed;
  }

  temp_dir dir;
  asio::io_context io;
  local_store alice;
  journal_source source;
};

}  // namespace

// ---------------------------------------------------------------- records

TEST_CASE("journal record: encode and decode round trip, one line per record") {
  const auto e = sample_event();
  const auto line = detail::encode_record(e);
  REQUIRE(line.back() == '\n');
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);  // a newline in the data is escaped
  std::string why;
  const auto decoded = detail::decode_record(std::string_view(line).substr(0, line.size() - 1), why);
  REQUIRE(decoded);
  CHECK(*decoded == e);
  CHECK(why.empty());

  // Minimal events too (no actor, no attributes).
  event small;
  small.name = "X";
  small.data = "";
  small.id = "i";
  const auto small_line = detail::encode_record(small);
  const auto small_decoded = detail::decode_record(std::string_view(small_line).substr(0, small_line.size() - 1), why);
  REQUIRE(small_decoded);
  CHECK(*small_decoded == small);
}

TEST_CASE("journal record: a flipped bit anywhere in the line is rejected with a reason") {
  const auto full = detail::encode_record(sample_event());
  const std::string line = full.substr(0, full.size() - 1);
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < line.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      auto flipped = line;
      flipped[i] = static_cast<char>(flipped[i] ^ (1 << bit));
      std::string why;
      const auto decoded = detail::decode_record(flipped, why);
      if (decoded) FAIL("byte " << i << " bit " << bit << " flipped was accepted");
      if (why.empty()) FAIL("byte " << i << " bit " << bit << " flipped: no reason given");
      ++rejected;
    }
  }
  CHECK(rejected == line.size() * 8);
}

TEST_CASE("journal record: fields with tabs, newlines and backslashes round trip - a line is one record") {
  event e = make_event("NOTE", "a\tb\nc\\d\\t\\n end\\", "id\twith\\tab");
  e.actor = "act\nor";
  e.occurred_at = timestamp{std::chrono::milliseconds{-5}};
  e.attributes = nlohmann::json{{"k\t", "v\n\\"}};
  const auto line = detail::encode_record(e);
  CHECK(std::count(line.begin(), line.end(), '\n') == 1);
  std::string why;
  const auto decoded = detail::decode_record(std::string_view(line).substr(0, line.size() - 1), why);
  REQUIRE(decoded);
  CHECK(*decoded == e);
}

TEST_CASE("journal record: truncated lines, bad hex, bad fields are rejected with reasons") {
  const auto full = detail::encode_record(sample_event());
  const std::string line = full.substr(0, full.size() - 1);
  std::string why;

  SECTION("every truncation") {
    for (std::size_t size = 0; size < line.size(); ++size) {
      why.clear();
      CHECK_FALSE(detail::decode_record(std::string_view(line).substr(0, size), why));
      CHECK_FALSE(why.empty());
    }
  }
  SECTION("bad checksum digits") {
    for (const std::string digits : {"zzzzzzzz", "0000000g", "-1234567", "+1234567", "        ", "0x123456"}) {
      why.clear();
      INFO(digits);
      CHECK_FALSE(detail::decode_record(digits + line.substr(8), why));
      CHECK(contains(why, "not a record"));
    }
    // Upper-case hex of the right checksum: the writer never produces it.
    auto upper = line;
    std::transform(upper.begin(), upper.begin() + 8, upper.begin(), [](char c) {
      return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    });
    if (upper != line) {
      why.clear();
      CHECK_FALSE(detail::decode_record(upper, why));
      CHECK_FALSE(why.empty());
    }
  }
  SECTION("no space after the checksum") {
    auto joined = line;
    joined[8] = '_';
    CHECK_FALSE(detail::decode_record(joined, why));
    CHECK(contains(why, "not a record"));
  }
  SECTION("a correct checksum around fields that are not an event") {
    const std::vector<std::pair<std::string, std::string>> cases = {
        {"not a record at all", "fields"},
        {"{\"id\":\"i\",\"name\":\"X\",\"data\":\"d\",\"occurred_at\":1}", "fields"},  // JSON: not this format
        {"i\tX\ta\t1", "fields"},
        {"i\tX\ta\tyesterday\td", "occurred_at"},
        {"i\tX\ta\t\td", "occurred_at"},
        {"i\tX\ta\t12abc\td", "occurred_at"},
        {"i\tX\ta\t99999999999999999999999\td", "occurred_at"},
        {"\tX\ta\t1\td", "id"},
        {"i\t\ta\t1\td", "name"},
        {"i\tX\ta\t1\td\\q", "escape"},
        {"i\tX\ta\t1\td\\", "escape"},
        {"i\\\tX\ta\t1\td", "escape"},
        {"i\tX\ta\t1\td\t{not json", "attributes"},
        {"i\tX\ta\t1\td\t{}\textra", "too many fields"},
    };
    for (const auto& [fields, reason] : cases) {
      why.clear();
      INFO(fields);
      CHECK_FALSE(detail::decode_record(framed(fields), why));
      CHECK(contains(why, reason));
    }
    // And the framing itself is right: well-formed fields decode.
    why.clear();
    const auto ok = detail::decode_record(framed("i\tX\ta\t1\td"), why);
    REQUIRE(ok);
    CHECK(ok->id == "i");
    CHECK(ok->data == "d");
    CHECK(ok->occurred_at.time_since_epoch().count() == 1);
  }
}

TEST_CASE("journal record: occurred_at is read as std::from_chars reads a 64-bit integer") {
  for (const std::string when : {"0", "-0", "1", "-1", "007", "-007", "1761135341619", "9223372036854775807",
                                 "-9223372036854775808", "9223372036854775808", "-9223372036854775809",
                                 "18446744073709551616", "0000000000000000000000000000042", "-", "--1", "+1",
                                 " 1", "1 ", "1-", "0x10", "1e3", "\xD9\xA1"}) {
    INFO(when);
    std::int64_t expected = 0;
    const auto parsed = std::from_chars(when.data(), when.data() + when.size(), expected);
    const bool valid = !when.empty() && parsed.ec == std::errc{} && parsed.ptr == when.data() + when.size();
    std::string why;
    const auto decoded = detail::decode_record(framed("i\tX\ta\t" + when + "\td"), why);
    REQUIRE(decoded.has_value() == valid);
    if (valid) {
      CHECK(decoded->occurred_at.time_since_epoch().count() == expected);
    } else {
      CHECK(contains(why, "occurred_at"));
    }
  }
}

TEST_CASE("journal record: a byte that is not UTF-8 in any field is rejected as such, next to escapes or not") {
  // The check runs once over the escaped fields, not field by field: a bad
  // byte anywhere from id to data, and a character split by a field's end,
  // must still be found; in the attributes it is bad JSON.
  const std::vector<std::string> fields = {"id", "NAME", "actor", "data"};
  for (std::size_t field = 0; field < fields.size(); ++field) {
    for (const std::string bad : {"\xFF", "\xC3", "\xE2\x9C", "\xED\xA0\x80", "\x80"}) {
      for (const std::string around : {"", "\\t", "long enough to be read eight bytes at a time "}) {
        auto copy = fields;
        copy[field] = around + copy[field] + bad;
        INFO(field << " " << around);
        std::string why;
        CHECK_FALSE(detail::decode_record(framed(copy[0] + "\t" + copy[1] + "\t" + copy[2] + "\t1\t" + copy[3]), why));
        CHECK(why == "a field is not UTF-8");
      }
    }
  }
  std::string why;
  CHECK_FALSE(detail::decode_record(framed("i\tX\ta\t1\td\t\"\xFF\""), why));
  CHECK(contains(why, "attributes"));
  // Good multi-byte characters at the edges of every field decode.
  const std::string star = "\xE2\x9C\xB9";
  why.clear();
  const auto ok = detail::decode_record(
      framed(star + "i" + star + "\t" + star + "\t" + star + "\\n" + star + "\t1\t" + star + "\\\\" + star), why);
  REQUIRE(ok);
  CHECK(ok->actor == star + "\n" + star);
  CHECK(ok->data == star + "\\" + star);
}

// ---------------------------------------------------------------- cursors

TEST_CASE("journal cursor: encode and decode round trip") {
  detail::journal_cursor cursor;
  cursor.epoch = "0123456789abcdef";
  cursor.writers["host-12-aa"] = 0;
  cursor.writers["host-13-bb"] = 123456;
  cursor.writers["other_writer"] = 18446744073709551615ull;
  const auto text = cursor.encode();
  std::string why;
  const auto decoded = detail::journal_cursor::decode(text, why);
  REQUIRE(decoded);
  CHECK(why.empty());
  CHECK(decoded->epoch == cursor.epoch);
  CHECK(decoded->writers == cursor.writers);
  CHECK(decoded->encode() == text);

  // The empty cursor means "from the start".
  const auto empty = detail::journal_cursor::decode("", why);
  REQUIRE(empty);
  CHECK(empty->epoch.empty());
  CHECK(empty->writers.empty());
  // A cursor of a journal with an epoch but no writers yet.
  detail::journal_cursor no_writers;
  no_writers.epoch = "0123456789abcdef";
  const auto decoded_no_writers = detail::journal_cursor::decode(no_writers.encode(), why);
  REQUIRE(decoded_no_writers);
  CHECK(decoded_no_writers->writers.empty());
}

TEST_CASE("journal cursor: malformed cursors are rejected with a reason") {
  const std::vector<std::string> bad = {
      "x",
      "j2;epoch",
      "J1;epoch",
      "{\"cursor\":1}",
      "j1;bad epoch;w=1",
      "j1;epoch;w",
      "j1;epoch;w=",
      "j1;epoch;w=a",
      "j1;epoch;w=1:2",
      "j1;epoch;w=-1",
      "j1;epoch;w=+2",
      "j1;epoch;w=1 ",
      "j1;epoch;bad name=1",
      "j1;epoch;../up=1",
      "j1;epoch;=1",
      "j1;epoch;;w=1",
      "j1;epoch;w=99999999999999999999999",  // too large for 64 bits
      "j1;epoch;w=18446744073709551616",
  };
  for (const auto& text : bad) {
    INFO("cursor " << text);
    std::string why;
    CHECK_FALSE(detail::journal_cursor::decode(text, why));
    CHECK_FALSE(why.empty());
  }
}

TEST_CASE("journal source: a malformed cursor is a problem (invalid_cursor) and a GAP, then reading starts at the beginning") {
  journal_fixture f;
  f.publish_numbered("e", 0, 3);
  const auto result = f.source.poll("not-a-cursor", 100);
  REQUIRE(result.problems.size() == 1);
  CHECK(result.problems[0].code == errc::invalid_cursor);
  CHECK(contains(result.problems[0].message, "not-a-cursor"));
  CHECK(contains(result.problems[0].message, f.journal().string()));
  REQUIRE(result.events.size() == 4);
  CHECK(result.events[0].name == event_name::gap);
  CHECK(contains(result.events[0].data, "not-a-cursor"));
  CHECK_FALSE(result.events[0].id.empty());
  CHECK(data_of({result.events.begin() + 1, result.events.end()}) == numbered("e", 0, 3));

  // The cursor it returned is a good one: nothing more, no more problems.
  const auto again = f.source.poll(result.next_cursor, 100);
  CHECK(again.events.empty());
  CHECK(again.problems.empty());
  CHECK(again.next_cursor == result.next_cursor);
}

TEST_CASE("journal source: async_poll completes through the executor with the same result") {
  journal_fixture f;
  f.publish_numbered("e", 0, 5);
  std::optional<poll_result> got;
  std::error_code got_error = make_error_code(errc::stopped);
  f.source.async_poll("", 3, [&](std::error_code ec, poll_result result) {
    got_error = ec;
    got = std::move(result);
  });
  CHECK_FALSE(got);  // never completes inline
  REQUIRE(run_until(f.io, [&] { return got.has_value(); }));
  CHECK_FALSE(got_error);
  CHECK(data_of(got->events) == numbered("e", 0, 3));
  const auto rest = f.source.poll(got->next_cursor, 100);
  CHECK(data_of(rest.events) == numbered("e", 3, 5));
}

TEST_CASE("journal source: a missing journal yields nothing and no problems, and the cursor it returns is accepted") {
  journal_fixture f;
  const auto result = f.source.poll("", 100);
  CHECK(result.events.empty());
  CHECK(result.problems.empty());
  // The poller polls again with the cursor it was given.
  const auto again = f.source.poll(result.next_cursor, 100);
  CHECK(again.events.empty());
  CHECK(again.problems.empty());
  f.publish("first");
  const auto later = f.source.poll(again.next_cursor, 100);
  CHECK(data_of(later.events) == std::vector<std::string>{"first"});
  CHECK(later.problems.empty());
}

TEST_CASE("journal source: a cursor offset past the end of a writer's bytes is reported - later records arrive") {
  journal_fixture f;
  f.publish_numbered("e", 0, 3);
  const auto all = f.source.poll("", 100);
  REQUIRE(all.events.size() == 3);
  std::string why;
  auto cursor = detail::journal_cursor::decode(all.next_cursor, why);
  REQUIRE(cursor);
  REQUIRE(cursor->writers.size() == 1);
  const auto end = cursor->writers.begin()->second;
  cursor->writers.begin()->second = end + 1000;

  const auto past = f.source.poll(cursor->encode(), 100);
  CHECK(past.events.empty());
  REQUIRE(past.problems.size() == 1);
  CHECK(past.problems[0].code == errc::invalid_cursor);
  CHECK(contains(past.problems[0].message, std::to_string(end + 1000)));
  f.publish("e3");
  const auto later = f.source.poll(past.next_cursor, 100);
  CHECK(data_of(later.events) == std::vector<std::string>{"e3"});
  CHECK(later.problems.empty());
}

// ---------------------------------------------------------------- corruption

TEST_CASE("corruption: a flipped bit inside one record is reported with file and offset - the records after it arrive") {
  journal_fixture f;
  f.publish_numbered("e", 0, 10);
  const auto file = f.segment(0);
  const auto original = read_bytes(file);
  const auto starts = line_starts(original);
  REQUIRE(starts.size() == 10);
  const std::size_t victim = 5;
  const std::size_t begin = starts[victim];
  const std::size_t end = starts[victim + 1] - 1;  // its newline

  auto expected = numbered("e", 0, 10);
  expected.erase(expected.begin() + static_cast<std::ptrdiff_t>(victim));

  SECTION("in the checksum, the separator, the JSON") {
    for (const std::size_t at : {begin, begin + 3, begin + 8, begin + 9, (begin + end) / 2, end - 1}) {
      for (const int bit : {0, 2, 5, 6}) {
        auto bytes = original;
        const char flipped = static_cast<char>(bytes[at] ^ (1 << bit));
        if (flipped == '\n') continue;  // that splits the record in two lines: another case
        bytes[at] = flipped;
        write_bytes(file, bytes);
        INFO("byte " << at << " (record offset " << at - begin << ") bit " << bit);
        const auto result = f.source.poll("", 100);
        CHECK(data_of(result.events) == expected);
        REQUIRE(result.problems.size() == 1);
        CHECK(result.problems[0].code == errc::corrupt_record);
        CHECK(contains(result.problems[0].message, file.string()));
        CHECK(contains(result.problems[0].message, "offset " + std::to_string(begin)));
      }
    }
  }

  SECTION("a flipped newline joins two records: one problem, both lost, the rest delivered") {
    auto bytes = original;
    bytes[end] = static_cast<char>(bytes[end] ^ 0x01);
    write_bytes(file, bytes);
    const auto result = f.source.poll("", 100);
    auto fewer = numbered("e", 0, 10);
    fewer.erase(fewer.begin() + static_cast<std::ptrdiff_t>(victim), fewer.begin() + static_cast<std::ptrdiff_t>(victim) + 2);
    CHECK(data_of(result.events) == fewer);
    REQUIRE(result.problems.size() == 1);
    CHECK(contains(result.problems[0].message, "offset " + std::to_string(begin)));
  }

  SECTION("read with a cursor just before the bad record, in small steps") {
    auto bytes = original;
    bytes[begin + 20] = static_cast<char>(bytes[begin + 20] ^ 0x10);
    write_bytes(file, bytes);
    std::vector<std::string> got;
    std::vector<source_problem> problems;
    std::string cursor;
    for (int polls = 0; polls < 50; ++polls) {
      auto result = f.source.poll(cursor, 2);
      for (auto& p : result.problems) problems.push_back(p);
      for (auto& d : data_of(result.events)) got.push_back(d);
      cursor = result.next_cursor;
      if (result.events.empty() && result.problems.empty()) break;
    }
    CHECK(got == expected);
    REQUIRE(problems.size() == 1);  // reported once, not again by later polls
    CHECK(contains(problems[0].message, "offset " + std::to_string(begin)));
  }
}

TEST_CASE("corruption: garbage lines in the middle are each reported with their offset - every record arrives") {
  journal_fixture f;
  f.publish_numbered("e", 0, 10);
  const auto file = f.segment(0);
  const auto original = read_bytes(file);
  const auto starts = line_starts(original);
  REQUIRE(starts.size() == 10);

  const std::vector<std::string> garbage = {
      "garbage\n",
      std::string("\x00\x01\x02\xff binary junk", 17) + "\n",
      "00000000 {}\n",                // looks like a record, wrong checksum
      framed("{\"not\":\"an event\"}") + "\n",  // right checksum, not an event
      "\n",                           // an empty line
  };
  std::string inserted;
  for (const auto& g : garbage) inserted += g;
  auto bytes = original.substr(0, starts[4]) + inserted + original.substr(starts[4]);
  write_bytes(file, bytes);

  const auto result = f.source.poll("", 100);
  CHECK(data_of(result.events) == numbered("e", 0, 10));
  REQUIRE(result.problems.size() == garbage.size());
  std::size_t at = starts[4];
  for (std::size_t i = 0; i < garbage.size(); ++i) {
    INFO("garbage line " << i);
    CHECK(result.problems[i].code == errc::corrupt_record);
    CHECK(contains(result.problems[i].message, file.string()));
    CHECK(contains(result.problems[i].message, "offset " + std::to_string(at)));
    at += garbage[i].size();
  }

  SECTION("garbage lines appended at the end are reported too, and later records still arrive") {
    auto cursor = result.next_cursor;
    append_bytes(file, "trailing garbage\n");
    const auto after_garbage = f.source.poll(cursor, 100);
    CHECK(after_garbage.events.empty());
    REQUIRE(after_garbage.problems.size() == 1);
    CHECK(contains(after_garbage.problems[0].message, "offset " + std::to_string(bytes.size())));
    f.publish("e10");
    const auto later = f.source.poll(after_garbage.next_cursor, 100);
    CHECK(data_of(later.events) == std::vector<std::string>{"e10"});
    CHECK(later.problems.empty());
  }
}

TEST_CASE("corruption: a torn tail at the end of the newest segment is neither delivered nor reported, until completed") {
  journal_fixture f;
  f.publish_numbered("e", 0, 5);
  const auto file = f.segment(0);
  const auto complete_size = read_bytes(file).size();

  event late = make_event("NOTE", "late", "torn-test-1");
  late.actor = writer_user;
  const auto line = detail::encode_record(late);
  const auto half = line.size() / 2;
  append_bytes(file, line.substr(0, half));

  const auto first = f.source.poll("", 100);
  CHECK(data_of(first.events) == numbered("e", 0, 5));
  CHECK(first.problems.empty());
  // Polling again (the writer may still be writing) changes nothing.
  for (int i = 0; i < 3; ++i) {
    const auto again = f.source.poll(first.next_cursor, 100);
    CHECK(again.events.empty());
    CHECK(again.problems.empty());
    CHECK(again.next_cursor == first.next_cursor);
  }
  // A fresh reader sees the same.
  const auto fresh = f.source.poll("", 100);
  CHECK(data_of(fresh.events) == numbered("e", 0, 5));
  CHECK(fresh.problems.empty());

  append_bytes(file, line.substr(half));
  REQUIRE(read_bytes(file).size() == complete_size + line.size());
  const auto completed = f.source.poll(first.next_cursor, 100);
  REQUIRE(completed.events.size() == 1);
  CHECK(completed.events[0] == late);
  CHECK(completed.problems.empty());
}

TEST_CASE("corruption: a torn tail in a sealed segment (the writer moved on) is reported once and skipped") {
  // A writer whose record was torn (half of it written) and that went on to
  // its next segment. Written with journal_writer so that the torn bytes are
  // part of the segment as the writer counted it.
  temp_dir dir;
  asio::io_context io;
  const auto journals = dir.path() / "journals";
  detail::journal_writer writer(journals, "writer-1", 1024);
  const auto big = detail::encode_record(make_event("NOTE", "big:" + std::string(1100, 'x'), "writer-1-0"));
  const auto torn = detail::encode_record(make_event("NOTE", "torn", "writer-1-1"));
  writer.append(reader_user, big);
  writer.append(reader_user, torn.substr(0, torn.size() / 2));
  writer.sync();  // past 1024 bytes: the next append starts another segment
  const auto writer_dir = journals / reader_user / "w0";
  const auto file = writer_dir / detail::segment_name(0);
  const auto torn_at = big.size();

  journal_source source(io.get_executor(), journals / reader_user);
  // While segment 0 is the newest, the tail is waited for.
  const auto first = source.poll("", 100);
  REQUIRE(first.events.size() == 1);
  CHECK(first.events[0].data.starts_with("big:"));
  CHECK(first.problems.empty());

  for (int i = 0; i < 3; ++i) {
    writer.append(reader_user, detail::encode_record(make_event("NOTE", "after" + std::to_string(i),
                                                                "writer-1-" + std::to_string(i + 2))));
  }
  writer.sync();
  REQUIRE(detail::list_segments(writer_dir).size() == 2);

  SECTION("a reader that was waiting at the tail") {
    const auto second = source.poll(first.next_cursor, 100);
    CHECK(data_of(second.events) == numbered("after", 0, 3));
    REQUIRE(second.problems.size() == 1);
    CHECK(second.problems[0].code == errc::corrupt_record);
    CHECK(contains(second.problems[0].message, file.string()));
    CHECK(contains(second.problems[0].message, "offset " + std::to_string(torn_at)));
    const auto third = source.poll(second.next_cursor, 100);
    CHECK(third.events.empty());
    CHECK(third.problems.empty());  // once
  }
  SECTION("a reader from the start") {
    const auto all = source.poll("", 100);
    REQUIRE(all.events.size() == 4);
    CHECK(data_of({all.events.begin() + 1, all.events.end()}) == numbered("after", 0, 3));
    REQUIRE(all.problems.size() == 1);
    CHECK(contains(all.problems[0].message, "offset " + std::to_string(torn_at)));
    const auto again = source.poll(all.next_cursor, 100);
    CHECK(again.events.empty());
    CHECK(again.problems.empty());
  }
}

TEST_CASE("corruption: a failed append (file size limit hit mid-record) does not cost the writer's next record") {
  journal_fixture f;
  f.publish("e0");
  const auto file = f.segment(0);
  const auto size = read_bytes(file).size();

  // Let the next record be written only partly: writes past the limit fail
  // with EFBIG (SIGXFSZ ignored), as they would on a full disk.
  struct rlimit saved {};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  const auto saved_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit limited = saved;
  limited.rlim_cur = static_cast<rlim_t>(size + 20);
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &limited) == 0);
  std::error_code failed;
  try {
    f.publish("e1");
  } catch (const std::system_error& error) {
    failed = error.code();
  }
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &saved) == 0);
  std::signal(SIGXFSZ, saved_handler);
  CHECK(failed == errc::store_io_failed);  // the caller was told e1 failed
  CHECK(read_bytes(file).size() <= size + 20);  // part of it may be in the file

  f.publish("e2");  // space again
  const auto result = f.source.poll("", 100);
  const auto data = data_of(result.events);
  CHECK(std::find(data.begin(), data.end(), "e0") != data.end());
  CHECK(std::find(data.begin(), data.end(), "e2") != data.end());
}

// ---------------------------------------------------------------- segments

TEST_CASE("segments: small segments, two writers - polls of 7 walk every segment in order, each event once") {
  journal_fixture f(local_store_options{.segment_bytes = 1024});
  local_store carol(f.io.get_executor(), f.dir.path(), "carol77", local_store_options{.segment_bytes = 1024});
  for (int i = 0; i < 150; ++i) {
    f.publish("a:" + std::to_string(i));
    if (i % 2 == 0) carol.publish_event("NOTE", "c:" + std::to_string(i / 2), {reader_user});
  }
  const auto writers = detail::list_writers(f.journal());
  REQUIRE(writers.size() == 2);
  for (const auto& w : writers) CHECK(detail::list_segments(f.journal() / w).size() >= 4);

  std::map<std::string, std::vector<int>> sequences;  // per writer tag, in delivery order
  std::set<std::string> ids;
  std::string cursor;
  std::size_t polls = 0;
  for (; polls < 1000; ++polls) {
    const auto result = f.source.poll(cursor, 7);
    CHECK(result.problems.empty());
    CHECK(result.events.size() <= 7);
    for (const auto& e : result.events) {
      CHECK(ids.insert(e.id).second);
      const auto colon = e.data.find(':');
      REQUIRE(colon != std::string::npos);
      sequences[e.data.substr(0, colon)].push_back(std::stoi(e.data.substr(colon + 1)));
    }
    if (result.events.empty()) {
      CHECK(result.next_cursor == cursor);
      break;
    }
    cursor = result.next_cursor;
  }
  CHECK(polls >= (150 + 75) / 7);
  std::vector<int> a(150), c(75);
  for (int i = 0; i < 150; ++i) a[static_cast<std::size_t>(i)] = i;
  for (int i = 0; i < 75; ++i) c[static_cast<std::size_t>(i)] = i;
  CHECK(sequences["a"] == a);
  CHECK(sequences["c"] == c);
  CHECK(ids.size() == 225);
}

// ---------------------------------------------------------------- retention

TEST_CASE("retention: compaction keeps each writer's newest segment - a stale cursor gets a GAP, then what remains") {
  journal_fixture f(local_store_options{.segment_bytes = 1024});
  f.publish_numbered("e", 0, 60);
  const auto writer = f.writer_dir().filename().string();
  const auto segments = detail::list_segments(f.writer_dir());
  REQUIRE(segments.size() >= 4);
  const auto newest = segments.back();

  // What the newest segment holds: what must remain.
  std::vector<std::string> remaining;
  {
    const auto bytes = read_bytes(f.segment(newest));
    for (std::size_t at = 0; at < bytes.size();) {
      const auto newline = bytes.find('\n', at);
      REQUIRE(newline != std::string::npos);
      std::string why;
      const auto e = detail::decode_record(std::string_view(bytes).substr(at, newline - at), why);
      REQUIRE(e);
      remaining.push_back(e->data);
      at = newline + 1;
    }
  }
  REQUIRE_FALSE(remaining.empty());

  // A reader that read 10 events, then stopped.
  const auto early = f.source.poll("", 10);
  REQUIRE(early.events.size() == 10);
  std::string why;
  const auto early_cursor = detail::journal_cursor::decode(early.next_cursor, why);
  REQUIRE(early_cursor);
  const auto early_offset = early_cursor->writers.at(writer);
  REQUIRE(early_offset < newest);

  // A long retention removes nothing.
  CHECK(f.compact(3600s) == 0);
  CHECK(detail::list_segments(f.writer_dir()) == segments);

  SECTION("local_store::async_compact with age 0") {
    CHECK(f.compact(0s) == segments.size() - 1);
  }
  SECTION("detail::compact_journal with a cutoff in the future") {
    CHECK(detail::compact_journal(f.journal(), fs::file_time_type::clock::now() + 1h) == segments.size() - 1);
  }
  REQUIRE(detail::list_segments(f.writer_dir()) == std::vector<std::uint64_t>{newest});

  const auto stale = f.source.poll(early.next_cursor, 1000);
  CHECK(stale.problems.empty());
  REQUIRE(stale.events.size() == remaining.size() + 1);
  const auto& gap = stale.events.front();
  CHECK(gap.name == event_name::gap);
  CHECK(contains(gap.data, writer));
  // What is gone: this writer's bytes from the cursor to the first segment kept.
  CHECK(contains(gap.data, std::to_string(early_offset) + " to " + std::to_string(newest)));
  CHECK(data_of({stale.events.begin() + 1, stale.events.end()}) == remaining);
  // The GAP is said once.
  const auto after = f.source.poll(stale.next_cursor, 1000);
  CHECK(after.events.empty());

  // A fresh reader simply reads what remains.
  const auto fresh = f.source.poll("", 1000);
  CHECK(data_of(fresh.events) == remaining);
  CHECK(fresh.problems.empty());
  // A reader that was already in the newest segment gets no GAP either.
  const auto caught_up = f.source.poll(fresh.next_cursor, 1000);
  CHECK(caught_up.events.empty());
}

TEST_CASE("retention: compaction keeps the newest segment of every writer of every user") {
  journal_fixture f(local_store_options{.segment_bytes = 1024});
  local_store carol(f.io.get_executor(), f.dir.path(), "carol77", local_store_options{.segment_bytes = 1024});
  for (int i = 0; i < 40; ++i) {
    f.alice.publish_event("NOTE", "a" + std::to_string(i), {reader_user, "dave9"});
    carol.publish_event("NOTE", "c" + std::to_string(i), {reader_user});
  }
  f.compact(0s);
  std::size_t writers = 0;
  for (const auto& user : {reader_user, std::string("dave9")}) {
    const auto journal = f.dir.path() / "journals" / user;
    for (const auto& w : detail::list_writers(journal)) {
      ++writers;
      CHECK(detail::list_segments(journal / w).size() == 1);
    }
  }
  CHECK(writers == 3);
  // Both of bob's writers still deliver their newest records.
  const auto result = f.source.poll("", 1000);
  CHECK(result.problems.empty());
  const auto data = data_of(result.events);
  CHECK(std::find(data.begin(), data.end(), "a39") != data.end());
  CHECK(std::find(data.begin(), data.end(), "c39") != data.end());
}

TEST_CASE("retention: a reader that had read a segment to its end gets no GAP when that segment is compacted") {
  journal_fixture f(local_store_options{.segment_bytes = 1024});
  // A record bigger than a segment fills segment 0; segment 1 does not exist
  // until the next publish.
  f.publish("big:" + std::string(1100, 'x'));
  const auto first = f.source.poll("", 100);
  REQUIRE(first.events.size() == 1);  // caught up: nothing in the journal is unread

  f.publish("next");  // starts segment 1
  REQUIRE(detail::list_segments(f.writer_dir()).size() == 2);
  REQUIRE(f.compact(0s) == 1);  // segment 0 was read completely

  const auto second = f.source.poll(first.next_cursor, 100);
  CHECK(data_of(second.events) == std::vector<std::string>{"next"});  // no GAP: nothing was lost
  CHECK(second.problems.empty());
}

// ---------------------------------------------------------------- epoch

TEST_CASE("epoch: a deleted and recreated journal gives the old cursor a GAP (recreated), then the new events") {
  journal_fixture f;
  f.publish_numbered("old", 0, 3);
  const auto before = f.source.poll("", 100);
  REQUIRE(data_of(before.events) == numbered("old", 0, 3));

  fs::remove_all(f.journal());
  // Deleted, not yet recreated: nothing to read, no false alarm.
  const auto missing = f.source.poll(before.next_cursor, 100);
  CHECK(missing.events.empty());
  CHECK(missing.problems.empty());

  local_store again(f.io.get_executor(), f.dir.path(), writer_user);
  again.publish_event("NOTE", "new0", {reader_user});
  again.publish_event("NOTE", "new1", {reader_user});

  const auto after = f.source.poll(missing.next_cursor, 100);
  CHECK(after.problems.empty());
  REQUIRE(after.events.size() == 3);
  CHECK(after.events[0].name == event_name::gap);
  CHECK(contains(after.events[0].data, "recreated"));
  CHECK(data_of({after.events.begin() + 1, after.events.end()}) == numbered("new", 0, 2));
  const auto next = f.source.poll(after.next_cursor, 100);
  CHECK(next.events.empty());

  const auto fresh = f.source.poll("", 100);
  CHECK(data_of(fresh.events) == numbered("new", 0, 2));
}

TEST_CASE("epoch: a writer that outlives the deletion of a journal writes its later events to the new journal") {
  journal_fixture f;
  f.publish_numbered("old", 0, 3);
  const auto before = f.source.poll("", 100);
  REQUIRE(before.events.size() == 3);

  fs::remove_all(f.journal());
  // The same store object (a long-running service) publishes again.
  f.publish("new0");
  f.publish("new1");
  INFO("journal exists again: " << fs::exists(f.journal() / "epoch"));

  const auto after = f.source.poll(before.next_cursor, 100);
  REQUIRE_FALSE(after.events.empty());
  CHECK(after.events[0].name == event_name::gap);
  CHECK(data_of({after.events.begin() + 1, after.events.end()}) == numbered("new", 0, 2));
}

TEST_CASE("epoch: a writer between two segments when its journal is deleted writes its later events to the new journal") {
  journal_fixture f(local_store_options{.segment_bytes = 1024});
  f.publish("big:" + std::string(1100, 'x'));  // fills segment 0: the next publish starts another
  const auto before = f.source.poll("", 100);
  REQUIRE(before.events.size() == 1);

  fs::remove_all(f.journal());
  std::string error;
  try {
    f.publish("new0");
    f.publish("new1");
  } catch (const std::system_error& e) {
    error = e.what();
  }
  CHECK(error == "");

  const auto after = f.source.poll(before.next_cursor, 100);
  REQUIRE_FALSE(after.events.empty());
  CHECK(after.events[0].name == event_name::gap);
  CHECK(data_of({after.events.begin() + 1, after.events.end()}) == numbered("new", 0, 2));
}

TEST_CASE("epoch: a corrupt epoch file is reported once, naming the file - one GAP for a resuming reader, no "
          "event twice, no loop") {
  journal_fixture f;
  f.publish_numbered("e", 0, 3);
  const auto before = f.source.poll("", 100);
  REQUIRE(data_of(before.events) == numbered("e", 0, 3));
  const auto epoch_file = f.journal() / "epoch";
  const auto good_epoch = read_bytes(epoch_file);
  write_bytes(epoch_file, "bad!\n");
  f.publish("e3");

  const auto first = f.source.poll(before.next_cursor, 100);
  REQUIRE(first.problems.size() == 1);
  CHECK(first.problems[0].code == errc::corrupt_record);
  CHECK(contains(first.problems[0].message, epoch_file.string()));
  CHECK(contains(first.problems[0].message, "bad!"));
  REQUIRE(first.events.size() == 2);
  CHECK(first.events[0].name == event_name::gap);
  CHECK(first.events[1].data == "e3");
  // Said once, handled once: the next polls are quiet until something new.
  const auto second = f.source.poll(first.next_cursor, 100);
  CHECK(second.events.empty());
  CHECK(second.problems.empty());
  f.publish("e4");
  const auto third = f.source.poll(second.next_cursor, 100);
  CHECK(data_of(third.events) == std::vector<std::string>{"e4"});
  CHECK(third.problems.empty());

  // A reader from the beginning gets every event once and the report once.
  const auto fresh = f.source.poll("", 100);
  CHECK(data_of(fresh.events) == numbered("e", 0, 5));
  CHECK(fresh.problems.size() == 1);
  const auto fresh_again = f.source.poll(fresh.next_cursor, 100);
  CHECK(fresh_again.events.empty());
  CHECK(fresh_again.problems.empty());

  // The file repaired: readers go on where they were, with nothing repeated.
  write_bytes(epoch_file, good_epoch);
  f.publish("e5");
  const auto repaired = f.source.poll(third.next_cursor, 100);
  CHECK(data_of(repaired.events) == std::vector<std::string>{"e5"});
  CHECK(repaired.problems.empty());
  const auto repaired_fresh = f.source.poll(fresh_again.next_cursor, 100);
  CHECK(data_of(repaired_fresh.events) == std::vector<std::string>{"e5"});
}

// ---------------------------------------------------------------- GAP ids

TEST_CASE("GAP ids: the same loss reported again has the same id, another loss another id") {
  journal_fixture f(local_store_options{.segment_bytes = 1024});
  f.publish_numbered("e", 0, 60);
  const auto after_ten = f.source.poll("", 10);
  const auto after_five = f.source.poll("", 5);
  REQUIRE(detail::compact_journal(f.journal(), fs::file_time_type::clock::now() + 1h) > 0);
  const auto first_gap = [&](const std::string& cursor) {
    const auto result = f.source.poll(cursor, 1);
    REQUIRE(result.events.size() == 1);
    REQUIRE(result.events[0].name == event_name::gap);
    return result.events[0];
  };
  const auto a = first_gap(after_ten.next_cursor);
  const auto b = first_gap(after_ten.next_cursor);
  const auto c = first_gap(after_five.next_cursor);
  CHECK(a.id == b.id);
  CHECK(a.data == b.data);
  CHECK(a.id != c.id);
  CHECK(a.id.starts_with("gap-"));
}

// ---------------------------------------------------------------- writer slots

TEST_CASE("writer slots: store objects made one after another share one writer folder - every event once, in "
          "order, and a cursor of one entry") {
  temp_dir dir;
  asio::io_context io;
  for (int i = 0; i < 50; ++i) {
    local_store store(io.get_executor(), dir.path(), writer_user);
    store.publish_event("NOTE", "e" + std::to_string(i), {reader_user});
  }
  const auto journal = dir.path() / "journals" / reader_user;
  CHECK(detail::list_writers(journal) == std::vector<std::string>{"w0"});
  journal_source source(io.get_executor(), journal);
  const auto all = source.poll("", 1000);
  CHECK(data_of(all.events) == numbered("e", 0, 50));
  CHECK(all.problems.empty());
  std::string why;
  const auto cursor = detail::journal_cursor::decode(all.next_cursor, why);
  REQUIRE(cursor);
  CHECK(cursor->writers.size() == 1);
}

TEST_CASE("writer slots: writers alive at once each hold a folder, a later writer takes the lowest free one and "
          "goes on where its last holder stopped") {
  temp_dir dir;
  asio::io_context io;
  const auto journal = dir.path() / "journals" / reader_user;
  const auto open = [&] { return std::make_unique<local_store>(io.get_executor(), dir.path(), writer_user); };
  const auto publish = [](local_store& store, const std::string& data) {
    store.publish_event("NOTE", data, {reader_user});
  };
  auto a = open(), b = open(), c = open();
  publish(*a, "a0");
  publish(*b, "b0");
  publish(*c, "c0");
  CHECK(detail::list_writers(journal) == std::vector<std::string>{"w0", "w1", "w2"});
  journal_source source(io.get_executor(), journal);
  const auto first = source.poll("", 100);
  REQUIRE(first.events.size() == 3);

  b.reset();  // w1 is free
  auto d = open();
  publish(*d, "d0");
  publish(*a, "a1");
  a.reset();
  c.reset();
  d.reset();
  auto e = open();
  publish(*e, "e0");  // w0, after a's events
  CHECK(detail::list_writers(journal) == std::vector<std::string>{"w0", "w1", "w2"});

  const auto second = source.poll(first.next_cursor, 100);
  CHECK(second.problems.empty());
  auto got = data_of(second.events);
  CHECK(got == std::vector<std::string>{"a1", "e0", "d0"});  // writers in name order, each in file order
  const auto fresh = source.poll("", 100);
  CHECK(data_of(fresh.events) == std::vector<std::string>{"a0", "a1", "e0", "b0", "d0", "c0"});
}

TEST_CASE("writer slots: a record torn by a writer that died is voided by the slot's next writer - never "
          "delivered, never reported, nothing after it lost") {
  const std::size_t torn_bytes = GENERATE(1, 2, 20);
  temp_dir dir;
  asio::io_context io;
  const auto journal = dir.path() / "journals" / reader_user;
  const auto publish = [&](const std::string& data) {
    local_store store(io.get_executor(), dir.path(), writer_user);
    store.publish_event("NOTE", data, {reader_user});
  };
  publish("e0");
  const auto line = detail::encode_record(make_event("NOTE", "torn", "dead-1"));
  REQUIRE(line.size() > torn_bytes);
  append_bytes(journal / "w0" / detail::segment_name(0), line.substr(0, torn_bytes));
  journal_source source(io.get_executor(), journal);
  const auto before = source.poll("", 100);  // the torn tail could be a record being written: not reported
  CHECK(data_of(before.events) == std::vector<std::string>{"e0"});
  CHECK(before.problems.empty());

  publish("e1");
  publish("e2");
  const auto resumed = source.poll(before.next_cursor, 100);
  CHECK(data_of(resumed.events) == std::vector<std::string>{"e1", "e2"});
  CHECK(resumed.problems.empty());
  const auto fresh = source.poll("", 100);
  CHECK(data_of(fresh.events) == std::vector<std::string>{"e0", "e1", "e2"});
  CHECK(fresh.problems.empty());
  CHECK(detail::list_writers(journal) == std::vector<std::string>{"w0"});
}

// ---------------------------------------------------------------- poll cost

TEST_CASE("poll cost: after 20,000 events are read, a poll with the final cursor reads no old bytes") {
  temp_dir dir;
  asio::io_context io;
  const auto journals = dir.path() / "journals";
  {
    // Written in one append and one fsync: the bytes matter here, not durability.
    detail::journal_writer writer(journals, "writer-1", 64ull << 20);
    std::string lines;
    for (int i = 0; i < 20000; ++i) {
      event e = make_event("NOTE", "n" + std::to_string(i), "writer-1-" + std::to_string(i));
      lines += detail::encode_record(e);
    }
    writer.append(reader_user, lines);
    writer.sync();
  }
  journal_source source(io.get_executor(), journals / reader_user);
  const auto all = source.poll("", 20000);
  REQUIRE(all.events.size() == 20000);
  CHECK(all.events.back().data == "n19999");
  CHECK(all.problems.empty());
  const auto cursor = all.next_cursor;
  CHECK(cursor.size() < 100);  // the cursor does not grow with the journal

  for (int i = 0; i < 20; ++i) {
    const auto idle = source.poll(cursor, 256);
    CHECK(idle.events.empty());
    CHECK(idle.problems.empty());
    CHECK(idle.next_cursor == cursor);
  }

  // Overwrite every byte already read with junk (no newlines): a poll that
  // re-read old bytes would report them; one that starts at the cursor's
  // offset only sees the new record.
  const auto file = journals / reader_user / "w0" / detail::segment_name(0);
  const auto size = read_bytes(file).size();
  write_bytes(file, std::string(size, 'x'));
  append_bytes(file, detail::encode_record(make_event("NOTE", "n20000", "writer-1-20000")));
  const auto one = source.poll(cursor, 256);
  REQUIRE(one.events.size() == 1);
  CHECK(one.events[0].data == "n20000");
  CHECK(one.problems.empty());
}

TEST_CASE("clock skew: a writer whose clock is hours behind, or ahead, loses nothing to a resuming reader") {
  temp_dir dir;
  const auto journals = dir.path() / "journals";
  const auto now = std::chrono::time_point_cast<std::chrono::milliseconds>(std::chrono::system_clock::now());
  const auto write = [&](detail::journal_writer& writer, const std::string& data, timestamp when) {
    event e;
    e.name = "SKEW";
    e.data = data;
    e.id = writer.name() + "-" + std::to_string(writer.next_sequence());
    e.occurred_at = when;
    writer.append("bob123", detail::encode_record(e));
    writer.sync();
  };
  detail::journal_writer ahead(journals, "ahead", 1 << 20);
  detail::journal_writer behind(journals, "behind", 1 << 20);
  write(ahead, "a0", now + std::chrono::hours(3));
  journal_source source(asio::system_executor(), journals / "bob123");
  auto first = source.poll("", 100);
  REQUIRE(data_of(first.events) == std::vector<std::string>{"a0"});
  // After the reader has seen an event stamped three hours ahead, a writer
  // whose clock is three hours behind appends: the reader still gets it,
  // because cursors are byte offsets per writer, not times.
  write(behind, "b0", now - std::chrono::hours(3));
  write(ahead, "a1", now + std::chrono::hours(3));
  write(behind, "b1", now - std::chrono::hours(3) - 5s);  // even going backwards within one writer
  const auto second = source.poll(first.next_cursor, 100);
  auto got = data_of(second.events);
  std::sort(got.begin(), got.end());
  CHECK(got == std::vector<std::string>{"a1", "b0", "b1"});
  // Per-writer order is file order, whatever the timestamps say.
  std::vector<std::string> behind_order;
  for (const auto& e : second.events) {
    if (e.data.starts_with("b")) behind_order.push_back(e.data);
  }
  CHECK(behind_order == std::vector<std::string>{"b0", "b1"});
}

}  // namespace journal_test
