"""Optimisers written from their update equations, with torch.optim's interface."""
