"""`python -m jobs.evaluate`: the batch evaluation job.

With no arguments it evaluates the bundled ConvNet on the bundled digits test set, on a local Ray
with one worker per core, writing ./eval-output/. The same command runs on a cluster with
--address (or RAY_ADDRESS). Exit codes: 0 success; 2 the job could not start (bad usage, or inputs
that do not fit, found before any actor starts); 1 the job started and failed; 130 interrupted
(the output is left resumable with --resume).
"""

from __future__ import annotations

import sys
import traceback

from cluster.errors import InputError, JobFailed
from jobs.options import build_parser, parse  # noqa: F401 (build_parser: the CLI's parser)
from jobs.progress import Progress

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def run(config, compare_grad_modes: bool = False) -> int:
    """Run the job the configuration describes, printing progress and the summary."""
    import cluster
    from jobs.summary import render

    if compare_grad_modes:
        from jobs.compare import compare
        print(compare(config))
        return EXIT_OK
    progress = Progress()
    try:
        result = cluster.evaluate(config, on_start=progress.start, on_shard_done=progress.shard_done)
    finally:
        progress.close()
    print(render(result))
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Parse, run, and map the outcome to an exit code with one clear line on failure."""
    debug = "--debug" in (argv if argv is not None else sys.argv[1:])
    try:
        config, flags = parse(argv)
        return run(config, bool(flags.compare_grad_modes))
    except InputError as e:
        return _fail(EXIT_USAGE, f"error: {e}", debug)
    except JobFailed as e:
        return _fail(EXIT_FAILED, f"job failed: {e}", debug)
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, "interrupted: the output is incomplete; run again with --resume to finish",
                     debug)


def _fail(code: int, message: str, debug: bool) -> int:
    if debug:
        traceback.print_exc()
    print(message, file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
