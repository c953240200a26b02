// LocalGroup: a world of `size` ranks that are threads of this process, for the tests and
// the lab (train at world size W without mpirun). The collectives are barriers over shared
// buffers; a rank that throws or calls abort() stops every other rank (each throws
// std::runtime_error naming the rank that failed) instead of leaving them waiting.
// Kernels must run single-threaded meanwhile: run_local_group sets num_threads(1).
#pragma once
#include <functional>

#include "distributed/communicator.h"

namespace lockstep::distributed {

// Runs fn(comm) on `world` threads, one per rank, and returns when all are done; rethrows
// the exception of the rank that failed first (not of one merely stopped by it).
void run_local_group(int world, const std::function<void(Communicator&)>& fn);

}  // namespace lockstep::distributed
