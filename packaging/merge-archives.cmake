# merge-archives.cmake - cmake -DAR=ar -DOUT=libx.a -DINPUTS="a.a;b.a" -P this
#
# Build one static archive from several, with ar's MRI script mode (GNU ar,
# llvm-ar). libnokv (the logic) and libnokv_posix (the real runtime) call
# each other, so an embedder linking two archives would need them listed
# twice, which pkg-config's de-duplication undoes; one archive has no order.
set(script "CREATE ${OUT}\n")
foreach(in ${INPUTS})
  string(APPEND script "ADDLIB ${in}\n")
endforeach()
string(APPEND script "SAVE\nEND\n")
file(REMOVE ${OUT})
file(WRITE ${OUT}.mri "${script}")
execute_process(COMMAND ${AR} -M INPUT_FILE ${OUT}.mri RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "merging ${INPUTS} into ${OUT} failed (${AR} -M: ${rc})")
endif()
