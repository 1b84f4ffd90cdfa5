import sys

from legollm.cli.main import main

sys.exit(main())
