"""Reporting: progress of a running script, figures and tables from run directories.

==================  =========================================================
module              role
==================  =========================================================
``progress``        rich progress bars or plain lines for the example scripts
``plots``           figures of a run directory (matplotlib, the ``plot`` extra)
``results``         tables of committed result records: mean ± std over seeds,
                    paired bootstrap tests
==================  =========================================================
"""
