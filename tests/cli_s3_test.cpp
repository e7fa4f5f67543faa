// Tests of the storewatch command-line tool against an S3 store: the built
// binary (STOREWATCH_TOOL) runs as a subprocess (common/cli_run.hpp) with
// `--store s3://bucket/t-<random>` and `--endpoint` of the test server
// (s3/common/server.hpp: the s3rver CTest fixture, or the store named by
// STOREWATCH_S3_ENDPOINT), and the server's credentials in AWS_* variables
// of its own environment. Each test case has a fresh key prefix.
#include "common/cli_run.hpp"
#include "common/faults.hpp"
#include "common/fixture.hpp"
#include "common/store_kinds.hpp"
#include "s3/common/proxy.hpp"
#include "s3/common/server.hpp"

#include "tail_start.hpp"
#include "time_text.hpp"

#include <csignal>
#include <thread>

#include <unistd.h>
#include <iterator>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace storewatch;
using namespace storewatch::test;
using namespace storewatch::test::cli_run;
using namespace std::chrono_literals;
using Catch::Matchers::Contains;
using Catch::Matchers::StartsWith;

namespace {

/// A fresh key prefix of the test server, and how the tool reaches it.
struct s3_location {
  s3::config config = s3::test::test_server_config();
  temp_dir dir;  // the child's STOREWATCH_ROOT (which --store overrides) and checkpoint files

  /// "s3://bucket/t-<random>"
  std::string url() const {
    auto prefix = config.prefix;
    if (prefix.ends_with('/')) prefix.pop_back();
    return "s3://" + config.bucket + "/" + prefix;
  }
  /// "http://127.0.0.1:PORT"
  std::string endpoint() const { return config.endpoint.scheme + "://" + config.endpoint.authority(); }

  /// The child's S3 settings: the server's credentials and region, and no
  /// endpoint variables (so that --endpoint is what counts), whatever this
  /// process's environment holds; then `changes` ("NAME=value"), which
  /// replace those of the same name.
  std::vector<std::string> env(const std::vector<std::string>& changes = {}) const {
    std::vector<std::string> all{"AWS_ACCESS_KEY_ID=" + config.credentials.access_key_id,
                                 "AWS_SECRET_ACCESS_KEY=" + config.credentials.secret_access_key,
                                 "AWS_SESSION_TOKEN=" + config.credentials.session_token,
                                 "AWS_REGION=" + config.region,
                                 "AWS_DEFAULT_REGION=",
                                 "AWS_ENDPOINT_URL=",
                                 "AWS_ENDPOINT_URL_S3=",
                                 // Nothing from the user's ~/.aws: the keys above.
                                 "AWS_PROFILE=",
                                 "AWS_DEFAULT_PROFILE=",
                                 "AWS_CONFIG_FILE=" + (dir.path() / "no-aws-config").string(),
                                 "AWS_SHARED_CREDENTIALS_FILE=" + (dir.path() / "no-aws-credentials").string()};
    const auto name_of = [](const std::string& entry) { return entry.substr(0, entry.find('=')); };
    for (const auto& change : changes) {
      std::erase_if(all, [&](const std::string& entry) { return name_of(entry) == name_of(change); });
      all.push_back(change);
    }
    return all;
  }

  /// `args` for the tool, acting as `user` on this store.
  std::vector<std::string> as(const std::string& user, const std::vector<std::string>& args) const {
    std::vector<std::string> all{"--store", url(), "--endpoint", endpoint(), "--user", user};
    all.insert(all.end(), args.begin(), args.end());
    return all;
  }

  /// Runs the tool as `user`; requires status 0 and an empty stderr.
  std::string ok(const std::string& user, const std::vector<std::string>& args,
                 std::optional<std::string> input = std::nullopt) const {
    return run_ok(dir.path(), as(user, args), std::move(input), env());
  }

  outcome run_as(const std::string& user, const std::vector<std::string>& args) const {
    return run(dir.path(), as(user, args), std::nullopt, env());
  }

  std::unique_ptr<process> start_as(const std::string& user, const std::vector<std::string>& args) const {
    return start(dir.path(), as(user, args), std::nullopt, env());
  }

