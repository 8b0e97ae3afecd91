// A checkpoint file, as resume, kokoro-synthesize and kokoro-align read one
// (kokoro's own, or one Python's torch.save wrote): damaged, truncated or
// foreign, it is refused by name; a run that auto-resumes then takes the
// checkpoint before it. libtorch's unpickler is not instrumented: the
// sanitizers watch kokoro's code; a crash inside libtorch still ends the run
// and is a finding.
#include "fuzz_target.hpp"
#include "kokoro/checkpoint/checkpoint_file.hpp"
#include "kokoro/tts/synthesizer.hpp"

KOKORO_FUZZ_TARGET(checkpoint) {
  namespace fuzz = kokoro::fuzz;
  const auto path = fuzz::write_file("checkpoint.pt", fuzz::as_text(data, size));
  try {
    kokoro::load_checkpoint_file(path);
  } catch (const kokoro::Error&) {
    return 0;
  }
  try {
    kokoro::tts::read_tts_checkpoint(path);
  } catch (const kokoro::Error&) {
  }
  return 0;
}
