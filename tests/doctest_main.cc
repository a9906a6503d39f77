// The tests' main: doctest's, with SIGPIPE ignored as every network client
// should (a relay that refuses a request closes its connection; the client
// then sees EPIPE, not a signal that ends the test process).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>
#include <signal.h>

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);
  return doctest::Context(argc, argv).run();
}
