#!/usr/bin/env bash
# The objects built for one instruction set (kernels/*_avx2.cpp with -mavx2 -mfma,
# kernels/*_avx512.cpp with -mavx512f) must not define a weak symbol: an inline function or
# template instantiation that another object of the library also defines is kept once by
# the linker, from whichever object it saw first, and an AVX-512 copy picked for code that
# runs on any CPU would stop it with SIGILL where AVX-512 is missing. Allowed: the symbols
# of Eigen's renamed namespaces (lockstep_eigen_avx2 / lockstep_eigen_avx512, private to
# one object each), the exception-personality reference every C++ object carries, and
# clang's __clang_call_terminate (two calls, __cxa_begin_catch and std::terminate: no code
# that depends on the instruction set).
#
# usage: isa_symbols.sh LIBRARY (liblockstep_kernels.a)
set -euo pipefail
lib=$1
command -v nm > /dev/null || { echo "isa_symbols: nm not found"; exit 77; }
report=$(nm -C --defined-only "$lib" 2> /dev/null | awk '
  /^$/ { next }
  /:$/ { member = substr($0, 1, length($0) - 1); next }
  member ~ /_avx(2|512)\.cpp\.o$/ && ($2 == "W" || $2 == "V" || $2 == "u" || $2 == "i") {
    name = $0; sub(/^[0-9a-f]* +[A-Za-z] /, "", name)
    if (name ~ /lockstep_eigen_avx(2|512)/ || name == "DW.ref.__gxx_personality_v0") next
    if (name == "__clang_call_terminate") next
    print member ": " $2 " " name
  }')
checked=$(nm -C --defined-only "$lib" 2> /dev/null | grep -cE '_avx(2|512)\.cpp\.o:$' || true)
if [ "$checked" -eq 0 ]; then
  echo "isa_symbols: no *_avx2 / *_avx512 objects in $lib (a build without SIMD): nothing to check"
  exit 77
fi
if [ -n "$report" ]; then
  echo "isa_symbols: weak symbols in objects built for one instruction set (the linker may"
  echo "keep these copies for every caller):"
  echo "$report" | cut -c1-300
  exit 1
fi
echo "isa_symbols: $checked SIMD objects, no shareable weak symbols"
