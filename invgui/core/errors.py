"""The one root of invgui's errors.

Every error invgui raises on purpose — a bad image, representation, request, parameter, session,
decoder or feature file, a device that is not there — is an :class:`InvguiError` whose message
says what is wrong and what to do.  The command line prints those as ``invgui: error: …``; any
other exception is a bug (or an environment problem) and is reported as one, with the ``--debug``
hint.  InvguiError is a ValueError, so callers that caught ValueError still do.
"""


class InvguiError(ValueError):
    """Something invgui was asked cannot be done as asked; the message says why and what to do."""
