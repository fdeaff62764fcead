# Prints why each test of the ctest run that just ended was skipped. ctest itself shows
# only "***Skipped" (no output of a skipped test, even with --output-on-failure), so the
# build folder's CTestCustom.cmake (written by tests/CMakeLists.txt) runs this after the
# tests as CTEST_CUSTOM_POST_TEST. The reason is the test's own line: every dlk test that
# skips prints one ending in ": skipped" ("test_core --gpu: no CUDA device present (or
# CUDA not built): skipped") before it exits 77.
# Usage: cmake -DLOG=BUILD/Testing/Temporary/LastTest.log -P skip_reasons.cmake
# While ctest runs this, the log of the run that just ended is still LastTest.log.tmp
# (renamed when ctest exits); LastTest.log then is the previous run's.
if(EXISTS "${LOG}.tmp")
  set(LOG "${LOG}.tmp")
elseif(NOT EXISTS "${LOG}")
  return()
endif()
file(STRINGS "${LOG}" _lines)
set(_name "")
set(_out "")
foreach(_l IN LISTS _lines)
  if(_l MATCHES "^[0-9]+/[0-9]+ Testing: (.*)$")
    set(_name "${CMAKE_MATCH_1}")
  elseif(_name AND _l MATCHES ": skipped$")
    string(APPEND _out "  ${_name}: ${_l}\n")
  endif()
endforeach()
if(_out)
  message("\nWhy tests were skipped (each test's own line):\n${_out}")
endif()
