// The journal segment scanner (journal/scan.hpp): what the bytes of a
// segment hold - records, void lines, corrupt lines, lines with no end, torn
// tails - and where reading a writer starts. No io_context and no files:
// the bytes are strings, fed in pieces as the reader would feed what it reads.
#include <storewatch/journal/scan.hpp>

#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace journal_scan_test {

using namespace storewatch;
using detail::byte_range;
using detail::scan_options;
using detail::scan_problem;
using detail::segment_extent;
using detail::segment_scan;
using detail::segment_scanner;

namespace {

/// The record line of a NOTE event with `id` and `data`.
std::string record(const std::string& id, const std::string& data) {
  event e;
  e.id = id;
  e.name = "NOTE";
  e.data = data;
  return detail::encode_record(e);
}

std::vector<std::string> data_of(const segment_scan& found) {
  std::vector<std::string> data;
  for (const auto& e : found.records) data.push_back(e.data);
  return data;
}

/// A segment at writer offset `base` holding `bytes`.
segment_extent segment_of(std::string_view bytes, bool sealed, std::uint64_t base = 0) {
  return {base, base + bytes.size(), sealed};
}

/// Scans `bytes` (a segment's content, the segment starting at writer
/// offset `extent.base`) from `offset` as the reader does: read `wanted()`
/// bytes from `next_byte()`, at most `chunk` at a time, feed them, then
/// finish. `finished` is what finish() said, `offset` where the scan ended.
struct scanned {
  segment_scan found;
  bool finished = false;
  std::uint64_t offset = 0;
};

scanned scan(std::string_view bytes, segment_extent extent, std::uint64_t offset, std::size_t chunk,
             scan_options options = {}) {
  segment_scanner scanner(extent, offset, options);
  while (scanner.wanted() > 0) {
    const auto at = static_cast<std::size_t>(scanner.next_byte() - extent.base);
    if (at >= bytes.size()) break;  // the file held less than its size said: reading finds no more
    scanner.feed(bytes.substr(at, static_cast<std::size_t>(std::min<std::uint64_t>(chunk, scanner.wanted()))));
  }
  scanned out;
  out.finished = scanner.finish();
  out.offset = scanner.offset();
  out.found = scanner.take();
  return out;
}

scanned scan_whole(std::string_view bytes, bool sealed, scan_options options = {}) {
  return scan(bytes, segment_of(bytes, sealed), 0, bytes.size() + 1, options);
}

}  // namespace

TEST_CASE("journal scan: empty input - nothing found, nothing wrong, the scan is at the end") {
  for (const bool sealed : {false, true}) {
    const auto result = scan_whole("", sealed);
    CHECK(result.found.records.empty());
    CHECK(result.found.problems.empty());
    CHECK(result.found.voided == 0);
    CHECK(result.finished);
    CHECK(result.offset == 0);
  }
  SECTION("a feed of no bytes changes nothing") {
    const auto bytes = record("w-1", "a");
    segment_scanner scanner(segment_of(bytes, false), 0);
    scanner.feed("");
    CHECK(scanner.found().records.empty());
    CHECK(scanner.next_byte() == 0);
    CHECK(scanner.wanted() == bytes.size());
    CHECK_FALSE(scanner.finish());  // nothing was read: not at the end
    CHECK(scanner.offset() == 0);
  }
}

TEST_CASE("journal scan: whole records are found in order, and the offset is after the last") {
  const auto bytes = record("w-1", "a") + record("w-2", "b") + record("w-3", "c");
  const auto result = scan_whole(bytes, false);
  CHECK(data_of(result.found) == std::vector<std::string>{"a", "b", "c"});
  CHECK(result.found.records[1].id == "w-2");
  CHECK(result.found.problems.empty());
  CHECK(result.finished);
  CHECK(result.offset == bytes.size());
}

