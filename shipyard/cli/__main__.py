from shipyard.cli import main

# Guarded: worker processes import the main module again, which must not re-run the CLI.
if __name__ == "__main__":
    main()
