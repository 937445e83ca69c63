from server._cli import main

raise SystemExit(main())
