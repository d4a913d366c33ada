// Stand-in for Gloo's header: see ../../README.md. Held behind smart pointers only.
#pragma once

namespace gloo {
namespace transport {
class Device;
class UnboundBuffer;
} // namespace transport
} // namespace gloo
