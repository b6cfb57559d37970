"""Reinforcement learning on gymnasium's API."""
