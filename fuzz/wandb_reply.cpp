// The W&B server's replies, as the logger's background thread reads them
// (resume status, run creation, upload URLs): whatever a server or a proxy
// sends, the logger reads or refuses it; it never stops the run.
#include "fuzz_target.hpp"
#include "kokoro/log/wandb_logger.hpp"

KOKORO_FUZZ_TARGET(wandb_reply) {
  namespace wandb = kokoro::detail::wandb;
  const auto body = kokoro::fuzz::as_text(data, size);
  wandb::read_resume_reply(body);
  wandb::read_run_reply(body);
  wandb::read_upload_reply(body);
  return 0;
}
