"""``python -m envattest_gateway``."""

from envattest_gateway._cli import main

raise SystemExit(main())
