"""PyInstaller entry point of the agent binary: the same ``main`` as the ``envattest`` script."""

from agent._cli import main

raise SystemExit(main())
