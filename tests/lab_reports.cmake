# ctest lab:registry-and-reports. Checks that `lockstep lab --list` names exactly the
# scenarios ctest runs (SCENARIOS), that an unknown name exits 2, and that a quick run with
# --report writes report.html, report.md, report.json and one SVG per scenario with curves, and ends
# with the --json summary line.
# Inputs: LOCKSTEP (the program), WORK (a scratch directory), SCENARIOS (a list).
execute_process(COMMAND ${LOCKSTEP} lab --list OUTPUT_VARIABLE listed RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "lockstep lab --list exited ${rc}")
endif()
string(REGEX MATCHALL "(^|\n)[a-z0-9-]+" names "${listed}")
list(TRANSFORM names STRIP)
if(NOT names STREQUAL SCENARIOS)
  message(FATAL_ERROR "lab scenarios differ from the ctest entries:\n  --list: ${names}\n  ctest:  ${SCENARIOS}")
endif()

execute_process(COMMAND ${LOCKSTEP} lab no-such-scenario RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "an unknown scenario exited ${rc}, expected 2")
endif()
execute_process(COMMAND ${LOCKSTEP} lab --quick --bogus-flag RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
if(NOT rc EQUAL 2)
  message(FATAL_ERROR "an unknown flag exited ${rc}, expected 2")
endif()

file(REMOVE_RECURSE ${WORK})
execute_process(COMMAND ${LOCKSTEP} lab --quick --check --json --report ${WORK} init-seed divergence-growth cpu-vs-gpu
                OUTPUT_VARIABLE out RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "lockstep lab --report exited ${rc}:\n${out}")
endif()
foreach(f report.html report.md report.json init-seed.svg divergence-growth.svg)
  if(NOT EXISTS ${WORK}/${f})
    message(FATAL_ERROR "lockstep lab --report did not write ${f}")
  endif()
endforeach()
file(READ ${WORK}/divergence-growth.svg svg)
if(NOT svg MATCHES "^<svg " OR NOT svg MATCHES "</svg>\n$" OR NOT svg MATCHES "log scale")
  message(FATAL_ERROR "divergence-growth.svg is not a log-scale SVG plot")
endif()
string(STRIP "${out}" out)
string(REGEX REPLACE ".*\n" "" last "${out}")
if(NOT last MATCHES "^\\{.*\"ok\":true.*\\}$")
  message(FATAL_ERROR "the last line is not the JSON summary: ${last}")
endif()
