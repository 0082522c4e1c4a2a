"""How every program of ``experiments`` starts: flags, config overrides, errors, interrupts.

``run(main)`` is ``absl.app.run`` with

* flag and config-override errors as one line on stderr and exit status 2: an unknown
  ``--config.<key>`` names the closest valid keys, a value of the wrong type names the flag and
  the expected type, an unknown preset lists the presets;
* ``--print_config`` (for programs with a ``--config``): print every config field and its value,
  then exit;
* bad input during the run (``worldmodels.cli.guarded``): one paragraph and exit status 1; an
  interrupt (Ctrl-C or SIGTERM): one line saying where it stopped and that the same command
  resumes it, exit status 130.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import sys
from typing import Callable, Dict, List, Optional, Sequence

from absl import app
from absl import flags
from absl import logging
import ml_collections

from worldmodels.cli import guarded
from worldmodels.errors import ConfigError

_PRINT_CONFIG = "print_config"


def define_config_flag(help_text: str):
  """The program's ``--config=<file>.py:<preset>`` flag (locked: overrides may only set existing
  fields), ``--print_config``, and the multi-host flags (:func:`initialize_hosts`)."""
  from ml_collections import config_flags  # pylint: disable=import-outside-toplevel
  flags.DEFINE_bool(_PRINT_CONFIG, False, "Print every field of --config (with the overrides "
                    "applied) as --config.<key>=<value> lines, then exit.")
  flags.DEFINE_string(_COORDINATOR, None, "Several hosts (jax.distributed): host:port of "
                      "process 0, the same on every process; with --num_processes and "
                      "--process_id.")
  flags.DEFINE_integer(_NUM_PROCESSES, None, "Several hosts: how many processes in all.")
  flags.DEFINE_integer(_PROCESS_ID, None, "Several hosts: this process's index, 0 .. "
                       "num_processes - 1.")
  flags.DEFINE_bool(_AUTO_HOSTS, False, "Several hosts, found by jax.distributed itself "
                    "(Cloud TPU, Slurm, Open MPI): no other flag needed.")
  return config_flags.DEFINE_config_file("config", None, help_text, lock_config=True)


_COORDINATOR, _NUM_PROCESSES, _PROCESS_ID = "coordinator_address", "num_processes", "process_id"
_AUTO_HOSTS = "distributed"


def initialize_hosts() -> None:
  """Starts ``jax.distributed`` when the multi-host flags ask for it (before any computation):
  every process then sees every process's devices (``jax.devices()``), and ``--config.mesh.*``
  spans them.

  Raises:
    ConfigError: some but not all of ``--coordinator_address``, ``--num_processes`` and
      ``--process_id``, or a process id out of range.
  """
  if _COORDINATOR not in flags.FLAGS:
    return
  values = {name: flags.FLAGS[name].value for name in (_COORDINATOR, _NUM_PROCESSES,
                                                       _PROCESS_ID)}
  given = [name for name, value in values.items() if value is not None]
  if flags.FLAGS[_AUTO_HOSTS].value and not given:
    import jax  # pylint: disable=import-outside-toplevel
    jax.distributed.initialize()
    return
  if not given:
    return
  if len(given) != 3:
    missing = sorted(set(values) - set(given))
    raise ConfigError(f"--{', --'.join(given)} given without --{', --'.join(missing)}: "
                      "several hosts need all three (the same --coordinator_address and "
                      "--num_processes on every process, and its own --process_id).")
  if not 0 <= values[_PROCESS_ID] < values[_NUM_PROCESSES]:
    raise ConfigError(f"--process_id={values[_PROCESS_ID]}: must be in 0 .. "
                      f"{values[_NUM_PROCESSES] - 1} (--num_processes={values[_NUM_PROCESSES]}).")
  import jax  # pylint: disable=import-outside-toplevel
  jax.distributed.initialize(values[_COORDINATOR], values[_NUM_PROCESSES], values[_PROCESS_ID])


def _flatten(config: ml_collections.ConfigDict, prefix: str = "") -> Dict[str, object]:
  out = {}
  for key, value in config.items():
    if isinstance(value, ml_collections.ConfigDict):
      out.update(_flatten(value, f"{prefix}{key}."))
    else:
      out[f"{prefix}{key}"] = value
  return out


def format_config(config: ml_collections.ConfigDict) -> str:
  """``--config.<key>=<value>`` lines, one per field."""
  return "\n".join(f"--config.{key}={value!r}" for key, value in _flatten(config).items())


def _load_config(spec: str) -> ml_collections.ConfigDict:
  """The config of ``<file>.py[:<preset>]`` (as ``config_flags`` builds it)."""
  path, _, preset = spec.partition(":")
  if not os.path.isfile(path):
    raise ConfigError(f"--config={spec}: no such config file {path!r}; the configs are "
                      "experiments/configs/<name>.py.")
  module_spec = importlib.util.spec_from_file_location("_config_file", path)
  module = importlib.util.module_from_spec(module_spec)
  module_spec.loader.exec_module(module)
  try:
    return module.get_config(preset) if preset else module.get_config()
  except ValueError as error:
    raise ConfigError(f"--config={spec}: {error}") from None


def _tokens(name: str) -> set:
  """The words of a snake_case name and their initials (``learning_rate`` -> learning, rate,
  lr), so that abbreviations match."""
  words = [w for w in name.split("_") if w]
  return set(words) | {"".join(w[0] for w in words)}


def closest_keys(key: str, keys: Sequence[str], n: int = 3) -> List[str]:
  """The valid keys most like a mistyped one: same section first, by spelling and shared
  words or abbreviations (``agent.lerning_rate`` -> ``agent.actor_lr``, ``agent.critic_lr``)."""
  section, _, leaf = key.rpartition(".")

  def score(candidate: str) -> float:
    other_section, _, other_leaf = candidate.rpartition(".")
    spelling = difflib.SequenceMatcher(None, leaf, other_leaf).ratio()
    shared = bool(_tokens(leaf) & _tokens(other_leaf)) or any(
        difflib.SequenceMatcher(None, a, b).ratio() > 0.8
        for a in _tokens(leaf) for b in _tokens(other_leaf) if min(len(a), len(b)) > 3)
    return spelling + 0.5 * shared + 0.3 * (other_section == section)

  ranked = sorted(keys, key=score, reverse=True)
  return [k for k in ranked[:n] if score(k) >= 0.6]


def _override_problem(argv: Sequence[str]) -> Optional[str]:
  """The first ``--config.<key>`` of ``argv`` naming no field of the ``--config`` file, with
  the closest valid keys; None when all name fields."""
  specs = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
  if not specs:
    return None
  keys = list(_flatten(_load_config(specs[-1])))
  for arg in argv:
    if not arg.startswith("--config."):
      continue
    key = arg[len("--config."):].split("=", 1)[0]
    if key not in keys and not any(k.startswith(key + ".") for k in keys):
      close = closest_keys(key, keys)
      hint = (f"; did you mean {', '.join(close)}?" if close else
              "; --print_config lists the valid keys.")
      return f"{arg}: the config {specs[-1]} has no field {key!r}{hint}"
  return None


def _parse_flags(argv: List[str]) -> List[str]:
  """absl's flag parsing, with every failure as one line and exit status 2."""
  try:
    problem = _override_problem(argv)
    if problem is None:
      return flags.FLAGS(argv)
  except ConfigError as error:
    problem = str(error)
  except flags.Error as error:
    problem = str(error).splitlines()[0]
  except Exception as error:  # config_flags raises plain errors for bad overrides
    problem = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
  print(f"error: {problem}", file=sys.stderr)
  sys.exit(2)


def run(main: Callable[[List[str]], Optional[int]], positional: bool = False) -> None:
  """Runs ``main(argv)`` as the program (see the module docstring); ``positional``: the
  program takes arguments besides flags."""

  def program(argv):
    if len(argv) > 1 and not positional:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    if _PRINT_CONFIG in flags.FLAGS and flags.FLAGS[_PRINT_CONFIG].value:
      if flags.FLAGS["config"].value is None:
        raise app.UsageError("--print_config needs --config=<file>.py:<preset>")
      print(format_config(flags.FLAGS["config"].value))
      return 0
    return guarded(lambda args: (initialize_hosts(), main(args))[1])(argv)

  app.run(lambda argv: sys.exit(program(argv)), flags_parser=_parse_flags)
