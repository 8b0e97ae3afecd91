// A core header that reaches up into the TTS task: the layering check must
// refuse this tree (tests/CMakeLists.txt runs it expecting failure).
#pragma once

#include "kokoro/tts/english_tts_task.hpp"
