"""What Airflow's plugin manager loads from the plugins folder: the Auto-Refunds worklist.

The package ``auto_refunds`` itself is in .airflowignore (the manager would import each of its
files as a module of its own); this file only names the plugin class, imported once, as
``auto_refunds.worklist.plugin``.
"""

from auto_refunds.worklist.plugin import AutoRefundsWorklistPlugin

__all__ = ["AutoRefundsWorklistPlugin"]
