"""Gradio entry point: `gradio app/app.py` (the page alone, reloaded on edit) or
`python app/app.py` (the page and the HTTP APIs, as `sourcier serve`).

Serves the default index (built from the bundled corpus on first run; set
SOURCIER_INDEX to serve another). `sourcier serve` is the same server with options.
"""

import os

INDEX = os.environ.get("SOURCIER_INDEX") or None

if __name__ == "__main__":
    from sourcier.server.serve import serve

    serve(index=INDEX)
else:  # `gradio app/app.py` imports this module and serves `demo`
    from sourcier.ui import build_app

    demo = build_app(index=INDEX)
