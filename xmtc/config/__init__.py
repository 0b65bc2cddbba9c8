"""Run configuration: what a run is (``schema``), the paper's presets, the command line.

=================  ==========================================================
module             role
=================  ==========================================================
``schema``         the dataclasses of a run's config; every field with its help,
                   limits and choices; presets and variants; ``ConfigError``
``settings``       every field by its key ``section.field``: parsing, assignment,
                   reading a saved ``config.json``
``cli``            the example scripts' command line, generated from the fields;
                   one-line errors, interruption messages
``ablation``       the paper's ablation ladder (Table 4) as config changes
=================  ==========================================================

The names of ``schema`` are importable from here (``from xmtc.config import RunConfig``).
"""

from xmtc.config.schema import *  # noqa: F401,F403
from xmtc.config.schema import __all__  # noqa: F401
