#!/usr/bin/env bash
# Installs dependencies, builds (Release) and runs the main job: `lockstep lab --quick`,
# writing its report (report.md, report.json, SVG plots) to lab-report/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$jobs" --target lockstep_cli
./build/tools/lockstep lab --quick --report lab-report "$@"
