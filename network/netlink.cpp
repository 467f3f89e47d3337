#include "network/netlink.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/if.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <sys/socket.h>

#include <cstring>
#include <type_traits>
#include <utility>

#include "common/error.hpp"

namespace barge::network {
namespace {

// Large enough for every request barge builds and for one datagram of a dump.
constexpr size_t kBufferSize = 16384;
using Buffer = std::array<char, kBufferSize>;

nlmsghdr* put_request(Buffer& buffer, uint16_t type, uint16_t flags) {
  buffer.fill(0);
  nlmsghdr* message = mnl_nlmsg_put_header(buffer.data());
  message->nlmsg_type = type;
  message->nlmsg_flags = NLM_F_REQUEST | flags;
  return message;
}

ifinfomsg* put_ifinfo(nlmsghdr* message, int index = 0, unsigned up_flags = 0) {
  auto* info = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(message, sizeof(ifinfomsg)));
  info->ifi_family = AF_UNSPEC;
  info->ifi_index = index;
  info->ifi_flags = up_flags;
  info->ifi_change = up_flags;
  return info;
}

int parse_linkinfo_attr(const nlattr* attr, void* data) {
  auto* kind = static_cast<std::string*>(data);
  if (mnl_attr_get_type(attr) == IFLA_INFO_KIND && mnl_attr_validate(attr, MNL_TYPE_STRING) >= 0)
    *kind = mnl_attr_get_str(attr);
  return MNL_CB_OK;
}

int parse_link_attr(const nlattr* attr, void* data) {
  auto* link = static_cast<LinkInfo*>(data);
  switch (mnl_attr_get_type(attr)) {
    case IFLA_IFNAME:
      if (mnl_attr_validate(attr, MNL_TYPE_STRING) >= 0) link->name = mnl_attr_get_str(attr);
      break;
    case IFLA_MASTER:
      if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
        link->master = static_cast<int>(mnl_attr_get_u32(attr));
      break;
    case IFLA_MTU:
      if (mnl_attr_validate(attr, MNL_TYPE_U32) >= 0)
        link->mtu = static_cast<int>(mnl_attr_get_u32(attr));
      break;
    case IFLA_LINKINFO:
      mnl_attr_parse_nested(attr, parse_linkinfo_attr, &link->kind);
      break;
    default:
      break;
  }
  return MNL_CB_OK;
}

LinkInfo parse_link(const nlmsghdr* message) {
  const auto* info = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(message));
  LinkInfo link;
  link.index = info->ifi_index;
  link.up = (info->ifi_flags & IFF_UP) != 0;
  mnl_attr_parse(message, sizeof(ifinfomsg), parse_link_attr, &link);
  return link;
}

// Runs f inside the namespace of netns_fd and comes back, even when f throws.
template <typename F>
auto inside_namespace(int netns_fd, F&& f) {
  UniqueFd own(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!own) throw_errno("open own network namespace");
  if (::setns(netns_fd, CLONE_NEWNET) != 0) throw_errno("enter container network namespace");
  struct Return {
    int fd;
    ~Return() noexcept(false) {
      if (::setns(fd, CLONE_NEWNET) != 0) throw_errno("return to own network namespace");
    }
  } back{own.get()};
  return f();
}

}  // namespace

Netlink::Netlink() {
  socket_ = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (socket_ == nullptr) throw_errno("open netlink socket");
  if (mnl_socket_bind(socket_, 0, MNL_SOCKET_AUTOPID) < 0) {
    int err = errno;
    mnl_socket_close(socket_);
    throw_errno("bind netlink socket", err);
  }
  port_id_ = mnl_socket_get_portid(socket_);
}

Netlink Netlink::in_namespace(int netns_fd) {
  return inside_namespace(netns_fd, [] { return Netlink(); });
}

Netlink::Netlink(Netlink&& other) noexcept
    : socket_(std::exchange(other.socket_, nullptr)),
      port_id_(other.port_id_),
      sequence_(other.sequence_) {}

Netlink& Netlink::operator=(Netlink&& other) noexcept {
  if (this != &other) {
    if (socket_ != nullptr) mnl_socket_close(socket_);
    socket_ = std::exchange(other.socket_, nullptr);
    port_id_ = other.port_id_;
    sequence_ = other.sequence_;
  }
  return *this;
}

Netlink::~Netlink() {
  if (socket_ != nullptr) mnl_socket_close(socket_);
}

