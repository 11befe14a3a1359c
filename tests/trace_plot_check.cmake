# Checks tools/trace-plot: it draws tests/data/trace-sample.json (two
# workers and the calling thread, three functions, nested runs, a failed
# and a cancelled one) as a PNG, and a trace without tasks too; a file
# that is not JSON fails with exit status 1, bad usage with 2.
#
#   cmake -DPLOT=tools/trace-plot -DTRACE=trace-sample.json -DDIR=dir \
#         -P trace_plot_check.cmake

cmake_minimum_required(VERSION 3.16)
if(NOT PLOT OR NOT TRACE OR NOT DIR)
  message(FATAL_ERROR "usage: cmake -DPLOT=... -DTRACE=... -DDIR=... -P ${CMAKE_CURRENT_LIST_FILE}")
endif()

function(run want)
  execute_process(COMMAND ${ARGN} TIMEOUT 60
    RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${ARGN}: exit status ${status}\n${out}${err}")
  if(NOT status STREQUAL want)
    message(FATAL_ERROR "exit status ${status}, expected ${want}")
  endif()
endfunction()

# The eight bytes every PNG file starts with.
function(expect_png file)
  if(NOT EXISTS ${file})
    message(FATAL_ERROR "${file}: not written")
  endif()
  file(READ ${file} signature LIMIT 8 HEX)
  if(NOT signature STREQUAL "89504e470d0a1a0a")
    message(FATAL_ERROR "${file}: not a PNG (starts with ${signature})")
  endif()
endfunction()

file(MAKE_DIRECTORY ${DIR})
file(REMOVE ${DIR}/trace-sample.png ${DIR}/no-tasks.png)
run(0 ${PLOT} ${TRACE} ${DIR}/trace-sample.png)
expect_png(${DIR}/trace-sample.png)

file(WRITE ${DIR}/no-tasks.json [=[
{"traceEvents":[
  {"name":"thread_name","ph":"M","pid":1,"tid":1,"args":{"name":"crew-0"}}
]}
]=])
run(0 ${PLOT} -t "an idle pool" -w 600 -h 200 ${DIR}/no-tasks.json
  ${DIR}/no-tasks.png)
expect_png(${DIR}/no-tasks.png)

file(WRITE ${DIR}/not-json.json "{\"traceEvents\":[\n")
run(1 ${PLOT} ${DIR}/not-json.json ${DIR}/not-json.png)
run(2 ${PLOT} ${TRACE})
