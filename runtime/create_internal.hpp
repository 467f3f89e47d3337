// Shared between create and run: create() that also tells the caller the init pid.
#pragma once

#include <sys/types.h>

#include <string>

#include "runtime/container.hpp"

namespace barge::runtime {

struct CreatedContainer {
  pid_t pid;
  bool terminal;  // the init sent a pty master to the console socket
};

CreatedContainer create_container(const GlobalOptions& global, const std::string& id,
                                  const CreateOptions& options);

}  // namespace barge::runtime
