// Tests for storewatch/checkpoint.hpp: the text form and the file-backed checkpoint.
#include "common/fixture.hpp"

#include <algorithm>
#include <storewatch/checkpoint.hpp>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace checkpoint_test {

namespace {

using storewatch::checkpoint;
using storewatch::checkpoint_state;
using storewatch::errc;
using storewatch::test::make_event;
using storewatch::test::temp_dir;
namespace fs = std::filesystem;

/// Matches a std::system_error with `code` whose what() starts with `prefix`
/// and contains every fragment.
class system_error_with : public Catch::MatcherBase<std::system_error> {
 public:
  system_error_with(errc code, std::string prefix, std::vector<std::string> fragments = {})
      : code_(code), prefix_(std::move(prefix)), fragments_(std::move(fragments)) {}

  bool match(const std::system_error& error) const override {
    if (error.code() != code_) return false;
    const std::string what = error.what();
    if (what.rfind(prefix_, 0) != 0) return false;
    for (const auto& fragment : fragments_) {
      if (what.find(fragment) == std::string::npos) return false;
    }
    return true;
  }

  std::string describe() const override {
    std::ostringstream out;
    out << "is a system_error with " << storewatch::make_error_code(code_).message() << " starting with ["
        << prefix_ << "] containing";
    for (const auto& fragment : fragments_) out << " [" << fragment << "]";
    return out.str();
  }

 private:
  errc code_;
  std::string prefix_;
  std::vector<std::string> fragments_;
};

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  REQUIRE(out);
  out << text;
  out.close();
  REQUIRE(out);
}

std::string read_text(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Names of the entries in `folder`.
std::vector<std::string> entries(const fs::path& folder) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

storewatch::event event_with_cursor(std::string id, std::string cursor) {
  auto e = make_event("CREATE", "a\xE2\x9C\xB9u_1", std::move(id));
  e.cursor = std::move(cursor);
  return e;
}

}  // namespace

// ----------------------------------------------------------------- text form

TEST_CASE("checkpoint encode decode round trip") {
  const std::vector<checkpoint_state> states{
      {},
      {"journal:epoch=3;pos=1024", {}},
      {"c", {"id-1", "id-2", "id \"quoted\"", "caf\xC3\xA9"}},
      {"", {"only-ids"}},
  };
  for (const auto& state : states) {
    const auto text = storewatch::encode_checkpoint(state);
    INFO(text);
    CHECK(storewatch::decode_checkpoint(text) == state);
  }
}

TEST_CASE("checkpoint text form is format 1 JSON") {
  const auto j = nlohmann::json::parse(storewatch::encode_checkpoint({"cur", {"a"}}));
  CHECK(j.at("format") == 1);
  CHECK(j.at("cursor") == "cur");
  CHECK(j.at("delivered_after_cursor") == nlohmann::json::array({"a"}));
}

TEST_CASE("checkpoint decode rejects text that is not JSON") {
  CHECK_THROWS_MATCHES(storewatch::decode_checkpoint("{not json", "origin-x"), std::system_error,
                       system_error_with(errc::invalid_cursor, "origin-x: ", {"syntax error at byte"}));
  CHECK_THROWS_MATCHES(storewatch::decode_checkpoint("", "origin-x"), std::system_error,
                       system_error_with(errc::invalid_cursor, "origin-x: ", {"not a checkpoint"}));
}

TEST_CASE("an empty checkpoint file is refused with a message that says it is empty and what to do") {
  // `touch cp` before the first run: the message must say why, not point at
  // a JSON syntax error at byte 1.
  for (const std::string text : {"", "\n", "  \r\n\t"}) {
    CHECK_THROWS_MATCHES(storewatch::decode_checkpoint(text, "checkpoint cp"), std::system_error,
                         system_error_with(errc::invalid_cursor, "checkpoint cp: ",
                                           {"the file is empty", "remove the empty file"}));
  }
  temp_dir dir;
  const auto file = dir.path() / "cp";
  std::ofstream(file).flush();
  CHECK_THROWS_MATCHES(storewatch::load_checkpoint(file), std::system_error,
                       system_error_with(errc::invalid_cursor, "checkpoint " + file.string() + ": ",
                                         {"the file is empty"}));
  CHECK(std::filesystem::file_size(file) == 0);  // refused, not replaced
}

