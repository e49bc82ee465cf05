"""``python -m auto_refunds.demo --start 2026-03-02 --days 4``: what ``make run`` runs."""

import sys

from auto_refunds.demo.run import main

sys.exit(main())
