// jemalloc's options for the meshwire executable, compiled in only when it is
// linked with jemalloc (cli/CMakeLists.txt); MALLOC_CONF in the environment
// still adds to them. Freed pages go back to the system after 1 s instead of
// jemalloc's 10 s, so the relay's resident memory follows what it holds: the
// garbage of parking 10,000 long-polls no longer counts as theirs (6.5 KiB
// each against 7.8, bench/run.sh; docs/PERFORMANCE.md).
extern "C" {
extern const char* malloc_conf;
const char* malloc_conf = "dirty_decay_ms:1000";
}
