import sys

from neurodeploy.cli import main

sys.exit(main())
