# Checks mandelbrot's trace (-T): the program, linked with -rdynamic,
# writes a trace of its 151 chunks (grain 1, two workers and the caller)
# that trace_check reads back with a JSON parser, every chunk named
# render_rows; a trace that cannot be written fails the program.
#
#   cmake -DPROGRAM=mandelbrot -DCHECK=trace_check -DTRACE=file.json \
#         -P mandelbrot_trace_check.cmake

cmake_minimum_required(VERSION 3.16)
if(NOT PROGRAM OR NOT CHECK OR NOT TRACE)
  message(FATAL_ERROR "usage: cmake -DPROGRAM=... -DCHECK=... -DTRACE=... -P ${CMAKE_CURRENT_LIST_FILE}")
endif()
get_filename_component(dir ${TRACE} DIRECTORY)

function(run want)
  execute_process(COMMAND ${ARGN} TIMEOUT 60
    RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${ARGN}: exit status ${status}\n${out}${err}")
  if(NOT status STREQUAL want)
    message(FATAL_ERROR "exit status ${status}, expected ${want}")
  endif()
  if(err MATCHES "Sanitizer|runtime error")
    message(FATAL_ERROR "a sanitizer's report")
  endif()
endfunction()

file(REMOVE ${TRACE})
run(0 ${PROGRAM} -w 203 -h 151 -g 1 -t 2 -o ${dir}/traced.pgm -T ${TRACE})
run(0 ${CHECK} ${TRACE} render_rows 151)
run(1 ${PROGRAM} -w 20 -h 15 -o ${dir}/traced.pgm -T ${dir}/no/such/dir.json)
