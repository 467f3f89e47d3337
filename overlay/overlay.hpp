// overlayfs mounts for container rootfs: read-only shared layer directories plus a private
// writable upper layer.
#pragma once

#include <string>
#include <vector>

namespace barge::overlay {

struct Layers {
  std::vector<std::string> lower;  // absolute, top layer first
  std::string upper;               // absolute; with work, on the same filesystem
  std::string work;
  // A private directory mount(2) may fill with short symlinks to the lowers ("0", "1", ...)
  // when their paths do not fit in a page of mount options (as Docker's "l/" links).
  std::string link_dir;
};

// Mounts the overlay at target. Uses the new mount API with one "lowerdir+" per layer (no limit
// on the number of layers); on kernels without it (or with BARGE_OVERLAY_MOUNT2=1 in the
// environment, for tests) falls back to mount(2), shortening the option string when it exceeds a
// page: relative paths from the layers' common parent, else short links in layers.link_dir.
void mount(const std::string& target, const Layers& layers);
// Fills dest (an existing empty directory) with what a read-only overlay of lower (top first)
// would show: whiteouts and opaque directories applied; owners, modes, times, xattrs and hard
// links kept. The fallback when overlayfs cannot be mounted.
void copy_merged(const std::vector<std::string>& lower, const std::string& dest);
// Unmounts target; a busy mount is detached lazily (with a warning). Not mounted is fine.
void unmount(const std::string& target);

// Unmounts on destruction unless released.
class MountGuard {
 public:
  explicit MountGuard(std::string target) : target_(std::move(target)) {}
  MountGuard(const MountGuard&) = delete;
  MountGuard& operator=(const MountGuard&) = delete;
  ~MountGuard();
  void release() { target_.clear(); }

 private:
  std::string target_;
};

}  // namespace barge::overlay
