// The CPU quota read from cgroup files (v2 and v1), in a fake root.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "server/core/usable_cores.h"

namespace meshwire {
namespace {

namespace fs = std::filesystem;

/// A temporary folder standing for "/": files written under it.
struct FakeRoot {
  fs::path dir = fs::temp_directory_path() / ("meshwire-cores-" + std::to_string(::getpid()) + "-" +
                                              std::to_string(reinterpret_cast<std::uintptr_t>(this)));
  FakeRoot() { fs::create_directories(dir); }
  ~FakeRoot() { fs::remove_all(dir); }
  void Write(const std::string& path, const std::string& text) const {
    fs::create_directories((dir / path).parent_path());
    std::ofstream(dir / path) << text;
  }
  int Quota() const { return CgroupQuotaCores(dir.string()); }
};

TEST_CASE("cgroup v2: cpu.max of the process's group, else of the root") {
  FakeRoot root;
  CHECK(root.Quota() == 0);  // no cgroup files at all
  root.Write("proc/self/cgroup", "0::/system.slice/meshwire.service\n");
  root.Write("sys/fs/cgroup/system.slice/meshwire.service/cpu.max", "150000 100000\n");
  CHECK(root.Quota() == 2);  // 1.5 cores, rounded up
  root.Write("sys/fs/cgroup/system.slice/meshwire.service/cpu.max", "max 100000\n");
  CHECK(root.Quota() == 0);
  FakeRoot container;  // a container's own group is its root
  container.Write("proc/self/cgroup", "0::/\n");
  container.Write("sys/fs/cgroup/cpu.max", "100000 100000\n");
  CHECK(container.Quota() == 1);
}

TEST_CASE("cgroup v1: cpu.cfs_quota_us over cpu.cfs_period_us, in the cpu hierarchy") {
  FakeRoot root;
  root.Write("proc/self/cgroup",
             "12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n1:name=systemd:/docker/abc\n");
  root.Write("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "250000\n");
  root.Write("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  CHECK(root.Quota() == 3);  // docker --cpus 2.5
  root.Write("sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
  CHECK(root.Quota() == 0);  // no limit
  FakeRoot container;  // inside the container: its group mounted as the hierarchy's root
  container.Write("proc/self/cgroup", "4:cpu,cpuacct:/docker/abc\n");
  container.Write("sys/fs/cgroup/cpu/cpu.cfs_quota_us", "50000\n");
  container.Write("sys/fs/cgroup/cpu/cpu.cfs_period_us", "100000\n");
  CHECK(container.Quota() == 1);
}

TEST_CASE("this process: at least one core, no more than it may run on") {
  const int cores = UsableCores();
  CHECK(cores >= 1);
  CHECK(cores <= static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace
}  // namespace meshwire
