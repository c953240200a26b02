# aarch64 (Arm 64-bit) cross build, run under qemu-user: see toolchain-cross-common.cmake.
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-aarch64.cmake -DLOCKSTEP_ZLIB=OFF
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(LOCKSTEP_CROSS_TRIPLE aarch64-linux-gnu)
set(LOCKSTEP_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-cross-common.cmake)
