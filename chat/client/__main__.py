"""``python -m chat.client``: chat from a terminal (see :mod:`chat.client.terminal`)."""

import sys

from chat.client.terminal import main

if __name__ == "__main__":
    sys.exit(main())
