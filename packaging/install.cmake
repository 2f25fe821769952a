# install.cmake - version, install rules, nokv.pc and man pages (included by
# the top-level CMakeLists.txt).
#
# `cmake --install build [--prefix P]` (DESTDIR honoured) installs:
#   bin/nokv, bin/nokv-sim
#   lib/libnokv.a (libnokv + the real runtime in one archive), lib/pkgconfig/nokv.pc
#   include/nokv/nokv.h
#   share/man/man1/nokv.1, nokv-migrate.1, nokv-sim.1
#   share/doc/nokv/ (docs, examples/nokv.service, examples/nokv.conf)
# and, with -DNOKV_INSTALL_SYSTEMD_UNIT=ON, the unit into systemd's unit dir.

option(NOKV_MAN "Generate the man pages from the binaries' --help" ON)
option(NOKV_INSTALL_SYSTEMD_UNIT "Install nokv.service into the systemd unit directory" OFF)
set(NOKV_SYSTEMD_UNIT_DIR "")
if(NOKV_INSTALL_SYSTEMD_UNIT)
  pkg_get_variable(NOKV_SYSTEMD_UNIT_DIR systemd systemdsystemunitdir)
  if(NOT NOKV_SYSTEMD_UNIT_DIR)
    set(NOKV_SYSTEMD_UNIT_DIR ${CMAKE_INSTALL_PREFIX}/lib/systemd/system)
  endif()
endif()

# The version lives in one place (cli/cli.h); the commit is read now, at
# configure time, and shown by `nokv --version`.
file(STRINGS ${CMAKE_CURRENT_SOURCE_DIR}/cli/cli.h NOKV_VERSION_LINE
     REGEX "^#define NK_CLI_VERSION ")
string(REGEX REPLACE ".*\"(.*)\".*" "\\1" NOKV_VERSION "${NOKV_VERSION_LINE}")
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}
                OUTPUT_VARIABLE NOKV_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE nokv_git_rc)
if(NOT nokv_git_rc EQUAL 0 OR NOKV_GIT_COMMIT STREQUAL "")
  set(NOKV_GIT_COMMIT unknown)
endif()
set_property(SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/cli/main.c APPEND PROPERTY COMPILE_DEFINITIONS
             NOKV_GIT_COMMIT="${NOKV_GIT_COMMIT}" NOKV_BUILD_TYPE="${CMAKE_BUILD_TYPE}")