TEST_CASE("journal scan: a record split across two feeds, at every byte, is found once and whole") {
  const auto first = record("w-1", "first");
  const auto second = record("w-2", "split\tacross\\feeds");
  const auto bytes = first + second + record("w-3", "after");
  for (std::size_t split = 0; split <= bytes.size(); ++split) {
    segment_scanner scanner(segment_of(bytes, true), 0);
    scanner.feed(std::string_view(bytes).substr(0, split));
    // Before the second feed the scan stands at the start of the unfinished line.
    CHECK(scanner.next_byte() == split);
    CHECK(scanner.offset() <= split);
    scanner.feed(std::string_view(bytes).substr(split));
    CHECK(scanner.finish());
    CHECK(scanner.offset() == bytes.size());
    CHECK(data_of(scanner.found()) == std::vector<std::string>{"first", "split\tacross\\feeds", "after"});
    CHECK(scanner.found().problems.empty());
  }
}

TEST_CASE("journal scan: fed in chunks of any size, the outcome is the one of a single feed") {
  const auto bytes = record("w-1", "a") + "garbage\n" + detail::void_line(record("w-2", "voided").size()) +
                     std::string(40, 'x') + "\n" + record("w-3", "b") + record("w-4", "torn").substr(0, 20);
  const scan_options options{48, static_cast<std::size_t>(-1), nullptr};
  const auto whole = scan_whole(bytes, true, options);
  REQUIRE(data_of(whole.found) == std::vector<std::string>{"a", "b"});
  REQUIRE(whole.found.problems.size() == 3);  // garbage, the 40 x's (a line of 41 bytes fits in 48), the torn tail
  for (std::size_t chunk = 1; chunk <= bytes.size(); ++chunk) {
    const auto pieces = scan(bytes, segment_of(bytes, true, 5000), 5000, chunk, options);
    CHECK(data_of(pieces.found) == data_of(whole.found));
    CHECK(pieces.found.voided == whole.found.voided);
    REQUIRE(pieces.found.problems.size() == whole.found.problems.size());
    for (std::size_t i = 0; i < whole.found.problems.size(); ++i) {
      CHECK(pieces.found.problems[i].what == whole.found.problems[i].what);
      CHECK(pieces.found.problems[i].offset == whole.found.problems[i].offset + 5000);
      CHECK(pieces.found.problems[i].size == whole.found.problems[i].size);
    }
    CHECK(pieces.offset == 5000 + bytes.size());
  }
}

TEST_CASE("journal scan: a torn tail of a segment still written is waited for, not reported") {
  const auto done = record("w-1", "done");
  const auto writing = record("w-2", "being written");
  const auto bytes = done + writing.substr(0, writing.size() - 5);
  const auto result = scan_whole(bytes, false);
  CHECK(data_of(result.found) == std::vector<std::string>{"done"});
  CHECK(result.found.problems.empty());
  CHECK_FALSE(result.finished);
  CHECK(result.offset == done.size());  // a cursor stays before the unfinished record

  SECTION("once the writer finished it, a scan from that offset finds it") {
    const auto later = done + writing;
    const auto again = scan(later, segment_of(later, false), result.offset, 7);
    CHECK(data_of(again.found) == std::vector<std::string>{"being written"});
    CHECK(again.found.problems.empty());
    CHECK(again.finished);
    CHECK(again.offset == later.size());
  }
}

TEST_CASE("journal scan: a torn tail of a sealed segment is reported once with its offset and size, and skipped") {
  const auto done = record("w-1", "done");
  const auto torn = record("w-2", "torn").substr(0, 17);
  const auto bytes = done + torn;
  const auto result = scan(bytes, segment_of(bytes, true, 100), 100, 1 << 20);
  CHECK(data_of(result.found) == std::vector<std::string>{"done"});
  REQUIRE(result.found.problems.size() == 1);
  const auto& problem = result.found.problems[0];
  CHECK(problem.what == scan_problem::kind::torn_tail);
  CHECK(problem.code() == errc::corrupt_record);
  CHECK(problem.offset == 100 + done.size());
  CHECK(problem.size == torn.size());
  CHECK(problem.message("w0/x.log", 100) == "journal w0/x.log offset " + std::to_string(done.size()) +
                                                ": torn record of 17 bytes at the end of a finished segment; skipped");
  CHECK(result.finished);
  CHECK(result.offset == 100 + bytes.size());
}

