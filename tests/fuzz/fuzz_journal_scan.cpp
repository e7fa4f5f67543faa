// Fuzz target: journal segment scanning (storewatch::detail::segment_scanner
// in storewatch/journal/scan.hpp), on a segment's bytes as a reader feeds them.
//
// Input: a header byte (bit 0: the segment is sealed; bits 1-7: the longest
// line, 8 to 1024 bytes), a byte giving the feed size pattern, then the
// segment's bytes.
//
// Properties checked (abort on violation):
// - scanning does not throw;
// - fed in pieces (1 to 64 bytes, from the pattern) or all at once, a scan
//   finds the same records, the same problems (kind, offset, size) and ends
//   at the same offset with the same answer from finish();
// - problems come in byte order, each within the segment, none empty;
// - the scan never ends past the segment's end; a sealed segment fed all
//   its bytes is scanned to its end;
// - with max_records set to the records found less one, the scan finds that
//   many and stops before the line of the last one.
#include <storewatch/journal/scan.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <source_location>
#include <string_view>

namespace {

using storewatch::detail::scan_options;
using storewatch::detail::segment_extent;
using storewatch::detail::segment_scan;
using storewatch::detail::segment_scanner;

void require(bool holds, const char* what, std::source_location where = std::source_location::current()) {
  if (holds) return;
  std::fprintf(stderr, "fuzz_journal_scan: property violated at line %u: %s\n", static_cast<unsigned>(where.line()),
               what);
  std::abort();
}

struct outcome {
  segment_scan found;
  std::uint64_t offset = 0;
  bool finished = false;
};

// Scans `bytes` as the reader does, feeding what it wants in pieces whose
// sizes cycle through 1 + (pattern >> k) % 64 (all at once when pattern is 0).
outcome scan(std::string_view bytes, const segment_extent& extent, const scan_options& options, unsigned pattern) {
  segment_scanner scanner(extent, extent.base, options);
  for (unsigned turn = 0; scanner.wanted() > 0; ++turn) {
    const auto at = static_cast<std::size_t>(scanner.next_byte() - extent.base);
    const auto piece = pattern == 0 ? bytes.size() : 1 + ((pattern >> (turn % 5)) + turn) % 64;
    require(at <= bytes.size(), "the scanner wants bytes past the segment");
    scanner.feed(bytes.substr(at, piece));
  }
  outcome out;
  out.finished = scanner.finish();
  out.offset = scanner.offset();
  out.found = scanner.take();
  return out;
}

bool same_problems(const segment_scan& a, const segment_scan& b) {
  if (a.problems.size() != b.problems.size()) return false;
  for (std::size_t i = 0; i < a.problems.size(); ++i) {
    const auto &x = a.problems[i], &y = b.problems[i];
    if (x.what != y.what || x.offset != y.offset || x.size != y.size || x.why != y.why) return false;
  }
  return true;
}

bool same_records(const segment_scan& a, const segment_scan& b) {
  if (a.records.size() != b.records.size()) return false;
  for (std::size_t i = 0; i < a.records.size(); ++i) {
    if (a.records[i].id != b.records[i].id || a.records[i].data != b.records[i].data) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const bool sealed = (data[0] & 1) != 0;
  const std::size_t max_line = 8 + (static_cast<std::size_t>(data[0] >> 1) * 8);
  const unsigned pattern = data[1];
  const std::string_view bytes(reinterpret_cast<const char*>(data + 2), size - 2);
  const std::uint64_t base = 4096;
  const segment_extent extent{base, base + bytes.size(), sealed};
  const scan_options options{max_line, static_cast<std::size_t>(-1), nullptr};
  try {
    const auto whole = scan(bytes, extent, options, 0);
    const auto pieces = scan(bytes, extent, options, pattern | 1);
    require(same_records(whole.found, pieces.found), "pieces and one feed found different records");
    require(same_problems(whole.found, pieces.found), "pieces and one feed found different problems");
    require(whole.found.voided == pieces.found.voided, "pieces and one feed skipped different void lines");
    require(whole.offset == pieces.offset && whole.finished == pieces.finished, "pieces and one feed end apart");
    require(whole.offset >= base && whole.offset <= extent.end, "the scan ended outside the segment");
    require(!sealed || (whole.finished && whole.offset == extent.end), "a sealed segment was not scanned to its end");
    std::uint64_t previous = base;
    for (const auto& problem : whole.found.problems) {
      require(problem.offset >= previous, "problems out of byte order");
      require(problem.size > 0 && problem.offset + problem.size <= extent.end, "a problem outside the segment");
      require(problem.code() == storewatch::errc::corrupt_record, "a problem of the wrong kind");
      previous = problem.offset + problem.size;
    }
    if (!whole.found.records.empty()) {
      const auto limited = scan(bytes, extent, {max_line, whole.found.records.size() - 1, nullptr}, pattern);
      require(limited.found.records.size() == whole.found.records.size() - 1, "max_records not kept");
      require(limited.offset <= whole.offset, "a limited scan went further than a whole one");
      require(limited.offset < whole.offset, "a limited scan took the line of the record it had no room for");
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "fuzz_journal_scan: threw %s\n", error.what());
    require(false, "scanning threw");
  }
  return 0;
}
