#!/bin/sh
# The synthesis and report tests' fixture: a small English TTS run (4 steps
# on an 8-clip demo corpus, 2 of them for validation, a narrow model, every
# step logged, samples every epoch, a checkpoint every 2 steps, the quality
# evaluation at the end) and a kokoro-minimal run, in DIR.
#   synthesis_setup.sh DIR MAKE_DEMO_CORPUS TRAIN MINIMAL
set -eu
dir=$1
rm -rf "$dir"
mkdir -p "$dir"
"$2" --clips 8 --out "$dir/corpus" >/dev/null
"$3" --small --data-dir "$dir/corpus" --max-steps 4 logging.output_dir="$dir/runs" \
  logging.run_name=r data.validation_split=0.25 logging.media_every_epochs=1 logging.log_every=1 \
  training.batch_size=2 logging.checkpoint_every_steps=2 evaluation.clips=2 \
  model.hidden_dim=64 model.ff_dim=128 model.encoder_layers=2 model.decoder_layers=2 \
  model.num_heads=2 >"$dir/train.log" 2>&1 || { cat "$dir/train.log"; exit 1; }
"$4" training.epochs=1 logging.output_dir="$dir/minimal" logging.run_name=m >/dev/null 2>&1
ls "$dir/runs/r/checkpoints/final.pt" "$dir/runs/r/checkpoints/model_weights.pt" \
  "$dir/minimal/m/checkpoints/final.pt"
