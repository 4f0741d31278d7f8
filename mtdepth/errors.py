"""The one exception type for errors a user can cause."""


class MtDepthError(Exception):
    """A user-caused error: bad input file, bad parameter, stale store.

    The message is one line that names the file or parameter at fault; the CLI prints it
    on stderr and exits with code 2, never with a traceback.
    """
