"""Sharded evaluation on Ray (built in a later step)."""
