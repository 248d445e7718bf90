import sys

from fer_kaggle.cli import main

sys.exit(main())
