// The one include for users: the Trainer, the role concepts, the
// configuration, and DefaultPolicies, the bundle of shipped policies (the
// only place that names the defaults).
//
//   struct MyPolicies : kokoro::DefaultPolicies { using scheduler = MySchedule; };
//   kokoro::Trainer<MyTask, MyPolicies> trainer(kokoro::get_default_config());
//   trainer.fit();
#pragma once

#include "kokoro/amp/no_grad_scaler.hpp"
#include "kokoro/checkpoint/checkpoint_manager.hpp"
#include "kokoro/core/config_io.hpp"
#include "kokoro/core/policy_bundle.hpp"
#include "kokoro/core/trainer.hpp"
#include "kokoro/core/training_config.hpp"
#include "kokoro/device/auto_device.hpp"
#include "kokoro/distributed/data_parallel.hpp"
#include "kokoro/log/console_logger.hpp"
#include "kokoro/log/jsonl_logger.hpp"
#include "kokoro/log/loggers.hpp"
#include "kokoro/log/report_logger.hpp"
#include "kokoro/log/sample_file_logger.hpp"
#include "kokoro/log/tensorboard_logger.hpp"
#include "kokoro/log/wandb_logger.hpp"
#include "kokoro/memory/adaptive_memory.hpp"
#include "kokoro/memory/no_memory_policy.hpp"
#include "kokoro/profile/interbatch_profiler.hpp"
#include "kokoro/schedule/schedule_from_config.hpp"

namespace kokoro {

/// The device `hardware.device` names (auto: CUDA, MPS, CPU), no loss
/// scaling, adaptive memory cleanup (`hardware.memory_management`), the
/// schedule `training.scheduler` names (with `training.warmup_steps` of
/// warmup), console output plus metrics.jsonl, TensorBoard files and W&B
/// streaming (switched by `logging.jsonl`, `logging.tensorboard` and
/// `logging.wandb`), the task's samples as files under <run directory>/samples, checkpoints under
/// <run directory>/checkpoints, and the interbatch profiler (recording only with
/// `logging.profile: true`), and data parallel over torch.distributed when a
/// launcher such as torchrun started the process (`hardware.distributed`).
struct DefaultPolicies {
  using device = AutoDevice;
  using scaler = NoGradScaler;
  using memory = AdaptiveMemory<>;
  using scheduler = ScheduleFromConfig;
  using logger =
      Loggers<ConsoleLogger, JsonlLogger, TensorBoardLogger, WandbLogger, SampleFileLogger,
              ReportLogger>;
  using checkpoints = CheckpointManager;
  using profiler = InterbatchProfiler;
  using distribution = DataParallel;
};

static_assert(check_policies<DefaultPolicies>());

}  // namespace kokoro
