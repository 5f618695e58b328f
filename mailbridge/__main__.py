"""`python -m mailbridge` is the same as the `mailbridge` console script."""

from mailbridge.cli import main

main()
