"""Reading checkpoints without PyTorch: safetensors, and torch.save's zip and legacy formats (see engine.load)."""
