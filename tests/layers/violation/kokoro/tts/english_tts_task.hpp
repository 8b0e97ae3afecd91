// Stands in for the TTS task so that the include above names a real file;
// only the direction of the include is wrong.
#pragma once
