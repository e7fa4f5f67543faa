// A program outside storewatch's tree using an installed storewatch::redis
// alone (redis_part.hpp says what it does).
#include "redis_part.hpp"

int main() { return redis_consumer_check() ? 0 : 1; }
