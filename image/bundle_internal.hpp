// Image config -> runtime config.json (exposed for unit tests).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace barge::image {

struct ResolvedUser {
  uint32_t uid = 0;
  uint32_t gid = 0;
  std::vector<uint32_t> additional_gids;
  std::optional<std::string> home;  // from passwd, when the user is found there
};

// The image config's User ("name", "uid", "name:group", "uid:gid", mixes, or "") resolved
// through the contents of the image's /etc/passwd and /etc/group, as Docker does: unknown names
// are errors, unknown numeric ids are used as they are.
ResolvedUser resolve_user(std::string_view user, std::string_view passwd, std::string_view group);

// config.json for the image: barge's default spec (terminal off) with process args, env, cwd and
// user from the image config, labels and exposed ports as annotations. rootfd is the image's
// root (for /etc/passwd and /etc/group).
nlohmann::json bundle_config(const nlohmann::json& image_config, int rootfd);

}  // namespace barge::image