TEST_CASE("journal scan: a segment that read shorter than its size is not at its end, and nothing is torn") {
  const auto bytes = record("w-1", "a");
  // The reader found the file 30 bytes longer than what it could then read.
  const auto result = scan(bytes, {0, bytes.size() + 30, true}, 0, 1 << 20);
  CHECK(data_of(result.found) == std::vector<std::string>{"a"});
  CHECK(result.found.problems.empty());
  CHECK_FALSE(result.finished);
  CHECK(result.offset == bytes.size());
}

TEST_CASE("journal scan: records of a failed operation, voided with dashes, are skipped without a report") {
  const auto failed = record("w-2", "failed") + record("w-3", "failed too");
  const auto bytes = record("w-1", "before") + detail::void_line(failed.size()) + record("w-4", "after");
  const auto result = scan_whole(bytes, true);
  CHECK(data_of(result.found) == std::vector<std::string>{"before", "after"});
  CHECK(result.found.problems.empty());
  CHECK(result.found.voided == 1);
  CHECK(result.offset == bytes.size());

  SECTION("a reader whose offset is inside a void line resynchronises at its end") {
    const auto start = record("w-1", "before").size() + 10;
    const auto inside = scan(bytes, segment_of(bytes, true), start, 1 << 20);
    CHECK(data_of(inside.found) == std::vector<std::string>{"after"});
    CHECK(inside.found.problems.empty());
  }
  SECTION("a torn tail voided by the slot's next writer (\"-\\n\" over one byte) is skipped too") {
    const auto voided_tail = record("w-1", "before") + detail::void_line(1) + record("w-5", "next holder");
    const auto next = scan_whole(voided_tail, false);
    CHECK(data_of(next.found) == std::vector<std::string>{"before", "next holder"});
    CHECK(next.found.problems.empty());
    CHECK(next.found.voided == 1);
  }
}

TEST_CASE("journal scan: a corrupt line is reported with its offset, size and why - the records around it arrive") {
  const auto before = record("w-1", "before");
  auto flipped = record("w-2", "flipped");
  flipped[20] ^= 0x01;
  const auto garbage = std::string("not a record at all\n");
  const auto bytes = before + flipped + garbage + record("w-3", "after");
  const auto result = scan(bytes, segment_of(bytes, true, 1000), 1000, 1 << 20);
  CHECK(data_of(result.found) == std::vector<std::string>{"before", "after"});
  REQUIRE(result.found.problems.size() == 2);
  const auto& bad = result.found.problems[0];
  CHECK(bad.what == scan_problem::kind::corrupt_record);
  CHECK(bad.offset == 1000 + before.size());
  CHECK(bad.size == flipped.size());
  CHECK(bad.why == "checksum mismatch (torn or corrupted record)");
  CHECK(bad.message("f.log", 1000) == "journal f.log offset " + std::to_string(before.size()) +
                                          ": checksum mismatch (torn or corrupted record); skipped " +
                                          std::to_string(flipped.size()) + " bytes");
  const auto& junk = result.found.problems[1];
  CHECK(junk.offset == 1000 + before.size() + flipped.size());
  CHECK(junk.size == garbage.size());
  CHECK_FALSE(junk.why.empty());
  CHECK(result.offset == 1000 + bytes.size());
}