TEST_CASE("checkpoint decode uses the default origin") {
  CHECK_THROWS_MATCHES(storewatch::decode_checkpoint("nope"), std::system_error,
                       system_error_with(errc::invalid_cursor, "checkpoint: "));
}

TEST_CASE("checkpoint decode rejects JSON that is not an object") {
  for (const std::string text : {"[]", "1", "\"text\"", "null"}) {
    INFO(text);
    CHECK_THROWS_MATCHES(storewatch::decode_checkpoint(text, "here"), std::system_error,
                         system_error_with(errc::invalid_cursor, "here: ", {"expected a JSON object"}));
  }
}

TEST_CASE("checkpoint decode rejects a missing format") {
  CHECK_THROWS_MATCHES(storewatch::decode_checkpoint(R"({"cursor":"c","delivered_after_cursor":[]})", "here"),
                       std::system_error, system_error_with(errc::invalid_cursor, "here: ", {"\"format\""}));
  CHECK_THROWS_MATCHES(
      storewatch::decode_checkpoint(R"({"format":"1","cursor":"c","delivered_after_cursor":[]})", "here"),
      std::system_error, system_error_with(errc::invalid_cursor, "here: ", {"\"format\""}));
}

TEST_CASE("checkpoint decode rejects an unsupported format") {
  for (const std::string format : {"0", "2", "-1"}) {
    INFO(format);
    const auto text = R"({"format":)" + format + R"(,"cursor":"c","delivered_after_cursor":[]})";
    CHECK_THROWS_MATCHES(storewatch::decode_checkpoint(text, "here"), std::system_error,
                         system_error_with(errc::invalid_cursor, "here: ", {"unsupported format " + format}));
  }
}

TEST_CASE("checkpoint decode rejects a cursor that is not a string") {
  for (const std::string cursor : {"1", "null", "[]", "{}"}) {
    INFO(cursor);
    const auto text = R"({"format":1,"cursor":)" + cursor + R"(,"delivered_after_cursor":[]})";
    CHECK_THROWS_MATCHES(storewatch::decode_checkpoint(text, "here"), std::system_error,
                         system_error_with(errc::invalid_cursor, "here: ", {"\"cursor\""}));
  }
  CHECK_THROWS_MATCHES(storewatch::decode_checkpoint(R"({"format":1,"delivered_after_cursor":[]})", "here"),
                       std::system_error, system_error_with(errc::invalid_cursor, "here: ", {"\"cursor\""}));
}

TEST_CASE("checkpoint decode rejects ids that are not an array of strings") {
  for (const std::string ids : {"\"a\"", "{}", "null", "[1]", "[\"a\",null]", "[[\"a\"]]"}) {
    INFO(ids);
    const auto text = R"({"format":1,"cursor":"c","delivered_after_cursor":)" + ids + "}";
    CHECK_THROWS_MATCHES(storewatch::decode_checkpoint(text, "here"), std::system_error,
                         system_error_with(errc::invalid_cursor, "here: ", {"\"delivered_after_cursor\""}));
  }
  CHECK_THROWS_MATCHES(storewatch::decode_checkpoint(R"({"format":1,"cursor":"c"})", "here"), std::system_error,
                       system_error_with(errc::invalid_cursor, "here: ", {"\"delivered_after_cursor\""}));
}

TEST_CASE("checkpoint decode ignores unknown fields") {
  const auto state =
      storewatch::decode_checkpoint(R"({"format":1,"cursor":"c","delivered_after_cursor":["x"],"extra":true})");
  CHECK(state == checkpoint_state{"c", {"x"}});
}

// ------------------------------------------------------------ checkpoint file

TEST_CASE("checkpoint with a missing file starts empty") {
  temp_dir dir;
  const checkpoint saved(dir.path() / "cp.json");
  CHECK(saved.state() == checkpoint_state{});
  CHECK(saved.unsaved() == 0);
  CHECK(saved.file() == dir.path() / "cp.json");
  CHECK_FALSE(fs::exists(dir.path() / "cp.json"));
}

TEST_CASE("checkpoint save then load gives the same state") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  checkpoint_state expected;
  {
    checkpoint first(file);
    first.record(event_with_cursor("e1", "cursor-1"));
    first.record(event_with_cursor("e2", ""));
    first.record(event_with_cursor("e3", ""));
    expected = first.state();
    first.save();
  }
  REQUIRE(fs::exists(file));
  CHECK(storewatch::decode_checkpoint(read_text(file)) == expected);
  const checkpoint second(file);
  CHECK(second.state() == expected);
  CHECK(second.state() == checkpoint_state{"cursor-1", {"e2", "e3"}});
  CHECK(second.unsaved() == 0);
}

