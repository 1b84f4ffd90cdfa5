"""The one ``legollm`` command; each subcommand lives in its own module."""
