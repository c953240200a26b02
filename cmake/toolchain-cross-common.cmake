# Shared part of the cross toolchains (toolchain-aarch64.cmake, toolchain-riscv64.cmake):
# Debian's cross compilers (g++-<triple>) with the target's libraries under /usr/<triple>,
# and qemu-user as CMAKE_CROSSCOMPILING_EMULATOR, so ctest and catch_discover_tests run the
# target's binaries on this machine. Set LOCKSTEP_CROSS_TRIPLE and LOCKSTEP_CROSS_QEMU first.
#
# Header-only dependencies (Eigen, nlohmann_json, CLI11, Catch2) come from the host's
# packages: they are the same files for every architecture. Their CMake packages point at
# /usr/include, which must never reach the cross compiler (the host's C headers there would
# shadow the target's), so CMakeLists.txt treats /usr/include as implicit when
# LOCKSTEP_CROSS_HOST_HEADERS is set, and the headers are reached through a folder of links.
# Libraries (zlib, MPI, OpenBLAS) are the target's or none: scripts/cross_check.sh builds
# with LOCKSTEP_ZLIB=OFF, and MPI is not looked for.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${LOCKSTEP_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${LOCKSTEP_CROSS_TRIPLE}-g++)
set(CMAKE_FIND_ROOT_PATH /usr/${LOCKSTEP_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)   # the host's header-only packages
set(CMAKE_DISABLE_FIND_PACKAGE_MPI ON)
set(CMAKE_CROSSCOMPILING_EMULATOR ${LOCKSTEP_CROSS_QEMU} -L /usr/${LOCKSTEP_CROSS_TRIPLE})

# The folder of links to the host's header-only libraries, added to every compile.
set(LOCKSTEP_CROSS_HOST_HEADERS ${CMAKE_BINARY_DIR}/host-headers)
foreach(h nlohmann CLI catch2)  # Eigen3::Eigen names /usr/include/eigen3 itself
  if(EXISTS /usr/include/${h} AND NOT EXISTS ${LOCKSTEP_CROSS_HOST_HEADERS}/${h})
    file(MAKE_DIRECTORY ${LOCKSTEP_CROSS_HOST_HEADERS})
    file(CREATE_LINK /usr/include/${h} ${LOCKSTEP_CROSS_HOST_HEADERS}/${h} SYMBOLIC)
  endif()
endforeach()
set(CMAKE_CXX_FLAGS_INIT "-isystem ${LOCKSTEP_CROSS_HOST_HEADERS}")
