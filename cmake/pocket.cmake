# Build helpers shared by every layer. A layer folder holds:
#   *.cc            -> the static library pocket_<layer>
#   *_test.cc       -> one GoogleTest binary pocket_<layer>_test, registered with CTest
#   *_bench.cc      -> one Google Benchmark binary pocket_<layer>_bench
#   *_fuzz.cc       -> one libFuzzer binary each (POCKET_FUZZ only)
# Subfolders (kernels/cpu, kernels/ref, ...) are part of their layer.

set(POCKET_WARNINGS -Wall -Wextra -Wshadow)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  # GCC 12 reports false positives on std::string inlined at -O3 (GCC bug 105329).
  list(APPEND POCKET_WARNINGS -Wno-restrict -Wno-stringop-overflow)
endif()
if(POCKET_WERROR)
  list(APPEND POCKET_WARNINGS -Werror)
endif()
# Test code (*_test.cc, *_testutil.cc in test binaries, tests/) is compiled at -O2 in Release:
# gtest and nlohmann::json instantiations at -O3 cost 7-13 % more compile time for nothing a
# test needs: what the tests check runs in the libraries, which keep -O3, and neither level
# reassociates floating point (the baseline ISA has no FMA to contract into), so a test's
# own arithmetic gives the same bits. Benchmarks and the pocket binary keep -O3.
# Measured on the release build: docs/PERFORMANCE.md, "Build time".
set(POCKET_TEST_OPTIMIZE $<$<CONFIG:Release>:-O2>)
# No floating-point contraction anywhere: GCC (-ffp-contract=fast) and Clang (=on) would fuse
# a scalar a * b + c into an FMA by different rules inside the kernels' FMA targets, and a
# training checkpoint's bytes would depend on the compiler. Where scalar code must match a
# vector lane's fused multiply-add it calls std::fma (docs/kernels.md, "Determinism").
add_compile_options(-ffp-contract=off)
if(POCKET_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=undefined
                      -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()
if(POCKET_FUZZ)
  # Instrument everything for coverage; only the fuzz binaries link libFuzzer's main.
  add_compile_options(-fsanitize=fuzzer-no-link)
endif()

# pocket_layer(NAME DEPS <targets...> [LIBS <extra link libs...>])
function(pocket_layer name)
  cmake_parse_arguments(ARG "" "" "DEPS;LIBS" ${ARGN})
  set(dir ${CMAKE_CURRENT_SOURCE_DIR})
  file(GLOB_RECURSE all_cc CONFIGURE_DEPENDS ${dir}/*.cc)
  set(lib_cc "")
  set(test_cc "")
  set(bench_cc "")
  set(fuzz_cc "")
  set(testutil_cc "")
  foreach(f ${all_cc})
    if(f MATCHES "_test\\.cc$")
      list(APPEND test_cc ${f})
    elseif(f MATCHES "_bench\\.cc$")
      list(APPEND bench_cc ${f})
    elseif(f MATCHES "_fuzz\\.cc$")
      list(APPEND fuzz_cc ${f})
    elseif(f MATCHES "_testutil\\.cc$")
      list(APPEND testutil_cc ${f})
    else()
      list(APPEND lib_cc ${f})
    endif()
  endforeach()

  set(target pocket_${name})
  if(lib_cc)
    add_library(${target} STATIC ${lib_cc})
    target_link_libraries(${target} PUBLIC ${ARG_DEPS} ${ARG_LIBS} Threads::Threads)
  else()
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE ${ARG_DEPS} ${ARG_LIBS} Threads::Threads)
  endif()
  if(lib_cc)
    target_compile_options(${target} PRIVATE ${POCKET_WARNINGS})
  endif()

  if(test_cc)
    add_executable(${target}_test ${test_cc} ${testutil_cc})
    target_link_libraries(${target}_test PRIVATE ${target} GTest::gtest GTest::gmock GTest::gtest_main)
    target_compile_options(${target}_test PRIVATE ${POCKET_WARNINGS} ${POCKET_TEST_OPTIMIZE})
    target_compile_definitions(${target}_test PRIVATE
      POCKET_SOURCE_DIR="${CMAKE_SOURCE_DIR}" POCKET_BINARY_DIR="${CMAKE_BINARY_DIR}")
    add_test(NAME ${target}_test COMMAND ${target}_test)
    set_tests_properties(${target}_test PROPERTIES LABELS unit)
  endif()

  if(POCKET_BENCH AND bench_cc)
    add_executable(${target}_bench ${bench_cc} ${testutil_cc})
    target_link_libraries(${target}_bench PRIVATE ${target} benchmark::benchmark benchmark::benchmark_main)
    target_compile_definitions(${target}_bench PRIVATE POCKET_SOURCE_DIR="${CMAKE_SOURCE_DIR}")
  endif()

  if(POCKET_FUZZ)
    foreach(f ${fuzz_cc})
      get_filename_component(fname ${f} NAME_WE)
      add_executable(${fname} ${f})
      target_link_libraries(${fname} PRIVATE ${target})
      target_link_options(${fname} PRIVATE -fsanitize=fuzzer)
      set_property(GLOBAL APPEND PROPERTY POCKET_FUZZ_TARGETS ${fname})
    endforeach()
  endif()
endfunction()
