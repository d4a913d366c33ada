// genie's door to c10d, the engine PyTorch's DDP runs on: a TCPStore for rendezvous and a
// ProcessGroupGloo for collectives, both inside the libtorch genie links. A C interface over
// plain memory, so the Rust side (src/train/dist.rs) needs nothing of tch's internals.
//
// Every function catches what c10d throws and writes its message (without libtorch's
// backtrace) into `err`; a non-zero return or a null handle means `err` says what went wrong.

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <ATen/ATen.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout;
};

void write_error(char* err, size_t len, const char* what) {
  if (err != nullptr && len > 0) {
    std::snprintf(err, len, "%s", what);
  }
}

template <typename F>
int guarded(char* err, size_t len, F&& body) {
  try {
    body();
    return 0;
  } catch (const c10::Error& e) {
    write_error(err, len, e.what_without_backtrace());
  } catch (const std::exception& e) {
    write_error(err, len, e.what());
  } catch (...) {
    write_error(err, len, "unknown C++ exception");
  }
  return 1;
}

at::ScalarType scalar_type(int kind) {
  switch (kind) {
    case 0:
      return at::kFloat;
    case 1:
      return at::kDouble;
    default:
      return at::kLong;
  }
}

// `numel` values of `kind` at `data`, as the one tensor a collective takes (no copy).
std::vector<at::Tensor> blob(void* data, int64_t numel, int kind) {
  return {at::from_blob(data, {numel}, at::TensorOptions().dtype(scalar_type(kind)))};
}

} // namespace

extern "C" {

// Joins the group: rank 0 serves the store at host:port, the others connect to it; every rank
// then meets every other through Gloo. Fails after `timeout_ms` if a rank never arrives.
void* genie_c10d_new(
    const char* host,
    uint16_t port,
    int rank,
    int world,
    int64_t timeout_ms,
    char* err,
    size_t err_len) {
  Group* group = nullptr;
  guarded(err, err_len, [&] {
    auto timeout = std::chrono::milliseconds(timeout_ms);
    c10d::TCPStoreOptions options;
    options.port = port;
    options.isServer = rank == 0;
    options.numWorkers = static_cast<size_t>(world);
    options.waitWorkers = true;
    options.timeout = timeout;
    auto store = c10::make_intrusive<c10d::TCPStore>(host, options);
    auto gloo = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
    if (interface != nullptr && interface[0] != '\0') {
      gloo->devices.push_back(
          c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    } else {
      gloo->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    gloo->threads = 1;
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, gloo);
    group = new Group{store, pg, timeout};
  });
  return group;
}

void genie_c10d_free(void* handle) {
  delete static_cast<Group*>(handle);
}

// Sums `numel` values of `kind` (0 f32, 1 f64, 2 i64) at `data` over the group, in place.
int genie_c10d_allreduce_sum(
    void* handle,
    void* data,
    int64_t numel,
    int kind,
    char* err,
    size_t err_len) {
  auto* group = static_cast<Group*>(handle);
  return guarded(err, err_len, [&] {
    auto tensors = blob(data, numel, kind);
    c10d::AllreduceOptions options;
    options.reduceOp = c10d::ReduceOp::SUM;
    options.timeout = group->timeout;
    group->pg->allreduce(tensors, options)->wait(group->timeout);
  });
}

// Copies rank `root`'s `numel` values at `data` to every rank's `data`.
int genie_c10d_broadcast(
    void* handle,
    void* data,
    int64_t numel,
    int kind,
    int root,
    char* err,
    size_t err_len) {
  auto* group = static_cast<Group*>(handle);
  return guarded(err, err_len, [&] {
    auto tensors = blob(data, numel, kind);
    c10d::BroadcastOptions options;
    options.rootRank = root;
    options.rootTensor = 0;
    options.timeout = group->timeout;
    group->pg->broadcast(tensors, options)->wait(group->timeout);
  });
}

} // extern "C"