TEST_CASE("journal scan: CRLF line ends, empty lines and odd bytes are corrupt lines, never records") {
  auto crlf = record("w-1", "crlf");
  crlf.insert(crlf.size() - 1, "\r");  // a record line someone saved with CRLF
  const std::string nul_bytes("00000000 \0\0\0\n", 13);
  const std::string high_bytes = "\xff\xfe\x80 \t\t\t\t\n";
  const std::string dashes_crlf = "------\r\n";  // not a void line: it holds a '\r'
  const auto bytes = crlf + "\n" + nul_bytes + high_bytes + dashes_crlf + record("w-2", "fine");
  const auto result = scan_whole(bytes, true);
  CHECK(data_of(result.found) == std::vector<std::string>{"fine"});
  CHECK(result.found.voided == 0);
  REQUIRE(result.found.problems.size() == 5);
  CHECK(result.found.problems[0].size == crlf.size());
  CHECK(result.found.problems[0].why == "checksum mismatch (torn or corrupted record)");
  CHECK(result.found.problems[1].size == 1);  // the empty line
  CHECK(result.found.problems[2].size == nul_bytes.size());
  CHECK(result.found.problems[3].size == high_bytes.size());
  CHECK(result.found.problems[4].size == dashes_crlf.size());
  for (const auto& problem : result.found.problems) CHECK(problem.what == scan_problem::kind::corrupt_record);
}

TEST_CASE("journal scan: a line with no newline in max_line bytes has them skipped, and the scan goes on") {
  const scan_options options{64, static_cast<std::size_t>(-1), nullptr};
  const auto bytes = std::string(100, 'x') + "\n" + record("w-1", "after");
  REQUIRE(record("w-1", "after").size() <= 64);
  const auto result = scan_whole(bytes, true, options);
  CHECK(data_of(result.found) == std::vector<std::string>{"after"});
  REQUIRE(result.found.problems.size() == 2);
  CHECK(result.found.problems[0].what == scan_problem::kind::no_record_end);
  CHECK(result.found.problems[0].offset == 0);
  CHECK(result.found.problems[0].size == 64);
  CHECK(result.found.problems[0].message("f.log", 0) ==
        "journal f.log offset 0: no record end within 64 bytes; skipped");
  CHECK(result.found.problems[1].what == scan_problem::kind::corrupt_record);  // the other 36 x's and the newline
  CHECK(result.found.problems[1].offset == 64);
  CHECK(result.found.problems[1].size == 37);

  SECTION("a record of exactly max_line bytes, newline included, is a record - one byte less room is not") {
    const auto line = record("w-2", "fits");
    CHECK(data_of(scan_whole(line, true, {line.size(), static_cast<std::size_t>(-1), nullptr}).found) ==
          std::vector<std::string>{"fits"});
    const auto tight = scan_whole(line, true, {line.size() - 1, static_cast<std::size_t>(-1), nullptr});
    CHECK(tight.found.records.empty());
    REQUIRE_FALSE(tight.found.problems.empty());
    CHECK(tight.found.problems[0].what == scan_problem::kind::no_record_end);
  }
}

TEST_CASE("journal scan: max_records stops the scan after the last record taken - no byte after it is consumed") {
  const auto bytes = record("w-1", "a") + record("w-2", "b") + "junk\n" + record("w-3", "c");
  const auto stop = record("w-1", "a").size() + record("w-2", "b").size();
  for (const std::size_t chunk : {std::size_t{1}, std::size_t{9}, bytes.size()}) {
    const auto result = scan(bytes, segment_of(bytes, true), 0, chunk, {1 << 20, 2, nullptr});
    CHECK(data_of(result.found) == std::vector<std::string>{"a", "b"});
    CHECK(result.found.problems.empty());  // the junk after the second record is left for the next scan
    CHECK_FALSE(result.finished);
    CHECK(result.offset == stop);
  }
  SECTION("once full, it wants no bytes and stands at its offset") {
    segment_scanner scanner(segment_of(bytes, true), 0, {1 << 20, 1, nullptr});
    scanner.feed(bytes);
    CHECK(scanner.full());
    CHECK(scanner.wanted() == 0);
    CHECK(scanner.next_byte() == scanner.offset());
    CHECK(scanner.offset() == record("w-1", "a").size());
  }
  SECTION("a limit of zero takes nothing") {
    const auto none = scan(bytes, segment_of(bytes, true), 0, bytes.size(), {1 << 20, 0, nullptr});
    CHECK(none.found.records.empty());
    CHECK(none.offset == 0);
  }
}

