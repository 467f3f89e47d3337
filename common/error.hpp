// barge's one error convention: throw barge::Error. It carries the errno (0 when none) and a
// message that reads as a context chain, outermost first: "create: mount /proc: Permission denied".
#pragma once

#include <cerrno>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace barge {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message, int err = 0)
      : std::runtime_error(message), errno_(err) {}
  int code() const noexcept { return errno_; }

 private:
  int errno_;
};

// "what: strerror(errno)" with the current errno.
[[noreturn]] void throw_errno(std::string_view what);
// Same with an explicit error number (for APIs that return -errno).
[[noreturn]] void throw_errno(std::string_view what, int err);
[[noreturn]] void throw_error(std::string_view what);

// Runs f(); if it throws barge::Error, rethrows it with "context: " prepended.
template <typename F>
decltype(auto) with_context(std::string_view context, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(std::string(context) + ": " + e.what(), e.code());
  }
}

// Same, with the context built by make_context() only when f() fails (for loops in the
// container init, where every allocation lands on pages charged to the container).
template <typename C, typename F>
requires std::is_invocable_r_v<std::string, C>
decltype(auto) with_context(C&& make_context, F&& f) {
  try {
    return f();
  } catch (const Error& e) {
    throw Error(make_context() + ": " + e.what(), e.code());
  }
}

}  // namespace barge
