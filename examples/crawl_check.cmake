# Runs crawl (PROGRAM) in DIR, where examples/CMakeLists.txt made the trees
# "good", "bad" and (where mkfifo exists) "fifo", as CASE says, and checks
# its exit status, its output and its errors. crawl prints each file as it
# is read, in no fixed order: the file lines are sorted (as text) before
# they are compared; the summary stays last. A sanitizer's report fails
# every case.
#
#   cmake -DPROGRAM=... -DDIR=... -DCASE=good|bad|fifo|notdir|deadline
#         -P crawl_check.cmake

set(args ${CASE})
set(status 1)
set(summary "crawl: [0-9]+ files, [0-9]+ bytes, [0-9]+ directories")
if(CASE STREQUAL "good")
  # Every file, and 5 directories: good, a, a/b, a/b/c, many (6 entries,
  # more than a group runs at once).
  set(status 0)
  set(want_out "^00000000  0  good/empty\\.txt
1ad5be0d  1  good/many/2\\.txt
1db87a14  1  good/many/6\\.txt
363a3020  6  good/a/hello\\.txt
6dd28e9b  1  good/many/3\\.txt
83dcefb7  1  good/many/1\\.txt
84b12bae  1  good/many/5\\.txt
cbf43926  9  good/a/b/c/deep\\.txt
cbf43926  9  good/check\\.txt
f3b61b38  1  good/many/4\\.txt
crawl: 10 files, 30 bytes, 5 directories
$")
  set(want_err "^$")
elseif(CASE STREQUAL "bad")
  # The dangling link fails two levels down; its failure, handed up by the
  # listing of bad/a, is the only one: the rest were cancelled or read.
  set(want_out "${summary}\n$")
  set(want_err "^crawl: bad/a/dangling: open: No such file or directory\n$")
elseif(CASE STREQUAL "fifo")
  set(want_out "${summary}\n$")
  set(want_err "^crawl: fifo/pipe: not a regular file\n$")
elseif(CASE STREQUAL "notdir")
  set(args good/check.txt)
  set(want_out "^crawl: 0 files, 0 bytes, 0 directories\n$")
  set(want_err "^crawl: good/check\\.txt: opendir: Not a directory\n$")
elseif(CASE STREQUAL "deadline")
  # A second a file, four at a time: the walk would take 3 s, the deadline
  # stops it at 0.2 s. Which group reports it first depends on the timing
  # (a child group inherits the root's deadline).
  set(args -t 0.2 -s 1000 good)
  set(want_out "${summary}\n$")
  set(want_err "deadline[^\n]* passed\n")
else()
  message(FATAL_ERROR "crawl_check: unknown CASE '${CASE}'")
endif()

string(TIMESTAMP start "%s" UTC)
execute_process(COMMAND ${PROGRAM} ${args} WORKING_DIRECTORY ${DIR}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(TIMESTAMP end "%s" UTC)
math(EXPR elapsed "${end} - ${start}")

# Sorts every line but the last (the summary).
string(REGEX MATCH "[^\n]*\n$" last "${out}")
string(LENGTH "${out}" n)
string(LENGTH "${last}" n_last)
math(EXPR n_files "${n} - ${n_last}")
string(SUBSTRING "${out}" 0 ${n_files} files)
string(REGEX REPLACE "\n$" "" files "${files}")
string(REPLACE "\n" ";" files "${files}")
list(SORT files)
list(JOIN files "\n" sorted)
if(NOT sorted STREQUAL "")
  string(APPEND sorted "\n")
endif()
string(APPEND sorted "${last}")

set(problems)
if(NOT rc STREQUAL status)
  list(APPEND problems "exit status ${rc}, expected ${status}")
endif()
if(NOT sorted MATCHES "${want_out}")
  list(APPEND problems "output not as expected")
endif()
if(NOT err MATCHES "${want_err}")
  list(APPEND problems "errors not as expected")
endif()
if("${out}${err}" MATCHES
    "AddressSanitizer|LeakSanitizer|ThreadSanitizer|UndefinedBehaviorSanitizer|runtime error")
  list(APPEND problems "a sanitizer reported")
endif()
if(CASE STREQUAL "deadline" AND elapsed GREATER_EQUAL 3)
  list(APPEND problems "took ${elapsed} s: the deadline did not stop it")
endif()
if(problems)
  list(JOIN problems "; " problems)
  message(FATAL_ERROR "crawl ${args}: ${problems}\n"
    "output (sorted):\n${sorted}errors:\n${err}")
endif()
message(STATUS "crawl ${args}: as expected\n${sorted}${err}")