  /// Publishes NAME DATA from alice222 to bob123; returns the id printed.
  std::string publish(const std::string& name, const std::string& data) const {
    const auto lines = split_lines(ok("alice222", {"publish", name, data, "--to", "bob123"}));
    REQUIRE(lines.size() == 1);
    REQUIRE(!lines[0].empty());
    return lines[0];
  }
};

std::string random_secret() {
  std::random_device random;
  return "wrong-secret-" + std::to_string(random()) + std::to_string(random());
}

}  // namespace

TEST_CASE("s3: create, share, ls, cat, publish, unshare and delete as two users", "[cli][s3]") {
  const s3_location store;
  // A NUL, bytes that are not UTF-8, a CR LF.
  const char raw[] = "a\0b\xff\xfe\x80\xC3 end\r\n";
  const std::string bytes(raw, sizeof raw - 1);
  const auto file = store.dir.path() / "input.bin";
  write_file(file, bytes);

  const auto first = store.ok("alice222", {"create", "Shared/bin.dat", file.string()});
  const auto second = store.ok("alice222", {"create", "Shared/sub/stdin.txt", "-"}, "from stdin\n");
  const auto own = store.ok("alice222", {"create", "Private/p.txt", "-"}, "private\n");
  REQUIRE(split_lines(first).size() == 1);
  REQUIRE(split_lines(second).size() == 1);
  const auto v1 = split_lines(first)[0];
  const auto v2 = split_lines(second)[0];
  const auto parsed = versioned_path::try_parse(v1);
  REQUIRE(parsed);
  CHECK(parsed->path == "Shared/bin.dat");
  CHECK(parsed->user == "alice222");

  CHECK(store.ok("alice222", {"share", "Shared/", "--with", "bob123", "--recursive"}) == first + second);
  CHECK(store.ok("bob123", {"ls", "--recursive"}) == first + second);
  CHECK(store.ok("bob123", {"ls", "Shared/"}) == first);
  CHECK(store.ok("alice222", {"ls", "--recursive"}) == own + first + second);
  CHECK(store.ok("bob123", {"cat", v1}) == bytes);
  CHECK(store.ok("bob123", {"cat", v2}) == "from stdin\n");

  // The store and endpoint from the environment instead of the options.
  {
    const auto r = run(store.dir.path(), {"--user", "bob123", "ls", "--recursive"}, std::nullopt,
                       store.env({"STOREWATCH_STORE=" + store.url(), "AWS_ENDPOINT_URL=" + store.endpoint()}));
    INFO("stderr: " << r.err);
    CHECK(r.status == 0);
    CHECK(r.out == first + second);
  }

  // Bob cannot read what is not shared with him.
  const auto own_version = split_lines(own)[0];
  check_runtime_error(store.dir.path(), store.as("bob123", {"cat", own_version}), {"bob123", "Private/p.txt"},
                      store.env());
  // A user the store does not know has no files (no folders to check on S3).
  CHECK(store.ok("dave", {"ls", "--recursive"}).empty());

  // An application event; bob's journal now holds SHARE, SHARE, EV.
  const auto id = store.publish("HELLO", "hi bob");
  const auto events = parse_json_lines(
      store.ok("bob123", {"tail", "--from-start", "--count", "3", "--timeout", "60", "--format", "json"}));
  REQUIRE(events.size() == 3);
  CHECK(events[0].name == "SHARE");
  CHECK(events[1].name == "SHARE");
  CHECK(std::set<std::string>{events[0].data, events[1].data} == std::set<std::string>{v1, v2});
  CHECK(events[2].name == "HELLO");
  CHECK(events[2].data == "hi bob");
  CHECK(events[2].id == id);
  CHECK(events[2].actor == "alice222");

  CHECK(store.ok("alice222", {"unshare", "Shared/sub/", "--with", "bob123"}) == second);
  CHECK(store.ok("bob123", {"ls", "--recursive"}) == first);
  CHECK(store.ok("alice222", {"delete", "Shared/", "--recursive"}) == first + second);
  CHECK(store.ok("bob123", {"ls", "--recursive"}).empty());
  CHECK(store.ok("alice222", {"ls", "--recursive"}) == own);
  check_runtime_error(store.dir.path(), store.as("bob123", {"cat", v1}), {"bob123", "Shared/bin.dat"}, store.env());

  // Usage errors of the arguments are the same as on a folder store.
  check_usage_error(store.dir.path(), store.as("alice222", {"create", "../x", "-"}), {"../x"}, store.env());
  check_usage_error(store.dir.path(), store.as("alice222", {"publish", "SHARE", "x", "--to", "bob123"}), {"SHARE"},
                    store.env());
  check_usage_error(store.dir.path(), store.as("alice222", {"cat", "not-a-version"}), {"not-a-version"}, store.env());
}