TEST_CASE("checkpoint save overwrites the previous state") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  checkpoint cp(file);
  cp.record(event_with_cursor("e1", "c1"));
  cp.save();
  cp.record(event_with_cursor("e2", "c2"));
  cp.record(event_with_cursor("e3", ""));
  cp.save();
  CHECK(*storewatch::load_checkpoint(file) == checkpoint_state{"c2", {"e3"}});
}

TEST_CASE("checkpoint record with a cursor resets delivered ids") {
  temp_dir dir;
  checkpoint cp(dir.path() / "cp.json");
  cp.record(event_with_cursor("a", ""));
  cp.record(event_with_cursor("b", ""));
  CHECK(cp.state() == checkpoint_state{"", {"a", "b"}});
  cp.record(event_with_cursor("c", "cursor-after-c"));
  CHECK(cp.state() == checkpoint_state{"cursor-after-c", {}});
  cp.record(event_with_cursor("d", ""));
  CHECK(cp.state() == checkpoint_state{"cursor-after-c", {"d"}});
  cp.record(event_with_cursor("e", "cursor-after-e"));
  CHECK(cp.state() == checkpoint_state{"cursor-after-e", {}});
}

TEST_CASE("checkpoint unsaved counts records and resets on save") {
  temp_dir dir;
  checkpoint cp(dir.path() / "cp.json");
  CHECK(cp.unsaved() == 0);
  cp.record(event_with_cursor("a", ""));
  CHECK(cp.unsaved() == 1);
  cp.record(event_with_cursor("b", "c"));
  cp.record(event_with_cursor("c", ""));
  CHECK(cp.unsaved() == 3);
  cp.save();
  CHECK(cp.unsaved() == 0);
  cp.record(event_with_cursor("d", ""));
  CHECK(cp.unsaved() == 1);
}

TEST_CASE("checkpoint with a corrupt file names the file") {
  temp_dir dir;
  const auto file = dir.path() / "corrupt.json";
  write_text(file, "{\"format\":1,\"cursor\":\"c\",\"delivered_after");  // torn write
  CHECK_THROWS_MATCHES(checkpoint(file), std::system_error,
                       system_error_with(errc::invalid_cursor, "checkpoint " + file.string() + ": "));
}

TEST_CASE("checkpoint with a wrong-shape file names the file and field") {
  temp_dir dir;
  const auto file = dir.path() / "shape.json";
  write_text(file, R"({"format":1,"cursor":7,"delivered_after_cursor":[]})");
  CHECK_THROWS_MATCHES(checkpoint(file), std::system_error,
                       system_error_with(errc::invalid_cursor, "checkpoint " + file.string() + ": ", {"\"cursor\""}));
}

TEST_CASE("checkpoint with an empty file is rejected") {
  temp_dir dir;
  const auto file = dir.path() / "empty.json";
  write_text(file, "");
  CHECK_THROWS_MATCHES(checkpoint(file), std::system_error,
                       system_error_with(errc::invalid_cursor, "checkpoint " + file.string() + ": "));
}

TEST_CASE("checkpoint that is a directory cannot be read") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  fs::create_directory(file);
  CHECK_THROWS_MATCHES(checkpoint(file), std::system_error,
                       system_error_with(errc::checkpoint_failed, "checkpoint " + file.string()));
}

TEST_CASE("checkpoint in a missing directory is refused when opened, naming the path") {
  temp_dir dir;
  const auto file = dir.path() / "no-such-dir" / "cp.json";
  CHECK_THROWS_MATCHES(checkpoint(file), std::system_error,
                       system_error_with(errc::checkpoint_failed, "checkpoint ", {file.string(), "open"}));
  CHECK_FALSE(fs::exists(dir.path() / "no-such-dir"));
}

TEST_CASE("checkpoint is owned by one object at a time: a second is refused until the first is gone") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  {
    checkpoint first(file);
    first.record(event_with_cursor("a", "c1"));
    first.save();
    CHECK_THROWS_MATCHES(checkpoint(file), std::system_error,
                         system_error_with(errc::checkpoint_failed, "checkpoint " + file.string(), {"in use"}));
    // Reading without the lock still works, say to inspect a running listener.
    CHECK(*storewatch::load_checkpoint(file) == checkpoint_state{"c1", {}});
  }
  const checkpoint second(file);
  CHECK(second.exists());
  CHECK(second.state() == checkpoint_state{"c1", {}});
}

