// storewatch::redis alone (test_package_redis.hpp says what it does).
#include "test_package_redis.hpp"

int main() { return check_redis() ? 0 : 1; }
