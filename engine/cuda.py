"""engine.cuda: there is no GPU backend, so ported `if torch.cuda.is_available()` code takes the CPU path."""


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0