TEST_CASE("s3: tail --count --timeout prints the events other invocations make", "[cli][s3][tail]") {
  const s3_location store;

  SECTION("from the start: bob's tail gets alice's SHARE then DELETE") {
    auto tail =
        store.start_as("bob123", {"tail", "--from-start", "--count", "2", "--timeout", "60", "--format", "json",
                                  "--interval", "0.2"});
    const auto created = store.ok("alice222", {"create", "SharedEvents/a.txt", "-"}, "hello\n");
    const auto version = split_lines(created).at(0);
    CHECK(store.ok("alice222", {"share", "SharedEvents/", "--with", "bob123"}) == created);
    CHECK(store.ok("bob123", {"cat", version}) == "hello\n");
    CHECK(store.ok("alice222", {"delete", "SharedEvents/", "--recursive"}) == created);

    const int status = tail->wait();
    INFO("tail stdout: " << tail->out() << "\ntail stderr: " << tail->err());
    CHECK(status == 0);
    CHECK(tail->err().empty());
    const auto events = parse_json_lines(tail->out());
    REQUIRE(events.size() == 2);
    CHECK(events[0].name == "SHARE");
    CHECK(events[0].data == version);
    CHECK(events[1].name == "DELETE");
    CHECK(events[1].data == version);
    CHECK(events[0].id != events[1].id);
  }

  SECTION("without --from-start: only what comes after the journal's end") {
    store.publish("OLD", "before the tail");
    auto tail = store.start_as("bob123", {"tail", "--count", "1", "--timeout", "60", "--format", "json", "--interval", "0.2"});
    // The tail is ready once it has read to the end, which cannot be seen
    // from here: publish until it prints one.
    int published = 0;
    const bool printed = wait_for(
        [&] {
          if (tail->exited()) return true;
          store.publish("NEW", "new " + std::to_string(published++));
          return false;
        },
        {tail.get()});
    REQUIRE(printed);
    INFO("tail stdout: " << tail->out() << "\ntail stderr: " << tail->err());
    CHECK(tail->wait() == 0);
    const auto events = parse_json_lines(tail->out());
    REQUIRE(events.size() == 1);
    CHECK(events[0].name == "NEW");
    CHECK_THAT(events[0].data, StartsWith("new "));
  }

  SECTION("--timeout: 124 when --count events did not arrive, 0 without --count") {
    store.publish("EV", "only one");
    const auto partial = store.run_as("bob123", {"tail", "--from-start", "--count", "2", "--timeout", "1"});
    INFO("stderr: " << partial.err);
    CHECK(partial.status == 124);
    const auto events = parse_json_lines(partial.out);
    REQUIRE(events.size() == 1);
    CHECK(events[0].data == "only one");
    const auto plain = store.run_as("bob123", {"tail", "--timeout", "0.5"});
    CHECK(plain.status == 0);
    CHECK(plain.out.empty());
    CHECK(plain.err.empty());
  }
}

