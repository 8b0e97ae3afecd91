# Fails when the installed kokoro::kokoro export mentions libsndfile, libsoxr,
# espeak-ng, flite or ICU: a consumer of the framework alone must not need them.
#   cmake -DPREFIX=<install prefix> -P check_exports.cmake
file(GLOB_RECURSE exports "${PREFIX}/*/kokoroTargets*.cmake")
if(NOT exports)
  message(FATAL_ERROR "no kokoroTargets.cmake under ${PREFIX}")
endif()
foreach(file IN LISTS exports)
  file(READ "${file}" text)
  string(TOLOWER "${text}" text)
  if(text MATCHES "sndfile|soxr|espeak|flite|pkgconfig::icu")
    message(FATAL_ERROR "${file} names a TTS library")
  endif()
  message(STATUS "${file}: no TTS library")
endforeach()
file(GLOB_RECURSE tts_exports "${PREFIX}/*/kokoroTtsTargets*.cmake")
if(NOT tts_exports)
  message(FATAL_ERROR "no kokoroTtsTargets.cmake under ${PREFIX}: the tts component is missing")
endif()
