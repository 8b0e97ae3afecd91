"""Python's torch.load reads kokoro's checkpoints as plain dicts, and their
model and optimizer states load into torch.nn and torch.optim.

usage: check_torch_load.py CHECKPOINT_DIR   (exit 77 when torch is missing)
"""
import sys

try:
    import torch
except ImportError:
    print("python3-torch is not installed: skipped")
    sys.exit(77)

folder = sys.argv[1]
checkpoint = torch.load(f"{folder}/final.pt", weights_only=False)
assert isinstance(checkpoint, dict), type(checkpoint)
for key in ["epoch", "model_state_dict", "optimizer_state_dict", "scheduler_state_dict", "loss",
            "config", "scaler", "global_step", "best_loss", "rng_state"]:
    assert key in checkpoint, f"missing key {key}"
assert isinstance(checkpoint["config"], str) and "training:" in checkpoint["config"]

# The minimal example's model: net = Linear(8, 64) -> Tanh -> Linear(64, 1).
net = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.Tanh(), torch.nn.Linear(64, 1))
state = {k[len("net."):]: v for k, v in checkpoint["model_state_dict"].items()}
net.load_state_dict(state, strict=True)
weights = torch.load(f"{folder}/model_weights.pt", weights_only=False)
assert all(torch.equal(weights[k], checkpoint["model_state_dict"][k]) for k in weights)

optimizer = torch.optim.AdamW(net.parameters())
optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
loss = net(torch.randn(4, 8)).pow(2).mean()
loss.backward()
optimizer.step()  # the restored moments and step counts are usable
print(f"torch.load: epoch {checkpoint['epoch']}, step {checkpoint['global_step']}, "
      f"best loss {checkpoint['best_loss']:.4f}: ok")
