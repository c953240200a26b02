# riscv64 (RV64GC) cross build, run under qemu-user: see toolchain-cross-common.cmake.
#   cmake -S . -B build-riscv64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-riscv64.cmake -DLOCKSTEP_ZLIB=OFF
set(CMAKE_SYSTEM_PROCESSOR riscv64)
set(LOCKSTEP_CROSS_TRIPLE riscv64-linux-gnu)
set(LOCKSTEP_CROSS_QEMU qemu-riscv64)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-cross-common.cmake)
