"""``python -m mrsdask.cli``: the ``mrsdask`` command."""

from mrsdask.cli.entry import run

if __name__ == "__main__":
    run()
