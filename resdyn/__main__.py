from resdyn.cli import main

raise SystemExit(main())
