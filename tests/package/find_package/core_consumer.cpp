// The core alone, as a program sees it that links storewatch::storewatch and
// not storewatch::s3 (the package built without S3, or with it and the S3
// libraries hidden): open_store opens a folder store and refuses an s3://
// location, saying the program was built without S3; journal_inventory
// counts the folder store's journal. The store is the folder core_store in
// the current directory, which must not exist. Exits 1, saying what differed.
#include <storewatch/storewatch.hpp>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <variant>

static_assert(!storewatch::has_s3_stores, "this program does not link storewatch::s3");
static_assert(std::variant_size_v<storewatch::any_store> == 1, "without S3, open_store opens folder stores only");

namespace {

int fail(const std::string& what) {
  std::fprintf(stderr, "core_consumer: %s\n", what.c_str());
  return 1;
}

}  // namespace

int main() {
  const auto root = std::filesystem::current_path() / "core_store";
  if (std::filesystem::exists(root)) return fail(root.string() + " exists already");
  asio::io_context io;

  try {
    storewatch::open_store(io.get_executor(), "s3://bucket/prefix", "bob123");
    return fail("open_store opened an s3:// location without the S3 component");
  } catch (const std::invalid_argument& error) {
    const std::string expected = "s3://bucket/prefix: this program was built without S3 support";
    if (error.what() != expected) return fail("open_store said '" + std::string(error.what()) + "'");
  }

  auto store = storewatch::open_store(io.get_executor(), root.string(), "bob123");
  auto& local = std::get<storewatch::local_store>(store);
  std::error_code created;
  local.async_create_file("notes.txt", "hello", [&](std::error_code ec, storewatch::versioned_path) { created = ec; });
  io.run();
  if (created) return fail("async_create_file: " + created.message());

  const auto journals = storewatch::journal_inventory(root);
  if (journals.size() != 1 || !journals.contains("bob123") || journals.at("bob123").bytes == 0) {
    return fail("journal_inventory found " + std::to_string(journals.size()) + " journals, not bob123's");
  }
  std::printf("core_consumer: open_store refused s3:// and opened %s; bob123's journal has %llu bytes\n",
              root.c_str(), static_cast<unsigned long long>(journals.at("bob123").bytes));
}