void Netlink::transact(nlmsghdr* message, const std::string& what,
                       int (*callback)(const nlmsghdr*, void*), void* data) {
  message->nlmsg_seq = ++sequence_;
  if (mnl_socket_sendto(socket_, message, message->nlmsg_len) < 0) throw_errno(what);
  Buffer buffer;
  for (;;) {
    ssize_t n = mnl_socket_recvfrom(socket_, buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno(what);
    }
    int result =
        mnl_cb_run(buffer.data(), static_cast<size_t>(n), sequence_, port_id_, callback, data);
    if (result == MNL_CB_ERROR) throw_errno(what);
    if (result == MNL_CB_STOP) return;
  }
}

void Netlink::request(nlmsghdr* message, const std::string& what) {
  message->nlmsg_flags |= NLM_F_ACK;
  transact(message, what, nullptr, nullptr);
}

template <typename F>
void Netlink::dump(nlmsghdr* message, const std::string& what, F&& on_message) {
  message->nlmsg_flags |= NLM_F_DUMP;
  transact(
      message, what,
      [](const nlmsghdr* m, void* data) {
        (*static_cast<std::remove_reference_t<F>*>(data))(m);
        return int{MNL_CB_OK};
      },
      &on_message);
}

int Netlink::link_index(const std::string& name) {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_GETLINK, NLM_F_ACK);
  put_ifinfo(message);
  mnl_attr_put_strz(message, IFLA_IFNAME, name.c_str());
  int index = 0;
  try {
    transact(
        message, "get link " + name,
        [](const nlmsghdr* m, void* data) {
          *static_cast<int*>(data) = parse_link(m).index;
          return int{MNL_CB_OK};
        },
        &index);
  } catch (const Error& e) {
    if (e.code() == ENODEV) return 0;
    throw;
  }
  return index;
}

std::vector<LinkInfo> Netlink::links() {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_GETLINK, 0);
  put_ifinfo(message);
  std::vector<LinkInfo> out;
  dump(message, "list links", [&](const nlmsghdr* m) { out.push_back(parse_link(m)); });
  return out;
}

void Netlink::create_bridge(const std::string& name, int mtu) {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  put_ifinfo(message, 0, IFF_UP);
  mnl_attr_put_strz(message, IFLA_IFNAME, name.c_str());
  if (mtu > 0) mnl_attr_put_u32(message, IFLA_MTU, static_cast<uint32_t>(mtu));
  nlattr* linkinfo = mnl_attr_nest_start(message, IFLA_LINKINFO);
  mnl_attr_put_strz(message, IFLA_INFO_KIND, "bridge");
  mnl_attr_nest_end(message, linkinfo);
  request(message, "create bridge " + name);
}

void Netlink::create_veth(const VethRequest& r) {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  put_ifinfo(message, 0, IFF_UP);
  mnl_attr_put_strz(message, IFLA_IFNAME, r.host_name.c_str());
  if (r.mtu > 0) mnl_attr_put_u32(message, IFLA_MTU, static_cast<uint32_t>(r.mtu));
  if (r.bridge_index > 0)
    mnl_attr_put_u32(message, IFLA_MASTER, static_cast<uint32_t>(r.bridge_index));
  nlattr* linkinfo = mnl_attr_nest_start(message, IFLA_LINKINFO);
  mnl_attr_put_strz(message, IFLA_INFO_KIND, "veth");
  nlattr* data = mnl_attr_nest_start(message, IFLA_INFO_DATA);
  nlattr* peer = mnl_attr_nest_start(message, VETH_INFO_PEER);
  // The peer's ifinfomsg sits inside the attribute, followed by its own attributes.
  auto* peer_info = static_cast<ifinfomsg*>(mnl_nlmsg_get_payload_tail(message));
  message->nlmsg_len += MNL_ALIGN(sizeof(ifinfomsg));
  std::memset(peer_info, 0, sizeof(ifinfomsg));
  peer_info->ifi_family = AF_UNSPEC;  // not IFF_UP: the peer is configured before it is paired
  mnl_attr_put_strz(message, IFLA_IFNAME, r.peer_name.c_str());
  mnl_attr_put_u32(message, IFLA_NET_NS_FD, static_cast<uint32_t>(r.peer_netns_fd));
  if (r.mtu > 0) mnl_attr_put_u32(message, IFLA_MTU, static_cast<uint32_t>(r.mtu));
  mnl_attr_put(message, IFLA_ADDRESS, r.peer_mac.size(), r.peer_mac.data());
  mnl_attr_nest_end(message, peer);
  mnl_attr_nest_end(message, data);
  mnl_attr_nest_end(message, linkinfo);
  request(message, "create veth " + r.host_name);
}

