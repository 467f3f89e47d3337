// Timestamps in the form runc writes them (RFC 3339, UTC, nanoseconds).
#pragma once

#include <string>

namespace barge {

std::string rfc3339_now();

}  // namespace barge
