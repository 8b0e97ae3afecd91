# flite's CMU lexicon (CMUdict with letter-to-sound rules), which ships no
# pkg-config or CMake package: defines the imported target kokoro::flite_cmulex
# (libflite_cmulex and the libflite it needs) and sets FLITE_CMULEX_FOUND.
if(NOT TARGET kokoro::flite_cmulex)
  find_path(FLITE_INCLUDE_DIR flite/flite.h)
  find_library(FLITE_LIBRARY flite)
  find_library(FLITE_CMULEX_LIBRARY flite_cmulex)
  if(FLITE_INCLUDE_DIR AND FLITE_LIBRARY AND FLITE_CMULEX_LIBRARY)
    add_library(kokoro::flite_cmulex INTERFACE IMPORTED GLOBAL)
    set_target_properties(kokoro::flite_cmulex PROPERTIES
      INTERFACE_INCLUDE_DIRECTORIES "${FLITE_INCLUDE_DIR}"
      INTERFACE_LINK_LIBRARIES "${FLITE_CMULEX_LIBRARY};${FLITE_LIBRARY}")
    set(FLITE_CMULEX_FOUND TRUE)
  else()
    set(FLITE_CMULEX_FOUND FALSE)
    if(FliteLexicon_FIND_REQUIRED OR NOT DEFINED FliteLexicon_FIND_REQUIRED)
      message(FATAL_ERROR "flite's CMU lexicon not found (Debian: apt-get install flite1-dev)")
    endif()
  endif()
endif()
