// Tests for storewatch/store/rules.hpp: the store's decisions (what a
// selection matches, the plan of each operation, who may read what) as pure
// functions: no io_context, no files, no sockets. The stores that carry the
// plans out are tested by store_suite_test, against both stores.
#include <catch2/catch.hpp>

#include <storewatch/store/rules.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

// This file's tests and helpers, in a namespace of their own: test programs
// compile several test files as one (tests/CMakeLists.txt, storewatch_test_group).
namespace store_rules_test {

namespace {

using namespace storewatch;
using rules::operation_kind;

const std::string alice = "alice222";
const std::string bob = "bob123";
const std::string carol = "carol";
const std::string dave = "dave";

std::string change_name(rules::change c) {
  switch (c) {
    case rules::change::none: return "none";
    case rules::change::add_version: return "add_version";
    case rules::change::remove_version: return "remove_version";
    case rules::change::add_share: return "add_share";
    case rules::change::remove_share: return "remove_share";
  }
  return "?";
}

/// A plan's steps, one line each: "change user EVENT data", so that a whole
/// plan compares (and prints) as one table.
std::vector<std::string> lines(const rules::plan& planned) {
  std::vector<std::string> out;
  for (const auto& s : planned.steps) out.push_back(change_name(s.what) + " " + s.user + " " + s.event_name + " " + s.data);
  return out;
}

timestamp at(std::int64_t ms) { return timestamp{std::chrono::milliseconds{ms}}; }

// Alice's versions, as a store would list them (in no particular order),
// with one of bob's that a confused listing might add.
const versioned_path a1{"docs/a.txt", alice, 100};
const versioned_path a2{"docs/a.txt", alice, 200};
const versioned_path b1{"docs/b.txt", alice, 150};
const versioned_path deep{"docs/sub/c.txt", alice, 120};
const versioned_path top{"top.txt", alice, 110};
const versioned_path bobs{"docs/a.txt", bob, 130};
const rules::versions listing{deep, a2, top, b1, bobs, a1};

rules::operation share_op(const std::string& actor, selection which, std::vector<std::string> users,
                          bool share = true) {
  return rules::selection_operation(share ? operation_kind::share : operation_kind::unshare, actor,
                                    std::move(which), std::move(users));
}

/// The error code a plan is refused with, or none.
std::error_code refused_with(const rules::plan& planned) {
  return planned.refused ? planned.refused->code() : std::error_code{};
}

}  // namespace

TEST_CASE("selection: recursive prefixes, one file, one folder's files, inclusive and open time bounds") {
  const auto matches = [](selection which, const versioned_path& v) { return which.matches(v); };
  // Recursive: every path that starts with the prefix, also deeper ones and
  // other names that merely start with the same text.
  CHECK(matches({"docs", true}, a1));
  CHECK(matches({"docs", true}, deep));
  CHECK(matches({"docs/a", true}, a1));
  CHECK_FALSE(matches({"docs/a", true}, b1));
  CHECK(matches({"", true}, top));
  CHECK(matches({"", true}, deep));
  // Not recursive: the file the prefix names...
  CHECK(matches({"docs/a.txt", false}, a1));
  CHECK_FALSE(matches({"docs/a", false}, a1));
  // ...or the files directly in the folder it names, with or without '/'.
  CHECK(matches({"docs", false}, a1));
  CHECK(matches({"docs/", false}, b1));
  CHECK_FALSE(matches({"docs", false}, deep));
  CHECK(matches({"docs/sub", false}, deep));
  CHECK_FALSE(matches({"doc", false}, a1));
  // The empty prefix, not recursive: the top folder's files only.
  CHECK(matches({"", false}, top));
  CHECK_FALSE(matches({"", false}, a1));
  // Time bounds are inclusive; either may be open.
  CHECK(matches({"docs", true, at(100), at(100)}, a1));
  CHECK_FALSE(matches({"docs", true, at(101), std::nullopt}, a1));
  CHECK_FALSE(matches({"docs", true, std::nullopt, at(99)}, a1));
  CHECK(matches({"docs", true, std::nullopt, at(150)}, b1));
  CHECK_FALSE(matches({"docs", true, at(151)}, b1));
  CHECK(matches({"docs", true, at(151)}, a2));
}

TEST_CASE("select: only the owner's versions the selection matches, sorted by path, then time") {
  CHECK(rules::select({"docs", true}, alice, listing) == rules::versions{a1, a2, b1, deep});
  CHECK(rules::select({"docs", false}, alice, listing) == rules::versions{a1, a2, b1});
  CHECK(rules::select({"docs/a.txt", false, at(150)}, alice, listing) == rules::versions{a2});
  CHECK(rules::select({"", true}, bob, listing) == rules::versions{bobs});
  CHECK(rules::select({"", true}, carol, listing).empty());
}

TEST_CASE("create: one new version stamped with the time given, CREATE to its owner only") {
  auto planned = rules::decide(rules::create_operation(alice, "docs/new.txt", 1000));
  CHECK_FALSE(planned.refused);
  const versioned_path made{"docs/new.txt", alice, 1000};
  REQUIRE(planned.steps.size() == 1);
  CHECK(planned.steps[0].version == made);
  CHECK(lines(planned) == std::vector<std::string>{"add_version " + alice + " CREATE " + made.to_string()});
  CHECK(planned.selected.empty());

  // A name taken in that millisecond: the version and its event move on together.
  rules::next_millisecond(planned.steps[0]);
  rules::next_millisecond(planned.steps[0]);
  const versioned_path moved{"docs/new.txt", alice, 1002};
  CHECK(planned.steps[0].version == moved);
  CHECK(planned.steps[0].data == moved.to_string());

  const auto bad = rules::decide(rules::create_operation(alice, "../escape", 1));
  CHECK(refused_with(bad) == errc::invalid_path);
  CHECK(bad.steps.empty());
  CHECK_THAT(std::string(bad.refused->what()), Catch::Contains("'..'"));
  CHECK(refused_with(rules::decide(rules::create_operation(alice, "docs/", 1))) ==
        errc::invalid_path);
}

TEST_CASE("share: each named user gets a SHARE per selected version, one shared already is announced again, "
          "unchanged") {
  rules::store_state state{listing, {{a1.to_string(), {bob}}}};
  const auto planned = rules::decide(share_op(alice, {"docs/a.txt", false}, {bob, carol}), state);
  CHECK(planned.selected == rules::versions{a1, a2});
  CHECK(lines(planned) == std::vector<std::string>{
                              "none " + bob + " SHARE " + a1.to_string(),
                              "add_share " + carol + " SHARE " + a1.to_string(),
                              "add_share " + bob + " SHARE " + a2.to_string(),
                              "add_share " + carol + " SHARE " + a2.to_string(),
                          });
  for (const auto& s : planned.steps) CHECK(s.version == versioned_path::parse(s.data));
}

TEST_CASE("share: the owner naming themselves is passed over, a user named twice gets one marker and two SHAREs") {
  const rules::store_state state{listing, {}};
  CHECK(rules::decide(share_op(alice, {"docs/b.txt", false}, {alice}), state).steps.empty());
  const auto planned = rules::decide(share_op(alice, {"docs/b.txt", false}, {bob, alice, bob}), state);
  CHECK(planned.selected == rules::versions{b1});
  CHECK(lines(planned) == std::vector<std::string>{
                              "add_share " + bob + " SHARE " + b1.to_string(),
                              "none " + bob + " SHARE " + b1.to_string(),
                          });
}

TEST_CASE("share, unshare and delete by someone who owns none of the versions listed: nothing is selected") {
  // Bob's listing holds alice's versions (say, a confused listing): bob
  // still acts only on his own.
  const rules::versions alices{a1, a2, b1};
  const rules::store_state state{alices, {{a1.to_string(), {carol}}}};
  for (const auto kind : {operation_kind::share, operation_kind::unshare, operation_kind::delete_}) {
    INFO(static_cast<int>(kind));
    const auto planned =
        rules::decide(rules::selection_operation(kind, bob, {"docs", true}, {carol, dave}), state);
    CHECK_FALSE(planned.refused);
    CHECK(planned.selected.empty());
    CHECK(planned.steps.empty());
  }
}

TEST_CASE("unshare: only users who hold a version get an UNSHARE, a non-grantee, the owner and a repeat get "
          "nothing") {
  const rules::store_state state{listing, {{a1.to_string(), {bob, carol}}, {a2.to_string(), {carol}}}};
  const auto planned =
      rules::decide(share_op(alice, {"docs/a.txt", false}, {bob, dave, alice, bob}, false), state);
  CHECK(planned.selected == rules::versions{a1, a2});
  CHECK(lines(planned) == std::vector<std::string>{"remove_share " + bob + " UNSHARE " + a1.to_string()});

  const auto carols = rules::decide(share_op(alice, {"docs", true}, {carol}, false), state);
  CHECK(lines(carols) == std::vector<std::string>{
                             "remove_share " + carol + " UNSHARE " + a1.to_string(),
                             "remove_share " + carol + " UNSHARE " + a2.to_string(),
                         });
  // A selection that holds none of the shared versions touches nothing.
  CHECK(rules::decide(share_op(alice, {"docs/b.txt", false}, {bob, carol}, false), state).steps.empty());
}

TEST_CASE("share and unshare: the time bounds decide which versions the users are told of") {
  const rules::store_state state{listing, {{a1.to_string(), {bob}}}};
  const auto later = rules::decide(share_op(alice, {"docs/a.txt", false, at(101)}, {bob}), state);
  CHECK(lines(later) == std::vector<std::string>{"add_share " + bob + " SHARE " + a2.to_string()});
  const auto earlier = rules::decide(share_op(alice, {"docs", true, std::nullopt, at(100)}, {bob}, false), state);
  CHECK(lines(earlier) == std::vector<std::string>{"remove_share " + bob + " UNSHARE " + a1.to_string()});
}

TEST_CASE("delete: each version goes with a DELETE to its owner, then each grantee's share with a DELETE to them") {
  const rules::store_state state{listing, {{a1.to_string(), {carol, bob}}, {b1.to_string(), {dave}}}};
  const auto planned =
      rules::decide(rules::selection_operation(operation_kind::delete_, alice, {"docs", false}), state);
  CHECK(planned.selected == rules::versions{a1, a2, b1});
  CHECK(lines(planned) == std::vector<std::string>{
                              "remove_version " + alice + " DELETE " + a1.to_string(),
                              "remove_share " + bob + " DELETE " + a1.to_string(),
                              "remove_share " + carol + " DELETE " + a1.to_string(),
                              "remove_version " + alice + " DELETE " + a2.to_string(),
                              "remove_version " + alice + " DELETE " + b1.to_string(),
                              "remove_share " + dave + " DELETE " + b1.to_string(),
                          });
  // Grants of versions outside the selection are not touched.
  const auto one = rules::decide(
      rules::selection_operation(operation_kind::delete_, alice, {"docs/a.txt", false, at(150)}), state);
  CHECK(lines(one) == std::vector<std::string>{"remove_version " + alice + " DELETE " + a2.to_string()});
}

TEST_CASE("publish: the event to each named user in the order named, the publisher and repeats included, "
          "no change") {
  const auto planned = rules::decide(rules::publish_operation(alice, {bob, alice, bob}, "ping", "hello"));
  CHECK(lines(planned) == std::vector<std::string>{
                              "none " + bob + " ping hello",
                              "none " + alice + " ping hello",
                              "none " + bob + " ping hello",
                          });
  // Only the users named: a subset hears it, nobody else.
  const auto to_carol = rules::decide(rules::publish_operation(alice, {carol}, "ping", "hi"));
  CHECK(lines(to_carol) == std::vector<std::string>{"none " + carol + " ping hi"});
  CHECK(rules::decide(rules::publish_operation(alice, {}, "ping", "")).steps.empty());
}

TEST_CASE("refusals: an invalid prefix, user, event name or data refuses the whole operation, before the store "
          "is read") {
  const rules::store_state state{listing, {}};
  const auto check = [&](const rules::operation& op, errc expected) {
    const auto refusal = rules::refusal(op);
    REQUIRE(refusal);
    CHECK(refusal->code() == expected);
    const auto planned = rules::decide(op, state);
    CHECK(refused_with(planned) == expected);
    CHECK(planned.steps.empty());
    CHECK(planned.selected.empty());
    CHECK_THROWS_AS(rules::throw_if_refused(planned.refused), std::system_error);
  };
  check(share_op(alice, {"/docs", true}, {bob}), errc::invalid_path);
  check(share_op(alice, {"docs", true}, {bob, "no body"}), errc::invalid_user);
  check(share_op(alice, {"docs", true}, {".."}, false), errc::invalid_user);
  // The prefix is checked before the users.
  check(share_op(alice, {"a//b", true}, {""}), errc::invalid_path);
  check(rules::selection_operation(operation_kind::delete_, alice, {"docs/../x", true}), errc::invalid_path);
  const auto publish = [](std::string name, std::string data, std::vector<std::string> users) {
    return rules::publish_operation(alice, std::move(users), std::move(name), std::move(data));
  };
  check(publish("SHARE", "x", {bob}), errc::invalid_event_name);  // nobody forges the store's own events
  check(publish("two words", "x", {bob}), errc::invalid_event_name);
  check(publish("ping", std::string(64 * 1024 + 1, 'x'), {bob}), errc::invalid_event);
  check(publish("ping", "\xFF", {bob}), errc::invalid_event);
  check(publish("ping", "x", {bob, "a/b"}), errc::invalid_user);
  // A prefix may be empty or end with '/'; valid operations are not refused.
  CHECK_FALSE(rules::refusal(share_op(alice, {"", true}, {bob})));
  CHECK_FALSE(rules::refusal(share_op(alice, {"docs/", false}, {bob})));
  CHECK_FALSE(rules::refusal(publish("ping", std::string(64 * 1024, 'x'), {bob})));
  CHECK_NOTHROW(rules::throw_if_refused(std::nullopt));
}

TEST_CASE("reading: the owner needs nothing, anyone else a share, a denial does not say whether the version exists") {
  const auto own = rules::check_read(alice, a1);
  CHECK_FALSE(own.refused);
  CHECK_FALSE(own.needs_share);
  for (const auto& reader : {bob, dave}) {  // a grantee and a stranger: only the store's share marker tells them apart
    const auto other = rules::check_read(reader, a1);
    CHECK_FALSE(other.refused);
    CHECK(other.needs_share);
  }
  const auto bad_path = rules::check_read(bob, {"a/../b", alice, 1});
  REQUIRE(bad_path.refused);
  CHECK(bad_path.refused->code() == errc::invalid_path);
  const auto bad_owner = rules::check_read(bob, {"a.txt", "x y", 1});
  REQUIRE(bad_owner.refused);
  CHECK(bad_owner.refused->code() == errc::invalid_user);

  const auto denied = rules::read_denied(bob, a1);
  CHECK(denied.code() == errc::permission_denied);
  CHECK_THAT(std::string(denied.what()), Catch::Contains(bob + " cannot read") && Catch::Contains("docs/a.txt") &&
                                             Catch::Contains("does not exist or is not shared with " + bob));
}

TEST_CASE("listing: own versions and those shared with the reader, under the selection, sorted by path, time, owner") {
  const versioned_path from_bob{"docs/a.txt", bob, 100};
  const versioned_path bob_elsewhere{"other/x.txt", bob, 1};
  const versioned_path carol_deep{"docs/sub/d.txt", carol, 5};
  const rules::versions shared{carol_deep, bob_elsewhere, from_bob};
  CHECK(rules::visible(alice, {"docs", false}, listing, shared) == rules::versions{a1, from_bob, a2, b1});
  CHECK(rules::visible(alice, {"docs", true}, listing, shared) ==
        rules::versions{a1, from_bob, a2, b1, deep, carol_deep});
  CHECK(rules::visible(alice, {"", true}, {}, shared) == rules::versions{from_bob, carol_deep, bob_elsewhere});
  CHECK_FALSE(rules::list_refusal("docs/"));
  REQUIRE(rules::list_refusal("/docs"));
  CHECK(rules::list_refusal("/docs")->code() == errc::invalid_path);
}

}  // namespace store_rules_test
