"""Gradio entry point: `gradio app/app.py` (reloads on edit) or `python app/app.py`.

Serves the default index (built from the bundled corpus on first run; set
SOURCIER_INDEX to serve another). `sourcier serve` is the same app with options.
"""

import os

from sourcier.ui import build_app

demo = build_app(index=os.environ.get("SOURCIER_INDEX") or None)

if __name__ == "__main__":
    demo.launch()
