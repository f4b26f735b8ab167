"""Running on Beam: telling ikou's options from Beam's, choosing the runner, running a pipeline
and reading its counters. Every pipeline ikou runs (the migration job, the single-layout run,
record matching alone) goes through :func:`run_pipeline`.

Runner: Beam's FnApiRunner unless ``--runner`` names another; ``DirectRunner`` is mapped to the
FnApiRunner too (Beam 2.7x's DirectRunner would otherwise first try to download the Prism runner,
which fails on a closed network), built the way the DirectRunner builds it: with the pipeline
options in its provision info, so that worker processes receive them.
``--direct_running_mode`` / ``--direct_num_workers`` and every other Beam option pass through
unchanged; ``PortableRunner``, ``FlinkRunner``, ``DataflowRunner`` are Beam's own.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import os
import sys
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

from ikou.pipeline.errors import UserError
from ikou.transforms import METRICS_NAMESPACE

__all__ = ["METRICS_NAMESPACE", "beam_option_arity", "counters", "fnapi_runner", "run_pipeline",
           "runner_for", "split_args", "stderr_to"]


_FNAPI_ALIASES = {"DirectRunner", "direct", "FnApiRunner", "fnapirunner", "directrunner"}


@lru_cache(maxsize=1)
def beam_option_arity() -> dict[str, bool]:
    """Option string -> takes a value, for every option Beam's registered ``PipelineOptions``
    classes define (the same walk as ``PipelineOptions.get_all_options``; Beam's parser class is
    needed because option classes call its ``add_value_provider_argument``)."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    parser = _BeamArgumentParser(allow_abbrev=False)
    seen: dict[str, type] = {}
    for cls in PipelineOptions.__subclasses__():
        seen.setdefault(str(cls), cls)
    for cls in seen.values():
        cls._add_argparse_args(parser)
    return {opt: action.nargs != 0 for opt, action in parser._option_string_actions.items()}


def _own_arity(parser: argparse.ArgumentParser) -> dict[str, bool]:
    return {opt: action.nargs != 0 for action in parser._actions
            for opt in action.option_strings}


def split_args(argv: Sequence[str], parser: argparse.ArgumentParser,
               beam_arity: Callable[[], dict[str, bool]] = beam_option_arity,
               ) -> tuple[argparse.Namespace, list[str]]:
    """Parse ``argv`` into (ikou's options by ``parser``, Beam's option tokens).

    An option ``parser`` knows is ikou's; one Beam knows goes to Beam unchanged; one neither
    knows is refused with :class:`UserError` (naming the closest known spelling), so a mistyped
    option never becomes an input file and never passes silently. An option takes its value from
    the next token unless written ``--opt=value``.
    """
    ours = _own_arity(parser)
    beam = beam_arity()
    own_tokens: list[str] = []
    beam_tokens: list[str] = []
    argv = list(argv)
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--":
            own_tokens.extend(argv[i:])
            break
        if tok.startswith("-") and tok != "-":
            name = tok.split("=", 1)[0]
            if name in ours:
                target, arity = own_tokens, ours[name]
            elif name in beam:
                target, arity = beam_tokens, beam[name]
            else:
                close = difflib.get_close_matches(name, list(ours) + list(beam), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                raise UserError(f"unknown option {name}: neither ikou nor Beam knows it{hint}")
            target.append(tok)
            if "=" not in tok and arity and i + 1 < len(argv):
                target.append(argv[i + 1])
                i += 1
        else:
            own_tokens.append(tok)
        i += 1
    return parser.parse_intermixed_args(own_tokens), beam_tokens


def runner_for(options) -> tuple[Any, str]:
    """The runner object (or name) for ``options`` and its name for the manifest."""
    from apache_beam.options.pipeline_options import StandardOptions

    name = options.view_as(StandardOptions).runner
    if name is None or (isinstance(name, str) and name in _FNAPI_ALIASES):
        return fnapi_runner(options), "FnApiRunner"
    return name, str(name)


def fnapi_runner(options):
    """Beam's FnApiRunner told the pipeline options, as Beam's DirectRunner builds it: worker
    processes (``--direct_running_mode=multi_processing``) receive the options through the
    provision info, so file-system options such as ``--s3_endpoint_url`` reach them too (a bare
    ``FnApiRunner()`` starts its workers with no options at all)."""
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle

    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    info = fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded))
    return fn_runner.FnApiRunner(provision_info=info)


def counters(result) -> dict[str, int]:
    """The pipeline's ``ikou`` Metrics counters (committed where the runner has them)."""
    try:
        found = result.metrics().query()["counters"]
    except (AttributeError, NotImplementedError, KeyError):  # a runner without metrics
        return {}
    out: dict[str, int] = {}
    for c in found:
        if c.key.metric.namespace == METRICS_NAMESPACE:
            value = c.committed if c.committed is not None else c.attempted
            out[c.key.metric.name] = out.get(c.key.metric.name, 0) + int(value or 0)
    return dict(sorted(out.items()))


@contextlib.contextmanager
def stderr_to(path: str | os.PathLike | None):
    """Send file descriptor 2 (this process's and every child's standard error) to ``path``
    while the block runs. Beam's worker processes log every start, channel and shutdown at INFO
    on their standard error, and they receive no pipeline options to be told otherwise: their
    output belongs in the run folder, not on the user's terminal."""
    if path is None:
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(path, "ab") as log:
            os.dup2(log.fileno(), 2)
            try:
                yield
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
    finally:
        os.close(saved)


def run_pipeline(build: Callable[[Any], Any], beam_args: Sequence[str] = (),
                 log_path: str | os.PathLike | None = None, **info: Any) -> dict[str, Any]:
    """Build a pipeline with ``build(p)``, run it to the end and return the runner info for
    the manifest (runner, worker settings, the Beam arguments, ``metrics``, plus ``info``).
    With worker processes, their standard error goes to ``log_path`` (see :func:`stderr_to`)."""
    import apache_beam as beam
    from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions

    options = PipelineOptions(list(beam_args))
    runner, runner_name = runner_for(options)
    direct = options.view_as(DirectOptions)
    out = {"runner": runner_name, "direct_running_mode": direct.direct_running_mode,
           "direct_num_workers": direct.direct_num_workers, **info,
           "beam_args": list(beam_args)}
    p = beam.Pipeline(runner=runner, options=options)
    build(p)
    workers = direct.direct_running_mode in ("multi_processing", "multi_threading")
    with stderr_to(log_path if workers else None):
        result = p.run()
        result.wait_until_finish()
    out["metrics"] = counters(result)
    if workers and log_path is not None:
        out["worker_log"] = os.path.basename(os.fspath(log_path))
    return out