bool Netlink::delete_link(const std::string& name) {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_DELLINK, 0);
  put_ifinfo(message);
  mnl_attr_put_strz(message, IFLA_IFNAME, name.c_str());
  try {
    request(message, "delete link " + name);
  } catch (const Error& e) {
    if (e.code() == ENODEV) return false;
    throw;
  }
  return true;
}

void Netlink::set_up(int index) {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_NEWLINK, 0);
  put_ifinfo(message, index, IFF_UP);
  request(message, "set link " + std::to_string(index) + " up");
}

void Netlink::set_hairpin(int index) {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_SETLINK, 0);
  ifinfomsg* info = put_ifinfo(message, index);
  info->ifi_family = AF_BRIDGE;
  nlattr* protinfo = mnl_attr_nest_start(message, IFLA_PROTINFO);
  mnl_attr_put_u8(message, IFLA_BRPORT_MODE, 1);
  mnl_attr_nest_end(message, protinfo);
  request(message, "set hairpin mode on link " + std::to_string(index));
}

void Netlink::add_address(int index, Ipv4 address, int prefix) {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  auto* info = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(message, sizeof(ifaddrmsg)));
  info->ifa_family = AF_INET;
  info->ifa_prefixlen = static_cast<unsigned char>(prefix);
  info->ifa_scope = RT_SCOPE_UNIVERSE;
  info->ifa_index = static_cast<unsigned>(index);
  uint32_t raw = to_network_order(address);
  mnl_attr_put_u32(message, IFA_LOCAL, raw);
  mnl_attr_put_u32(message, IFA_ADDRESS, raw);
  if (prefix < 31) {
    uint32_t broadcast = to_network_order(Subnet{Ipv4{address.value}, prefix}.broadcast());
    mnl_attr_put_u32(message, IFA_BROADCAST, broadcast | raw);
  }
  try {
    request(message, "add address " + to_string(address) + "/" + std::to_string(prefix));
  } catch (const Error& e) {
    if (e.code() != EEXIST) throw;
  }
}

std::vector<std::pair<Ipv4, int>> Netlink::addresses(int index) {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_GETADDR, 0);
  auto* info = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(message, sizeof(ifaddrmsg)));
  info->ifa_family = AF_INET;
  std::vector<std::pair<Ipv4, int>> out;
  dump(message, "list addresses", [&](const nlmsghdr* m) {
    const auto* a = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(m));
    if (static_cast<int>(a->ifa_index) != index) return;
    auto* local = static_cast<const nlattr*>(nullptr);
    mnl_attr_parse(
        m, sizeof(ifaddrmsg),
        [](const nlattr* attr, void* data) {
          if (mnl_attr_get_type(attr) == IFA_LOCAL && mnl_attr_get_payload_len(attr) == 4)
            *static_cast<const nlattr**>(data) = attr;
          return int{MNL_CB_OK};
        },
        &local);
    if (local != nullptr) out.emplace_back(Ipv4{ntohl(mnl_attr_get_u32(local))}, a->ifa_prefixlen);
  });
  return out;
}

void Netlink::add_default_route(Ipv4 gateway, int index) {
  Buffer buffer;
  nlmsghdr* message = put_request(buffer, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  auto* route = static_cast<rtmsg*>(mnl_nlmsg_put_extra_header(message, sizeof(rtmsg)));
  route->rtm_family = AF_INET;
  route->rtm_dst_len = 0;
  route->rtm_table = RT_TABLE_MAIN;
  route->rtm_protocol = RTPROT_BOOT;
  route->rtm_scope = RT_SCOPE_UNIVERSE;
  route->rtm_type = RTN_UNICAST;
  mnl_attr_put_u32(message, RTA_GATEWAY, to_network_order(gateway));
  mnl_attr_put_u32(message, RTA_OIF, static_cast<uint32_t>(index));
  request(message, "add default route via " + to_string(gateway));
}

UniqueFd open_netns(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/ns/net";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) throw_errno("open " + path);
  return fd;
}

}  // namespace barge::network