TEST_CASE("s3: tail --checkpoint resumes after the last event printed, without repeats",
          "[cli][s3][tail][checkpoint]") {
  const s3_location store;
  const auto checkpoint = (store.dir.path() / "tail.checkpoint").string();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(store.publish("EV", "e" + std::to_string(i)));

  const auto first = parse_json_lines(
      store.ok("bob123", {"tail", "--from-start", "--count", "2", "--checkpoint", checkpoint, "--timeout", "60"}));
  REQUIRE(first.size() == 2);
  CHECK(first[0].data == "e0");
  CHECK(first[1].data == "e1");
  CHECK(first[0].id == ids[0]);

  // No --from-start: a checkpoint that holds a position is where it starts.
  const auto rest =
      parse_json_lines(store.ok("bob123", {"tail", "--checkpoint", checkpoint, "--count", "3", "--timeout", "60"}));
  REQUIRE(rest.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(rest[i].data == "e" + std::to_string(i + 2));
    CHECK(rest[i].id == ids[i + 2]);
  }

  // Stopped by SIGTERM after what it printed, then resumed.
  auto tail = store.start_as("bob123", {"tail", "--checkpoint", checkpoint, "--format", "json", "--timeout", "120",
                                        "--interval", "0.2"});
  ids.push_back(store.publish("EV", "e5"));
  const bool got = wait_for([&] { return tail->exited() || split_lines(tail->out()).size() >= 1; }, {tail.get()});
  INFO("tail stdout: " << tail->out() << "\ntail stderr: " << tail->err());
  REQUIRE(got);
  REQUIRE_FALSE(tail->exited());
  tail->signal(SIGTERM);
  CHECK(tail->wait() == 0);
  CHECK(tail->err().empty());
  const auto during = parse_json_lines(tail->out());
  REQUIRE(during.size() == 1);
  CHECK(during[0].data == "e5");

  ids.push_back(store.publish("EV", "e6"));
  const auto after =
      parse_json_lines(store.ok("bob123", {"tail", "--checkpoint", checkpoint, "--count", "1", "--timeout", "60"}));
  REQUIRE(after.size() == 1);
  CHECK(after[0].data == "e6");
  CHECK(after[0].id == ids[6]);

  // Nothing new: nothing printed again.
  const auto nothing = store.run_as("bob123", {"tail", "--checkpoint", checkpoint, "--count", "1", "--timeout", "1"});
  INFO("stderr: " << nothing.err);
  CHECK(nothing.status == 124);
  CHECK(nothing.out.empty());
}

TEST_CASE("s3: refused credentials are a runtime error naming the bucket, never showing the secret",
          "[cli][s3][errors]") {
  const s3_location store;
  store.ok("alice222", {"create", "a.txt", "-"}, "a");
  const auto secret = random_secret();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"ls", "--recursive"},
        {"create", "b.txt", "-"},  // stdin is /dev/null: an empty file
        {"publish", "EV", "x", "--to", "bob123"},
        {"tail", "--from-start", "--count", "1", "--timeout", "30"},
        {"tail", "--count", "1", "--timeout", "30"}}) {
    const auto full = store.as("alice222", args);
    const auto r = run(store.dir.path(), full, std::nullopt, store.env({"AWS_SECRET_ACCESS_KEY=" + secret}));
    INFO(describe(full) << "\nstatus " << r.status << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.status == 1);
    CHECK(r.out.empty());
    CHECK(one_line(r.err));
    CHECK_THAT(r.err, StartsWith("storewatch: ") && Contains(store.config.bucket) && Contains("403"));
    CHECK_THAT(r.err, !Contains(secret));
  }
  const auto stats = run(store.dir.path(), {"--store", store.url(), "--endpoint", store.endpoint(), "stats"},
                         std::nullopt, store.env({"AWS_SECRET_ACCESS_KEY=" + secret}));
  INFO("stats stderr: " << stats.err);
  CHECK(stats.status == 1);
  CHECK(stats.out.empty());
  CHECK_THAT(stats.err, Contains(store.config.bucket) && !Contains(secret));

  // A missing credential is a usage error naming the variable.
  check_usage_error(store.dir.path(), store.as("alice222", {"ls"}), {"AWS_ACCESS_KEY_ID"},
                    store.env({"AWS_ACCESS_KEY_ID="}));
  const auto no_secret = run(store.dir.path(), store.as("alice222", {"ls"}), std::nullopt,
                             store.env({"AWS_SECRET_ACCESS_KEY="}));
  CHECK(no_secret.status == 2);
  CHECK_THAT(no_secret.err, Contains("AWS_SECRET_ACCESS_KEY"));
}

