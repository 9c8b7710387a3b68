# End-to-end tests of the real `kaon serve` (127.0.0.1, --port 0) driven by the
# official `openai` npm client: tests/node/http/*.test.mjs, one CTest each,
# run by Node's built-in test runner. They need tests/node/node_modules
# (scripts/install-node-deps.sh, run by `make test`).
# Included from tests/http/CMakeLists.txt.
find_program(KAON_NODE node)
set(KAON_HTTP_NODE_TESTS completions chat goldens errors aborts shutdown concurrency)
foreach(name IN LISTS KAON_HTTP_NODE_TESTS)
  set(test_name http_openai_${name})
  if(KAON_NODE)
    add_test(NAME ${test_name}
      COMMAND ${KAON_NODE} --test-reporter=spec ${CMAKE_SOURCE_DIR}/tests/node/http/${name}.test.mjs
              $<TARGET_FILE:kaon>
      WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
  else()
    # Missing Node.js must fail the suite, not shrink it.
    add_test(NAME ${test_name} COMMAND ${CMAKE_COMMAND} -E false)
  endif()
  set_tests_properties(${test_name} PROPERTIES
    TIMEOUT 300
    LABELS "http;node"
    ENVIRONMENT "KAON_SOURCE_DIR=${CMAKE_SOURCE_DIR};KAON_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endforeach()
# 1,000 connections and a timing bound: not alongside other tests.
set_tests_properties(http_openai_concurrency PROPERTIES RUN_SERIAL TRUE)
