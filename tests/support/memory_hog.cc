// memory_hog: allocates and touches memory in 1 MiB steps, for tests of memory limits.
//
//   memory_hog MIB
//
// Prints "allocated N MiB" and exits 0 when all MIB are in use; prints "allocation failed
// after N MiB" and exits 3 when an allocation fails (an address-space limit). A memory cgroup
// at its limit kills it instead.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: memory_hog MIB\n");
    return 2;
  }
  const int mib = std::atoi(argv[1]);
  std::vector<char*> blocks;
  for (int i = 0; i < mib; ++i) {
    char* p = static_cast<char*>(std::malloc(1 << 20));
    if (p == nullptr) {
      std::printf("allocation failed after %d MiB\n", i);
      return 3;
    }
    std::memset(p, i + 1, 1 << 20);  // touched: resident, not only reserved
    blocks.push_back(p);
  }
  std::printf("allocated %d MiB\n", mib);
  return 0;
}