install(TARGETS nokv_cli nokv-sim RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# Embedders get one archive, libnokv.a = the library + the real runtime.
set(NOKV_EMBED_LIB ${CMAKE_CURRENT_BINARY_DIR}/embed/libnokv.a)
add_custom_command(OUTPUT ${NOKV_EMBED_LIB}
                   COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/embed
                   COMMAND ${CMAKE_COMMAND} -DAR=${CMAKE_AR} -DOUT=${NOKV_EMBED_LIB}
                           "-DINPUTS=$<TARGET_FILE:nokv>\;$<TARGET_FILE:nokv_posix>"
                           -P ${CMAKE_CURRENT_SOURCE_DIR}/packaging/merge-archives.cmake
                   DEPENDS nokv nokv_posix ${CMAKE_CURRENT_SOURCE_DIR}/packaging/merge-archives.cmake
                   COMMENT "Merging libnokv and the real runtime into embed/libnokv.a")
add_custom_target(nokv_embed_lib ALL DEPENDS ${NOKV_EMBED_LIB})
install(FILES ${NOKV_EMBED_LIB} DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/nokv/nokv.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/nokv)

# nokv.pc and the example unit are written at install time, so a `--prefix`
# given to cmake --install (not only CMAKE_INSTALL_PREFIX at configure time)
# ends up in them. Absolute GNUInstallDirs values are kept as they are,
# relative ones joined to the prefix (never "${prefix}/<absolute>"); the
# config dir follows GNUInstallDirs' rule (/usr -> /etc).
install(CODE "
  set(P \"\${CMAKE_INSTALL_PREFIX}\")
  foreach(pair \"LIBDIR;${CMAKE_INSTALL_LIBDIR}\" \"INCLUDEDIR;${CMAKE_INSTALL_INCLUDEDIR}\"
               \"BINDIR;${CMAKE_INSTALL_BINDIR}\" \"SYSCONFDIR;${CMAKE_INSTALL_SYSCONFDIR}\"
               \"DOCDIR;${CMAKE_INSTALL_DOCDIR}\")
    list(GET pair 0 v)
    list(GET pair 1 d)
    if(IS_ABSOLUTE \"\${d}\")
      set(FULL_\${v} \"\${d}\")
    elseif(v STREQUAL SYSCONFDIR AND (P STREQUAL /usr OR P STREQUAL /))
      set(FULL_\${v} \"/\${d}\")
    else()
      set(FULL_\${v} \"\${P}/\${d}\")
    endif()
  endforeach()
  set(PC_PREFIX \"\${P}\")
  set(PC_LIBDIR \"\${FULL_LIBDIR}\")
  set(PC_INCLUDEDIR \"\${FULL_INCLUDEDIR}\")
  set(NOKV_BINDIR \"\${FULL_BINDIR}\")
  set(NOKV_SYSCONFDIR \"\${FULL_SYSCONFDIR}\")
  set(NOKV_VERSION \"${NOKV_VERSION}\")
  set(stage \"${CMAKE_CURRENT_BINARY_DIR}/install-staged\")
  configure_file(\"${CMAKE_CURRENT_SOURCE_DIR}/packaging/nokv.pc.in\" \"\${stage}/nokv.pc\" @ONLY)
  configure_file(\"${CMAKE_CURRENT_SOURCE_DIR}/packaging/nokv.service.in\"
                 \"\${stage}/nokv.service\" @ONLY)
  file(INSTALL DESTINATION \"\${FULL_LIBDIR}/pkgconfig\" TYPE FILE FILES \"\${stage}/nokv.pc\")
  file(INSTALL DESTINATION \"\${FULL_DOCDIR}/examples\" TYPE FILE
       FILES \"\${stage}/nokv.service\" \"${CMAKE_CURRENT_SOURCE_DIR}/packaging/nokv.conf\")
  if(${NOKV_INSTALL_SYSTEMD_UNIT})
    file(INSTALL DESTINATION \"${NOKV_SYSTEMD_UNIT_DIR}\" TYPE FILE
         FILES \"\${stage}/nokv.service\")
  endif()
")

# Man pages from the same text as --help (tools/man/gen-man.sh runs the
# built binaries), so they cannot drift.
if(NOKV_MAN AND NOT CMAKE_CROSSCOMPILING)
  set(NOKV_MAN_DIR ${CMAKE_CURRENT_BINARY_DIR}/man)
  set(NOKV_MAN_PAGES ${NOKV_MAN_DIR}/nokv.1 ${NOKV_MAN_DIR}/nokv-migrate.1 ${NOKV_MAN_DIR}/nokv-sim.1)
  add_custom_command(OUTPUT ${NOKV_MAN_PAGES}
                     COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/tools/man/gen-man.sh
                             $<TARGET_FILE:nokv_cli> $<TARGET_FILE:nokv-sim> ${NOKV_MAN_DIR}
                             ${NOKV_VERSION}
                     DEPENDS nokv_cli nokv-sim ${CMAKE_CURRENT_SOURCE_DIR}/tools/man/gen-man.sh
                     COMMENT "Generating man pages from --help")
  add_custom_target(nokv_man ALL DEPENDS ${NOKV_MAN_PAGES})
  install(FILES ${NOKV_MAN_PAGES} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
endif()

# The documentation.
file(GLOB NOKV_DOCS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/docs/*.md)
install(FILES ${NOKV_DOCS} DESTINATION ${CMAKE_INSTALL_DOCDIR})