TEST_CASE("checkpoint exists() tells a new file from one that holds the beginning") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  {
    checkpoint cp(file);
    CHECK_FALSE(cp.exists());
    cp.reset({});
    cp.save();
    CHECK(cp.exists());
  }
  CHECK(checkpoint(file).exists());
  CHECK_FALSE(storewatch::load_checkpoint(dir.path() / "other.json"));
}

TEST_CASE("checkpoint save leaves no temporary file") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  checkpoint cp(file);
  cp.record(event_with_cursor("a", "c"));
  cp.save();
  cp.record(event_with_cursor("b", ""));
  cp.save();
  CHECK(entries(dir.path()) == std::vector<std::string>{"cp.json", "cp.json.lock"});
  CHECK_FALSE(fs::exists(dir.path() / "cp.json.tmp"));
}

TEST_CASE("checkpoint failed save leaves no temporary file") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  checkpoint cp(file);
  cp.record(event_with_cursor("a", "c"));
  // Something else takes the checkpoint's name before the save: a non-empty
  // directory, so the final rename step must fail.
  fs::create_directories(file / "occupied");
  CHECK_THROWS_MATCHES(cp.save(), std::system_error,
                       system_error_with(errc::checkpoint_failed, "checkpoint ", {file.string(), "rename"}));
  CHECK(cp.unsaved() == 1);
  CHECK_FALSE(fs::exists(dir.path() / "cp.json.tmp"));
}

TEST_CASE("checkpoint save of an id or cursor that is not UTF-8 fails with checkpoint_failed, naming the file and "
          "the field, and writes nothing") {
  // Ids and cursors are a source's text: one of the user's may hold any
  // bytes, which the JSON of the text form cannot. Before, nlohmann's
  // type_error escaped save() (documented to throw std::system_error), and on
  // a listener's blocking executor it ended the process.
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  checkpoint cp(file);
  cp.record(event_with_cursor("a", "fine"));
  cp.save();
  const bool bad_id = GENERATE(true, false);
  if (bad_id) {
    cp.record(event_with_cursor("id-\xFF", ""));
  } else {
    cp.record(event_with_cursor("b", "cursor-\xC3"));
  }
  CHECK_THROWS_MATCHES(cp.save(), std::system_error,
                       system_error_with(errc::checkpoint_failed, "checkpoint ",
                                         {file.string(), bad_id ? "delivered_after_cursor" : "\"cursor\"",
                                          "UTF-8"}));
  CHECK(cp.unsaved() == 1);
  CHECK(*storewatch::load_checkpoint(file) == checkpoint_state{"fine", {}});
  CHECK(entries(dir.path()) == std::vector<std::string>{"cp.json", "cp.json.lock"});
}

TEST_CASE("checkpoint ignores a stale temporary file when loading") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  write_text(file, storewatch::encode_checkpoint({"good", {"x"}}));
  write_text(dir.path() / "cp.json.tmp", "{\"format\":1,\"cur");  // a crashed save's leftover
  const checkpoint cp(file);
  CHECK(cp.state() == checkpoint_state{"good", {"x"}});
}

TEST_CASE("checkpoint stale temporary file without a checkpoint means empty") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  write_text(dir.path() / "cp.json.tmp", storewatch::encode_checkpoint({"never-renamed", {}}));
  const checkpoint cp(file);
  CHECK(cp.state() == checkpoint_state{});
}

TEST_CASE("checkpoint save replaces a stale temporary file") {
  temp_dir dir;
  const auto file = dir.path() / "cp.json";
  // Longer than what save writes, so a missing truncate would leave junk behind.
  write_text(dir.path() / "cp.json.tmp", std::string(4096, 'z'));
  checkpoint cp(file);
  cp.record(event_with_cursor("a", "fresh"));
  cp.record(event_with_cursor("b", ""));
  cp.save();
  CHECK(entries(dir.path()) == std::vector<std::string>{"cp.json", "cp.json.lock"});
  CHECK(*storewatch::load_checkpoint(file) == checkpoint_state{"fresh", {"b"}});
}

}  // namespace checkpoint_test
