// The one include for users: the Trainer, the policy concepts, the default
// policies and the configuration.
//
//   struct MyPolicies : kokoro::DefaultPolicies { using scheduler = MySchedule; };
//   kokoro::Trainer<MyTask, MyPolicies> trainer(kokoro::get_small_config());
//   trainer.fit();
#pragma once

#include "kokoro/config/config_io.hpp"
#include "kokoro/config/training_config.hpp"
#include "kokoro/core/policies.hpp"
#include "kokoro/core/trainer.hpp"
#include "kokoro/log/loggers.hpp"
