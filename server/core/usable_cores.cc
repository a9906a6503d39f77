#include "server/core/usable_cores.h"

#include <sched.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

namespace meshwire {

namespace {

/// ceil(quota / period) for a positive quota, else 0.
int Cores(long long quota, long long period) {
  if (quota <= 0 || period <= 0) return 0;
  return static_cast<int>(std::min<long long>((quota + period - 1) / period, 1 << 20));
}

/// cgroup v2: "QUOTA PERIOD" or "max PERIOD"; -1 when the file is not there.
int V2(const std::string& path) {
  std::ifstream in(path);
  std::string quota;
  long long period = 0;
  if (!(in >> quota >> period)) return -1;
  return quota == "max" ? 0 : Cores(std::atoll(quota.c_str()), period);
}

/// cgroup v1: the quota and period files of folder `dir`; -1 when not there.
int V1(const std::string& dir) {
  std::ifstream quota_in(dir + "/cpu.cfs_quota_us");
  std::ifstream period_in(dir + "/cpu.cfs_period_us");
  long long quota = 0;
  long long period = 0;
  if (!(quota_in >> quota) || !(period_in >> period)) return -1;
  return Cores(quota, period);
}

}  // namespace

int CgroupQuotaCores(const std::string& root) {
  const std::string base = root.empty() || root.back() != '/' ? root + "/" : root;
  std::string v2_group;  // "0::/PATH"
  std::string v1_group;  // "N:cpu,cpuacct:/PATH" (the hierarchy with the cpu controller)
  std::ifstream groups(base + "proc/self/cgroup");
  for (std::string line; std::getline(groups, line);) {
    const auto first = line.find(':');
    const auto second = first == std::string::npos ? std::string::npos : line.find(':', first + 1);
    if (second == std::string::npos) continue;
    const std::string controllers = line.substr(first + 1, second - first - 1);
    const std::string path = line.substr(second + 1);
    if (line.rfind("0::", 0) == 0) v2_group = path;
    std::stringstream list(controllers);
    for (std::string c; std::getline(list, c, ',');) {
      if (c == "cpu") v1_group = path;
    }
  }
  for (const std::string& path : {base + "sys/fs/cgroup" + v2_group + "/cpu.max", base + "sys/fs/cgroup/cpu.max"}) {
    if (const int cores = V2(path); cores >= 0) return cores;
  }
  for (const char* mount : {"sys/fs/cgroup/cpu", "sys/fs/cgroup/cpu,cpuacct"}) {
    for (const std::string& dir : {base + mount + v1_group, base + mount}) {
      if (const int cores = V1(dir); cores >= 0) return cores;
    }
  }
  return 0;
}

int UsableCores() {
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  int cores = ::sched_getaffinity(0, sizeof cpus, &cpus) == 0 ? CPU_COUNT(&cpus) : 0;
  if (cores <= 0) cores = static_cast<int>(std::thread::hardware_concurrency());
  if (const int quota = CgroupQuotaCores("/"); quota > 0) cores = std::min(cores, quota);
  return std::max(1, cores);
}

}  // namespace meshwire
