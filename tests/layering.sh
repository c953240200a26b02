#!/usr/bin/env bash
# The layers' include graph (docs/adding-an-op.md): each folder may include only the
# folders listed for it. The CMake targets enforce the same order at link time; this check
# also catches an include that needs no symbol (a type, an inline function).
#
#   base       base                      (thread pool, SIMD level, mode, errors, dtype)
#   kernels    base kernels              (raw pointers and sizes; never a Tensor)
#   core       base kernels core         (Tensor, autograd, ops and their dispatch)
#   nn optim data                        base core and themselves (optim and data never nn)
#   serialize  base core serialize       (state-dict interfaces only)
#   distributed  everything above        (the data-parallel step)
#
# usage: layering.sh SOURCE_DIR
set -euo pipefail
cd "${1:-$(dirname "$0")/..}"
declare -A allowed=(
  [base]="base"
  [kernels]="base kernels"
  [core]="base kernels core"
  [nn]="base core nn"
  [optim]="base core optim"
  [data]="base core data"
  [serialize]="base core serialize"
  [distributed]="base kernels core nn optim data serialize distributed"
)
bad=0
for layer in "${!allowed[@]}"; do
  [ -d "$layer" ] || continue
  while IFS= read -r hit; do
    file=${hit%%:*}
    target=$(sed -E 's/.*#include "([a-z_]+)\/.*/\1/' <<< "$hit")
    case " ${allowed[$layer]} " in
      *" $target "*) ;;
      *) echo "layering: $file includes $target/ (${layer}/ may include: ${allowed[$layer]})"; bad=1 ;;
    esac
  done < <(grep -rnE '^\s*#\s*include "(base|kernels|core|nn|optim|data|serialize|distributed|tools)/' "$layer" || true)
done
[ $bad -eq 0 ] && echo "layering: every include runs down the layers"
exit $bad
