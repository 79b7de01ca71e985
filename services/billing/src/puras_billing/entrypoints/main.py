"""``puras-billing``: see :mod:`puras_billing.bootstrap`."""

from __future__ import annotations

from puras_billing.bootstrap import run
from puras_billing.settings import BillingSettings
from puras_common.service import run_service


def main() -> None:
    run_service(BillingSettings, run)


if __name__ == "__main__":
    main()
