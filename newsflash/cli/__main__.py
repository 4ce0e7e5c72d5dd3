"""`python -m newsflash.cli`: the same command line as the `newsflash` entry point."""

from newsflash.cli import main

main()
