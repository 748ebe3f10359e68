"""The HTTP server of ``sourcier serve``: the page and two APIs on one port.

Modules: :mod:`~.app` (composing the page, ``/api/v1`` and ``/v1``), :mod:`~.rest`
(the JSON API), :mod:`~.chat_completions` (the OpenAI-compatible endpoint),
:mod:`~.schemas` (request bodies), :mod:`~.guard` (Basic and bearer logins),
:mod:`~.tokens` (API tokens, stored hashed), :mod:`~.limits` (body size and time,
request heads, questions at once), :mod:`~.problems` (errors as data),
:mod:`~.service` (what the routes share), :mod:`~.streaming` (server-sent events) and
:mod:`~.docs_page` (the API's reference page, with no script from a CDN) and
:mod:`~.serve` (``serve()``: uvicorn on one port).

FastAPI, uvicorn and gradio are imported with :mod:`~.app` (``create_server``), when a
server is built; importing this package, or :mod:`~.tokens` for ``sourcier token``, is
cheap.
"""