TEST_CASE("journal scan: a record the check refuses is a corrupt line with the check's reason") {
  const std::function<std::string(const event&)> check = [](const event& e) {
    return e.data == "forged" ? std::string("not written by a store") : std::string();
  };
  const auto bytes = record("w-1", "kept") + record("w-2", "forged") + record("w-3", "kept too");
  const auto result = scan_whole(bytes, true, {1 << 20, static_cast<std::size_t>(-1), &check});
  CHECK(data_of(result.found) == std::vector<std::string>{"kept", "kept too"});
  REQUIRE(result.found.problems.size() == 1);
  CHECK(result.found.problems[0].why == "not written by a store");
  CHECK(result.found.problems[0].offset == record("w-1", "kept").size());

  SECTION("an empty check accepts every record") {
    const std::function<std::string(const event&)> none;
    CHECK(scan_whole(bytes, true, {1 << 20, static_cast<std::size_t>(-1), &none}).found.records.size() == 3);
  }
}

TEST_CASE("journal scan: an offset past the segment's end is an invalid cursor - reading goes on from the end") {
  const auto bytes = record("w-1", "a");
  segment_scanner scanner(segment_of(bytes, false, 200), 200 + bytes.size() + 50);
  REQUIRE(scanner.found().problems.size() == 1);
  const auto& problem = scanner.found().problems[0];
  CHECK(problem.what == scan_problem::kind::past_end);
  CHECK(problem.code() == errc::invalid_cursor);
  const auto end = std::to_string(200 + bytes.size());
  CHECK(problem.message("f.log", 200) == "journal f.log: cursor offset " + std::to_string(200 + bytes.size() + 50) +
                                              " is past the end (" + end + "); reading on from the end");
  CHECK(scanner.offset() == 200 + bytes.size());
  CHECK(scanner.wanted() == 0);
  CHECK(scanner.finish());
}

TEST_CASE("journal scan: where a writer's reading starts, and which bytes retention removed before it") {
  using detail::start_of_writer;
  SECTION("a cursor before the oldest segment kept: the bytes between are a gap") {
    const auto start = start_of_writer(4096, 1000, true);
    CHECK(start.offset == 4096);
    CHECK(start.removed == byte_range{1000, 4096});
  }
  SECTION("a cursor inside what is kept: no gap, reading starts at the cursor") {
    const auto start = start_of_writer(4096, 5000, true);
    CHECK(start.offset == 5000);
    CHECK_FALSE(start.removed);
    CHECK_FALSE(start_of_writer(4096, 4096, false).removed);
  }
  SECTION("a writer the resuming cursor does not name lost its bytes from 0") {
    const auto start = start_of_writer(4096, std::nullopt, true);
    CHECK(start.offset == 4096);
    CHECK(start.removed == byte_range{0, 4096});
  }
  SECTION("a new reader starts at the oldest bytes kept, with no gap") {
    const auto start = start_of_writer(4096, std::nullopt, false);
    CHECK(start.offset == 4096);
    CHECK_FALSE(start.removed);
  }
  SECTION("nothing removed yet: no gap for anyone") {
    CHECK_FALSE(start_of_writer(0, std::nullopt, true).removed);
    CHECK(start_of_writer(0, std::nullopt, true).offset == 0);
  }
}

TEST_CASE("journal scan: a segment that vanished while being read is a gap up to the next segment") {
  using detail::removed_while_reading;
  CHECK(removed_while_reading(100, 4096) == byte_range{100, 4096});
  CHECK_FALSE(removed_while_reading(4096, 4096));  // it had been read to its end
  CHECK_FALSE(removed_while_reading(100, std::nullopt));  // the newest segment: nothing known to be lost
}

}  // namespace journal_scan_test
