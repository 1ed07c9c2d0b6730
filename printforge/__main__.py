from printforge.cli import main

raise SystemExit(main())