TEST_CASE("s3: a malformed s3:// URL or endpoint is a usage error naming the argument", "[cli][s3][errors]") {
  const s3_location store;
  const auto& root = store.dir.path();
  const auto env = store.env();
  const auto with_store = [&](const std::string& url, std::vector<std::string> args) {
    args.insert(args.begin(), {"--store", url, "--endpoint", store.endpoint(), "--user", "alice222"});
    return args;
  };
  for (const std::string url : {"s3://", "s3://Bad_Bucket/x", "s3://ab", "s3:///prefix", "s3://bucket//x"}) {
    check_usage_error(root, with_store(url, {"ls"}), {"--store"}, env);
  }
  check_usage_error(root, {"--store=s3://Bad_Bucket", "--user", "alice222", "ls"}, {"--store", "Bad_Bucket"}, env);
  check_usage_error(root, {"--root", "s3://Bad_Bucket", "--user", "alice222", "ls"}, {"--root"}, env);
  check_usage_error(root, {"--store", "http://example.com/x", "--user", "alice222", "ls"}, {"--store"}, env);
  check_usage_error(root, {"--user", "alice222", "ls"}, {"STOREWATCH_STORE"},
                    store.env({"STOREWATCH_STORE=s3://Bad_Bucket/x"}));

  for (const std::string endpoint :
       {"ftp://127.0.0.1", "127.0.0.1:9000", "http://127.0.0.1:9000/path", "http://127.0.0.1:99999", "http://",
        "http://bad host"}) {
    check_usage_error(root, {"--store", store.url(), "--endpoint", endpoint, "--user", "alice222", "ls"},
                      {"--endpoint"}, env);
  }
  // A user part may hold a password: it is not shown.
  const auto r = run(root, {"--store", store.url(), "--endpoint", "http://user:hunter2pw@127.0.0.1", "--user",
                            "alice222", "ls"},
                     std::nullopt, env);
  CHECK(r.status == 2);
  CHECK_THAT(r.err, Contains("--endpoint") && !Contains("hunter2pw"));
  check_usage_error(root, {"--endpoint"}, {"--endpoint"}, env);
  // --endpoint is for S3 stores only.
  check_usage_error(root, {"--store", root.string(), "--endpoint", store.endpoint(), "--user", "alice222", "ls"},
                    {"--endpoint"}, env);
  // The endpoint from the environment, named when it is wrong; --endpoint wins over it.
  check_usage_error(root, {"--store", store.url(), "--user", "alice222", "ls"}, {"AWS_ENDPOINT_URL"},
                    store.env({"AWS_ENDPOINT_URL=not a url"}));
  const auto overridden =
      run(root, store.as("alice222", {"ls"}), std::nullopt, store.env({"AWS_ENDPOINT_URL=not a url"}));
  INFO("stderr: " << overridden.err);
  CHECK(overridden.status == 0);

  // The other S3 options: named when wrong, for S3 stores only, one addressing style.
  check_usage_error(root, store.as("alice222", {"--region", "eu/west", "ls"}), {"--region"}, env);
  check_usage_error(root, store.as("alice222", {"--profile", "nobody", "ls"}), {"--profile", "nobody"}, env);
  check_usage_error(root, store.as("alice222", {"--virtual-hosted", "ls"}), {"virtual-hosted"}, env);
  check_usage_error(root, store.as("alice222", {"--path-style", "--virtual-hosted", "ls"}), {"--path-style"}, env);
  for (const std::string option : {"--region", "--profile"}) {
    check_usage_error(root, {"--store", root.string(), option, "x", "--user", "alice222", "ls"}, {option}, env);
  }
  check_usage_error(root, {"--store", root.string(), "--path-style", "--user", "alice222", "ls"}, {"--path-style"},
                    env);
  CHECK(run(root, store.as("alice222", {"--path-style", "--region", "eu-west-1", "ls"}), std::nullopt, env).status ==
        0);
}

