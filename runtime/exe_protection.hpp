// CVE-2019-5736: a container must never get a writable handle on the host's barge binary.
//
// barge has no re-exec for the container init: the init and exec's child are clones of the barge
// process and run its binary image until their final execve. A container entrypoint that is a
// `#!/proc/self/exe` script therefore starts the *host* barge binary inside the container, and a
// container process holding /proc/<that pid>/exe could reopen it for writing once barge exits.
// The answer is to run every command that puts a process into a container from a copy of the
// binary that cannot be written through any path; exe_protection.cpp explains the scheme.
#pragma once

namespace barge::runtime {

// Re-executes the current process (same argv and environment) from an unwritable view of its
// own binary, unless it already runs from one. Returns only in a process whose /proc/self/exe
// cannot be opened for writing; throws barge::Error when no such view can be made (barge then
// refuses to start the container rather than run unprotected).
void run_from_unwritable_binary(char** argv);

}  // namespace barge::runtime
