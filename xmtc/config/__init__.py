"""Run configuration: what a run is (``schema``), the paper's presets, the command line.

=================  ==========================================================
module             role
=================  ==========================================================
``schema``         the dataclasses of a run's config, every field declared once
                   with its help, limits and choices; checks; ``ConfigError``
``presets``        the paper's Table 2 and ours; the fast and cpu variants
``settings``       every field by its key ``section.field``: parsing, assignment;
                   ``compose``, the one builder of a run's config
``cli``            the example scripts' command line, generated from the fields;
                   one-line errors, interruption messages
``ablation``       the paper's ablation ladder (Table 4) as config changes
=================  ==========================================================

The names of ``schema`` and ``presets``, ``compose`` and ``read_config`` are importable
from here (``from xmtc.config import RunConfig, compose``).
"""

from xmtc.config.presets import CPU, FAST, PRESETS, VARIANTS, preset
from xmtc.config.schema import (
                                DATASETS,
                                MODEL_NAMES,
                                SECTIONS,
                                ConfigError,
                                DataConfig,
                                Limit,
                                NetConfig,
                                RunConfig,
                                TrainConfig,
                                check_limit,
                                field_meta,
                                limits,
                                setting,
                                validate,
)
from xmtc.config.settings import compose, read_config

__all__ = ["CPU", "DATASETS", "FAST", "MODEL_NAMES", "PRESETS", "SECTIONS", "VARIANTS", "ConfigError", "DataConfig",
           "Limit", "NetConfig", "RunConfig", "TrainConfig", "check_limit", "compose", "field_meta", "limits",
           "preset", "read_config", "setting", "validate"]
