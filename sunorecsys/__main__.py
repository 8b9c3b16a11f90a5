import sys

from sunorecsys.cli import main

sys.exit(main())