TEST_CASE("s3: stats prints a line per user with event counts, writers, bytes and times", "[cli][s3][stats]") {
  const s3_location store;
  const std::vector<std::string> stats_args{"--store", store.url(), "--endpoint", store.endpoint(), "stats"};
  // An empty store: the header and a zero total.
  const auto none = split_lines(run_ok(store.dir.path(), stats_args, std::nullopt, store.env()));
  REQUIRE(none.size() == 2);
  CHECK_THAT(none[1], StartsWith("total"));

  store.ok("alice222", {"create", "Shared/a.txt", "-"}, "a");                // alice: CREATE
  store.ok("alice222", {"share", "Shared/", "--with", "bob123"});            // bob: SHARE
  store.publish("EV", "1");                                                  // bob
  store.publish("EV", "2");                                                  // bob
  store.ok("alice222", {"publish", "EV", "3", "--to", "carol"});             // carol
  store.ok("alice222", {"delete", "Shared/", "--recursive"});                // alice and bob: DELETE

  const auto out = run_ok(store.dir.path(), stats_args, std::nullopt, store.env());
  INFO(out);
  auto rows = stats_rows_checked(out);
  // Each tool invocation is a writer of its own.
  CHECK(rows["alice222"][2] == "2");
  CHECK(rows["bob123"][2] == "4");
  CHECK(rows["carol"][2] == "1");
  std::uintmax_t bytes = 0;
  for (const char* user : {"alice222", "bob123", "carol"}) {
    const auto& row = rows[user];
    INFO(user);
    REQUIRE(row.size() == 6);  // user events writers bytes oldest newest
    CHECK(std::stoul(row[3]) > 0);
    bytes += std::stoul(row[3]);
    const auto oldest = cli::parse_time(row[4]);
    const auto newest = cli::parse_time(row[5]);
    REQUIRE(oldest);
    REQUIRE(newest);
    CHECK(*oldest <= *newest);
  }
  CHECK(rows["total"][2] == std::to_string(bytes));
}

TEST_CASE("s3: credentials from an AWS_PROFILE profile in ~/.aws, path style for a host name that is not AWS's",
          "[cli][s3]") {
  const s3_location store;
  // The machine's own host name, which resolves to an address of this
  // machine (loopback here; a container's address elsewhere). s3rver listens
  // on 127.0.0.1 only, so a TCP proxy on that address forwards to it.
  char name[256] = {};
  REQUIRE(::gethostname(name, sizeof name - 1) == 0);
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  const auto found = resolver.resolve(asio::ip::tcp::v4(), name, "");
  REQUIRE(!found.empty());
  INFO("host name " << name << " resolves to " << found.begin()->endpoint().address().to_string());
  const asio::ip::tcp::endpoint s3rver(asio::ip::make_address(store.config.endpoint.host), store.config.endpoint.port);
  s3::test::tcp_proxy proxy(io, s3rver, found.begin()->endpoint().address());
  const auto endpoint = "http://" + std::string(name) + ':' + std::to_string(proxy.port());

  // The keys only in ~/.aws/credentials, under the profile AWS_PROFILE names.
  const auto home = store.dir.path() / "home";
  std::filesystem::create_directories(home / ".aws");
  write_file(home / ".aws" / "credentials", "[ci-profile]\naws_access_key_id = " + store.config.credentials.access_key_id +
                                                "\naws_secret_access_key = " +
                                                store.config.credentials.secret_access_key + "\n");
  const auto env = store.env({"HOME=" + home.string(), "AWS_PROFILE=ci-profile", "AWS_ACCESS_KEY_ID=",
                              "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_CONFIG_FILE=",
                              "AWS_SHARED_CREDENTIALS_FILE=", "AWS_EC2_METADATA_DISABLED=true"});
  // The proxy runs while the tool does.
  const auto tool = [&](const std::vector<std::string>& args) {
    auto guard = asio::make_work_guard(io);
    std::thread serving([&] { io.run(); });
    auto result = run(store.dir.path(), args, std::string("from the profile\n"), env);
    guard.reset();
    io.stop();
    serving.join();
    io.restart();
    return result;
  };
  const std::vector<std::string> where{"--store", store.url(), "--endpoint", endpoint, "--user", "alice222"};
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), where.begin(), where.end());
    return args;
  };
  const auto created = tool(with({"create", "profile.txt", "-"}));
  INFO("stderr: " << created.err);
  REQUIRE(created.status == 0);
  CHECK(one_line(created.out));
  const auto listed = tool(with({"ls"}));
  CHECK(listed.status == 0);
  CHECK(listed.out == created.out);
  CHECK(proxy.accepted() > 0);

  // A profile that is not there is a usage error naming it.
  const auto missing = run(store.dir.path(), with({"ls"}), std::nullopt,
                           store.env({"HOME=" + home.string(), "AWS_PROFILE=nobody", "AWS_ACCESS_KEY_ID=",
                                      "AWS_SECRET_ACCESS_KEY=", "AWS_CONFIG_FILE=", "AWS_SHARED_CREDENTIALS_FILE="}));
  CHECK(missing.status == 2);
  CHECK_THAT(missing.err, Contains("AWS_PROFILE: the profile \"nobody\" is not in"));
}

