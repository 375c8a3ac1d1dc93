"""Grad mode: whether ops record the graph for backward, kept per thread in one place.

`no_grad`, `enable_grad`, `set_grad_enabled` and `inference_mode` are PyTorch's: each is a
context manager and a decorator (with or without parentheses, also on generator functions,
where the mode is re-entered at every resume), and modes nest. The state is thread-local and
starts enabled in every thread, so a thread started inside `no_grad` records as usual.
"""

from __future__ import annotations

import functools
import inspect
import threading


class _ModeState(threading.local):
    """Per-thread flags; `threading.local` runs __init__ afresh in every thread."""

    def __init__(self):
        self.grad_enabled = True
        self.inference = False

    @property
    def recording(self) -> bool:
        """Whether ops record the graph: grad mode is on, outside inference mode (where even enable_grad
        records nothing, as in PyTorch, whose inference mode turns autograd off beneath grad mode)."""
        return self.grad_enabled and not self.inference


state = _ModeState()


def is_grad_enabled() -> bool:
    """True when ops record the graph for backward (the default)."""
    return state.grad_enabled


def is_inference_mode_enabled() -> bool:
    """True inside `inference_mode()`."""
    return state.inference


class _Mode:
    """Base of the grad modes: __enter__ sets the mode and remembers the previous one."""

    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and callable(args[0]):  # bare `@no_grad`, as PyTorch allows
            return cls()(args[0])
        return super().__new__(cls)

    def __init__(self):
        self._saved = []  # a stack, so one object may be entered again while active

    def _set(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> None:
        self._saved.append((state.grad_enabled, state.inference))
        self._set()

    def __exit__(self, *exc) -> None:
        state.grad_enabled, state.inference = self._saved.pop()

    def clone(self) -> _Mode:
        """A fresh object in the same mode, so that overlapping decorated calls do not share one."""
        return self.__class__()

    def __call__(self, fn):
        """Use as a decorator: every call, and every resume of a generator, runs in this mode."""
        if inspect.isclass(fn):
            raise TypeError(f"{type(self).__name__} decorates functions, not classes")
        if inspect.isgeneratorfunction(fn):
            return self._wrap_generator(fn)

        @functools.wraps(fn)
        def run_in_mode(*args, **kwargs):
            with self.clone():
                return fn(*args, **kwargs)

        return run_in_mode

    def _wrap_generator(self, fn):
        @functools.wraps(fn)
        def generator_in_mode(*args, **kwargs):
            gen = fn(*args, **kwargs)
            # The generator runs in this mode; its caller's mode is back at every yield.
            try:
                with self.clone():
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with self.clone():
                            gen.close()
                        raise
                    except BaseException as exc:  # thrown into us: pass it on, in this mode
                        with self.clone():
                            response = gen.throw(exc)
                    else:
                        with self.clone():
                            response = gen.send(request)
            except StopIteration as stop:
                return stop.value

        return generator_in_mode


class no_grad(_Mode):  # noqa: N801 (PyTorch's names)
    """Disable graph recording: results have requires_grad=False and no grad_fn."""

    def _set(self) -> None:
        state.grad_enabled = False


class enable_grad(_Mode):  # noqa: N801
    """Re-enable graph recording, e.g. inside `no_grad`."""

    def _set(self) -> None:
        state.grad_enabled = True


class set_grad_enabled(_Mode):  # noqa: N801
    """Set grad mode to `mode`: at once as a plain call, and restored on exit as a context manager."""

    def __init__(self, mode: bool):
        if not isinstance(mode, bool):
            raise TypeError(f"set_grad_enabled expects a bool, got {type(mode).__name__}")
        super().__init__()
        self.mode = mode
        self._previous = (state.grad_enabled, state.inference)
        state.grad_enabled = mode  # a plain call switches now, as in PyTorch

    def __enter__(self) -> None:
        # __init__ already switched; exit restores what was there before that.
        self._saved.append(self._previous)
        state.grad_enabled = self.mode

    def __call__(self, fn):
        state.grad_enabled, state.inference = self._previous  # as a decorator it switches only per call
        return super().__call__(fn)

    def clone(self) -> set_grad_enabled:
        return set_grad_enabled(self.mode)


class inference_mode(_Mode):  # noqa: N801
    """Like `no_grad`, and tensors made inside are inference tensors; `inference_mode(False)` undoes it."""

    def __init__(self, mode: bool = True):
        if not isinstance(mode, bool):
            raise TypeError(f"inference_mode expects a bool, got {type(mode).__name__}")
        super().__init__()
        self.mode = mode

    def _set(self) -> None:
        # PyTorch's InferenceMode guard: grad mode is the opposite of the inference flag.
        state.grad_enabled = not self.mode
        state.inference = self.mode

    def clone(self) -> inference_mode:
        return inference_mode(self.mode)
