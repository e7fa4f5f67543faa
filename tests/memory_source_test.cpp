#include "common/fixture.hpp"
