// Stand-in for Gloo's header: see ../README.md. ProcessGroupGloo.hpp calls this one method inline.
#pragma once
#include <chrono>

namespace gloo {
class Context {
 public:
  void setTimeout(std::chrono::milliseconds timeout);
};
} // namespace gloo
