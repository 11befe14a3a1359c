# Checks that mandelbrot draws the same picture whatever the scheduling,
# and that it reports the files it cannot write.
#
#   cmake -DPROGRAM=path/to/mandelbrot -DDIR=scratch-dir -P mandelbrot_check.cmake
#
# Draws a picture of 151 rows (a prime: chunks of 37 leave 3 over), five ways:
# grain 0 (the library's chunks), 1 and 37 on two threads, grain 0 on one
# thread, grain 1 on three. Each run must exit 0, print the same hash and
# write the same bytes: a PGM header, then one byte a pixel. Then a file in
# a directory that does not exist, and /dev/full where there is one, must
# fail with exit status 1 and the system's message; a width of 0, with 2.
# Every program's output is shown, so that CTest sees a sanitizer's report.

cmake_minimum_required(VERSION 3.16)
if(NOT PROGRAM OR NOT DIR)
  message(FATAL_ERROR "usage: cmake -DPROGRAM=... -DDIR=... -P ${CMAKE_CURRENT_LIST_FILE}")
endif()
set(width 203)
set(height 151)
file(REMOVE_RECURSE ${DIR})
file(MAKE_DIRECTORY ${DIR})

# run(NAME STATUS ARGS...): runs the program, wants exit status STATUS, and
# leaves its standard output in NAME_out, its standard error in NAME_err.
# A run that hangs (as one whose loop writes past the picture can) is killed
# and named, well before CTest's own timeout.
function(run name want)
  execute_process(COMMAND ${PROGRAM} ${ARGN} TIMEOUT 30
    RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(JOIN " " command mandelbrot ${ARGN})
  message("${command}: exit status ${status}\n${out}${err}")
  if(NOT status STREQUAL want)
    message(FATAL_ERROR "${name}: exit status ${status}, expected ${want}")
  endif()
  set(${name}_out "${out}" PARENT_SCOPE)
  set(${name}_err "${err}" PARENT_SCOPE)
endfunction()

set(size -w ${width} -h ${height})
run(guided 0 ${size} -t 2 -g 0 -o ${DIR}/guided.pgm)
run(rows 0 ${size} -t 2 -g 1 -o ${DIR}/rows.pgm)
run(grain37 0 ${size} -t 2 -g 37 -o ${DIR}/grain37.pgm)
run(alone 0 ${size} -t 1 -g 0 -o ${DIR}/alone.pgm)
run(three 0 ${size} -t 3 -g 1 -o ${DIR}/three.pgm)

if(NOT guided_out MATCHES "\nfnv-1a ([0-9a-f]+)\n$")
  message(FATAL_ERROR "guided: no hash in its output")
endif()
set(hash ${CMAKE_MATCH_1})
file(SHA256 ${DIR}/guided.pgm digest)
set(header_wanted "P5\n${width} ${height}\n255\n")
string(LENGTH "${header_wanted}" length)
file(READ ${DIR}/guided.pgm header LIMIT ${length})
file(SIZE ${DIR}/guided.pgm bytes)
if(NOT header STREQUAL header_wanted)
  message(FATAL_ERROR "guided.pgm: not the PGM header expected")
endif()
math(EXPR expected "${length} + ${width} * ${height}")
if(NOT bytes EQUAL expected)
  message(FATAL_ERROR "guided.pgm: ${bytes} bytes, expected ${expected}")
endif()
foreach(name rows grain37 alone three)
  if(NOT ${name}_out MATCHES "\nfnv-1a ${hash}\n$")
    message(FATAL_ERROR "${name}: not the hash of grain 0 (${hash})")
  endif()
  file(SHA256 ${DIR}/${name}.pgm other)
  if(NOT other STREQUAL digest)
    message(FATAL_ERROR "${name}.pgm: not the bytes of guided.pgm")
  endif()
endforeach()

run(missing 1 ${size} -o ${DIR}/missing/m.pgm)
if(NOT missing_err MATCHES "^mandelbrot: [^\n]*/missing/m\\.pgm: No such file or directory\n$")
  message(FATAL_ERROR "missing: not the message expected")
endif()
if(EXISTS /dev/full)
  run(full 1 ${size} -o /dev/full)
  if(NOT full_err MATCHES "^mandelbrot: /dev/full: No space left on device\n$")
    message(FATAL_ERROR "full: not the message expected")
  endif()
endif()
run(usage 2 -w 0)
message("mandelbrot: the same picture, hash ${hash}, five ways")
