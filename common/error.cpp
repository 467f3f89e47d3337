#include "common/error.hpp"

#include <cstring>

namespace barge {

void throw_errno(std::string_view what) {
  throw_errno(what, errno);
}

void throw_errno(std::string_view what, int err) {
  std::string message(what);
  message += ": ";
  message += std::strerror(err);
  throw Error(message, err);
}

void throw_error(std::string_view what) {
  throw Error(std::string(what));
}

}  // namespace barge
