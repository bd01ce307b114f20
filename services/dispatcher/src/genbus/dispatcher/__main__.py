"""`python -m genbus.dispatcher` / `genbus-dispatcher`."""

from genbus.dispatcher.entrypoints.cli import main

if __name__ == "__main__":
    main()