TEST_CASE("s3: tail polls at the library's interval (5 s) without --interval, and finds the journal's end with LISTs only",
          "[cli][s3][tail]") {
  const s3_location store;
  for (int i = 0; i < 3; ++i) store.publish("EV", "old " + std::to_string(i));
  asio::io_context io;
  s3::s3_store bob(io.get_executor(), store.config, "bob123");
  CHECK(cli::default_tail_interval(bob) == 5.0);
  CHECK(std::chrono::milliseconds(static_cast<std::int64_t>(cli::default_tail_interval(bob) * 1000)) ==
        poller_options{}.poll_interval);

  auto source = bob.events();
  const auto end = cli::end_cursor(io, source);
  CHECK(source.client().counts().list == 1);
  CHECK(source.client().counts().get == 0);
  CHECK(cli::poll_once(io, source, end, 100).events.empty());
  store.publish("EV", "new");
  const auto next = cli::poll_once(io, source, end, 100);
  REQUIRE(next.events.size() == 1);
  CHECK(next.events[0].data == "new");

  // And its help says so.
  const auto help = store.ok("bob123", {"tail", "--help"});
  CHECK_THAT(help, Contains("default 5 on S3"));
}

TEST_CASE("s3: compact folds settled records into segments, which tail reads in order, and again does nothing",
          "[cli][s3][compact]") {
  const s3_location store;
  std::vector<std::string> ids;
  {
    // Records settled longer than the landing limit: three written eight
    // minutes ago and one four minutes ago, by a writer whose clock is set
    // back (with no server-clock stamping, which would undo that).
    asio::io_context io;
    s3::s3_store_options options;
    options.max_clock_ahead = 0ms;
    s3::s3_store alice(io.get_executor(), store.config, "alice222", options);
    for (int i = 0; i < 4; ++i) {
      const clock_skew skew(i < 3 ? -8min : -4min);
      const auto published = complete<std::vector<std::string>>(
          io, [&](auto h) { alice.async_publish_event("NOTE", "n" + std::to_string(i), {"bob123"}, std::move(h)); },
          [&]() -> const std::string& { return alice.last_error(); });
      REQUIRE(published.size() == 1);
      ids.push_back(published[0]);
    }
  }
  // The newest record stays; the three before it are folded, by any user.
  CHECK(store.ok("carol333", {"compact"}) == "3\n");
  CHECK(store.ok("carol333", {"compact"}) == "0\n");
  // --settled below the landing limit is refused, naming it.
  check_usage_error(store.dir.path(), store.as("carol333", {"compact", "--settled", "10"}),
                    {"--settled", "landing limit"}, store.env());
  const auto events = parse_json_lines(
      store.ok("bob123", {"tail", "--from-start", "--count", "4", "--timeout", "60", "--format", "json"}));
  REQUIRE(events.size() == 4);
  for (std::size_t i = 0; i < events.size(); ++i) {
    CHECK(events[i].id == ids[i]);
    CHECK(events[i].data == "n" + std::to_string(i));
  }
  check_usage_error(store.dir.path(), store.as("carol333", {"compact", "--settled", "soon"}), {"--settled", "soon"},
                    store.env());
}
