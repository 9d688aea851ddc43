#include "gateway/cpu_limit.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <vector>

namespace sluice::gateway {
namespace {

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  for (std::size_t from = 0;;) {
    const auto at = text.find(separator, from);
    parts.push_back(text.substr(from, at == std::string_view::npos ? at : at - from));
    if (at == std::string_view::npos) return parts;
    from = at + 1;
  }
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  return text;
}

std::optional<std::int64_t> integer(std::string_view text) {
  text = trim(text);
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// mountinfo writes space, tab, newline and backslash in paths as octal escapes (\040).
std::string unescape(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\\' && text.size() - i >= 4) {
      int code = 0;
      bool octal = true;
      for (std::size_t k = 1; k <= 3; ++k) {
        const char c = text[i + k];
        octal = octal && c >= '0' && c <= '7';
        code = code * 8 + (c - '0');
      }
      if (octal) {
        out += static_cast<char>(code);
        i += 3;
        continue;
      }
    }
    out += text[i];
  }
  return out;
}

// The process's group in the hierarchy that holds the CPU controller.
struct Group {
  bool v2 = false;
  std::string path;
};

std::optional<Group> cpu_group(std::string_view cgroup_file) {
  std::optional<Group> unified;
  for (const auto line : split(cgroup_file, '\n')) {
    // hierarchy-ID:controller-list:path
    const auto first = line.find(':');
    const auto second = first == std::string_view::npos ? first : line.find(':', first + 1);
    if (second == std::string_view::npos) continue;
    const auto id = line.substr(0, first);
    const auto controllers = line.substr(first + 1, second - first - 1);
    const auto path = line.substr(second + 1);
    if (id == "0" && controllers.empty()) {
      unified = Group{true, std::string(path)};
      continue;
    }
    for (const auto controller : split(controllers, ',')) {
      // On a hybrid system the v1 hierarchy, when it has the controller, is the one in force.
      if (controller == "cpu") return Group{false, std::string(path)};
    }
  }
  return unified;
}

struct Mount {
  std::string root;   // the directory of the hierarchy mounted there
  std::string point;  // where it is mounted
};

std::optional<Mount> cpu_mount(std::string_view mountinfo, bool v2) {
  for (const auto line : split(mountinfo, '\n')) {
    // id parent major:minor root mount-point options [optional fields] - type source super-options
    const auto dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    const auto fields = split(line.substr(0, dash), ' ');
    const auto tail = split(line.substr(dash + 3), ' ');
    if (fields.size() < 5 || tail.size() < 3) continue;
    bool wanted = false;
    if (v2) {
      wanted = tail[0] == "cgroup2";
    } else if (tail[0] == "cgroup") {
      const auto options = split(tail[2], ',');
      wanted = std::find(options.begin(), options.end(), "cpu") != options.end();
    }
    if (wanted) return Mount{unescape(fields[3]), unescape(fields[4])};
  }
  return std::nullopt;
}

// The limit one group's directory sets, in CPUs; nullopt for none.
std::optional<double> limit_in(const ReadFile& read, const std::string& dir, bool v2) {
  std::optional<std::int64_t> quota;
  std::optional<std::int64_t> period;
  if (v2) {
    // "max 100000" (no limit) or "150000 100000"
    const auto text = read(dir + "/cpu.max");
    if (!text) return std::nullopt;
    const auto parts = split(trim(*text), ' ');
    if (parts.size() != 2 || parts[0] == "max") return std::nullopt;
    quota = integer(parts[0]);
    period = integer(parts[1]);
  } else {
    const auto quota_text = read(dir + "/cpu.cfs_quota_us");  // -1: no limit
    const auto period_text = read(dir + "/cpu.cfs_period_us");
    if (!quota_text || !period_text) return std::nullopt;
    quota = integer(*quota_text);
    period = integer(*period_text);
  }
  if (!quota || !period || *quota <= 0 || *period <= 0) return std::nullopt;
  return static_cast<double>(*quota) / static_cast<double>(*period);
}

}  // namespace

std::optional<double> cgroup_cpu_limit(const ReadFile& read) {
  const auto cgroup_file = read("/proc/self/cgroup");
  const auto mountinfo = read("/proc/self/mountinfo");
  if (!cgroup_file || !mountinfo) return std::nullopt;
  const auto group = cpu_group(*cgroup_file);
  if (!group) return std::nullopt;
  const auto mount = cpu_mount(*mountinfo, group->v2);
  if (!mount) return std::nullopt;

  // The group's path is relative to the hierarchy's root; the mount shows the hierarchy from
  // mount->root down. A path outside it (a container seeing its own group as the root) is
  // read at the mount point.
  std::string relative;
  if (mount->root == "/") {
    relative = group->path;
  } else if (group->path == mount->root || group->path.starts_with(mount->root + "/")) {
    relative = group->path.substr(mount->root.size());
  }
  std::string point = mount->point;
  while (point.size() > 1 && point.back() == '/') point.pop_back();
  while (!relative.empty() && relative.back() == '/') relative.pop_back();
  std::string dir = point + relative;

  std::optional<double> smallest;
  for (;;) {
    const auto limit = limit_in(read, dir, group->v2);
    if (limit && (!smallest || *limit < *smallest)) smallest = limit;
    if (dir.size() <= point.size()) break;
    dir.erase(dir.rfind('/'));
    if (dir.size() < point.size()) break;
  }
  return smallest;
}

std::optional<double> cgroup_cpu_limit() {
  return cgroup_cpu_limit([](const std::string& path) -> std::optional<std::string> {
    std::ifstream in(path);
    if (!in) return std::nullopt;
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) return std::nullopt;
    return std::move(text).str();
  });
}

std::size_t threads_for(std::size_t cpus, std::optional<double> limit) {
  std::size_t threads = std::max<std::size_t>(cpus, 1);
  if (limit && *limit > 0) {
    threads = std::min(threads, static_cast<std::size_t>(std::ceil(*limit - 1e-9)));
  }
  return std::max<std::size_t>(threads, 1);
}

}  // namespace sluice::gateway
