// STUB: replaced by the rootfs work.
#include "runtime/rootfs.hpp"

#include "common/error.hpp"

namespace barge::rootfs {
void prepare(const spec::Spec&, const Options&) { throw_error("rootfs: not implemented"); }
void finalize(const spec::Spec&) {}
UniqueFd open_in_root(int, const std::string&, int, mode_t) { throw_error("not implemented"); }
UniqueFd mkdir_all_in_root(int, const std::string&, bool) { throw_error("not implemented"); }
}  // namespace barge::rootfs
