// A program outside storewatch's tree using an installed storewatch::s3.
// It opens an S3 store and a journal source for a bucket at an IP endpoint
// and uses each library storewatch::s3 brings (libcurl through the store's
// client, libcrypto through SigV4's SHA-256, pugixml through the listing
// parser), so a link dependency the package fails to pass on fails the
// build. It sends no request: nothing listens at the endpoint. Built with
// STOREWATCH_CONSUMER_REDIS (a package with both components), it also does
// what redis_consumer.cpp does (redis_part.hpp).
#include <storewatch/store/s3_journal.hpp>
#include <storewatch/s3/sigv4.hpp>
#include <storewatch/store/s3_store.hpp>
#include <storewatch/s3/xml.hpp>

#include <asio/io_context.hpp>

#include <iostream>

#ifdef STOREWATCH_CONSUMER_REDIS
#include "redis_part.hpp"
#endif

int main() {
  namespace s3 = storewatch::s3;
  asio::io_context io;

  s3::config where;
  where.endpoint = s3::parse_endpoint("http://127.0.0.1:9000");
  where.bucket = "storewatch-consumer";
  where.prefix = "package-test";
  where.credentials = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""};

  s3::s3_store store(io.get_executor(), where, "alice123");
  s3::s3_journal_source source(io.get_executor(), where, "bob123");
  const auto target = s3::bucket_target(store.configuration());

  const bool sha256_ok =
      s3::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  const auto page = s3::parse_list_objects_v2(
      "<ListBucketResult><Name>storewatch-consumer</Name><IsTruncated>false</IsTruncated>"
      "<Contents><Key>package-test/a</Key><Size>3</Size></Contents></ListBucketResult>");
  const bool listing_ok = page.objects.size() == 1 && page.objects[0].key == "package-test/a";

  io.run();  // nothing was started: returns at once
  std::cout << "storewatch::s3: store for " << store.user() << " and journal source for " << source.user() << " at "
            << target.host << target.path << "; SHA-256 " << (sha256_ok ? "ok" : "WRONG") << ", listing "
            << (listing_ok ? "ok" : "WRONG") << '\n';
  bool redis_ok = true;
#ifdef STOREWATCH_CONSUMER_REDIS
  redis_ok = redis_consumer_check();
#endif
  return sha256_ok && listing_ok && redis_ok && target.host == "127.0.0.1:9000" && target.path == "/storewatch-consumer"
             ? 0
             : 1;
}
